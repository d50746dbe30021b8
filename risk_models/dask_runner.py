"""The risk pipeline on ``dask.distributed``: the same code, chunked, identical results.

* terrain: every tile task of the windowed chain (:mod:`risk_models.terrain_tiles`) runs on
  the workers; the client solves the small perimeter graphs between the passes;
* static table: pixel → H3 assignment runs per band of raster rows on the workers (the same
  bands as in-process, :func:`risk_models.h3raster.row_windows`); the per-cell aggregation
  runs once in the client;
* nowcast: cells are split by H3 parent cell (``parent_res``) into contiguous groups, each
  group's rain metrics, levels and explanations computed on a worker; everything per cell is
  element-wise, so the rows equal the in-process ones bit for bit.

``scheduler`` is ``"local"`` (a LocalCluster of ``n_workers`` single-thread processes on this
machine), ``"tcp://host:port"`` (a running ``dask scheduler``; workers must read the same DEM /
raster paths) or None (in-process).

    with dask_client("local", n_workers=2) as client:
        static = build_static_dask("dem.tif", res=9, client=client)
        cells = nowcast_dask(static, rain_for(src, static), "flood", client=client)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risk_models import pipeline, terrain
from risk_models.errors import DistributedRunFailed, ModelInputError, SchedulerUnavailable
from risk_models.params import PipelineParams, check_model
from risk_models.rainsource import RainSource
from risk_models.static import build_static


@contextlib.contextmanager
def dask_client(scheduler: str, n_workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client`` for ``"local"`` (LocalCluster) or ``"tcp://host:port"``."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        import dask

        # Dask's nannies set MALLOC_TRIM_THRESHOLD_, which also switches off glibc's dynamic
        # mmap threshold: every NumPy temporary above 128 KiB is then a fresh mmap with page
        # faults, and the nowcast ran 2–3× slower on a worker than in-process.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    elif scheduler.startswith(("tcp://", "tls://")):
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnavailable(
                f"cannot reach the Dask scheduler {scheduler}: {exc}"
            ) from None
        with client:
            yield client
    else:
        raise ModelInputError(f"scheduler must be 'local' or tcp://host:port, got {scheduler!r}")


#: Seconds one distributed step (scatter, or all tasks of a map) may take before the run
#: fails loudly instead of waiting for ever.
TIMEOUT_S = 900.0
#: How often a wait looks at the cluster (lost chunks, no workers left).
_POLL_S = 0.5
#: Futures states that will never give a result.
_DEAD = ("lost", "cancelled", "error")


class ChunksLost(DistributedRunFailed):
    """Scattered chunks are gone (the worker that held them died)."""


def _gather(
    client: Any, futures: list[Any], *, data: Sequence[Any] = (), timeout_s: float = TIMEOUT_S
) -> list[Any]:
    """The futures' results, in order, failing loudly instead of waiting for ever: after
    ``timeout_s``, when every worker is gone, or when a future in ``data`` (scattered input
    the tasks need) is lost (:class:`ChunksLost`)."""
    from distributed import wait

    deadline = time.monotonic() + timeout_s
    while True:
        lost = [f for f in data if f.status in _DEAD]
        if lost:
            raise ChunksLost(f"{len(lost)} scattered chunks were lost with their worker")
        left = deadline - time.monotonic()
        if left <= 0:
            pending = sum(f.status == "pending" for f in futures)
            workers = _worker_count(client)
            raise DistributedRunFailed(
                f"{pending} of {len(futures)} Dask tasks did not finish in {timeout_s:g} s "
                f"({workers} workers connected)"
            )
        try:
            wait(futures, timeout=min(_POLL_S, left))
        except TimeoutError:
            continue
        failed = [f for f in futures if f.status in _DEAD]
        if failed and any(f.status in _DEAD for f in data):
            continue  # reported as lost chunks on the next turn
        return list(client.gather(futures))


def client_map(
    client: Any, timeout_s: float = TIMEOUT_S
) -> Callable[[Callable[..., Any], Iterable[Any]], list[Any]]:
    """A ``map(fn, items)`` running each item's call on the workers (results in order);
    a task is retried once on another worker when its worker dies."""

    def run(fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        columns = list(zip(*items, strict=True))
        futures = client.map(fn, *columns, pure=False, retries=1)
        return _gather(client, futures, timeout_s=timeout_s)

    return run


def build_static_dask(
    dem: str | Path | terrain.Dem,
    *,
    res: int,
    client: Any,
    params: PipelineParams | None = None,
    sites_lonlat: np.ndarray | None = None,
    roads_lonlat: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """:func:`risk_models.static.build_static` with the raster bands on the Dask workers."""
    return build_static(
        dem,
        res=res,
        params=params,
        sites_lonlat=sites_lonlat,
        roads_lonlat=roads_lonlat,
        map_windows=client_map(client),
    )


def derive_terrain_dask(
    dem_path: str | Path, out_dir: str | Path, *, client: Any, **kw: Any
) -> dict[str, Path]:
    """:func:`risk_models.terrain_tiles.derive_terrain_tiled` with the tile tasks on the Dask
    workers (they read and write the per-tile files in ``out_dir``, so workers on other
    machines need it on a shared file system). A task whose worker dies is retried on another
    one: tasks only read the previous step's files and overwrite their own."""
    from risk_models.terrain_tiles import derive_terrain_tiled

    return derive_terrain_tiled(dem_path, out_dir, map_fn=client_map(client), **kw)


