"""The layer catalog: the single source of truth for what each collection is.

Every public map layer (an OGC API collection, a vector-tile source layer, an
import/export target) is described here once: its table, geometry type,
properties (with types, descriptions and which are sensitive), zoom range,
default style and the role needed to read it.  The database schema
(:mod:`layers.schema`), the HTTP routers, the tile server, the map style and
the Python client all read this module; nothing else keeps a list of layers.

Examples:
    >>> from layers.catalog import CATALOG
    >>> CATALOG["grids"].geometry_type
    'MultiPolygon'
    >>> [p.name for p in CATALOG["grids"].sensitive_properties]
    ['worker_name', 'worker_phone', 'households', 'population']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from layers.errors import UnknownLayer, UnknownProperty

PropertyType = Literal["string", "integer", "number", "boolean", "datetime"]
GeometryType = Literal[
    "Point", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "Geometry"
]
Role = Literal["anonymous", "viewer", "operator", "admin"]

#: Roles in increasing order of power; a role may do what every role before it may.
ROLES: tuple[Role, ...] = ("anonymous", "viewer", "operator", "admin")


def role_allows(role: str, needed: str) -> bool:
    """True when ``role`` is at least as powerful as ``needed``.

    >>> role_allows("operator", "viewer"), role_allows("viewer", "admin")
    (True, False)
    """
    return ROLES.index(role) >= ROLES.index(needed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Property:
    """One attribute column of a layer.

    Attributes:
        name: column name (also the GeoJSON property name).
        type: JSON-schema-like type of the values.
        description: what the value means, with its unit.
        required: rows without a value are rejected on import.
        sensitive: personal data, masked unless the caller's role may see it.
        enum: the allowed values, when the set is closed.
        value_aliases: other spellings accepted on import, mapped to an allowed value.
    """

    name: str
    type: PropertyType
    description: str
    required: bool = False
    sensitive: bool = False
    enum: tuple[str, ...] | None = None
    value_aliases: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Style:
    """Default cartography of a layer on the dark command-centre map."""

    color: str
    kind: Literal["fill", "line", "circle"]
    width: float = 1.0
    opacity: float = 0.8


@dataclass(frozen=True)
class Layer:
    """A collection: one PostGIS table of features with a key ``code``.

    Attributes:
        id: collection id in URLs (``/collections/{id}``) and tile source-layer name.
        title_zh, title_en: human titles.
        table: the PostGIS table (schema ``public``).
        geometry_type: geometry type stored, always EPSG:4326.
        properties: attribute columns, in display order (``code`` first).
        min_zoom, max_zoom: zoom range of the layer in vector tiles.
        style: default cartography.
        read_role: the least role that may read the layer at all.
        sensitive_role: the least role that sees sensitive properties unmasked.
        time_field: the property ``datetime`` queries filter on, if any.
        default_on: shown by default on the big screen.
    """

    id: str
    title_zh: str
    title_en: str
    table: str
    geometry_type: GeometryType
    properties: tuple[Property, ...]
    style: Style
    min_zoom: int = 10
    max_zoom: int = 22
    read_role: Role = "anonymous"
    sensitive_role: Role = "operator"
    time_field: str | None = None
    default_on: bool = False
    description: str = ""
    _by_name: Mapping[str, Property] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.properties})

    @property
    def key(self) -> str:
        """The property that identifies a feature (the OGC feature id)."""
        return "code"

    def get_property(self, name: str) -> Property:
        """The property called ``name``; :class:`UnknownProperty` if the layer has none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProperty(self.id, name) from None

    def has_property(self, name: str) -> bool:
        return name in self._by_name

    @property
    def property_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)

    @property
    def required_properties(self) -> tuple[Property, ...]:
        return tuple(p for p in self.properties if p.required)

    @property
    def sensitive_properties(self) -> tuple[Property, ...]:
        return tuple(p for p in self.properties if p.sensitive)

    def visible_properties(self, role: str) -> tuple[Property, ...]:
        """Properties a caller with ``role`` sees unmasked."""
        if role_allows(role, self.sensitive_role):
            return self.properties
        return tuple(p for p in self.properties if not p.sensitive)


