"""The risk pipeline without a server: static cell table + rain → warning level per H3 cell.

```python
from risk_models import pipeline
static = pipeline.build_static("dem.tif", res=9, sites_lonlat=sites)   # once per DEM (cache it)
rain = pipeline.scenario_source("data/scenarios/typhoon_300mm_24h.json", static)
cells = pipeline.nowcast(static, rain, "landslide")                     # h3, level, score, …
```

:func:`nowcast` returns one row per cell: ``h3`` (int64), ``level`` (0 none … 4 red),
``score`` (landslide: susceptibility 0..1; flood: water depth in m; rainstorm: largest 3 h
total in mm), ``susceptibility_class`` (−1 when not applicable), ``rain_class``,
``cma_signal`` (the CMA rainstorm signal, a product of its own) and ``explanation`` (a dict:
level, classes, the rule that fired, top 3 static factors with contributions, rain metrics).
Every step is element-wise per cell, so a run split by parent cell (see
:mod:`risk_models.dask_runner`) gives identical rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risk_models import flood, landslide, rainfall
from risk_models.errors import EmptyAreaError, ModelInputError
from risk_models.params import RUNOFF_LADDER_MM, PipelineParams, check_model, check_res
from risk_models.rainsource import (
    RainSource,
    cma_from_totals,
    gauge_source,
    max_totals_mm,
    raster_source,
)
from risk_models.rainsource import scenario_source as _scenario_source
from risk_models.static import build_static, factor_columns, load_dem

__all__ = [
    "build_static",
    "gauge_source",
    "load_dem",
    "nowcast",
    "raster_source",
    "rain_for",
    "scenario_source",
]

OUTPUT_COLUMNS = (
    "h3",
    "level",
    "score",
    "susceptibility_class",
    "rain_class",
    "cma_signal",
    "explanation",
)


def _centre(static: pd.DataFrame) -> tuple[float, float]:
    if static.empty:
        raise EmptyAreaError("the static table has no cell")
    return float(static["lon"].mean()), float(static["lat"].mean())


def scenario_source(path: str | Path, static: pd.DataFrame) -> RainSource:
    """A scenario file's rain on the cells of ``static`` (gradient normalised over them)."""
    src = _scenario_source(path, _centre(static))
    return src.prepare(static["lon"].to_numpy(), static["lat"].to_numpy())


def rain_for(source: RainSource, static: pd.DataFrame) -> RainSource:
    """``source`` prepared on the cells of ``static`` (idempotent for gauges and rasters)."""
    return source.prepare(static["lon"].to_numpy(), static["lat"].to_numpy())


