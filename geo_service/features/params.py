"""Parse and check OGC API – Features query parameters (all failures are 400s)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from geo_service.errors import BadRequest
from geo_service.features.cql import parse_instant
from layers.catalog import Layer, Property

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"


@dataclass(frozen=True)
class Crs:
    """A coordinate reference system the service reads and writes (OGC API – Features Part 2).

    Attributes:
        uri: its OGC URI.
        srid: its EPSG code in PostGIS.
        lat_first: the CRS's first axis is latitude (EPSG:4326 and EPSG:4490, the CGCS2000
            geographic CRS), so coordinates are written and read latitude first, as Part 2
            requires; CRS84 is longitude first.
        bounds: (minx, miny, maxx, maxy) valid coordinates, in lon/lat or metres (x first).
        decimals: decimal places of output coordinates (1e-7 degree or 1 mm).
    """

    uri: str
    srid: int
    lat_first: bool
    bounds: tuple[float, float, float, float]
    decimals: int


_LONLAT = (-180.0, -90.0, 180.0, 90.0)
#: Every CRS of ``crs``, ``bbox-crs`` and ``filter-crs``; the storage CRS is CRS84.
SUPPORTED_CRS: dict[str, Crs] = {
    CRS84: Crs(CRS84, 4326, False, _LONLAT, 7),
    EPSG4326: Crs(EPSG4326, 4326, True, _LONLAT, 7),
    EPSG3857: Crs(
        EPSG3857, 3857, False, (-20037508.3428, -20048966.1041, 20037508.3428, 20048966.1041), 3
    ),
    EPSG4490: Crs(EPSG4490, 4490, True, _LONLAT, 7),
}
STORAGE_CRS = SUPPORTED_CRS[CRS84]
#: Kept for callers that list the bbox-crs values: URI → (SRID, bounds).
BBOX_CRS: dict[str, tuple[int, tuple[float, float, float, float]]] = {
    uri: (c.srid, c.bounds) for uri, c in SUPPORTED_CRS.items()
}


def parse_crs(value: str | None, name: str = "crs") -> Crs:
    """The CRS named by a ``crs``/``bbox-crs``/``filter-crs`` URI (CRS84 when absent); 400
    ``invalid_crs`` naming the supported ones otherwise.  ``[EPSG:3857]``-style safe CURIEs
    are accepted too."""
    if value is None or value == "":
        return STORAGE_CRS
    uri = value.strip()
    if uri.startswith("[") and uri.endswith("]"):
        auth, _, code = uri[1:-1].partition(":")
        uri = {"OGC": f"http://www.opengis.net/def/crs/OGC/1.3/{code}"}.get(
            auth, f"http://www.opengis.net/def/crs/{auth}/0/{code}"
        )
    crs = SUPPORTED_CRS.get(uri)
    if crs is None:
        raise BadRequest(
            f"unsupported {name} {value!r}; use one of {', '.join(SUPPORTED_CRS)}",
            code="invalid_crs",
        )
    return crs


DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class BBox:
    """A bounding box in ``srid`` (EPSG code), axis order x/y (lon/lat for 4326)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    srid: int = 4326


