"""The risk pipeline on ``dask.distributed``: the same code, chunked, identical results.

* static table: pixel → H3 assignment runs per band of raster rows on the workers (the same
  bands as in-process, :func:`risk_models.h3raster.row_windows`); terrain hydrology (a global
  flow routing) and the per-cell aggregation run once in the client;
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risk_models import pipeline, terrain
from risk_models.errors import ModelInputError, SchedulerUnavailable
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


def client_map(client: Any) -> Callable[[Callable[..., Any], Iterable[Any]], list[Any]]:
    """A ``map(fn, items)`` running each item's call on the workers (results in order)."""

    def run(fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        columns = list(zip(*items, strict=True))
        futures = client.map(fn, *columns, pure=False)
        return list(client.gather(futures))

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
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = chunk_by_parent(full, pres, n_workers * chunks_per_worker)
    return list(client.scatter(parts, hash=False))


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
) -> pd.DataFrame:
    """:func:`risk_models.pipeline.nowcast` split by parent cell over the Dask workers.

    ``rain`` must already be prepared on the whole ``static`` table
    (:func:`risk_models.pipeline.rain_for` / :func:`~risk_models.pipeline.scenario_source`).
    ``resident``: chunks already on the workers (:func:`scatter_static`, same ``model`` and
    ``explain``). Rows come back in the in-process order (by ``h3``).
    """
    check_model(model)
    p = params if isinstance(params, PipelineParams) else PipelineParams.from_dict(params)
    if static.empty:
        return pipeline.nowcast(static, rain, model, p, explain=explain)
    data = resident or scatter_static(
        static,
        model,
        client=client,
        explain=explain,
        parent_res=parent_res,
        chunks_per_worker=chunks_per_worker,
    )
    rain_f = client.scatter(rain, broadcast=True, hash=False)
    futures = [client.submit(_nowcast_chunk, d, rain_f, model, p, explain) for d in data]
    results = client.gather(futures)
    out = pd.concat(results, ignore_index=True)
    return out.sort_values("h3", kind="stable").reset_index(drop=True)
