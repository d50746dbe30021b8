"""Risk runs: start a model run in the background, persist its H3 cells, announce the end.

Used by the API (``POST /risk/runs``), the CLI and the nowcast loop::

    run_id = await start_run(pool, settings, model="landslide", rain={"scenario": "light_rain"})
    run = await wait_run(pool, run_id, timeout_s=120)

Inputs come from the database: the DEM is the registered raster ``dem`` (or
``params.dem``), known landslide sites the ``hazard_sites`` layer (kinds landslide, collapse,
debris_flow), roads the ``roads`` layer, gauges the ``rain_gauge`` sensors and their
``sensor_readings``. The static cell table (terrain, factors, susceptibility) is cached per
(DEM file, res, static parameters, sites, roads) under ``$ONEMAP_DATA_DIR/risk_cache`` so a
repeated nowcast only redoes the rain part. The CPU work runs in a worker thread (one at a
time per process); the event loop only waits. A run levels every cell without explanations,
then stores only its informative cells (above none, or changed since the previous run of
the model on the same cells) with their explanations, by binary COPY into a partition of its
own, in the same transaction that marks the run done (:mod:`emergency.cellstore`); readers
resolve every other cell of the run as level none.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import h3
import numpy as np
import pandas as pd

from emergency import cellstore
from emergency.errors import (
    CellNotFound,
    NothingToVerify,
    RunNotFound,
    RunNotReady,
    TooManyRuns,
)
from emergency.settings import CODE_VERSION, REPO_ROOT, RunSettings
from layers.audit import Actor, record_async
from layers.catalog import LEVEL_NAMES
from layers.h3cells import children_range, parent_int
from risk_models import pipeline
from risk_models.errors import EmptyAreaError, ModelInputError, RiskModelError, ScenarioError
from risk_models.params import PipelineParams, check_model, check_res
from risk_models.rainsource import RainSource, gauge_source, raster_source
from risk_models.static import STATIC_VERSION
from risk_models.verify import verify

log = logging.getLogger("onemap.risk")

#: Hazard-site kinds that are landslide events for the susceptibility fit.
LANDSLIDE_KINDS = ["landslide", "collapse", "debris_flow"]
#: A run still pending/running this long after it was created lost its process (a server
#: restart mid-run); the next start_run marks it failed so nothing waits on it forever.
ABANDONED_AFTER_H = 24
#: Longest gauge window accepted (hours).
MAX_GAUGE_HOURS = 240
_SCENARIO_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_RASTER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

#: One pipeline at a time per process: the machine's cores are better used by NumPy inside
#: one run than by two runs fighting for them (and memory stays bounded).
_CPU_LOCK = threading.Lock()
#: References to running background tasks (asyncio keeps only weak ones).
_TASKS: set[asyncio.Task[None]] = set()

RUN_COLUMNS = (
    "id, model, status, scenario, inputs, params, timings, summary, error, created_at, finished_at"
)


#: Advisory-lock key serialising the capacity check and the insert of a new run.
_RUN_SLOT_LOCK = 0x6F6E656D6170  # "onemap"
#: Advisory-lock class (with the cell set id) serialising the writes of runs on one cell set,
#: so each compares its levels with the run committed just before it.
_STORE_LOCK = 0x6F6D63  # "omc"


async def check_quota(conn: asyncpg.Connection, settings: RunSettings, actor: Actor) -> None:
    """Raise :class:`TooManyRuns` when ``actor`` (an API key's name) started
    ``risk_runs_per_key_per_hour`` runs in the last hour (admins and the server's own
    nowcast loop are not counted against)."""
    limit = settings.risk_runs_per_key_per_hour
    if limit <= 0 or actor.role == "admin":
        return
    started = await conn.fetchval(
        "SELECT count(*) FROM risk_runs WHERE inputs->>'actor' = $1 "
        "AND created_at > now() - interval '1 hour'",
        actor.name,
    )
    if int(started) >= limit:
        raise TooManyRuns(
            f"{actor.name!r} started {started} risk runs in the last hour (at most {limit} per "
            "key and hour); try again later"
        )


async def check_capacity(conn: asyncpg.Connection, settings: RunSettings, n: int = 1) -> None:
    """Raise :class:`TooManyRuns` unless ``n`` more runs fit under the configured bound.

    Each run takes a CPU core for seconds to minutes; without a bound a burst of requests
    would starve every other request of the server.
    """
    active = await conn.fetchval(
        "SELECT count(*) FROM risk_runs WHERE status IN ('pending', 'running')"
    )
    limit = settings.risk_max_active_runs
    if int(active) + n > limit:
        raise TooManyRuns(
            f"{active} risk runs are pending or running (at most {limit} at a time); "
            "try again when one has finished"
        )


@dataclass
class _Job:
    run_id: int
    model: str
    res: int
    rain: dict[str, Any]
    params: PipelineParams
    dem_path: Path
    data_dir: Path
    inputs: dict[str, Any] = field(default_factory=dict)
    scheduler: str | None = None


def public(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs fit for the run record: server file paths stay out of the API."""
    return {k: v for k, v in inputs.items() if not k.endswith("_path")}


def _scenario_path(settings: RunSettings, name: str) -> Path:
    if not _SCENARIO_RE.match(name):
        raise ScenarioError(f"scenario name {name!r} is not valid")
    for base in (Path(settings.data_dir) / "scenarios", REPO_ROOT / "data" / "scenarios"):
        path = base / f"{name}.json"
        if path.is_file():
            return path
    raise ScenarioError(f"unknown scenario {name!r} (no {name}.json in data/scenarios)")


def check_rain_spec(rain: Any) -> dict[str, Any]:
    """The rain spec if it is one of ``{"scenario": name}``, ``{"gauges": true, "hours": n}``
    or ``{"raster": name}`` (``hours`` also allowed with a raster); else ModelInputError."""
    if not isinstance(rain, dict):
        raise ModelInputError("rain must be an object: {scenario}, {gauges, hours} or {raster}")
    kinds = [k for k in ("scenario", "gauges", "raster") if k in rain]
    extra = set(rain) - {"scenario", "gauges", "raster", "hours"}
    if len(kinds) != 1 or extra:
        raise ModelInputError(
            "rain needs exactly one of 'scenario', 'gauges' or 'raster' (and optional 'hours')"
        )
    hours = rain.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_GAUGE_HOURS:
        raise ModelInputError(f"rain.hours must be an integer 1..{MAX_GAUGE_HOURS}")
    kind = kinds[0]
    if kind == "scenario" and not isinstance(rain["scenario"], str):
        raise ModelInputError("rain.scenario must be a scenario name")
    if kind == "gauges" and rain["gauges"] is not True:
        raise ModelInputError("rain.gauges must be true")
    if kind == "raster" and (
        not isinstance(rain["raster"], str) or not _RASTER_RE.match(rain["raster"])
    ):
        raise ModelInputError("rain.raster must be a registered raster name")
    return {kind: rain[kind], "hours": hours} if kind != "scenario" else {kind: rain[kind]}


async def _raster_row(conn: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT path, bounds_4326 FROM rasters WHERE name = $1", name)


async def start_run(
    pool: asyncpg.Pool,
    settings: RunSettings,
    *,
    model: str,
    rain: dict[str, Any],
    res: int = 9,
    params: dict[str, Any] | None = None,
    actor: Actor | str = "system",
    scheduler: str | None = None,
) -> int:
    """Create a ``risk_runs`` row and run the pipeline in the background; return its id.

    Bad input (unknown model, res outside 7–10, unknown parameter, unknown scenario or
    raster, no DEM, a bbox outside the DEM) raises at once (:mod:`risk_models.errors`);
    later failures mark the run ``failed`` with the reason in ``error``. ``scheduler``
    (``"local"`` or ``"tcp://host:port"``) runs the pipeline on Dask instead of in-process.
    """
    check_model(model)
    check_res(res)
    who = actor if isinstance(actor, Actor) else Actor(actor, "admin")
    if scheduler is not None and scheduler != "local" and not scheduler.startswith("tcp://"):
        raise ModelInputError("scheduler must be 'local' or tcp://host:port")
    raw_params = dict(params or {})
    dem_name = raw_params.pop("dem", "dem")
    if not isinstance(dem_name, str) or not _RASTER_RE.match(dem_name):
        raise ModelInputError("params.dem must be a registered raster name")
    p = PipelineParams.from_dict(raw_params)
    spec = check_rain_spec(rain)
    inputs: dict[str, Any] = {"rain": spec, "dem": dem_name, "code_version": CODE_VERSION}
    if scheduler is not None:
        inputs["scheduler"] = scheduler
    if "scenario" in spec:
        inputs["scenario_path"] = str(_scenario_path(settings, spec["scenario"]))
    async with pool.acquire() as conn:
        dem_row = await _raster_row(conn, dem_name)
        if dem_row is None:
            raise ModelInputError(
                f"no DEM: register one as raster {dem_name!r} (onemap import-raster or onemap demo)"
            )
        if p.bbox is not None:
            w, s, e, n = dem_row["bounds_4326"]
            bw, bs, be, bn = p.bbox
            if bw >= e or be <= w or bs >= n or bn <= s:
                raise EmptyAreaError(f"bbox {list(p.bbox)} does not overlap the DEM {dem_name!r}")
        if "raster" in spec:
            rrow = await _raster_row(conn, spec["raster"])
            if rrow is None:
                raise ModelInputError(f"no raster called {spec['raster']!r} is registered")
            inputs["rain_raster_path"] = rrow["path"]
        await conn.execute(
            "UPDATE risk_runs SET status = 'failed', finished_at = now(), error = "
            "'abandoned: the process running it stopped' WHERE status IN ('pending', 'running') "
            "AND created_at < now() - make_interval(hours => $1)",
            ABANDONED_AFTER_H,
        )
        stored_params = {**p.as_dict(), "dem": dem_name, "res": res}
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RUN_SLOT_LOCK)
            await check_capacity(conn, settings)
            await check_quota(conn, settings, who)
            run_id = await conn.fetchval(
                "INSERT INTO risk_runs (model, status, scenario, inputs, params) "
                "VALUES ($1, 'pending', $2, $3, $4) RETURNING id",
                model,
                spec.get("scenario"),
                {**public(inputs), "actor": who.name},
                stored_params,
            )
            detail = {"model": model, "rain": spec, "res": res}
            await record_async(conn, who, "risk_run.start", str(run_id), detail)
    job = _Job(int(run_id), model, res, spec, p, Path(dem_row["path"]), Path(settings.data_dir))
    job.inputs = inputs
    job.scheduler = scheduler
    task = asyncio.create_task(_execute(pool, job), name=f"risk-run-{run_id}")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return int(run_id)


async def wait_run(pool: asyncpg.Pool, run_id: int, timeout_s: float) -> dict[str, Any]:
    """The run once it is ``done`` or ``failed``; TimeoutError after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = await get_run(pool, run_id)
        if run["status"] in ("done", "failed"):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"risk run {run_id} still {run['status']} after {timeout_s:g} s")
        await asyncio.sleep(0.1)


def _run_dict(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for k in ("created_at", "finished_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    out["code_version"] = (out.get("inputs") or {}).get("code_version")
    out["res"] = (out.get("params") or {}).get("res")
    return out


async def get_run(pool: asyncpg.Pool, run_id: int) -> dict[str, Any]:
    """One run as a JSON-ready dict (RunNotFound if none)."""
    row = await pool.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM risk_runs WHERE id = $1",  # noqa: S608 - constant columns
        int(run_id),
    )
    if row is None:
        raise RunNotFound(f"no risk run {run_id}")
    return _run_dict(row)


async def list_runs(pool: asyncpg.Pool, limit: int = 100) -> list[dict[str, Any]]:
    """Runs, newest first."""
    rows = await pool.fetch(
        f"SELECT {RUN_COLUMNS} FROM risk_runs ORDER BY created_at DESC, id DESC LIMIT $1",  # noqa: S608
        int(limit),
    )
    return [_run_dict(r) for r in rows]


# --- inputs from the database -------------------------------------------------------------


async def _load_inputs(conn: asyncpg.Connection, job: _Job) -> dict[str, Any]:
    """Hazard sites, roads and (for gauge runs) hourly gauge series, as plain arrays."""
    import shapely

    sites = await conn.fetch(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(geom) AS p "
        "FROM hazard_sites WHERE kind = ANY($1::text[])) AS s ORDER BY lon, lat",
        LANDSLIDE_KINDS,
    )
    roads = await conn.fetch("SELECT ST_AsBinary(geom) AS wkb FROM roads ORDER BY code")
    district = await conn.fetchval(
        "SELECT ST_AsBinary(ST_Union(geom)) FROM admin_areas WHERE level = 'district'"
    )
    out: dict[str, Any] = {
        "sites": np.array([(r["lon"], r["lat"]) for r in sites], dtype="float64").reshape(-1, 2),
        "roads": list(shapely.from_wkb([bytes(r["wkb"]) for r in roads])) if roads else [],
        "district": shapely.from_wkb(bytes(district)) if district is not None else None,
    }
    if "gauges" in job.rain:
        out["gauges"] = await _gauge_series(conn, int(job.rain["hours"]))
    return out


async def _gauge_series(conn: asyncpg.Connection, hours: int) -> dict[str, Any]:
    """Hourly rain (mm) of every rain gauge over the ``hours`` before the latest reading, and
    the 10 daily totals before that window (mean of the gauges, most recent last)."""
    end = await conn.fetchval(
        "SELECT max(r.observed_at) FROM sensor_readings AS r JOIN sensors AS s "
        "ON s.code = r.sensor_code WHERE s.kind = 'rain_gauge' AND r.unit = 'mm'"
    )
    if end is None:
        raise ModelInputError("no rain-gauge readings in the database")
    rows = await conn.fetch(
        "SELECT s.code, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, "
        "extract(epoch FROM ($1::timestamptz - r.observed_at)) AS age_s, r.value "
        "FROM sensors AS s JOIN sensor_readings AS r ON r.sensor_code = s.code "
        "WHERE s.kind = 'rain_gauge' AND r.unit = 'mm' AND r.observed_at <= $1 "
        "AND r.observed_at > $1::timestamptz - make_interval(hours => $2) "
        "ORDER BY s.code",
        end,
        hours + 240,
    )
    frame = pd.DataFrame([dict(r) for r in rows])
    codes = sorted(frame["code"].unique())
    recent = frame[frame["age_s"] < hours * 3600.0]
    recent = recent[recent["code"].isin(codes)]
    active = sorted(recent["code"].unique())
    if not active:
        raise ModelInputError(f"no rain-gauge reading in the {hours} h before {end.isoformat()}")
    pos = {c: i for i, c in enumerate(active)}
    series = np.zeros((len(active), hours))
    values = recent["value"].to_numpy("float64")
    hour = hours - 1 - np.floor(recent["age_s"].to_numpy("float64") / 3600.0).astype("int64")
    np.add.at(series, (recent["code"].map(pos).to_numpy(), hour), values)
    older = frame[(frame["age_s"] >= hours * 3600.0) & frame["code"].isin(active)]
    day = 9 - np.floor((older["age_s"].to_numpy("float64") - hours * 3600.0) / 86400.0)
    daily = np.zeros(10)
    keep = day >= 0
    np.add.at(daily, day[keep].astype("int64"), older["value"].to_numpy("float64")[keep])
    first = frame.groupby("code")["lon"].first()
    lat = frame.groupby("code")["lat"].first()
    return {
        "lon": first.loc[active].to_numpy("float64"),
        "lat": lat.loc[active].to_numpy("float64"),
        "hourly_mm": series,
        "antecedent_daily_mm": daily / len(active),
        "end": end.isoformat(),
        "codes": active,
    }


# --- the CPU part ------------------------------------------------------------------------


def static_cache_key(job: _Job, sites: np.ndarray, roads: list[Any]) -> str:
    """Hash of everything the static table depends on."""
    st = job.dem_path.stat()
    h = hashlib.sha256()
    meta = {
        "dem": str(job.dem_path.resolve()),
        "mtime_ns": st.st_mtime_ns,
        "size": st.st_size,
        "res": job.res,
        "params": job.params.static_part(),
        "version": STATIC_VERSION,
    }
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(np.round(np.asarray(sites, "float64"), 7).tobytes())
    for g in roads:
        h.update(g.wkb)
    return h.hexdigest()[:32]


def load_or_build_static(
    job: _Job, sites: np.ndarray, roads: list[Any], client: Any = None
) -> tuple[pd.DataFrame, bool]:
    """The static table from the disk cache, or built (on Dask when ``client`` is given) and
    cached (written atomically)."""
    cache_dir = job.data_dir / "risk_cache"
    path = cache_dir / f"static-{static_cache_key(job, sites, roads)}.pkl"
    if path.is_file():
        with contextlib.suppress(Exception):  # a damaged cache file is rebuilt
            return pd.read_pickle(path), True
    kw: dict[str, Any] = {
        "res": job.res,
        "params": job.params,
        "sites_lonlat": sites,
        "roads_lonlat": roads,
    }
    if client is None:
        static = pipeline.build_static(job.dem_path, **kw)
    else:
        from risk_models.dask_runner import build_static_dask

        static = build_static_dask(job.dem_path, client=client, **kw)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".pkl")
    os.close(fd)
    try:
        static.to_pickle(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return static, False


def _rain_source(job: _Job, loaded: dict[str, Any], static: pd.DataFrame) -> RainSource:
    if "scenario" in job.rain:
        return pipeline.scenario_source(job.inputs["scenario_path"], static)
    if "gauges" in job.rain:
        g = loaded["gauges"]
        src = gauge_source(
            g["lon"],
            g["lat"],
            g["hourly_mm"],
            antecedent_daily_mm=g["antecedent_daily_mm"],
            describe={"gauges": len(g["codes"]), "hours": job.rain["hours"], "end": g["end"]},
        )
        return pipeline.rain_for(src, static)
    src = raster_source(job.inputs["rain_raster_path"], int(job.rain["hours"]))
    src.describe["raster"] = job.rain["raster"]  # the registered name, not a server path
    return pipeline.rain_for(src, static)


@dataclass
class Computed:
    """A run's levels on every cell (no explanations yet) and what explaining some needs."""

    cells: pd.DataFrame
    static: pd.DataFrame
    rain: RainSource
    timings: dict[str, Any]


def compute(job: _Job, loaded: dict[str, Any]) -> Computed:
    """Static table (cached) + nowcast of every cell without explanations (a refresh
    explains only the cells it stores, :func:`explain`); returns the cells and timings (s)."""
    with _CPU_LOCK, contextlib.ExitStack() as stack:
        client = None
        if job.scheduler is not None:
            from risk_models.dask_runner import dask_client

            client = stack.enter_context(dask_client(job.scheduler))
        t0 = time.perf_counter()
        static, cached = load_or_build_static(job, loaded["sites"], loaded["roads"], client)
        t1 = time.perf_counter()
        rain = _rain_source(job, loaded, static)
        if client is None:
            # two threads on a province-sized table: the NumPy work of the rain interpolation
            # releases the GIL, so a second core halves it when one is free
            threads = min(2, os.cpu_count() or 1)
            cells = pipeline.nowcast(
                static, rain, job.model, job.params, explain=False, threads=threads
            )
        else:
            from risk_models.dask_runner import nowcast_dask

            cells = nowcast_dask(static, rain, job.model, job.params, client=client, explain=False)
        t2 = time.perf_counter()
        key = static_cache_key(job, loaded["sites"], loaded["roads"])
        cells, outside = in_district(cells, static, loaded.get("district"), key)
        t3 = time.perf_counter()
    job.inputs["cells_outside_district"] = outside
    job.inputs["rain_source"] = rain.describe
    job.inputs["hazard_sites"] = int(len(loaded["sites"]))
    job.inputs["roads"] = len(loaded["roads"])
    timings = {
        "static_s": round(t1 - t0, 3),
        "static_cached": cached,
        "nowcast_s": round(t2 - t1, 3),
        "district_s": round(t3 - t2, 3),
    }
    return Computed(cells, static, rain, timings)


def static_scores(computed: Computed) -> np.ndarray:
    """The static susceptibility score (NaN: none) of each of the run's cells."""
    static = computed.static
    if "score" not in static.columns:
        return np.full(len(computed.cells), np.nan)
    pos = static.index.get_indexer(pd.Index(computed.cells["h3"].to_numpy("int64")))
    return static["score"].to_numpy("float64")[pos]


def explain(job: _Job, computed: Computed, part: pd.DataFrame, levels: np.ndarray) -> list[str]:
    """The stored explanations (JSON) of the static rows ``part`` (a
    :func:`risk_models.pipeline.subset`) at ``levels``: the whole one for a cell with a
    level, the slim one (:data:`SLIM_KEYS`) for a cell back to none."""
    with _CPU_LOCK:
        docs = pipeline.explain_rows(part, computed.rain, job.model, job.params)
    return [
        cellstore.dumps(ex if lv > 0 else slim_explanation(ex))
        for ex, lv in zip(docs, levels.tolist(), strict=True)
    ]


def _rows(part: pd.DataFrame, pos: np.ndarray) -> pd.DataFrame:
    """Rows ``pos`` (contiguous positions) of a static subset, keeping its attrs."""
    rows = part.iloc[int(pos[0]) : int(pos[-1]) + 1]
    rows.attrs = dict(part.attrs)
    return rows


#: Which rows of a static table lie in the district, per (static table, district): a
#: province's boundary against 2.3 M cell centres costs seconds, and a nowcast refresh asks
#: the same question every time. A few entries per process, used under ``_CPU_LOCK``.
_DISTRICT_MASKS: dict[tuple[str, str], np.ndarray] = {}
_DISTRICT_MASKS_MAX = 4


def district_mask(static: pd.DataFrame, district: Any, key: str | None = None) -> np.ndarray:
    """Per row of ``static``: does the cell's centre lie in ``district`` (remembered per
    ``key`` of the static table and the district's shape)?"""
    import shapely

    memo = None if key is None else (key, hashlib.sha256(district.wkb).hexdigest())
    if memo is not None:
        known = _DISTRICT_MASKS.get(memo)
        if known is not None and len(known) == len(static):
            return known
    shapely.prepare(district)
    inside = shapely.contains_xy(
        district, static["lon"].to_numpy("float64"), static["lat"].to_numpy("float64")
    )
    if memo is not None:
        while len(_DISTRICT_MASKS) >= _DISTRICT_MASKS_MAX:
            _DISTRICT_MASKS.pop(next(iter(_DISTRICT_MASKS)))
        _DISTRICT_MASKS[memo] = inside
    return inside


def in_district(
    cells: pd.DataFrame, static: pd.DataFrame, district: Any, key: str | None = None
) -> tuple[pd.DataFrame, int]:
    """The cells whose centre lies in the district (the union of the ``admin_areas`` of level
    district), and how many were left out: the DEM's margin around the district is terrain
    for the models (flow comes from upstream) but nobody there is warned. No district in the
    database: every cell is kept. ``key`` (the static table's cache key) remembers the answer
    for the next refresh."""
    if district is None or district.is_empty or cells.empty:
        return cells, 0
    mask = district_mask(static, district, key)
    h3s = cells["h3"].to_numpy("int64")
    if len(h3s) == len(static) and np.array_equal(h3s, static.index.to_numpy("int64")):
        inside = mask
    else:
        inside = mask[static.index.get_indexer(pd.Index(h3s))]
    return cells[inside].reset_index(drop=True), int((~inside).sum())


#: What a cell without a level keeps of its explanation: why it got none (the rule, its
#: classes, the slope floor), not the factor and rain detail (most of a run's storage).
SLIM_KEYS = (
    "model",
    "level",
    "level_name",
    "rule",
    "susceptibility_class",
    "susceptibility_name",
    "density_ratio",
    "below_slope_floor",
    "rain_class",
    "depth_m",
)


def slim_explanation(explanation: dict[str, Any]) -> dict[str, Any]:
    """The part of a level-0 cell's explanation that is stored (see :data:`SLIM_KEYS`)."""
    out = {k: explanation[k] for k in SLIM_KEYS if k in explanation}
    out["detail"] = "stored for cells with a level only"
    return out


def summarise(cells: pd.DataFrame) -> dict[str, Any]:
    """Cells per level name, the highest level and CMA signal, for the run record."""
    counts = np.bincount(cells["level"].to_numpy().astype("int64"), minlength=5)
    return {
        "cells": int(len(cells)),
        "by_level": {n: int(c) for n, c in zip(LEVEL_NAMES, counts, strict=True)},
        "max_level": int(cells["level"].max()) if len(cells) else 0,
        "max_cma_signal": int(cells["cma_signal"].max()) if len(cells) else 0,
    }


# --- the background task ------------------------------------------------------------------


async def store(
    conn: asyncpg.Connection,
    job: _Job,
    computed: Computed,
    timings: dict[str, Any],
    started: float | None = None,
) -> dict[str, Any]:
    """Write a computed run and mark it done, in one transaction: its cell set (once per
    set), its informative cells (:mod:`emergency.cellstore`) in a partition of their own, the
    timings and summary. Returns ``{"cells": stored rows, "previous_run": id or None}``."""
    t_write = time.perf_counter()
    cells = computed.cells
    h3s = cells["h3"].to_numpy("int64")
    levels = cells["level"].to_numpy().astype("int16")
    set_id = await cellstore.ensure_cell_set(conn, h3s, static_scores(computed), job.res)
    timings["cell_set_s"] = round(time.perf_counter() - t_write, 3)
    summary = summarise(cells)
    async with conn.transaction():
        # the previous run is read inside the transaction that writes this one, so two runs
        # of a model finishing together still compare with what is committed before them
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _STORE_LOCK, set_id)
        prev, warned = await cellstore.previous_warned(conn, job.model, set_id, job.run_id)
        mask = cellstore.informative(h3s, levels, warned)
        kept_h3, kept_levels = h3s[mask], levels[mask]
        t_copy = time.perf_counter()
        kept = await asyncio.to_thread(pipeline.subset, computed.static, kept_h3)
        # the explanations are made chunk by chunk while the COPY sends the previous chunk
        n = await cellstore.write_run_cells(
            conn,
            job.run_id,
            job.res,
            kept_h3,
            kept_levels,
            cells["score"].to_numpy("float64")[mask],
            lambda pos: explain(job, computed, _rows(kept, pos), kept_levels[pos]),
        )
        timings["explain_copy_s"] = round(time.perf_counter() - t_copy, 3)
        summary["stored_cells"] = n
        summary["previous_run"] = prev
        timings["write_s"] = round(time.perf_counter() - t_write, 3)
        timings["total_s"] = round(time.perf_counter() - (started or t_write), 3)
        await conn.execute(
            "UPDATE risk_runs SET status = 'done', timings = $2, summary = $3, inputs = "
            "inputs || $4::jsonb, cell_set_id = $5, finished_at = now() WHERE id = $1",
            job.run_id,
            timings,
            summary,
            public(job.inputs),
            set_id,
        )
    return {"cells": n, "previous_run": prev}