class Catalog(Mapping[str, Layer]):
    """An immutable, ordered registry of layers; ``register`` returns a new catalog."""

    def __init__(self, layers: tuple[Layer, ...]):
        self._layers = {layer.id: layer for layer in layers}
        if len(self._layers) != len(layers):
            raise ValueError("duplicate layer id in catalog")

    def __getitem__(self, layer_id: str) -> Layer:
        try:
            return self._layers[layer_id]
        except KeyError:
            raise UnknownLayer(layer_id, tuple(self._layers)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def register(self, layer: Layer) -> Catalog:
        """A new catalog with ``layer`` added (or replaced)."""
        return Catalog(tuple(v for k, v in self._layers.items() if k != layer.id) + (layer,))

    def readable_by(self, role: str) -> tuple[Layer, ...]:
        return tuple(lyr for lyr in self._layers.values() if role_allows(role, lyr.read_role))


def _p(name: str, type_: PropertyType, description: str, **kw: object) -> Property:
    return Property(name, type_, description, **kw)  # type: ignore[arg-type]


_CODE = _p("code", "string", "Stable unique code of the feature (feature id)", required=True)
_NAME = _p("name", "string", "Name", required=True)
_GRID = _p("grid_code", "string", "Code of the management grid (网格) the feature lies in")
_ADDR = _p("address_code", "string", "Code of the standard address (标准地址)")

VENUE_CATEGORIES = (
    "shop",
    "school",
    "kindergarten",
    "hospital",
    "clinic",
    "elderly_care",
    "religious_site",
    "notice_board",
    "market",
    "shelter",
    "hazardous_chemicals",
    "restaurant",
    "hotel",
    "office",
    "factory",
    "government",
    "police",
    "fire_station",
    "gas_station",
    "park",
)
HAZARD_KINDS = ("landslide", "collapse", "debris_flow", "subsidence", "waterlogging")
HAZARD_LEVELS = ("small", "medium", "large", "huge")
SENSOR_KINDS = ("rain_gauge", "water_level")
WARNING_LEVELS = ("blue", "yellow", "orange", "red")
#: ``risk_cells.level`` 0–4 by name: no risk, then the four warning levels.
LEVEL_NAMES = ("none", *WARNING_LEVELS)
ADMIN_LEVELS = ("district", "street", "community")
#: How a resident lives at the address (实有人口 居住类型).
RESIDENCE_TYPES = ("自住", "租住", "寄住")
#: The tag dictionary of vulnerable residents (重点人群), in display order.
RESIDENT_TAGS = ("独居老人", "高龄", "残疾人", "低保", "孕产妇", "婴幼儿", "精神障碍", "行动不便")
#: OpenStreetMap admin_level in China (6 county/district, 8 township/sub-district,
#: 10 village/community) and the Chinese words, as accepted on import.
ADMIN_LEVEL_ALIASES = {
    "6": "district",
    "8": "street",
    "10": "community",
    "区": "district",
    "县": "district",
    "街道": "street",
    "镇": "street",
    "乡": "street",
    "社区": "community",
    "村": "community",
}

CATALOG = Catalog(
    (
        Layer(
            id="admin_areas",
            title_zh="行政区划",
            title_en="Administrative areas",
            table="admin_areas",
            geometry_type="MultiPolygon",
            description="District (区), streets/towns (街道/镇), communities/villages (社区/村).",
            properties=(
                _CODE,
                _NAME,
                _p(
                    "level",
                    "string",
                    "Admin level",
                    required=True,
                    enum=ADMIN_LEVELS,
                    value_aliases=ADMIN_LEVEL_ALIASES,
                ),
                _p("parent_code", "string", "Code of the enclosing admin area"),
            ),
            style=Style("#4fc3f7", "line", width=2.0),
            min_zoom=0,
            default_on=True,
        ),
        Layer(
            id="grids",
            title_zh="网格",
            title_en="Management grids",
            table="grids",
            geometry_type="MultiPolygon",
            description="Community management grids with their grid workers (网格员).",
            properties=(
                _CODE,
                _NAME,
                _p("community_code", "string", "Code of the community the grid belongs to"),
                _p("worker_name", "string", "Grid worker's name", sensitive=True),
                _p("worker_phone", "string", "Grid worker's phone", sensitive=True),
                _p("households", "integer", "Number of households", sensitive=True),
                _p("population", "integer", "Resident population (persons)", sensitive=True),
            ),
            style=Style("#26a69a", "line", width=1.0, opacity=0.6),
            min_zoom=11,
            default_on=True,
        ),
        Layer(
            id="addresses",
            title_zh="标准地址",
            title_en="Standard addresses",
            table="addresses",
            geometry_type="Point",
            description="Standard addresses (一标三实) down to the room.",
            properties=(
                _CODE,
                _p("full_address", "string", "Full normalised address", required=True),
                _p("province", "string", "Province (省)"),
                _p("city", "string", "City (市)"),
                _p("district", "string", "District/county (区/县)"),
                _p("street", "string", "Sub-district or town (街道/镇)"),
                _p("community", "string", "Community or village (社区/村)"),
                _p("road", "string", "Road (路/街/巷)"),
                _p("house_number", "string", "House number (号)"),
                _p("estate", "string", "Estate or POI (小区/花园/大厦)"),
                _p("building", "string", "Building (栋)"),
                _p("unit", "string", "Unit (单元)"),
                _p("floor", "string", "Floor (层)"),
                _p("room", "string", "Room (室)"),
                _GRID,
            ),
            style=Style("#ffd54f", "circle", width=2.0),
            min_zoom=15,
        ),
        Layer(
            id="buildings",
            title_zh="建筑",
            title_en="Buildings",
            table="buildings",
            geometry_type="Polygon",
            description="Building footprints.",
            properties=(
                _CODE,
                _ADDR,
                _p("floors", "integer", "Number of floors above ground"),
                _p("use", "string", "Main use (residential, commercial, public, industrial)"),
            ),
            style=Style("#546e7a", "fill", opacity=0.7),
            min_zoom=14,
            default_on=True,
        ),
        Layer(
            id="venues",
            title_zh="场所",
            title_en="Venues",
            table="venues",
            geometry_type="Point",
            description="Shops, schools, hospitals, religious sites, shelters and other venues.",
            properties=(
                _CODE,
                _NAME,
                _p("category", "string", "Venue category", required=True, enum=VENUE_CATEGORIES),
                _p("key_site", "boolean", "Key site (重点场所)"),
                _p("capacity", "integer", "Capacity (persons)"),
                _ADDR,
                _GRID,
            ),
            style=Style("#ba68c8", "circle", width=3.0),
            min_zoom=13,
            default_on=True,
        ),
        Layer(
            id="cameras",
            title_zh="视频监控",
            title_en="Cameras",
            table="cameras",
            geometry_type="Point",
            description="Surveillance cameras (雪亮工程) with their view sector.",
            properties=(
                _CODE,
                _NAME,
                _p("kind", "string", "Camera kind", enum=("gun", "dome", "ptz")),
                _p("heading_deg", "number", "View heading, degrees clockwise from north"),
                _p("fov_deg", "number", "Horizontal field of view, degrees"),
                _p("range_m", "number", "Useful viewing range, metres"),
                _p("status", "string", "Online status", enum=("online", "offline")),
                _GRID,
            ),
            style=Style("#4dd0e1", "circle", width=2.5),
            min_zoom=13,
            default_on=True,
        ),
        Layer(
            id="hazard_sites",
            title_zh="地质灾害隐患点",
            title_en="Hazard sites",
            table="hazard_sites",
            geometry_type="Geometry",
            description="Geological-hazard and waterlogging sites.",
            properties=(
                _CODE,
                _NAME,
                _p("kind", "string", "Hazard kind", required=True, enum=HAZARD_KINDS),
                _p("threat_people", "integer", "People threatened (persons)"),
                _p("threat_property", "number", "Property threatened (10,000 CNY, 万元)"),
                _p("level", "string", "Site scale/level", enum=HAZARD_LEVELS),
                _GRID,
            ),
            style=Style("#ff7043", "circle", width=4.0),
            min_zoom=10,
            default_on=True,
        ),
        Layer(
            id="rivers",
            title_zh="河流水系",
            title_en="Rivers",
            table="rivers",
            geometry_type="MultiLineString",
            description="River and stream centre lines.",
            properties=(
                _CODE,
                _p("name", "string", "Name"),
                _p("class", "string", "River class (river, stream, canal)"),
            ),
            style=Style("#1e88e5", "line", width=2.0),
            min_zoom=0,
            default_on=True,
        ),
        Layer(
            id="roads",
            title_zh="道路",
            title_en="Roads",
            table="roads",
            geometry_type="MultiLineString",
            description="Road centre lines.",
            properties=(
                _CODE,
                _p("name", "string", "Name"),
                _p("class", "string", "Road class (primary, secondary, tertiary, residential)"),
            ),
            style=Style("#78909c", "line", width=1.5),
            min_zoom=8,
            default_on=True,
        ),
        Layer(
            id="shelters",
            title_zh="避难场所",
            title_en="Shelters",
            table="shelters",
            geometry_type="Point",
            description="Emergency shelters (应急避难场所).",
            properties=(
                _CODE,
                _NAME,
                _p("capacity", "integer", "Capacity (persons)"),
                _p("contact", "string", "Contact person and phone", sensitive=True),
                _ADDR,
                _GRID,
            ),
            style=Style("#66bb6a", "circle", width=4.0),
            min_zoom=10,
            default_on=True,
        ),
        Layer(
            id="rescue_teams",
            title_zh="救援队伍",
            title_en="Rescue teams",
            table="rescue_teams",
            geometry_type="Point",
            description="Rescue teams and their bases.",
            properties=(
                _CODE,
                _NAME,
                _p("members", "integer", "Number of members"),
                _p("specialty", "string", "Specialty (flood, mountain, fire, medical)"),
                _p("contact", "string", "Contact person and phone", sensitive=True),
                _GRID,
            ),
            style=Style("#ef5350", "circle", width=4.0),
            min_zoom=10,
        ),
        Layer(
            id="sensors",
            title_zh="监测站点",
            title_en="Sensors",
            table="sensors",
            geometry_type="Point",
            description="Rain gauges and water-level sensors.",
            properties=(
                _CODE,
                _NAME,
                _p(
                    "kind",
                    "string",
                    "Sensor kind",
                    required=True,
                    enum=("rain_gauge", "water_level"),
                ),
                _p("unit", "string", "Unit of the readings (mm, m)"),
                _p("status", "string", "Status", enum=("online", "offline")),
                _GRID,
            ),
            style=Style("#29b6f6", "circle", width=3.5),
            min_zoom=9,
            default_on=True,
        ),
        Layer(
            id="incidents",
            title_zh="事件",
            title_en="Incidents",
            table="incidents",
            geometry_type="Point",
            description="Incidents reported by grid workers and the public.",
            properties=(
                _CODE,
                _p("kind", "string", "Incident kind", required=True),
                _p("description", "string", "What happened"),
                _p("status", "string", "Status", enum=("open", "in_progress", "closed")),
                _p("reported_at", "datetime", "When it was reported (UTC)"),
                _p("reporter", "string", "Who reported it", sensitive=True),
                _GRID,
            ),
            style=Style("#ffa726", "circle", width=3.5),
            min_zoom=10,
            time_field="reported_at",
            default_on=True,
        ),
        Layer(
            id="residents",
            title_zh="实有人口",
            title_en="Residents",
            table="residents",
            geometry_type="Point",
            description=(
                "Registered residents at their standard address, with vulnerability tags and "
                "the responsible cadre (包保责任人). ID numbers are stored masked and hashed only."
            ),
            properties=(
                _CODE,
                _p("name", "string", "Resident's name", required=True, sensitive=True),
                _p(
                    "id_number",
                    "string",
                    "ID number, masked (440***********1234); the full number is never stored",
                    required=True,
                    sensitive=True,
                ),
                _p(
                    "id_hash",
                    "string",
                    "Salted SHA-256 of the full ID number (salt$hex), for matching only",
                    sensitive=True,
                ),
                _p("phone", "string", "Resident's phone", sensitive=True),
                _p("birth_year", "integer", "Year of birth"),
                _p("household_code", "string", "Household (户) code"),
                _p("residence_type", "string", "Residence type", enum=RESIDENCE_TYPES),
                _p(
                    "tags",
                    "string",
                    "Vulnerability tags, comma-separated, from: " + ", ".join(RESIDENT_TAGS),
                ),
                _ADDR,
                _GRID,
                _p("cadre_code", "string", "Code of the responsible cadre (包保责任人)"),
                _p("cadre_name", "string", "Responsible cadre's name", sensitive=True),
                _p("cadre_phone", "string", "Responsible cadre's phone", sensitive=True),
            ),
            style=Style("#f06292", "circle", width=2.0),
            min_zoom=16,
        ),
        Layer(
            id="warnings",
            title_zh="预警",
            title_en="Warnings",
            table="warnings",
            geometry_type="MultiPolygon",
            description="Flood and landslide warnings in four levels (蓝/黄/橙/红).",
            properties=(
                _CODE,
                _p(
                    "hazard",
                    "string",
                    "Hazard",
                    required=True,
                    enum=("flood", "landslide", "rainstorm"),
                ),
                _p("level", "string", "Warning level", required=True, enum=WARNING_LEVELS),
                _p("status", "string", "Status", enum=("active", "lifted", "expired")),
                _p("valid_from", "datetime", "Start of validity (UTC)"),
                _p("valid_to", "datetime", "End of validity (UTC)"),
                _p("issued_by", "string", "Who issued it"),
                _p("run_id", "integer", "Risk run the warning was issued from"),
            ),
            style=Style("#f44336", "fill", opacity=0.35),
            min_zoom=0,
            time_field="valid_from",
            default_on=True,
        ),
    )
)