def parent_cells(cells: np.ndarray, parent_res: int) -> np.ndarray:
    """H3 parents (int64) of int64 cells at a coarser ``parent_res``, by bit operations
    (resolution in bits 52–55; digits of finer resolutions set to 7)."""
    c = np.asarray(cells, dtype="int64").view("uint64")
    finer_bits = np.uint64((1 << (3 * (15 - parent_res))) - 1)
    res_mask = np.uint64(0xF << 52)
    out = (c & ~res_mask & ~finer_bits) | np.uint64(parent_res << 52) | finer_bits
    return out.view("int64")


def chunk_by_parent(static: pd.DataFrame, parent_res: int, n_chunks: int) -> list[pd.DataFrame]:
    """``static`` split into ≤ ``n_chunks`` groups of whole parent cells (parent order)."""
    parents = parent_cells(static.index.to_numpy("int64"), parent_res)
    uniq, inverse = np.unique(parents, return_inverse=True)
    groups = np.array_split(np.arange(uniq.size), max(1, min(n_chunks, uniq.size)))
    out = []
    for g in groups:
        if g.size == 0:
            continue
        part = static[np.isin(inverse, g)]
        part.attrs = dict(static.attrs)
        out.append(part)
    return out


def _nowcast_chunk(
    part: pd.DataFrame, rain: RainSource, model: str, params: PipelineParams, explain: bool
) -> pd.DataFrame:
    return pipeline.nowcast(part, rain, model, params, explain=explain)


def scatter_static(
    static: pd.DataFrame,
    model: str,
    *,
    client: Any,
    explain: bool = True,
    parent_res: int | None = None,
    chunks_per_worker: int = 4,
    timeout_s: float = TIMEOUT_S,
) -> list[Any]:
    """Split ``static`` by parent cell and keep the chunks on the workers (futures), so a
    nowcast loop ships only the rain on each refresh (see :func:`nowcast_dask`)."""
    check_model(model)
    # ship only the columns the model reads: the workers' time goes to computing, not to
    # deserialising factor columns a bulk refresh never looks at
    full = static[pipeline.needed_columns(static, model, explain)].copy()
    full.attrs = dict(static.attrs)
    if "drain_uparea_km2" in static.columns and "main_drain_km2" not in full.attrs:
        full.attrs["main_drain_km2"] = float(np.nanmax(static["drain_uparea_km2"].to_numpy()))
    res = int(full.attrs.get("res", 9))
    pres = parent_res if parent_res is not None else max(res - 3, 0)
    n_workers = max(1, _worker_count(client))
    parts = chunk_by_parent(full, pres, n_workers * chunks_per_worker)
    return _scatter(client, parts, timeout_s)