async def _execute(pool: asyncpg.Pool, job: _Job) -> None:
    t0 = time.perf_counter()
    timings: dict[str, Any] = {}
    try:
        async with pool.acquire() as conn:
            await conn.execute("UPDATE risk_runs SET status = 'running' WHERE id = $1", job.run_id)
            loaded = await _load_inputs(conn, job)
        timings["load_inputs_s"] = round(time.perf_counter() - t0, 3)
        computed = await asyncio.to_thread(compute, job, loaded)
        timings.update(computed.timings)
        async with pool.acquire() as conn:
            await store(conn, job, computed, timings, started=t0)
        log.info("risk run done", extra={"run_id": job.run_id, "timings": timings})
    except Exception as exc:  # every failure ends as a failed run with its reason
        if isinstance(exc, RiskModelError | ModelInputError):
            reason = str(exc)
        else:
            log.exception("risk run %s failed", job.run_id)
            reason = f"internal error ({type(exc).__name__}); the server log has the details"
        timings["total_s"] = round(time.perf_counter() - t0, 3)
        with contextlib.suppress(Exception):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "UPDATE risk_runs SET status = 'failed', error = $2, timings = $3, "
                    "finished_at = now() WHERE id = $1",
                    job.run_id,
                    reason,
                    timings,
                )


