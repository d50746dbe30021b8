"""``onemap risk …``: batch terrain, susceptibility and nowcasts on files (no server needed).

::

    onemap risk terrain dem.tif --out terrain/
    onemap risk susceptibility --dem dem.tif --inventory sites.csv --res 9 --out static.csv
    onemap risk nowcast --model landslide --susceptibility static.csv \
        --rain data/scenarios/typhoon_300mm_24h.json --out cells.csv
    onemap risk validate
    onemap risk calibrate-rain --incidents incidents.csv --rain hko_daily.csv --fit-to 2001
    onemap risk hindcast --dem dem.tif --inventory incidents.csv --rain gauges.csv \
        --events incidents.csv --from 2005-08-20 --to 2005-08-21 --nodata 0 --out hindcast/

Tables are CSV with ``h3`` as the H3 index in hex. ``--scheduler local|tcp://host:port``
runs the same pipeline on Dask (:mod:`risk_models.dask_runner`).
"""

from __future__ import annotations

import contextlib
import json
import warnings
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
NodataOpt = Annotated[
    float | None,
    typer.Option("--nodata", help="Extra DEM no-data value (e.g. 0 where the sea is stored as 0)"),
]


def _params(text: str | None, nodata: float | None = None) -> Any:
    from risk_models.params import PipelineParams

    raw: Any = {}
    if text:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise fail(f"--params is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise fail("--params must be a JSON object")
    if nodata is not None:
        raw["nodata"] = nodata
    return PipelineParams.from_dict(raw)


@contextlib.contextmanager
def _dem_warnings() -> Iterator[None]:
    """Print the DEM's warnings (e.g. a sea stored as 0 without a no-data tag) as yellow lines."""
    from risk_models.terrain import ZeroNodataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZeroNodataWarning)
        yield
    for w in caught:
        if issubclass(w.category, ZeroNodataWarning):
            console.print(f"[yellow]warning: {w.message}[/yellow]")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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


#: DEMs above this size (million pixels) run in tiles by default.
TILED_FROM_MPX = 16
TileOpt = Annotated[
    int | None,
    typer.Option(
        "--tile-px",
        help="Work in tiles of this many pixels a side (memory bounded by the tile, same "
        "results). Default: tiles of 2048 when the DEM is over "
        f"{TILED_FROM_MPX} Mpx, or on Dask; else the whole DEM in memory",
        min=64,
    ),
]


