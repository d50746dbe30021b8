"""``onemap risk …``: batch terrain, susceptibility and nowcasts on files (no server needed).

::

    onemap risk terrain dem.tif --out terrain/
    onemap risk susceptibility --dem dem.tif --inventory sites.csv --res 9 --out static.csv
    onemap risk nowcast --model landslide --susceptibility static.csv \
        --rain data/scenarios/typhoon_300mm_24h.json --out cells.csv
    onemap risk validate

Tables are CSV with ``h3`` as the H3 index in hex. ``--scheduler local|tcp://host:port``
runs the same pipeline on Dask (:mod:`risk_models.dask_runner`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.progress import Progress
from rich.table import Table

from geo_service.cli.console import console, fail, progress
from risk_models.errors import RiskModelError

risk_app = typer.Typer(
    help="Risk models on files: terrain, susceptibility, nowcast, validation.",
    no_args_is_help=True,
)

SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run on Dask: 'local' (2 workers) or tcp://host:port"),
]
ParamsOpt = Annotated[
    str | None, typer.Option("--params", help="Model parameters as JSON, e.g. '{\"n_bins\": 8}'")
]


def _params(text: str | None) -> Any:
    from risk_models.params import PipelineParams

    if not text:
        return PipelineParams()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise fail(f"--params is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise fail("--params must be a JSON object")
    return PipelineParams.from_dict(raw)


@contextlib.contextmanager
def _maybe_client(scheduler: str | None) -> Iterator[Any]:
    if scheduler is None:
        yield None
        return
    from risk_models.dask_runner import dask_client

    with console.status(f"connecting to Dask ({scheduler})"), contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler))
        console.print(f"Dask: {len(client.scheduler_info()['workers'])} workers")
        yield client


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn model and file errors into one red line and exit code 1."""
    try:
        yield
    except RiskModelError as exc:
        raise fail(str(exc)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None


@risk_app.command("terrain")
def terrain_cmd(
    dem: Annotated[Path, typer.Argument(help="DEM GeoTIFF in any CRS (heights in metres)")],
    out: Annotated[Path, typer.Option("--out", help="Output directory for the COGs")],
    stream_area_km2: Annotated[float, typer.Option(help="Stream threshold, km²")] = 1.0,
    nodata: Annotated[float | None, typer.Option(help="Extra no-data value (e.g. 0)")] = None,
) -> None:
    """Derive filled DEM, D8, upstream area, streams, slope, relief, curvature, HAND, TWI."""
    from risk_models.terrain import derive_terrain

    with _errors(), console.status(f"terrain of {dem}"):
        paths = derive_terrain(dem, out, stream_area_km2=stream_area_km2, nodata=nodata)
    table = Table("layer", "file")
    for name, path in paths.items():
        table.add_row(name, str(path))
    console.print(table)


def read_points(path: Path, x_col: str, y_col: str, crs: str) -> np.ndarray:
    """``(n, 2)`` lon/lat (degrees) of the points of a CSV (``x_col``/``y_col`` in ``crs``) or
    of any vector file GeoPandas reads (reprojected; polygons by a point on their surface)."""
    if path.suffix.lower() in (".csv", ".txt"):
        df = pd.read_csv(path)
        missing = [c for c in (x_col, y_col) if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)} (use --x-col/--y-col)")
        x = pd.to_numeric(df[x_col], errors="coerce").to_numpy("float64")
        y = pd.to_numeric(df[y_col], errors="coerce").to_numpy("float64")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"{path}: {x_col}/{y_col} hold empty or non-numeric values")
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
        return np.column_stack([lon, lat])
    import geopandas as gpd

    gdf = gpd.read_file(path)
    if gdf.crs is None:
        gdf = gdf.set_crs(crs)
    pts = gdf.to_crs(4326).geometry.representative_point()
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def _bar_map(progress: Progress, label: str) -> Callable[..., list[Any]]:
    def run(fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        task = progress.add_task(label, total=len(items))
        out = []
        for args in items:
            out.append(fn(*args))
            progress.advance(task)
        return out

    return run


def write_table(df: pd.DataFrame, out: Path) -> None:
    """CSV with ``h3`` as hex strings (and JSON explanations)."""
    table = df.copy()
    if table.index.name == "h3":
        table = table.reset_index()
    table["h3"] = [format(int(v), "x") for v in table["h3"]]
    if "explanation" in table.columns:
        table["explanation"] = [json.dumps(e, ensure_ascii=False) for e in table["explanation"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)


def read_static(path: Path) -> pd.DataFrame:
    """A susceptibility table written by ``onemap risk susceptibility``."""
    df = pd.read_csv(path)
    need = {"h3", "lon", "lat", "score", "susceptibility_class"}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: not a susceptibility table (needs {', '.join(sorted(need))})")
    df.index = pd.Index([int(str(v), 16) for v in df.pop("h3")], dtype="int64", name="h3")
    return df


@risk_app.command("susceptibility")
def susceptibility_cmd(
    dem: Annotated[Path, typer.Option("--dem", help="DEM GeoTIFF in any CRS")],
    inventory: Annotated[Path, typer.Option(help="Known hazard sites: CSV or any vector file")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV (h3, score, class, factors…)")],
    res: Annotated[int, typer.Option("--res", help="H3 resolution 7–10")] = 9,
    x_col: Annotated[str, typer.Option("--x-col", help="CSV column of x / longitude")] = "lon",
    y_col: Annotated[str, typer.Option("--y-col", help="CSV column of y / latitude")] = "lat",
    crs: Annotated[str, typer.Option("--crs", help="CRS of the CSV coordinates")] = "EPSG:4326",
    roads: Annotated[Path | None, typer.Option(help="Road lines (any vector file)")] = None,
    params: ParamsOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Static landslide susceptibility per H3 cell (+ the flood terrain statistics)."""
    from risk_models.params import check_res
    from risk_models.static import build_static, load_dem

    with _errors():
        check_res(res)
        p = _params(params)
        sites = read_points(inventory, x_col, y_col, crs)
        road_lines = None
        if roads is not None:
            import geopandas as gpd

            road_lines = list(gpd.read_file(roads).to_crs(4326).geometry)
        with console.status(f"reading {dem}"):
            grid = load_dem(dem, p.bbox)
        with _maybe_client(scheduler) as client, progress() as bar:
            if client is None:
                mapper = _bar_map(bar, "H3 cells by raster band")
            else:
                from risk_models.dask_runner import client_map

                mapper = client_map(client)
            static = build_static(
                grid, res=res, params=p, sites_lonlat=sites, roads_lonlat=road_lines,
                map_windows=mapper,
            )  # fmt: skip
        if (static["susceptibility_class"] < 0).any():
            raise fail(
                f"none of the {len(sites)} inventory points falls in a cell of the DEM "
                "(check --x-col/--y-col/--crs): nothing to fit"
            )
        static["class"] = static["susceptibility_class"]
        write_table(static, out)
    per_class = np.bincount(static["susceptibility_class"].to_numpy(), minlength=4)
    counts = dict(enumerate(per_class.tolist()))
    console.print(
        f"{len(static):,} cells at res {res}, {int((static['events'] > 0).sum())} with known "
        f"sites; cells per class {counts} → {out}"
    )


def _rain(path: Path, static: pd.DataFrame, hours: int) -> Any:
    """Rain source from a scenario (.json), gauge points (.csv) or a raster (.tif)."""
    from risk_models import pipeline

    suffix = path.suffix.lower()
    if suffix == ".json":
        return pipeline.scenario_source(path, static)
    if suffix in (".tif", ".tiff", ".vrt"):
        return pipeline.rain_for(pipeline.raster_source(path, hours), static)
    if suffix == ".csv":
        df = pd.read_csv(path)
        if not {"lon", "lat"} <= set(df.columns):
            raise ValueError(f"{path}: gauge CSV needs lon, lat and rain columns")
        hourly = [str(c) for c in df.columns if str(c).startswith("h") and str(c)[1:].isdigit()]
        if hourly:
            order: list[str] = sorted(hourly, key=lambda c: int(c[1:]))
            series = df[order].to_numpy("float64")
        elif "rain_mm" in df.columns:
            series = np.repeat(df[["rain_mm"]].to_numpy("float64") / hours, hours, axis=1)
        else:
            raise ValueError(f"{path}: give hourly columns h0, h1, … or a rain_mm total")
        src = pipeline.gauge_source(df["lon"].to_numpy(), df["lat"].to_numpy(), series)
        return pipeline.rain_for(src, static)
    raise ValueError(f"{path}: rain must be a scenario .json, gauge .csv or raster .tif")


@risk_app.command("nowcast")
def nowcast_cmd(
    model: Annotated[str, typer.Option("--model", help="landslide, flood or rainstorm")],
    susceptibility: Annotated[Path, typer.Option(help="Table from 'onemap risk susceptibility'")],
    rain: Annotated[Path, typer.Option(help="Scenario .json, gauge .csv or rain raster .tif")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV (h3, level, score, …)")],
    hours: Annotated[int, typer.Option(help="Hours a single rain total is spread over")] = 24,
    params: ParamsOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Warning level per H3 cell for one rain input, with explanations."""
    from risk_models import pipeline
    from risk_models.params import check_model

    with _errors():
        check_model(model)
        if hours < 1:
            raise ValueError("--hours must be ≥ 1")
        p = _params(params)
        static = read_static(susceptibility)
        source = _rain(rain, static, hours)
        with _maybe_client(scheduler) as client, console.status(f"{model} nowcast"):
            if client is None:
                cells = pipeline.nowcast(static, source, model, p)
            else:
                from risk_models.dask_runner import nowcast_dask

                cells = nowcast_dask(static, source, model, p, client=client)
        write_table(cells, out)
    by_level = np.bincount(cells["level"].to_numpy().astype("int64"), minlength=5)
    names = ("none", "blue", "yellow", "orange", "red")
    console.print(
        f"{len(cells):,} cells: "
        + ", ".join(f"{n} {c:,}" for n, c in zip(names, by_level, strict=True))
        + f" → {out}"
    )


@risk_app.command("run")
def run_cmd(
    model: Annotated[str, typer.Option("--model", help="landslide, flood or rainstorm")],
    scenario: Annotated[str | None, typer.Option(help="Scenario name (data/scenarios)")] = None,
    gauges: Annotated[bool, typer.Option("--gauges", help="Latest rain-gauge readings")] = False,
    raster: Annotated[str | None, typer.Option(help="Registered rain raster name")] = None,
    hours: Annotated[int, typer.Option(help="Hours of gauge readings / raster total")] = 24,
    res: Annotated[int, typer.Option("--res", help="H3 resolution 7–10")] = 9,
    params: Annotated[str | None, typer.Option("--params", help="Parameters as JSON")] = None,
    scheduler: SchedulerOpt = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Give up after (s)")] = 3600.0,
) -> None:
    """A run on the city in the database (as POST /risk/runs), stored with its cells."""
    import asyncio

    from geo_service.settings import get_settings

    kinds = [k for k, v in (("scenario", scenario), ("gauges", gauges), ("raster", raster)) if v]
    if len(kinds) != 1:
        raise fail("give exactly one of --scenario NAME, --gauges or --raster NAME")
    rain: dict[str, Any] = {"scenario": scenario} if scenario else {"hours": hours}
    if gauges:
        rain["gauges"] = True
    if raster:
        rain["raster"] = raster
    try:
        raw = json.loads(params) if params else {}
    except ValueError as exc:
        raise fail(f"--params is not JSON: {exc}") from None
    with (
        _errors(),
        console.status(f"{model} run" + (f" on Dask ({scheduler})" if scheduler else "")),
    ):
        run = asyncio.run(_run_in_db(get_settings(), model, rain, res, raw, scheduler, timeout_s))
    if run["status"] != "done":
        raise fail(f"run {run['id']} failed: {run['error']}")
    levels = ", ".join(f"{k} {v:,}" for k, v in run["summary"]["by_level"].items())
    console.print(f"run {run['id']} done in {run['timings']['total_s']:.1f} s: {levels}")
    typer.echo(run["id"])


async def _run_in_db(
    settings: Any,
    model: str,
    rain: dict[str, Any],
    res: int,
    params: dict[str, Any],
    scheduler: str | None,
    timeout_s: float,
) -> dict[str, Any]:
    from emergency.runs import start_run, wait_run
    from geo_service.db import create_pool

    pool = await create_pool(settings)
    try:
        run_id = await start_run(
            pool, settings, model=model, rain=rain, res=res, params=params, actor="cli",
            scheduler=scheduler,
        )  # fmt: skip
        return await wait_run(pool, run_id, timeout_s)
    finally:
        await pool.close()


@risk_app.command("validate")
def validate_cmd(
    data: Annotated[
        Path | None, typer.Option(help="Real-data folder (default $ONEMAP_SHARED_DATA)")
    ] = None,
) -> None:
    """Run the validation checks on real and synthetic data and print the table."""
    import os

    from geo_service.settings import REPO_ROOT
    from risk_models.validate import validation_table

    folder = data or Path(
        os.environ.get("ONEMAP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
    )
    if not (folder / "MANIFEST.md").exists():
        raise fail(f"no real-data folder at {folder} (use --data)")
    with _errors(), console.status("validating (Ecuador, Hong Kong, Guilin, synthetic)"):
        table = validation_table(folder)
    out = Table("check", "value", "goal", "pass", title="Risk model validation")
    for r in table.itertuples(index=False):
        out.add_row(str(r.check), f"{r.value:.4g}", str(r.goal), "yes" if r[3] else "NO")
    console.print(out)
    if not table["pass"].all():
        raise typer.Exit(1)