# --- reading a run's cells ----------------------------------------------------------------

#: Most cells one read returns.
MAX_CELLS = 1_000_000


def _score(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


async def run_cells(
    pool: asyncpg.Pool, run_id: int, level_min: int = 0, limit: int = MAX_CELLS
) -> dict[str, Any]:
    """A run's cells at or above ``level_min`` as a GeoJSON FeatureCollection of hexagons
    (EPSG:4326; ``id``/``h3`` = H3 index in hex), highest levels first. Cells the run did not
    store read as level none (:mod:`emergency.cellstore`)."""
    run = await get_run(pool, run_id)
    rows = await pool.fetch(
        "SELECT h3, res, level, score FROM risk_run_cells($1) WHERE level >= $2 "
        "ORDER BY level DESC, h3 LIMIT $3",
        run_id,
        int(level_min),
        int(limit),
    )
    features = []
    for r in rows:
        cell = format(r["h3"], "x")
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "id": cell,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "h3": cell,
                    "res": r["res"],
                    "level": r["level"],
                    "level_name": LEVEL_NAMES[r["level"]],
                    "score": _score(r["score"]),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "run_id": run_id,
        "model": run["model"],
        "status": run["status"],
        "numberReturned": len(features),
        "features": features,
    }


async def _latest_done_run(pool: asyncpg.Pool) -> int | None:
    return await pool.fetchval(
        "SELECT id FROM risk_runs WHERE status = 'done' "
        "ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1"
    )