@risk_app.command("terrain")
def terrain_cmd(
    dem: Annotated[Path, typer.Argument(help="DEM GeoTIFF in any CRS (heights in metres)")],
    out: Annotated[Path, typer.Option("--out", help="Output directory for the COGs")],
    stream_area_km2: Annotated[float, typer.Option(help="Stream threshold, km²")] = 1.0,
    nodata: NodataOpt = None,
    tile_px: TileOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Derive filled DEM, D8, upstream area, streams, slope, relief, curvature, HAND, TWI."""
    from risk_models.terrain import derive_terrain

    tiled = tile_px is not None or scheduler is not None or _large(dem)
    with _errors(), _dem_warnings():
        if tiled:
            paths = _terrain_tiles(dem, out, stream_area_km2, nodata, tile_px, scheduler)
        else:
            with console.status(f"terrain of {dem}"):
                paths = derive_terrain(dem, out, stream_area_km2=stream_area_km2, nodata=nodata)
    table = Table("layer", "file")
    for name, path in paths.items():
        table.add_row(name, str(path))
    console.print(table)


def _large(dem: Path) -> bool:
    import rasterio

    try:
        with rasterio.open(dem) as src:
            return bool(src.width * src.height > TILED_FROM_MPX * 1e6)
    except rasterio.errors.RasterioIOError:
        return False  # the in-memory path reports the unreadable file


def _terrain_tiles(
    dem: Path, out: Path, stream_area_km2: float, nodata: float | None, tile_px: int | None,
    scheduler: str | None, relief_window_m: float | None = None,
) -> dict[str, Path]:  # fmt: skip
    from risk_models.dask_runner import derive_terrain_dask
    from risk_models.terrain_tiles import derive_terrain_tiled

    with _maybe_client(scheduler) as client, progress() as bar:
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        kw: dict[str, Any] = {"stream_area_km2": stream_area_km2, "nodata": nodata}
        if tile_px is not None:
            kw["tile_px"] = tile_px
        if relief_window_m is not None:
            kw["relief_window_m"] = relief_window_m
        if client is None:
            return derive_terrain_tiled(dem, out, progress=step, **kw)
        return derive_terrain_dask(dem, out, client=client, progress=step, **kw)


def _dates(values: pd.Series) -> pd.Series:
    """Dates of a column: dd/mm/yyyy first (the CEDD and many Chinese tables), else ISO."""
    out = pd.to_datetime(values, format="%d/%m/%Y", errors="coerce")
    iso = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return out.fillna(iso)


def read_points(
    path: Path,
    x_col: str,
    y_col: str,
    crs: str,
    *,
    date_col: str | None = None,
    before: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> np.ndarray:
    """``(n, 2)`` lon/lat (degrees) of the points of a CSV (``x_col``/``y_col`` in ``crs``) or
    of any vector file GeoPandas reads (reprojected; polygons by a point on their surface).

    With ``date_col`` (comma-separated columns tried in order, e.g. ``FAILDATE,CALLDATE``) only
    the rows dated before ``before`` and/or within [``start``, ``end``] are kept."""
    if path.suffix.lower() in (".csv", ".txt"):
        df = pd.read_csv(path)
        if date_col:
            cols = [c.strip() for c in date_col.split(",")]
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise ValueError(f"{path}: no date column {', '.join(missing)}")
            when = _dates(df[cols[0]].astype(str))
            for c in cols[1:]:
                when = when.fillna(_dates(df[c].astype(str)))
            keep = when.notna()
            if before:
                keep &= when < pd.Timestamp(before)
            if start:
                keep &= when >= pd.Timestamp(start)
            if end:
                keep &= when <= pd.Timestamp(end)
            df = df[keep.to_numpy()]
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
    date_col: Annotated[
        str | None, typer.Option("--date-col", help="CSV date column (dd/mm/yyyy or ISO)")
    ] = None,
    before: Annotated[
        str | None, typer.Option("--before", help="Fit only on sites dated before this day")
    ] = None,
    nodata: NodataOpt = None,
    params: ParamsOpt = None,
    scheduler: SchedulerOpt = None,
    tile_px: TileOpt = None,
    terrain: Annotated[
        Path | None,
        typer.Option(
            "--terrain",
            help="The layers of `onemap risk terrain` for this DEM (same --nodata and "
            "stream/relief parameters): the table is then built band by band from them",
        ),
    ] = None,
) -> None:
    """Static landslide susceptibility per H3 cell (+ the flood terrain statistics).

    A DEM over 16 Mpx (or given --tile-px or --terrain) is worked in tiles and bands of
    rows, with memory bounded by the window; the table is the same.
    """
    from risk_models.params import check_res

    with _errors():
        check_res(res)
        p = _params(params, nodata)
        sites = read_points(inventory, x_col, y_col, crs, date_col=date_col, before=before)
        windowed = terrain is not None or tile_px is not None or _large(dem)
        if windowed and p.bbox is None:
            static = _build_static_tiled(dem, sites, res, p, roads, scheduler, tile_px, terrain)
        else:
            static = _build_static(dem, sites, res, p, roads, scheduler)
        write_table(static, out)
    per_class = np.bincount(static["susceptibility_class"].to_numpy(), minlength=4)
    counts = dict(enumerate(per_class.tolist()))
    console.print(
        f"{len(static):,} cells at res {res}, {int((static['events'] > 0).sum())} with known "
        f"sites; cells per class {counts} → {out}"
    )


def _road_lines(roads: Path | None) -> list[Any] | None:
    if roads is None:
        return None
    import geopandas as gpd

    return list(gpd.read_file(roads).to_crs(4326).geometry)


def _build_static_tiled(
    dem: Path, sites: np.ndarray, res: int, p: Any, roads: Path | None, scheduler: str | None,
    tile_px: int | None, terrain: Path | None,
) -> pd.DataFrame:  # fmt: skip
    import tempfile

    from risk_models.static_tiles import build_static_tiled
    from risk_models.terrain_tiles import LAYERS

    road_lines = _road_lines(roads)
    with tempfile.TemporaryDirectory(prefix="onemap-terrain-") as tmp:
        if terrain is None:
            layers = _terrain_tiles(
                dem, Path(tmp), p.stream_area_km2, p.nodata, tile_px, scheduler,
                relief_window_m=p.relief_window_m,
            )  # fmt: skip
        else:
            layers = {name: terrain / f"{name}.tif" for name in LAYERS}
        with _maybe_client(scheduler) as client, progress() as bar:
            static = build_static_tiled(
                dem, layers, res=res, params=p, sites_lonlat=sites, roads_lonlat=road_lines,
                map_windows=_mapper(client, bar, "H3 cells by band of rows"),
            )  # fmt: skip
    return _checked(static, sites)


def _mapper(client: Any, bar: Progress, what: str) -> Callable[..., Any]:
    """The ``map`` of the raster windows: with a progress bar here, or on the Dask workers."""
    if client is None:
        return _bar_map(bar, what)
    from risk_models.dask_runner import client_map

    return client_map(client)


def _checked(static: pd.DataFrame, sites: np.ndarray) -> pd.DataFrame:
    if (static["susceptibility_class"] < 0).any():
        raise fail(
            f"none of the {len(sites)} inventory points falls in a cell of the DEM "
            "(check --x-col/--y-col/--crs): nothing to fit"
        )
    static["class"] = static["susceptibility_class"]
    return static


def _build_static(
    dem: Path, sites: np.ndarray, res: int, p: Any, roads: Path | None, scheduler: str | None
) -> pd.DataFrame:
    from risk_models.static import build_static, load_dem

    road_lines = _road_lines(roads)
    with _dem_warnings(), console.status(f"reading {dem}"):
        grid = load_dem(dem, p.bbox, p.nodata)
    with _maybe_client(scheduler) as client, progress() as bar:
        static = build_static(
            grid, res=res, params=p, sites_lonlat=sites, roads_lonlat=road_lines,
            map_windows=_mapper(client, bar, "H3 cells by raster band"),
        )  # fmt: skip
    return _checked(static, sites)


def _antecedent(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    try:
        vals = np.array([float(v) for v in text.split(",")], dtype="float64")
    except ValueError:
        raise ValueError("--antecedent-mm must be comma-separated numbers (mm)") from None
    if vals.size != 10 or not np.isfinite(vals).all() or (vals < 0).any():
        raise ValueError("--antecedent-mm needs 10 daily totals ≥ 0 mm, most recent last")
    return vals


AntecedentOpt = Annotated[
    str | None,
    typer.Option(
        "--antecedent-mm",
        help="10 daily rain totals (mm) before the window, most recent last, e.g. '0,0,5,…'",
    ),
]


def _rain(path: Path, static: pd.DataFrame, hours: int, antecedent: str | None = None) -> Any:
    """Rain source from a scenario (.json), gauge points (.csv) or a raster (.tif); a given
    antecedent series replaces the source's own."""
    src = _rain_source(path, static, hours)
    ante = _antecedent(antecedent)
    if ante is not None:
        src.antecedent_daily_mm = ante
    return src


def _rain_source(path: Path, static: pd.DataFrame, hours: int) -> Any:
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
    antecedent_mm: AntecedentOpt = None,
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
        source = _rain(rain, static, hours, antecedent_mm)
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
    nodata: NodataOpt = None,
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
    if not isinstance(raw, dict):
        raise fail("--params must be a JSON object")
    if nodata is not None:
        raw["nodata"] = nodata
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


def _verification_table(result: dict[str, Any], title: str) -> Table:
    table = Table("level ≥", "hits", "hit rate", "area share", "false-alarm area", title=title)
    for r in result["levels"]:
        pod = "–" if r["pod"] is None else f"{r['pod']:.1%}"
        table.add_row(
            r["name"], f"{r['hits']:,}", pod, f"{r['area_share']:.1%}",
            f"{r['false_alarm_area_share']:.1%}",
        )  # fmt: skip
    return table


@risk_app.command("hindcast")
def hindcast_cmd(
    rain: Annotated[Path, typer.Option(help="Scenario .json, gauge .csv or rain raster .tif")],
    events: Annotated[Path, typer.Option(help="What happened: event points (CSV or vector)")],
    dem: Annotated[Path | None, typer.Option("--dem", help="DEM (with --inventory)")] = None,
    inventory: Annotated[
        Path | None, typer.Option(help="Known sites to fit on (with --dem)")
    ] = None,
    susceptibility: Annotated[
        Path | None, typer.Option(help="Or a table from 'onemap risk susceptibility'")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day of the events (fit before it)")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day of the events")] = None,
    date_col: Annotated[
        str, typer.Option("--date-col", help="Date columns tried in order")
    ] = "FAILDATE,CALLDATE",
    model: Annotated[str, typer.Option("--model", help="landslide or flood")] = "landslide",
    res: Annotated[int, typer.Option("--res", help="H3 resolution 7–10")] = 9,
    x_col: Annotated[str, typer.Option("--x-col", help="CSV column of x / longitude")] = "lon",
    y_col: Annotated[str, typer.Option("--y-col", help="CSV column of y / latitude")] = "lat",
    crs: Annotated[str, typer.Option("--crs", help="CRS of the CSV coordinates")] = "EPSG:4326",
    hours: Annotated[int, typer.Option(help="Hours a single rain total is spread over")] = 24,
    antecedent_mm: AntecedentOpt = None,
    nodata: NodataOpt = None,
    params: ParamsOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for verification.json, curve.png")
    ] = Path("hindcast"),
) -> None:
    """Replay a past event (复盘): nowcast for its rain, then hit rate and area per level."""
    from risk_models import pipeline
    from risk_models.params import check_model, check_res
    from risk_models.verify import plot_curve, verify

    with _errors():
        check_model(model)
        check_res(res)
        p = _params(params, nodata)
        if susceptibility is not None:
            static = read_static(susceptibility)
        elif dem is not None and inventory is not None:
            dated = inventory.suffix.lower() in (".csv", ".txt") and date_from
            sites = read_points(
                inventory, x_col, y_col, crs,
                date_col=date_col if dated else None, before=date_from if dated else None,
            )  # fmt: skip
            static = _build_static(dem, sites, res, p, None, None)
        else:
            raise ValueError("give --susceptibility, or --dem with --inventory")
        source = _rain(rain, static, hours, antecedent_mm)
        with console.status(f"{model} nowcast"):
            cells = pipeline.nowcast(static, source, model, p, explain=False)
        dated_events = events.suffix.lower() in (".csv", ".txt") and (date_from or date_to)
        pts = read_points(
            events, x_col, y_col, crs, date_col=date_col if dated_events else None,
            start=date_from, end=date_to,
        )  # fmt: skip
        result = verify(cells, pts)
        result["model"] = model
        result["period"] = [date_from, date_to]
        out.mkdir(parents=True, exist_ok=True)
        (out / "verification.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        title = f"{result['n_events_in_area']:,} events in {result['n_cells']:,} cells"
        plot_curve(result, out / "curve.png", title=f"{model} hindcast: {title}")
    console.print(_verification_table(result, f"{model} hindcast: {title}"))
    console.print(f"→ {out / 'verification.json'}, {out / 'curve.png'}")


@risk_app.command("calibrate-rain")
def calibrate_rain_cmd(
    incidents: Annotated[Path, typer.Option(help="Incidents CSV (CEDD layout: FAILDATE…)")],
    rain: Annotated[Path, typer.Option(help="Daily rain CSV (HKO layout)")],
    fit_to: Annotated[int, typer.Option("--fit-to", help="Fit on years up to this one")] = 2001,
    natural_only: Annotated[
        bool, typer.Option("--natural-only", help="Only natural-hillside incidents")
    ] = False,
    form: Annotated[
        str,
        typer.Option(
            "--form", help="r24_prev_re2 (R24, the day before, Re2; default) or r24_re (R24, Re)"
        ),
    ] = "r24_prev_re2",
    compare_forms: Annotated[
        bool,
        typer.Option(
            "--compare-forms",
            help="Also fit the two-day rain forms (R48, the day before) and score them out of "
            "sample: chosen on --inner-fit-to .. --fit-to, reported on the years after",
        ),
    ] = False,
    inner_fit_to: Annotated[
        int, typer.Option("--inner-fit-to", help="Inner split for --compare-forms")
    ] = 1995,
    day: Annotated[
        list[str] | None,
        typer.Option("--day", help="With --compare-forms: a day (ISO) to report P and class for"),
    ] = None,
) -> None:
    """Fit the rain classes on a landslide record and a daily rain series; prints JSON whose
    ``rain_model`` can be passed in --params."""
    from risk_models import calibration

    with _errors():
        inc = calibration.read_hk_incidents(incidents)
        series = calibration.read_hko_daily(rain)
        first, last = inc["date"].min(), inc["date"].max()
        days = calibration.daily_table(
            inc, series, str(first.date()), str(last.date()), natural_only=natural_only
        )
        year = pd.DatetimeIndex(days.index).year
        model = calibration.fit_rain_model(days[year <= fit_to], form=form)
        report = calibration.report(model, days[year <= fit_to], days[year > fit_to])
        if compare_forms:
            report["rain_forms"] = calibration.compare_rain_forms(
                days, fit_to_year=fit_to, inner_fit_to_year=inner_fit_to,
                days_of_interest=day or (),
            )  # fmt: skip
    typer.echo(json.dumps(report, indent=2, default=float))
