"""``OneMap``: the planners' Python client of a OneMap server (HTTP via httpx).

Every geometry in and out is WGS 84 longitude/latitude in degrees (EPSG:4326); distances and
radii are metres.  Error answers of the server raise :class:`~geo_service.client.errors.OneMapError`
subclasses carrying the server's ``code`` and ``detail``.

Example (with a server running)::

    from geo_service.client import OneMap
    om = OneMap("http://127.0.0.1:8000")
    schools = om.read("venues", where={"category": "school"})
    run = om.risk_run("landslide", scenario="typhoon_300mm_24h")
    om.map(om.cells(run), om.warnings())
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import shapely
from tqdm.std import tqdm

from geo_service.client.errors import OneMapError, RunFailedError, ServerError, error_for
from geo_service.client.frames import (
    CRS,
    DATETIME,
    assemble,
    cast_columns,
    dtypes_from_queryables,
    features_to_gdf,
    parse_csv_page,
)

if TYPE_CHECKING:
    import folium

#: Largest page the server gives (``limit`` of ``/collections/{id}/items``).
MAX_PAGE = 10_000
#: Largest batch of ``POST /geo/geocode``.
MAX_GEOCODE_BATCH = 10_000
#: Warning levels (China's four-colour scale) and their numbers in risk cells (0 = none).
LEVELS = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
DEFAULT_URL = "http://127.0.0.1:8000"

BBox = tuple[float, float, float, float]


def _bbox_param(bbox: Any) -> str:
    """``minx,miny,maxx,maxy`` (degrees) from a 4-tuple, a shapely geometry or a GeoDataFrame."""
    if isinstance(bbox, gpd.GeoDataFrame | gpd.GeoSeries):
        bbox = bbox.to_crs(CRS).total_bounds
    elif isinstance(bbox, shapely.Geometry):
        bbox = shapely.bounds(bbox)
    values = [float(v) for v in bbox]
    if len(values) != 4:
        raise ValueError("bbox needs 4 numbers: minx, miny, maxx, maxy (degrees)")
    return ",".join(repr(v) for v in values)


def _geometry_json(geometry: Any) -> dict[str, Any]:
    """GeoJSON (EPSG:4326) of a shapely geometry, a GeoJSON mapping or a GeoDataFrame (union)."""
    if isinstance(geometry, gpd.GeoDataFrame | gpd.GeoSeries):
        geometry = geometry.to_crs(CRS).union_all()
    if isinstance(geometry, shapely.Geometry):
        return json.loads(shapely.to_geojson(geometry))  # type: ignore[no-any-return]
    if isinstance(geometry, Mapping):
        return dict(geometry)
    raise TypeError("geometry must be a shapely geometry, a GeoJSON mapping or a GeoDataFrame")


def _level_number(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    try:
        return LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown level {level!r}; use 0–4 or one of {list(LEVELS)}") from None


def _level_name(level: int | str) -> str:
    if isinstance(level, str):
        return level
    names = {v: k for k, v in LEVELS.items()}
    if level not in names:
        raise ValueError(f"warning level must be 1–4 or one of {list(LEVELS)}")
    return names[level]


def _run_id(run: int | Mapping[str, Any]) -> int:
    return int(run["id"]) if isinstance(run, Mapping) else int(run)


class OneMap:
    """Client of one OneMap server.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000`` (default: ``$ONEMAP_URL`` or that).
        api_key: sent as ``Authorization: Bearer``; without one the server's anonymous role
            applies (sensitive fields omitted; no issuing of warnings or runs).
        timeout_s: timeout of each HTTP request, seconds.
        concurrency: pages fetched at the same time by :meth:`read`.
        progress: show progress bars on long reads (``None``: only when more than one page).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        concurrency: int = 4,
        progress: bool | None = None,
    ):
        self.base_url = (base_url or os.environ.get("ONEMAP_URL") or DEFAULT_URL).rstrip("/")
        headers = {"Accept-Encoding": "gzip"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=max(4, concurrency * 2))
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, limits=limits
        )
        self.concurrency = max(1, int(concurrency))
        self.progress = progress
        self._dtypes: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OneMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OneMap({self.base_url!r})"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request; an error answer raises :class:`OneMapError` (server's code/detail)."""
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(
                0, "unreachable", f"{self.base_url}: {exc}", url=self.base_url + path
            ) from exc
        if resp.status_code >= 400:
            try:
                body: Any = resp.json()
            except ValueError:
                body = resp.text
            raise error_for(resp.status_code, body, str(resp.url))
        return resp

    def get_json(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params`` (None values dropped) → decoded JSON."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post_json(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body).json()

    def health(self) -> dict[str, Any]:
        """``/health``: ``{"status": "ok", "database": "ok", …}`` (raises on 503)."""
        return self.get_json("/health")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ layers
    def collections(self) -> pd.DataFrame:
        """The layers the caller may read: id, title, description, bbox (degrees)."""
        doc = self.get_json("/collections")
        rows = []
        for c in doc["collections"]:
            spatial = (c.get("extent") or {}).get("spatial") or {}
            bbox = (spatial.get("bbox") or [None])[0]
            rows.append(
                {
                    "id": c["id"],
                    "title": c.get("title"),
                    "description": c.get("description"),
                    "bbox": tuple(bbox) if bbox else None,
                }
            )
        return pd.DataFrame(rows, columns=["id", "title", "description", "bbox"])

    def queryables(self, layer: str) -> dict[str, Any]:
        """JSON Schema of ``layer``'s properties (those the caller may see)."""
        return self.get_json(f"/collections/{layer}/queryables")  # type: ignore[no-any-return]

    def dtypes(self, layer: str) -> dict[str, str]:
        """pandas dtype of each property of ``layer`` (cached per client)."""
        if layer not in self._dtypes:
            self._dtypes[layer] = dtypes_from_queryables(self.queryables(layer))
        return self._dtypes[layer]

    def read(
        self,
        layer: str,
        bbox: Any = None,
        filter: str | Mapping[str, Any] | None = None,  # noqa: A002 (the OGC parameter's name)
        properties: Sequence[str] | str | None = None,
        limit: int | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        sortby: str | None = None,
        progress: bool | None = None,
        page_size: int = MAX_PAGE,
    ) -> gpd.GeoDataFrame:
        """Features of a layer as a GeoDataFrame (EPSG:4326), every page, in the server's order.

        Args:
            layer: collection id, e.g. ``"buildings"``.
            bbox: (minx, miny, maxx, maxy) in degrees, or a geometry/GeoDataFrame whose bounds
                are used.
            filter: CQL2 text (``"floors > 10 AND use = 'residential'"``) or CQL2 JSON.
            properties: the properties to return (default all the caller may see).
            limit: at most this many features (default: all).
            where: property equality filters, e.g. ``{"category": "school"}``.
            sortby: ``+prop,-prop``; ties are broken by the row id, so paging is stable.
            progress: progress bar (default: when more than one page).
            page_size: features per request (≤ 10,000).

        Pages are fetched ``concurrency`` at a time (offsets known from ``numberMatched``) in
        the CSV form of the items endpoint and parsed to typed columns; an estimated count
        (above 100,000 matches) is followed up page by page until a short page.
        """
        page_size = max(1, min(int(page_size), MAX_PAGE))
        if limit is not None and limit <= 0:
            raise ValueError("limit must be positive (or None for every feature)")
        dtypes = self.dtypes(layer)
        params = self._items_params(bbox, filter, properties, where, sortby)
        path = f"/collections/{layer}/items"

        def fetch(offset: int, n: int) -> tuple[pd.DataFrame, np.ndarray, int]:
            resp = self.request("GET", path, params={**params, "limit": n, "offset": offset})
            frame, geoms = parse_csv_page(resp.content, dtypes)
            return frame, geoms, int(resp.headers.get("OGC-NumberMatched", "0"))

        first_n = min(page_size, limit) if limit else page_size
        frame, geoms, matched = fetch(0, first_n)
        parts: dict[int, tuple[pd.DataFrame, np.ndarray]] = {0: (frame, geoms)}
        total = min(matched, limit) if limit is not None else matched
        show = self.progress if progress is None else progress
        bar = tqdm(
            total=max(total, len(frame)),
            unit=" features",
            desc=layer,
            disable=not (show if show is not None else total > first_n),
        )
        bar.update(len(frame))
        sizes = {0: first_n}
        try:
            if len(frame) == first_n:
                offsets = list(range(first_n, total, page_size))
                sizes.update({o: min(page_size, total - o) for o in offsets})
                self._fetch_pages(fetch, offsets, sizes, parts, bar)
                # numberMatched is an estimate above 100,000 matches: go on while pages are full.
                got = sum(len(p[0]) for p in parts.values())
                last = max(parts)
                while len(parts[last][0]) == sizes[last] and (limit is None or got < limit):
                    offset = last + sizes[last]
                    n = page_size if limit is None else min(page_size, limit - got)
                    frame, geoms, _ = fetch(offset, n)
                    parts[offset], sizes[offset] = (frame, geoms), n
                    got, last = got + len(frame), offset
                    bar.total = max(bar.total, got)
                    bar.update(len(frame))
        finally:
            bar.close()
        gdf = assemble([parts[o] for o in sorted(parts)], dtypes)
        gdf.attrs["layer"] = layer
        return gdf

    def _fetch_pages(
        self,
        fetch: Any,
        offsets: list[int],
        sizes: dict[int, int],
        parts: dict[int, tuple[pd.DataFrame, np.ndarray]],
        bar: tqdm,
    ) -> None:
        if not offsets:
            return
        with ThreadPoolExecutor(min(self.concurrency, len(offsets))) as pool:
            futures = {pool.submit(fetch, o, sizes[o]): o for o in offsets}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    if fut.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise fut.exception()  # type: ignore[misc]
                    frame, geoms, _ = fut.result()
                    parts[futures[fut]] = (frame, geoms)
                    bar.update(len(frame))

    @staticmethod
    def _items_params(
        bbox: Any,
        filter_: str | Mapping[str, Any] | None,
        properties: Sequence[str] | str | None,
        where: Mapping[str, Any] | None,
        sortby: str | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"f": "csv"}
        if bbox is not None:
            params["bbox"] = _bbox_param(bbox)
        if filter_ is not None:
            if isinstance(filter_, Mapping):
                params["filter"] = json.dumps(filter_)
                params["filter-lang"] = "cql2-json"
            else:
                params["filter"] = filter_
        if properties is not None:
            params["properties"] = (
                properties if isinstance(properties, str) else ",".join(properties)
            )
        if sortby:
            params["sortby"] = sortby
        for name, value in (where or {}).items():
            params[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return params

    def feature(self, layer: str, code: str) -> dict[str, Any]:
        """One feature (GeoJSON mapping) by its code."""
        return self.get_json(f"/collections/{layer}/items/{code}")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ spatial queries
    def locate(self, lon: float, lat: float) -> dict[str, Any]:
        """Admin areas, grid and nearest standard address at (lon, lat) degrees."""
        return self.get_json("/geo/locate", lon=lon, lat=lat)  # type: ignore[no-any-return]

    def nearby(
        self,
        layer: str,
        lon: float,
        lat: float,
        radius_m: float = 1000.0,
        limit: int = 10,
        category: str | None = None,
    ) -> gpd.GeoDataFrame:
        """Nearest features of ``layer`` within ``radius_m`` metres of (lon, lat) degrees,
        nearest first, with ``distance_m``."""
        doc = self.get_json(
            "/geo/nearby",
            layer=layer,
            lon=lon,
            lat=lat,
            radius=radius_m,
            limit=limit,
            category=category,
        )
        return features_to_gdf(doc["features"], self.dtypes(layer), id_column=None)

    def within(
        self,
        geometry: Any,
        layers: Sequence[str] | str,
        predicate: str = "intersects",
        limit: int = 1000,
    ) -> dict[str, gpd.GeoDataFrame]:
        """Features of ``layers`` intersecting (or ``predicate="within"``) ``geometry``.

        ``geometry``: shapely geometry or GeoJSON in degrees, or a GeoDataFrame (its union,
        reprojected to EPSG:4326).  Each frame's ``attrs["number_matched"]`` is the exact count
        (at most ``limit`` features are returned per layer).
        """
        names = [layers] if isinstance(layers, str) else list(layers)
        doc = self.post_json(
            "/geo/within",
            {
                "geometry": _geometry_json(geometry),
                "layers": names,
                "predicate": predicate,
                "limit": limit,
            },
        )
        out: dict[str, gpd.GeoDataFrame] = {}
        for name, fc in doc["layers"].items():
            gdf = features_to_gdf(fc["features"], self.dtypes(name), id_column=None)
            gdf.attrs["number_matched"] = fc.get("numberMatched", len(gdf))
            out[name] = gdf
        return out

    # ------------------------------------------------------------------ addresses
    def geocode(
        self,
        addresses: str | pd.Series | pd.DataFrame,
        column: str | None = None,
        *,
        progress: bool | None = None,
    ) -> Any:
        """Geocode free-text Chinese addresses against the standard addresses.

        - a string → the result dict (match_level, score, code, full_address, lon, lat,
          grid_code, components);
        - a Series → a GeoDataFrame with the Series' index, one row per address, columns
          ``geo_match_level, geo_score, geo_code, geo_full_address, geo_grid_code`` and point
          geometry (empty where nothing matched);
        - a DataFrame with ``column`` → the DataFrame plus those columns, as a GeoDataFrame.
        Sent in batches of 10,000.
        """
        if isinstance(addresses, str):
            return self.get_json("/geo/geocode", q=addresses)
        if isinstance(addresses, pd.DataFrame):
            if column is None or column not in addresses.columns:
                raise ValueError("geocode(DataFrame) needs column= naming the address column")
            geo = self.geocode(addresses[column], progress=progress)
            return gpd.GeoDataFrame(
                addresses.join(pd.DataFrame(geo.drop(columns="geometry"))),
                geometry=geo.geometry,
                crs=CRS,
            )
        series = pd.Series(addresses)
        texts = ["" if pd.isna(v) else str(v) for v in series]
        show = self.progress if progress is None else progress
        results: list[dict[str, Any]] = []
        with tqdm(
            total=len(texts),
            unit=" addresses",
            desc="geocode",
            disable=not (show if show is not None else len(texts) > MAX_GEOCODE_BATCH),
        ) as bar:
            for i in range(0, len(texts), MAX_GEOCODE_BATCH):
                chunk = texts[i : i + MAX_GEOCODE_BATCH]
                results += self.post_json("/geo/geocode", {"addresses": chunk})["results"]
                bar.update(len(chunk))
        keys = ("match_level", "score", "code", "full_address", "grid_code")
        df = pd.DataFrame(
            {f"geo_{k}": [r.get(k) for r in results] for k in keys}, index=series.index
        )
        df["geo_score"] = df["geo_score"].astype("float64")
        lon = np.array([r.get("lon") if r.get("lon") is not None else np.nan for r in results])
        lat = np.array([r.get("lat") if r.get("lat") is not None else np.nan for r in results])
        geoms = np.asarray(shapely.points(lon, lat), object)
        geoms[np.isnan(lon) | np.isnan(lat)] = None
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, index=series.index), crs=CRS)

    def reverse(self, lon: float, lat: float) -> dict[str, Any]:
        """Nearest standard address to (lon, lat) degrees, with ``distance_m``."""
        return self.get_json("/geo/reverse", lon=lon, lat=lat)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ risk runs
    def risk_run(
        self,
        model: str = "landslide",
        rain: Mapping[str, Any] | None = None,
        *,
        scenario: str | None = None,
        res: int = 9,
        params: Mapping[str, Any] | None = None,
        wait: bool = True,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
    ) -> dict[str, Any]:
        """Start a ``model`` (``landslide`` | ``flood``) run at H3 resolution ``res``.

        ``rain`` is ``{"scenario": name}``, ``{"gauges": True, "hours": 24}`` or
        ``{"raster": name}``; ``scenario="typhoon_300mm_24h"`` is short for the first.
        Needs an operator key.  With ``wait`` (default) polls until the run is done and returns
        it; a failed run (or one not done within ``timeout_s`` seconds) raises
        :class:`RunFailedError`.
        """
        if rain is None:
            if scenario is None:
                raise ValueError("give rain= or scenario=")
            rain = {"scenario": scenario}
        body: dict[str, Any] = {"model": model, "rain": dict(rain), "res": res}
        if params:
            body["params"] = dict(params)
        run: dict[str, Any] = self.post_json("/risk/runs", body)
        return self.wait_run(run, timeout_s, poll_s) if wait else run

    def wait_run(
        self, run: int | Mapping[str, Any], timeout_s: float = 600.0, poll_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll ``GET /risk/runs/{id}`` until the run is done; raise if it failed."""
        run_id = _run_id(run)
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.run(run_id)
            status = doc.get("status")
            if status == "done":
                return doc
            if status == "failed":
                raise RunFailedError(
                    0, "run_failed", str(doc.get("error") or f"run {run_id} failed"), doc
                )
            if time.monotonic() > deadline:
                raise RunFailedError(
                    0, "run_timeout", f"run {run_id} still {status!r} after {timeout_s:g} s", doc
                )
            time.sleep(poll_s)

    def run(self, run: int | Mapping[str, Any]) -> dict[str, Any]:
        """One run: status, timings, params, inputs, summary (cells per level)."""
        return self.get_json(f"/risk/runs/{_run_id(run)}")  # type: ignore[no-any-return]

    def runs(self) -> pd.DataFrame:
        """Risk runs, newest first."""
        doc = self.get_json("/risk/runs")
        items = doc if isinstance(doc, list) else doc.get("runs") or doc.get("items") or []
        return pd.DataFrame(items)

    def cells(
        self, run: int | Mapping[str, Any], level_min: int | str | None = None
    ) -> gpd.GeoDataFrame:
        """H3 hexagons of a run (polygons, degrees): ``h3`` (hex string), ``level`` 0–4,
        ``score``; only those at or above ``level_min`` (0–4 or blue/yellow/orange/red)."""
        doc = self.get_json(f"/risk/runs/{_run_id(run)}/cells", level_min=_level_number(level_min))
        gdf = features_to_gdf(doc.get("features") or [], {"level": "Int64"}, id_column="h3")
        gdf.attrs["run_id"] = _run_id(run)
        return gdf

    def explain(self, h3: str | int, run: int | Mapping[str, Any]) -> dict[str, Any]:
        """Why a cell got its level: factors, rain, thresholds (``GET /risk/cells/{h3}``)."""
        cell = format(h3, "x") if isinstance(h3, int) else h3
        return self.get_json(f"/risk/cells/{cell}", run=_run_id(run))  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ analysis, warnings
    def exposure(
        self,
        run: int | Mapping[str, Any],
        level_min: int | str = "blue",
        *,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Who and what lies in a run's cells at or above ``level_min`` (blue/yellow/orange/red
        or 1–4): ``summary`` (addresses, venues, key_sites, population, grids, cameras_online,
        shelters), ``grids`` (per grid, with exposed population for operators), ``venues``,
        ``cameras``, ``shelters`` (nearest) and ``area`` (cells, km² per level).  Lists hold
        at most ``limit`` addresses/venues (server default 1,000)."""
        return self.get_json(  # type: ignore[no-any-return]
            "/analysis/exposure", run=_run_id(run), level_min=_level_name(level_min), limit=limit
        )

    def exposed_addresses(
        self, run: int | Mapping[str, Any], level_min: int | str = "blue"
    ) -> gpd.GeoDataFrame:
        """Every standard address in a run's cells at or above ``level_min`` (points, degrees):
        code, full_address, community, grid_code — e.g. for SMS lists."""
        resp = self.request(
            "GET",
            "/analysis/exposure/addresses.csv",
            params={"run": _run_id(run), "level_min": _level_name(level_min)},
        )
        body = resp.content.removeprefix(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheets
        frame, geoms = parse_csv_page(body, self.dtypes("addresses"))
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)

    def camera_coverage(
        self, community: str | None = None, target: float | None = None
    ) -> dict[str, Any]:
        """Share of key sites seen by at least one online camera — overall, per community and
        per grid — and the key sites none sees (``GET /analysis/camera-coverage``)."""
        return self.get_json(  # type: ignore[no-any-return]
            "/analysis/camera-coverage", community=community, target=target
        )

    def warnings(self, status: str = "active") -> gpd.GeoDataFrame:
        """Warnings (``active`` | ``lifted`` | ``expired`` | ``all``) as a GeoDataFrame:
        code, hazard, level (blue…red), status, valid_from/valid_to (UTC), run_id, exposure."""
        doc = self.get_json("/warnings", status=status)
        return features_to_gdf(
            doc.get("features") or [],
            {k: DATETIME for k in ("valid_from", "valid_to", "created_at", "lifted_at")},
            id_column="code",
        )

    def warning(self, code: str) -> dict[str, Any]:
        """One warning with its full exposure."""
        return self.get_json(f"/warnings/{code}")  # type: ignore[no-any-return]

    def issue_warning(
        self,
        run: int | Mapping[str, Any],
        level_min: int | str = "yellow",
        *,
        hazard: str | None = None,
        valid_hours: float | None = 6,
        title: str | None = None,
    ) -> dict[str, Any]:
        """Issue a warning over a run's cells at or above ``level_min`` (operator key)."""
        body: dict[str, Any] = {"run_id": _run_id(run), "level_min": _level_name(level_min)}
        if hazard:
            body["hazard"] = hazard
        if valid_hours is not None:
            body["valid_hours"] = valid_hours
        if title:
            body["title"] = title
        return self.post_json("/warnings", body)  # type: ignore[no-any-return]

    def lift_warning(self, code: str, reason: str | None = None) -> dict[str, Any]:
        """Lift an active warning (operator key); returns it with status ``lifted``."""
        body = {"reason": reason} if reason else {}
        return self.post_json(f"/warnings/{code}/lift", body)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        """KPIs of the big screen (``GET /stats/summary``)."""
        return self.get_json("/stats/summary")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ maps
    def map(
        self,
        *overlays: gpd.GeoDataFrame | gpd.GeoSeries,
        names: Iterable[str] | None = None,
        basemap: str | None = "hillshade",
        location: tuple[float, float] | None = None,
        zoom_start: int = 13,
        height: str = "600px",
        tooltip: Sequence[str] | None = None,
    ) -> folium.Map:
        """A folium map drawn entirely from this server: Leaflet from ``/vendor``, the basemap
        from ``/raster/{basemap}`` tiles, and each overlay as GeoJSON — coloured by its
        ``level`` column (blue/yellow/orange/red or 0–4) when it has one.

        ``location`` is (lat, lon) degrees; by default the map fits the overlays.
        """
        from geo_service.client.maps import offline_map

        return offline_map(
            self.base_url,
            list(overlays),
            names=list(names) if names is not None else None,
            basemap=basemap,
            location=location,
            zoom_start=zoom_start,
            height=height,
            tooltip=tooltip,
        )


__all__ = ["OneMap", "OneMapError", "cast_columns"]