#: The latest finished run holding cell $1: in its cell set, or stored (a run without a set;
#: ``risk_run_holds`` reads only that run's partition).
_LATEST_HOLDING_SQL = """
SELECT r.id FROM risk_runs AS r
WHERE r.status = 'done' AND (
    (r.cell_set_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM risk_set_cells AS s WHERE s.set_id = r.cell_set_id AND s.h3 = $1))
    OR (r.cell_set_id IS NULL AND risk_run_holds(r.id, $1)))
ORDER BY r.finished_at DESC NULLS LAST, r.id DESC LIMIT 1
"""

_CELL_COLS = "$1::bigint AS run_id, c.h3, c.res, c.level, c.score, c.factors, c.stored"


async def _run_res(pool: asyncpg.Pool, run_id: int) -> int | None:
    """The H3 resolution of a run's cells (its cell set's, else its stored cells')."""
    return await pool.fetchval("SELECT risk_run_res($1)", run_id)


async def _cell_row(pool: asyncpg.Pool, run_id: int, cell: int) -> Any:
    return await pool.fetchrow(
        f"SELECT {_CELL_COLS} FROM risk_run_cells($1) AS c WHERE c.h3 = $2",  # noqa: S608
        run_id,
        cell,
    )


async def _nearest_resolution_row(pool: asyncpg.Pool, run_id: int, cell: int) -> Any:
    """The run's cell covering ``cell`` (a finer cell inside a run cell), or the highest-level
    run cell inside it (a coarser cell, e.g. a hexagon of the rolled-up risk tiles)."""
    run_res = await _run_res(pool, run_id)
    if run_res is None:
        return None
    cell_res = h3.get_resolution(format(cell, "x"))
    if cell_res > run_res:
        return await _cell_row(pool, run_id, parent_int(cell, run_res))
    lo, hi = children_range(cell, run_res)
    return await pool.fetchrow(
        f"SELECT {_CELL_COLS}, count(*) OVER () AS cells FROM risk_run_cells($1) AS c "  # noqa: S608
        "WHERE c.h3 BETWEEN $2 AND $3 "
        "ORDER BY c.level DESC, c.score DESC NULLS LAST, c.h3 LIMIT 1",
        run_id,
        lo,
        hi,
    )