def rain_metrics(
    source: RainSource, lon: np.ndarray, lat: np.ndarray, params: PipelineParams
) -> dict[str, np.ndarray]:
    """Per-cell rain metrics: ``rain_mm_{1,3,6,12,24}h`` (largest trailing totals),
    ``rain_mm_event``, ``antecedent_re_mm`` (Re = Σ Kⁱ·Rᵢ), ``rain_mm_day_before`` (the
    day before the window; for a window longer than a day, the 24 h before its wettest
    24 h), ``antecedent_known`` (False: the rain classes come from the day's rain alone),
    ``p_ge_<k>`` (the calibrated
    probabilities of ≥ k landslides in the territory, :mod:`risk_models.calibration`),
    ``rain_class`` (0..3 from them) and ``cma_signal``."""
    n = len(lon)
    if source.kind == "scenario":
        # rain = factor × hyetograph: every total scales with the factor
        assert source.hyetograph_mm is not None
        f = source.factors(lon, lat)
        base = rainfall.max_rolling_totals_mm(source.hyetograph_mm)
        maxes = {w: f * float(v) for w, v in base.items()}
        event = f * float(source.hyetograph_mm.sum())
    else:
        hourly = source.hourly(lon, lat)
        maxes = max_totals_mm(hourly)
        event = hourly.sum(axis=1)
    m: dict[str, np.ndarray] = {f"rain_mm_{w}h": v for w, v in maxes.items()}
    m["rain_mm_event"] = event
    model = params.rain()
    ante = source.antecedent_daily_mm
    if ante is not None:
        re = rainfall.effective_antecedent_mm(ante, params.antecedent_k)
        m["antecedent_re_mm"] = np.broadcast_to(np.asarray(re, "float64"), (n,)).copy()
        re_in, _ = model.inputs(ante, params.antecedent_k)
        last_day = np.asarray(ante, "float64")[..., -1] if np.size(ante) else np.zeros(())
    else:
        m["antecedent_re_mm"] = np.zeros(n)
        re_in, last_day = np.zeros(()), np.zeros(())
    re_in = np.broadcast_to(np.asarray(re_in, "float64"), (n,))
    # the day before (shown in every explanation; a curve of the one-day form ignores it)
    prev = np.broadcast_to(np.asarray(last_day, "float64"), (n,)).copy()
    hyeto = source.hyetograph_mm
    hours = hyeto.size if source.kind == "scenario" and hyeto is not None else None
    if hours is None or hours > 24:
        # a window longer than a day: the day before is the 24 h before its wettest 24 h
        series = hourly if source.kind != "scenario" else source.hourly(lon, lat)
        prev = rainfall.day_before_wettest_24h_mm(series, prev)
    m["rain_mm_day_before"] = prev
    # An unknown antecedent (a gauge file of 24 h totals) is NaN for the rain model, which
    # then classes by its curves on the day's rain alone, not as if a dry fortnight.
    known = ante is not None or model.no_antecedent is None
    m["antecedent_known"] = np.full(n, known)
    model_re = re_in if known else np.full(n, np.nan)
    model_prev = prev if known else np.full(n, np.nan)
    m.update(model.probabilities(m["rain_mm_24h"], model_re, model_prev))
    m["rain_class"] = model.rain_class(m["rain_mm_24h"], model_re, model_prev)
    m["cma_signal"] = cma_from_totals(maxes)
    return m


_RAIN_KEYS = (
    "rain_mm_1h",
    "rain_mm_3h",
    "rain_mm_6h",
    "rain_mm_12h",
    "rain_mm_24h",
    "rain_mm_event",
    "antecedent_re_mm",
    "rain_mm_day_before",
)


def _rain_dicts(m: dict[str, np.ndarray]) -> list[dict[str, float]]:
    cols = [np.round(m[k], 2).tolist() for k in _RAIN_KEYS]
    cma = m["cma_signal"].tolist()
    return [
        {**dict(zip(_RAIN_KEYS, vals, strict=True)), "cma_signal": int(c)}
        for *vals, c in zip(*cols, cma, strict=True)
    ]


def river_stage_m(static: pd.DataFrame, m: dict[str, np.ndarray], p: PipelineParams) -> np.ndarray:
    """River stage above the bank (m) of the river each cell drains to.

    ``stage_m`` when given; else the rational method Q = C·i·A/3.6 (m³/s; i = the cell's
    mean intensity over its wettest 6 h, mm/h; A = ``drain_uparea_km2``) through Manning's
    equation for a rectangular channel whose width scales from the main river's
    (``channel_width_m`` at the largest drainage area) as w ∝ A^0.5 (downstream hydraulic
    geometry, Leopold & Maddock 1953). The bank is the depth the channel reaches at the
    bankfull intensity ``bankfull_rain_mm_h`` (channels are shaped by frequent floods).
    """
    n = len(static)
    if p.stage_m is not None:
        return np.full(n, float(p.stage_m))
    area = np.nan_to_num(static["drain_uparea_km2"].to_numpy("float64"))
    # the main river of the whole table (kept in attrs so a chunk of it scales the same way)
    a_main = float(static.attrs.get("main_drain_km2", area.max() if n else 0.0))
    a_main = a_main if np.isfinite(a_main) else 0.0
    if a_main <= 0:
        return np.zeros(n)
    width = np.maximum(p.channel_width_m * (area / a_main) ** 0.5, 1.0)
    q_event = p.runoff_coefficient * (m["rain_mm_6h"] / 6.0) * area / 3.6
    q_bank = p.runoff_coefficient * p.bankfull_rain_mm_h * area / 3.6
    kw = {"width_m": width, "bed_slope": p.bed_slope, "manning_n": p.manning_n}
    bank = flood.stage_from_discharge_m(q_bank, **kw)
    return flood.stage_from_discharge_m(q_event, bankfull_depth_m=bank, **kw)