def _worker_count(client: Any) -> int:
    return len(client.scheduler_info().get("workers", {}))


def _wait_for_a_worker(client: Any, deadline: float, timeout_s: float) -> None:
    """Return once the scheduler has a worker; :class:`DistributedRunFailed` at
    ``deadline`` (``distributed`` itself would wait for ever on a cluster without one)."""
    while _worker_count(client) == 0:
        if time.monotonic() >= deadline:
            raise DistributedRunFailed(
                f"no Dask worker joined the scheduler in {timeout_s:g} s (is any worker running?)"
            )
        time.sleep(_POLL_S)


def _scatter(client: Any, data: Any, timeout_s: float = TIMEOUT_S, **kw: Any) -> Any:
    """``client.scatter`` that fails loudly after ``timeout_s`` and tries again while a
    worker that just died is still listed (its connection closes under the scatter)."""
    deadline = time.monotonic() + timeout_s
    while True:
        _wait_for_a_worker(client, deadline, timeout_s)
        left = deadline - time.monotonic()
        try:
            return client.scatter(data, hash=False, timeout=max(left, 0.1), **kw)
        except TimeoutError:
            raise DistributedRunFailed(
                f"no Dask worker took the data in {timeout_s:g} s (is any worker running?)"
            ) from None
        except OSError as exc:  # distributed's CommClosedError: a worker went away
            if time.monotonic() + _POLL_S >= deadline:
                raise DistributedRunFailed(f"cannot send data to the Dask workers: {exc}") from None
            time.sleep(_POLL_S)


def nowcast_dask(
    static: pd.DataFrame,
    rain: RainSource,
    model: str,
    params: PipelineParams | dict[str, Any] | None = None,
    *,
    client: Any,
    parent_res: int | None = None,
    chunks_per_worker: int = 4,
    explain: bool = True,
    resident: list[Any] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> pd.DataFrame:
    """:func:`risk_models.pipeline.nowcast` split by parent cell over the Dask workers.

    ``rain`` must already be prepared on the whole ``static`` table
    (:func:`risk_models.pipeline.rain_for` / :func:`~risk_models.pipeline.scenario_source`).
    ``resident``: chunks already on the workers (:func:`scatter_static`, same ``model`` and
    ``explain``). Rows come back in the in-process order (by ``h3``).

    Never waits for ever: chunks lost with a dead worker are scattered again from
    ``static`` (the ``resident`` list is updated in place, so a refresh loop heals) and the
    run retried once; a step over ``timeout_s`` raises :class:`DistributedRunFailed`.
    """
    check_model(model)
    p = params if isinstance(params, PipelineParams) else PipelineParams.from_dict(params)
    if static.empty:
        return pipeline.nowcast(static, rain, model, p, explain=explain)

    def fresh() -> list[Any]:
        return scatter_static(
            static,
            model,
            client=client,
            explain=explain,
            parent_res=parent_res,
            chunks_per_worker=chunks_per_worker,
            timeout_s=timeout_s,
        )

    data = resident if resident else fresh()
    for attempt in (1, 2):
        rain_f = _scatter(client, rain, timeout_s, broadcast=True)
        futures = [
            client.submit(_nowcast_chunk, d, rain_f, model, p, explain, retries=1) for d in data
        ]
        try:
            results = _gather(client, futures, data=[*data, rain_f], timeout_s=timeout_s)
            break
        except ChunksLost:
            if attempt == 2:
                raise
            data = fresh()
            if resident is not None:
                resident[:] = data
    out = pd.concat(results, ignore_index=True)
    return out.sort_values("h3", kind="stable").reset_index(drop=True)