def absent_explanation(model: str) -> dict[str, Any]:
    """The explanation of a cell a run did not store: none now and none in the previous run."""
    return {
        "model": model,
        "level": 0,
        "level_name": LEVEL_NAMES[0],
        "rule": "none: no level in this run nor in the previous run of the model",
        "detail": "cells without a level that did not change are not stored",
    }


async def explain_cell(pool: asyncpg.Pool, cell: int, run: int | None = None) -> dict[str, Any]:
    """Why an H3 cell (BIGINT) got its level in ``run`` (default: the latest finished run
    holding it): level, classes, the rule that fired, top factors, rain metrics.

    A cell finer than the run's answers with the run cell containing it; a coarser one with
    its highest-level run cell (``requested`` and ``cells`` tell which and how many).

    Raises:
        RunNotFound: ``run`` does not exist.  CellNotFound: the cell is in no such run.
    """
    if run is None:
        holding = await pool.fetchval(_LATEST_HOLDING_SQL, cell)
        run_id = holding if holding is not None else await _latest_done_run(pool)
        model = None
    else:
        model = (await get_run(pool, run))["model"]
        run_id = run
    row = await _cell_row(pool, run_id, cell) if run_id is not None else None
    if row is None and run_id is not None:
        row = await _nearest_resolution_row(pool, run_id, cell)
    if row is None:
        where = f"run {run}" if run is not None else "any finished run"
        raise CellNotFound(f"cell {format(cell, 'x')} is not in {where}")
    explanation = row["factors"]
    if explanation is None and not row["stored"]:
        if model is None:
            model = (await get_run(pool, int(row["run_id"])))["model"]
        explanation = absent_explanation(model)
    out = {
        "h3": format(row["h3"], "x"),
        "run_id": row["run_id"],
        "res": row["res"],
        "level": row["level"],
        "level_name": LEVEL_NAMES[row["level"]],
        "score": _score(row["score"]),
        "explanation": explanation,
    }
    if row["h3"] != cell:
        out["requested"] = format(cell, "x")
        out["cells"] = row["cells"] if "cells" in row else 1
    return out