def needed_columns(static: pd.DataFrame, model: str, explain: bool = True) -> list[str]:
    """Columns of the static table a nowcast of ``model`` reads (to ship less to workers)."""
    cols = ["lon", "lat"]
    if model == "landslide":
        cols += ["score", "susceptibility_class", "slope_deg", "density_ratio", "p_event"]
        cols += ["below_slope_floor"]
        if explain:
            names = factor_columns(static)
            cols += [n for n in names if n != "slope_deg"] + [f"iv_{n}" for n in names]
    elif model == "flood":
        cols += ["hand_cell_m", "drain_uparea_km2"]
        cols += [f"wl_depth_m_{r:g}mm" for r in RUNOFF_LADDER_MM]
    return cols


def _landslide(
    static: pd.DataFrame, m: dict[str, np.ndarray], p: PipelineParams, explain: bool
) -> dict:
    s_class = static["susceptibility_class"].to_numpy().astype("int8")
    if (s_class < 0).any():
        raise ModelInputError(
            "no susceptibility: the area has no known landslide hazard site to fit on"
        )
    floor = static["below_slope_floor"].to_numpy().astype(bool)
    level = landslide.warning_level(s_class, m["rain_class"], p.matrix).astype("int8")
    level[floor] = 0  # flatter than the slope floor: no landslide level whatever the matrix
    saturation = np.clip((m["rain_mm_event"] + m["antecedent_re_mm"]) / 200.0, 0.0, 1.0)
    fs = landslide.factor_of_safety(
        static["slope_deg"].to_numpy("float64"), saturation=saturation, **p.fs
    )
    out: dict[str, Any] = {
        "level": level,
        "score": static["score"].to_numpy("float64"),
        "s_class": s_class,
        "fs": fs,
        "floor": floor,
        "ratio": static["density_ratio"].to_numpy("float64"),
        "p_event": static["p_event"].to_numpy("float64"),
        "slope": static["slope_deg"].to_numpy("float64"),
    }
    if explain:
        names = factor_columns(static)
        out["names"] = names
        out["contrib"] = {n: static[f"iv_{n}"].to_numpy("float64") for n in names}
        out["values"] = {n: static[n].to_numpy("float64") for n in names}
    return out


def _flood(static: pd.DataFrame, m: dict[str, np.ndarray], p: PipelineParams) -> dict:
    stage = river_stage_m(static, m, p)
    hand = static["hand_cell_m"].to_numpy("float64")
    river = np.where(np.isfinite(hand), np.maximum(stage - hand, 0.0), 0.0)
    runoff = flood.scs_runoff_mm(m["rain_mm_event"], p.curve_number, p.ia_ratio)
    ladder = np.asarray(RUNOFF_LADDER_MM)
    table = np.column_stack([static[f"wl_depth_m_{r:g}mm"].to_numpy("float64") for r in ladder])
    table = np.nan_to_num(table)
    # linear interpolation of each cell's depth between the tabulated runoffs
    pos = np.clip(np.searchsorted(ladder, runoff, side="right") - 1, 0, ladder.size - 2)
    lo, hi = ladder[pos], ladder[pos + 1]
    t = np.clip((runoff - lo) / (hi - lo), 0.0, 1.0)
    rows = np.arange(len(static))
    logging = table[rows, pos] + t * (table[rows, pos + 1] - table[rows, pos])
    depth = np.maximum(river, logging)
    level = flood.depth_level(depth, p.depth_thresholds_m)
    return {
        "level": level,
        "score": depth,
        "stage": stage,
        "river": river,
        "logging": logging,
        "runoff": runoff,
        "hand": hand,
    }


