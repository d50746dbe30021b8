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
#: bbox-crs URI → (SRID, axis bounds (minx, miny, maxx, maxy)).  EPSG:4326 is accepted in
#: lon/lat order like CRS84, as most clients send it that way.
BBOX_CRS: dict[str, tuple[int, tuple[float, float, float, float]]] = {
    CRS84: (4326, (-180.0, -90.0, 180.0, 90.0)),
    EPSG4326: (4326, (-180.0, -90.0, 180.0, 90.0)),
    EPSG3857: (3857, (-20037508.3428, -20048966.1041, 20037508.3428, 20048966.1041)),
}
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
    """``bbox=minx,miny,maxx,maxy`` (or 6 numbers with heights) in ``bbox-crs``."""
    if value is None:
        return None
    crs = crs or CRS84
    if crs not in BBOX_CRS:
        raise BadRequest(
            f"unsupported bbox-crs {crs!r}; use one of {', '.join(BBOX_CRS)}",
            code="invalid_bbox",
        )
    srid, (bx0, by0, bx1, by1) = BBOX_CRS[crs]
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
    x0, y0, x1, y1 = nums
    if x0 > x1 or y0 > y1:
        raise BadRequest(
            f"bbox minimum exceeds maximum ({value}); boxes across the antimeridian are "
            "not supported",
            code="invalid_bbox",
        )
    if x0 < bx0 or x1 > bx1 or y0 < by0 or y1 > by1:
        raise BadRequest(
            f"bbox {value} is outside the range of {crs} ({bx0:g},{by0:g},{bx1:g},{by1:g})",
            code="invalid_bbox",
        )
    return BBox(x0, y0, x1, y1, srid)


def parse_datetime(value: str | None, layer: Layer) -> tuple[datetime | None, datetime | None]:
    """``datetime`` as an instant or an interval ``start/end`` with open ends ``..``/empty.

    An instant date-time matches exactly; a date-only instant matches that whole UTC day.
    Returns (start, end), inclusive; ``None`` is unbounded.
    """
    if value is None:
        return None, None
    if layer.time_field is None:
        raise BadRequest(
            f"collection {layer.id!r} has no temporal property; datetime cannot be used",
            code="invalid_datetime",
        )
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
        return start, end
    if v == "..":
        raise BadRequest("datetime '..' needs an interval", code="invalid_datetime")
    t = parse_instant(v)
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