# --- verification against what happened (复盘) ----------------------------------------------

#: Incident kinds (the ``incidents`` layer) each model's warnings are verified against.
EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "landslide": tuple(LANDSLIDE_KINDS),
    "flood": ("waterlogging", "flood"),
    "rainstorm": (*LANDSLIDE_KINDS, "waterlogging", "flood"),
}
#: Hours after the end of a run's rain in which reported incidents still count (failures are
#: often found and reported the morning after a night storm).
REPORT_LAG_H = 24


def verification_window(run: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """The time window whose incidents verify a run: its rain (the gauge window when known,
    else the ``hours`` before the run, 24 by default) plus :data:`REPORT_LAG_H`."""
    inputs = run.get("inputs") or {}
    rain = inputs.get("rain") or {}
    hours = int(rain.get("hours", 24))
    source = inputs.get("rain_source") or {}
    end_text = source.get("end") if isinstance(source, dict) else None
    end = dt.datetime.fromisoformat(end_text) if end_text else None
    if end is None:
        end = dt.datetime.fromisoformat(run["created_at"])
    return end - dt.timedelta(hours=hours), end + dt.timedelta(hours=REPORT_LAG_H)


async def verification(
    pool: asyncpg.Pool,
    run_id: int,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Any]:
    """Hit rate and area warned per level of a finished run against the incidents reported
    in its window (:func:`risk_models.verify.verify`), for the after-action review.

    Raises:
        RunNotFound, RunNotReady, NothingToVerify (no incident of the model's kinds).
    """
    run = await get_run(pool, run_id)
    if run["status"] != "done":
        raise RunNotReady(f"risk run {run_id} is {run['status']}, not done")
    w_start, w_end = verification_window(run)
    start, end = start or w_start, end or w_end
    if end <= start:
        raise ModelInputError("the window's end must be after its start")
    kinds = list(EVENT_KINDS[run["model"]])
    async with pool.acquire() as conn:
        events = await conn.fetch(
            "SELECT code, kind, ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT code, kind, "
            "reported_at, ST_PointOnSurface(geom) AS p FROM incidents) AS i "
            "WHERE kind = ANY($1::text[]) AND reported_at >= $2 AND reported_at < $3 "
            "ORDER BY code",
            kinds,
            start,
            end,
        )
        if not events:
            raise NothingToVerify(
                f"no incident of kind {', '.join(kinds)} reported between {start.isoformat()} "
                f"and {end.isoformat()}: nothing to verify risk run {run_id} against"
            )
        rows = await conn.fetch("SELECT h3, level FROM risk_run_cells($1)", run_id)
    cells = pd.DataFrame(
        {
            "h3": np.array([r["h3"] for r in rows], dtype="int64"),
            "level": np.array([r["level"] for r in rows], dtype="int64"),
        }
    )
    pts = np.array([(r["lon"], r["lat"]) for r in events], dtype="float64").reshape(-1, 2)
    result = await asyncio.to_thread(verify, cells, pts)
    return {
        "run_id": run_id,
        "model": run["model"],
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "event_kinds": kinds,
        **result,
    }


# --- retention ------------------------------------------------------------------------------


async def prune(
    conn: asyncpg.Connection, *, runs_keep_days: float, events_keep_days: float, dry_run: bool
) -> dict[str, int]:
    """Delete finished risk runs (with their cells) older than ``runs_keep_days`` and live
    events older than ``events_keep_days``; 0 keeps them forever.

    Kept whatever their age: runs a warning was issued from (the warning's evidence), the
    latest finished run of each model (what the screen shows), pending and running runs.
    The audit log is never pruned. With ``dry_run`` nothing is deleted, the counts are the same.
    A run's cells are its partition of ``risk_cells``, dropped whole (``cells`` counts the
    stored rows); cell sets no run uses any more go too.
    """
    out = {"runs": 0, "cells": 0, "events": 0}
    async with conn.transaction():
        if runs_keep_days > 0:
            rows = await conn.fetch(
                """
                SELECT r.id FROM risk_runs r
                WHERE r.status IN ('done', 'failed')
                  AND coalesce(r.finished_at, r.created_at)
                      < now() - make_interval(secs => $1::float8 * 86400)
                  AND NOT EXISTS (SELECT 1 FROM warnings w WHERE w.run_id = r.id)
                  AND r.id NOT IN (SELECT DISTINCT ON (model) id FROM risk_runs
                                   WHERE status = 'done'
                                   ORDER BY model, finished_at DESC NULLS LAST, id DESC)
                """,
                float(runs_keep_days),
            )
            ids = [int(r["id"]) for r in rows]
            # the run ids as one array constant: only their partitions are planned
            cells = await conn.fetchval(
                "SELECT count(*) FROM risk_cells WHERE run_id = ANY($1::bigint[])", ids
            )
            out["runs"], out["cells"] = len(ids), int(cells)
            if ids and not dry_run:
                # a partition drop per run; the rows of runs without one (written by hand,
                # in the default partition) go with their run by the foreign key
                await cellstore.drop_run_cells(conn, ids)
                await conn.execute("DELETE FROM risk_runs WHERE id = ANY($1::bigint[])", ids)
                # cell sets no run uses any more (a day old, so never one a run being
                # written has just made)
                await conn.execute(
                    """
                    WITH gone AS (
                        DELETE FROM risk_cell_sets AS s
                        WHERE s.created_at < now() - interval '1 day'
                          AND NOT EXISTS (SELECT 1 FROM risk_runs AS r
                                          WHERE r.cell_set_id = s.id)
                        RETURNING s.id
                    ), cells AS (
                        DELETE FROM risk_set_cells WHERE set_id IN (SELECT id FROM gone)
                    )
                    DELETE FROM risk_set_parents WHERE set_id IN (SELECT id FROM gone)
                    """
                )
        if events_keep_days > 0:
            sql = "FROM events WHERE at < now() - make_interval(secs => $1::float8 * 86400)"
            out["events"] = int(await conn.fetchval(f"SELECT count(*) {sql}", events_keep_days))  # noqa: S608
            if not dry_run:
                await conn.execute(f"DELETE {sql}", events_keep_days)  # noqa: S608
    return out