def nowcast(
    static: pd.DataFrame,
    rain: RainSource,
    model: str,
    params: PipelineParams | dict[str, Any] | None = None,
    *,
    explain: bool = True,
    threads: int = 1,
) -> pd.DataFrame:
    """Warning level per H3 cell for one rain input (see the module docstring for columns).

    Args:
        static: the table of :func:`build_static` (or a slice of it).
        rain: a prepared rain source (:func:`scenario_source`, :func:`gauge_source` +
            :func:`rain_for`, :func:`raster_source` + :func:`rain_for`).
        model: ``landslide``, ``flood`` or ``rainstorm``.
        params: :class:`PipelineParams` or a dict of them.
        explain: build the per-cell explanation dicts (skip for bulk refreshes).
        threads: split the cells into this many contiguous parts computed in threads (NumPy
            releases the GIL; every step is per cell, so the rows are identical).

    Raises:
        UnknownModel, ModelInputError, EmptyAreaError.
    """
    check_model(model)
    p = params if isinstance(params, PipelineParams) else PipelineParams.from_dict(params)
    if static.empty:
        raise EmptyAreaError("no H3 cell to assess")
    if threads > 1 and len(static) >= threads * MIN_THREAD_CELLS:
        return _nowcast_threads(static, rain, model, p, explain, threads)
    lon = static["lon"].to_numpy("float64")
    lat = static["lat"].to_numpy("float64")
    m = rain_metrics(rain, lon, lat, p)
    n = len(static)
    out = pd.DataFrame({"h3": static.index.to_numpy("int64")})
    no_class = np.full(n, -1, dtype="int8")
    if model == "landslide":
        r = _landslide(static, m, p, explain)
        out["level"], out["score"], out["susceptibility_class"] = (
            r["level"],
            r["score"],
            r["s_class"],
        )
    elif model == "flood":
        r = _flood(static, m, p)
        out["level"], out["score"], out["susceptibility_class"] = r["level"], r["score"], no_class
    else:
        r = {}
        out["level"] = m["cma_signal"].astype("int8")
        out["score"] = m["rain_mm_3h"]
        out["susceptibility_class"] = no_class
    out["rain_class"] = m["rain_class"]
    out["cma_signal"] = m["cma_signal"]
    if explain:
        out["explanation"] = pd.Series(_explanations(model, out, m, r, p), dtype=object)
    return out


#: Fewest cells per thread of a threaded nowcast (below, the threads cost more than they win).
MIN_THREAD_CELLS = 100_000


def _with_table_attrs(part: pd.DataFrame, static: pd.DataFrame) -> pd.DataFrame:
    """``part`` of ``static`` carrying what a nowcast reads of the whole table."""
    part.attrs = dict(static.attrs)
    if "drain_uparea_km2" in static.columns and "main_drain_km2" not in part.attrs:
        area = static["drain_uparea_km2"].to_numpy("float64")
        part.attrs["main_drain_km2"] = float(np.nanmax(area)) if area.size else 0.0
    return part


def _nowcast_threads(
    static: pd.DataFrame,
    rain: RainSource,
    model: str,
    p: PipelineParams,
    explain: bool,
    threads: int,
) -> pd.DataFrame:
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(static), threads + 1).astype("int64")
    parts = [
        _with_table_attrs(static.iloc[a:b], static)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="nowcast") as pool:
        done = list(pool.map(lambda part: nowcast(part, rain, model, p, explain=explain), parts))
    return pd.concat(done, ignore_index=True)


def subset(static: pd.DataFrame, cells: np.ndarray) -> pd.DataFrame:
    """The rows of ``static`` for the H3 cells ``cells`` (int64, in that order), keeping what a
    nowcast reads of the whole table (the main river's drainage area), so a nowcast of the
    subset gives the same rows as the whole table's."""
    pos = static.index.get_indexer(pd.Index(np.asarray(cells, dtype="int64")))
    if (pos < 0).any():
        raise ModelInputError("cells not in the static table")
    return _with_table_attrs(static.iloc[pos], static)


