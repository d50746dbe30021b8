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
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm.std import tqdm

from geo_service.client.base import DEFAULT_URL, LEVELS
from geo_service.client.emergency import EmergencyMixin
from geo_service.client.frames import CRS, assemble, features_to_gdf, parse_csv_page

if TYPE_CHECKING:
    import folium

#: Largest page the server gives (``limit`` of ``/collections/{id}/items``).
MAX_PAGE = 10_000
#: Largest batch of ``POST /geo/geocode``.
MAX_GEOCODE_BATCH = 10_000


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


class OneMap(EmergencyMixin):
    """Client of one OneMap server; the arguments are those of
    :class:`~geo_service.client.base.ClientBase` (``base_url``, ``api_key``, ``timeout_s``,
    ``concurrency``, ``progress``)."""

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


__all__ = ["DEFAULT_URL", "LEVELS", "MAX_PAGE", "OneMap"]