def parse_int(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within ``[lo, hi]``."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None
    if not lo <= n <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {n}")
    return n


def parse_float(name: str, value: str | float | None, lo: float, hi: float) -> float:
    """A finite float query parameter within ``[lo, hi]`` (required)."""
    if value is None or value == "":
        raise BadRequest(f"{name} is required")
    try:
        x = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise BadRequest(f"{name} must be between {lo:g} and {hi:g}, got {value}")
    return x


def parse_lonlat(lon: str | None, lat: str | None) -> tuple[float, float]:
    """A point from ``lon``/``lat`` query parameters (degrees, EPSG:4326), 400 when off."""
    return parse_float("lon", lon, -180, 180), parse_float("lat", lat, -90, 90)


def parse_bbox(value: str | None, crs: str | None) -> BBox | None:
    """``bbox=minx,miny,maxx,maxy`` (or 6 numbers with heights) in ``bbox-crs``.

    The numbers follow the axis order of ``bbox-crs``: longitude first in CRS84 (the
    default), latitude first in EPSG:4326 and EPSG:4490, easting first in EPSG:3857.
    The returned box is always x (longitude/easting) first.
    """
    if value is None:
        return None
    try:
        c = parse_crs(crs, "bbox-crs")
    except BadRequest as exc:
        raise BadRequest(exc.detail, code="invalid_bbox") from None
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise BadRequest(
            f"bbox needs 4 (or 6) comma-separated numbers, got {len(parts)}", code="invalid_bbox"
        )
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bbox values must be numbers: {value!r}", code="invalid_bbox") from None
    if not all(math.isfinite(n) for n in nums):
        raise BadRequest("bbox values must be finite numbers", code="invalid_bbox")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if c.lat_first:
        nums = [nums[1], nums[0], nums[3], nums[2]]
    x0, y0, x1, y1 = nums
    if x0 > x1 or y0 > y1:
        raise BadRequest(
            f"bbox minimum exceeds maximum ({value}); boxes across the antimeridian are "
            "not supported",
            code="invalid_bbox",
        )
    bx0, by0, bx1, by1 = c.bounds
    if x0 < bx0 or x1 > bx1 or y0 < by0 or y1 > by1:
        raise BadRequest(
            f"bbox {value} is outside the range of {c.uri} ({bx0:g},{by0:g},{bx1:g},{by1:g}"
            f"{', latitude first' if c.lat_first else ''})",
            code="invalid_bbox",
        )
    return BBox(x0, y0, x1, y1, c.srid)


def parse_limit(value: str | None) -> int:
    """``limit``: 1 or more (400 below or not an integer); above :data:`MAX_LIMIT` it is
    clamped to it, as OGC API – Features Part 1 (/req/core/query-param-limit-response)
    requires instead of an error."""
    n = parse_int("limit", value, DEFAULT_LIMIT, 1, 2**62)
    return min(n, MAX_LIMIT)


def parse_datetime(value: str | None, layer: Layer) -> tuple[datetime | None, datetime | None]:
    """``datetime`` checked (400 ``invalid_datetime``) and parsed; see :func:`_parse_datetime`."""
    try:
        return _parse_datetime(value, layer)
    except BadRequest as exc:
        if exc.code == "invalid_datetime":
            raise
        raise BadRequest(f"datetime: {exc.detail}", code="invalid_datetime") from None


def _parse_datetime(value: str | None, layer: Layer) -> tuple[datetime | None, datetime | None]:
    """``datetime`` as an instant or an interval ``start/end`` with open ends ``..``/empty.

    An instant date-time matches exactly; a date-only instant matches that whole UTC day.
    Returns (start, end), inclusive; ``None`` is unbounded.  A layer without a temporal
    property has no time to filter on, so every feature matches (Features Part 1,
    /req/core/fc-time-response); the value must still be well formed.
    """
    if value is None:
        return None, None
    v = value.strip()
    if "/" in v:
        a, _, b = v.partition("/")
        start = None if a in ("", "..") else parse_instant(a)
        end = None if b in ("", "..") else parse_instant(b)
        if start is None and end is None:
            raise BadRequest(
                "datetime interval must have at least one end", code="invalid_datetime"
            )
        if start and end and start > end:
            raise BadRequest(
                f"datetime interval start is after its end: {v}", code="invalid_datetime"
            )
        if layer.time_field is None:
            return None, None
        return start, end
    if v == "..":
        raise BadRequest("datetime '..' needs an interval", code="invalid_datetime")
    t = parse_instant(v)
    if layer.time_field is None:
        return None, None
    if len(v) == 10:  # a date: the whole day
        from datetime import timedelta

        return t, t + timedelta(days=1) - timedelta(microseconds=1)
    return t, t


def check_visible(layer: Layer, name: str, visible: set[str]) -> Property:
    """The catalog property ``name``, which the caller must be allowed to see."""
    prop = layer.get_property(name)  # UnknownProperty: 400 naming it
    if name not in visible:
        raise BadRequest(
            f"property {name!r} of layer {layer.id!r} is not available to your role",
            code="property_not_visible",
        )
    return prop


def parse_sortby(value: str | None, layer: Layer, visible: set[str]) -> list[tuple[str, bool]]:
    """``sortby=+name,-capacity`` → [(name, descending)]."""
    if not value:
        return []
    out: list[tuple[str, bool]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        desc = item.startswith("-")
        name = item.lstrip("+- ")
        if " " in name:  # "name DESC" / "name ASC" (as some clients write it)
            name, _, direction = name.partition(" ")
            desc = desc or direction.strip().upper() == "DESC"
        check_visible(layer, name, visible)
        out.append((name, desc))
    return out


def parse_properties(value: str | None, layer: Layer, visible: set[str]) -> list[Property]:
    """``properties=a,b`` → those catalog properties, in catalog order; all visible if absent."""
    if value is None:
        return [p for p in layer.properties if p.name in visible]
    wanted = {n.strip() for n in value.split(",") if n.strip()}
    for name in wanted:
        check_visible(layer, name, visible)
    return [p for p in layer.properties if p.name in wanted]


def coerce_value(prop: Property, raw: str) -> object:
    """A property-equality value (``?capacity=30``) as a CQL2 JSON literal of the right type."""
    if prop.type in ("integer", "number"):
        try:
            x = float(raw)
        except ValueError:
            raise BadRequest(f"property {prop.name!r} is a number; got {raw!r}") from None
        if not math.isfinite(x):
            raise BadRequest(f"property {prop.name!r} must be a finite number")
        return x
    if prop.type == "boolean":
        low = raw.lower()
        if low not in ("true", "false", "1", "0"):
            raise BadRequest(f"property {prop.name!r} is true/false; got {raw!r}")
        return low in ("true", "1")
    if prop.type == "datetime":
        return {"timestamp": parse_instant(raw).isoformat()}
    return raw