def explain_cells(
    static: pd.DataFrame,
    rain: RainSource,
    model: str,
    cells: np.ndarray,
    params: PipelineParams | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The explanations of :func:`nowcast` for a few cells only (``cells`` int64, in order):
    a refresh levels every cell without explanations, then explains the cells it stores."""
    if len(cells) == 0:
        return []
    return explain_rows(subset(static, cells), rain, model, params)


def explain_rows(
    part: pd.DataFrame,
    rain: RainSource,
    model: str,
    params: PipelineParams | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The explanations of :func:`nowcast` for every row of ``part`` (a :func:`subset`)."""
    if part.empty:
        return []
    return list(nowcast(part, rain, model, params, explain=True)["explanation"])


def _explanations(
    model: str, out: pd.DataFrame, m: dict[str, np.ndarray], r: dict, p: PipelineParams
) -> list[dict[str, Any]]:
    rain = _rain_dicts(m)
    levels = out["level"].to_numpy().tolist()
    rc = m["rain_class"].tolist()
    if model == "landslide":
        return landslide.explanations(
            levels=out["level"].to_numpy(),
            susceptibility_class=r["s_class"],
            rain_class=m["rain_class"],
            contributions=r["contrib"],
            factor_values=r["values"],
            rain_metrics={k: m[k] for k in (*_RAIN_KEYS, "cma_signal")},
            fs=r["fs"],
            score=r["score"],
            density_ratio=r["ratio"],
            p_event=r["p_event"],
            ratio_cuts=p.ratio_cuts,
            below_slope_floor=r["floor"],
            slope_floor_deg=p.slope_floor_deg,
            rain_probabilities={k: v for k, v in m.items() if k.startswith("p_ge_")},
            rain_rules=[(c.k, c.p) for c in p.rain().curves],
            antecedent_known=m["antecedent_known"],
        )
    if model == "flood":
        thr = p.depth_thresholds_m
        depth = np.round(r["score"], 3).tolist()
        river = np.round(r["river"], 3).tolist()
        logging = np.round(r["logging"], 3).tolist()
        runoff = np.round(r["runoff"], 1).tolist()
        hand = np.round(np.nan_to_num(r["hand"], nan=-1.0), 2).tolist()
        stage = np.round(r["stage"], 3).tolist()
        res = []
        for i, lvl in enumerate(levels):
            rule = (
                f"depth {depth[i]:.2f} m >= {thr[lvl - 1]:g} m -> {landslide.LEVEL_NAMES[lvl]}"
                if lvl > 0
                else f"depth {depth[i]:.2f} m < {thr[0]:g} m -> none"
            )
            res.append(
                {
                    "model": "flood",
                    "level": lvl,
                    "level_name": landslide.LEVEL_NAMES[lvl],
                    "depth_m": depth[i],
                    "rain_class": rc[i],
                    "rule": rule,
                    "top_factors": sorted(
                        [
                            {"factor": "river_depth_m", "contribution": river[i], "value": hand[i]},
                            {
                                "factor": "waterlogging_depth_m",
                                "contribution": logging[i],
                                "value": runoff[i],
                            },
                        ],
                        key=lambda d: -d["contribution"],
                    ),
                    "river_stage_m": stage[i],
                    "hand_cell_m": hand[i],
                    "runoff_mm": runoff[i],
                    "rain": rain[i],
                }
            )
        return res
    return [
        {
            "model": "rainstorm",
            "level": lvl,
            "level_name": landslide.LEVEL_NAMES[lvl],
            "rain_class": rc[i],
            "rule": f"CMA rainstorm signal {rainfall.CMA_SIGNAL_NAMES[lvl]} "
            "(blue ≥50 mm/12 h, yellow ≥50 mm/6 h, orange ≥50 mm/3 h, red ≥100 mm/3 h)",
            "top_factors": [],
            "rain": rain[i],
        }
        for i, lvl in enumerate(levels)
    ]


def run(
    dem: str | Path,
    *,
    model: str,
    rain: RainSource,
    res: int = 9,
    params: dict[str, Any] | None = None,
    sites_lonlat: np.ndarray | None = None,
    roads_lonlat: Any = None,
) -> pd.DataFrame:
    """Static build + nowcast in one call (no cache): the whole pipeline in-process."""
    check_model(model)
    check_res(res)
    p = PipelineParams.from_dict(params)
    static = build_static(
        dem, res=res, params=p, sites_lonlat=sites_lonlat, roads_lonlat=roads_lonlat
    )
    return nowcast(static, rain_for(rain, static), model, p)
