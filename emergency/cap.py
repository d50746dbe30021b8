"""CAP 1.2 messages of a warning (OASIS Common Alerting Protocol; China's profile is
GB/T 35965.1-2018, 应急信息交互协议 第1部分：预警信息) and the Atom index of current ones.

A warning produces one message when it is issued (``Alert``, or ``Update`` when it replaces
another warning) and one when it is lifted (``Cancel``).  Each ``Update``/``Cancel`` names the
messages it follows in ``references`` (``sender,identifier,sent`` each).  A message is built
once, in the transaction that changes the warning, and stored as sent (``cap_messages``): what a
receiver got can be shown again, byte for byte, in the after-action review.

Identifiers follow GB/T 35965.1 appendix A: ``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`` — the
14-digit code of the issuing unit (6-digit GB/T 2260 region, 3-digit GB/T 4657 agency, 3-digit
internal unit, 2-digit extension), the Beijing time it was entered and a sequence digit for
messages of the same unit and second.  Times carry ``+08:00``.

The area is the warning's dissolved cells as CAP polygons (``lat,lon`` pairs, closed rings, no
holes — a hole is inside the area a receiver alerts, which errs on the side of warning), grown
and simplified until each ring has at most :data:`MAX_RING_POINTS` points and there are at most
:data:`MAX_POLYGONS` of them, the sizes cell-broadcast and alert aggregators accept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pyproj
import shapely
from lxml import etree as ET
from shapely.geometry.base import BaseGeometry

from emergency.errors import InvalidInput, WarningNotFound
from emergency.jsonb import loads

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
#: The media type CAP messages are served and pushed with.
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
BEIJING = dt.timezone(dt.timedelta(hours=8))

#: Points per polygon ring (first = last) and polygons per area a receiver is sent.
MAX_RING_POINTS = 100
MAX_POLYGONS = 20
#: First tolerance (metres) of the grow-and-simplify loop; doubled until the sizes fit.
FIRST_TOLERANCE_M = 30.0

_SENDER_CODE = re.compile(r"^\d{14}$")
_BAD_SENDER = re.compile(r"[\s,<&]")


@dataclass(frozen=True)
class CapProfile:
    """Who sends the messages: ``sender_code`` the 14-digit issuing-unit code
    (ZZZZZZDDDUUUXX), ``sender`` the CAP sender (no spaces or commas), ``sender_name`` the
    name receivers show, ``web`` the service's public base URL (optional)."""

    sender_code: str = "44200000000000"
    sender: str = "onemap@442000.emergency"
    sender_name: str = "OneMap 应急指挥中心"
    web: str | None = None

    def __post_init__(self) -> None:
        if not _SENDER_CODE.match(self.sender_code):
            raise InvalidInput(
                f"CAP sender code must be 14 digits (ZZZZZZDDDUUUXX), got {self.sender_code!r}"
            )
        if not self.sender or _BAD_SENDER.search(self.sender):
            raise InvalidInput(f"CAP sender must not be empty or hold spaces, commas, < or &: "
                               f"{self.sender!r}")  # fmt: skip

    @property
    def region_code(self) -> str:
        """The GB/T 2260 code of the issuing unit's region (the first 6 digits)."""
        return self.sender_code[:6]


# --- what each hazard and colour mean in CAP ----------------------------------------------

_HAZARD = {
    # hazard: (CAP category, event, the name a level is inserted into)
    "landslide": ("Geo", "地质灾害气象风险预警", "地质灾害气象风险"),
    "flood": ("Met", "洪涝灾害预警", "洪涝灾害"),
    "rainstorm": ("Met", "暴雨预警", "暴雨"),
}
_COLOUR_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
#: Colour → (urgency, severity, certainty): 蓝 IV 级 Minor … 红 I 级 Extreme.
_COLOUR_CAP = {
    "blue": ("Expected", "Minor", "Possible"),
    "yellow": ("Expected", "Moderate", "Possible"),
    "orange": ("Immediate", "Severe", "Likely"),
    "red": ("Immediate", "Extreme", "Likely"),
}
_GRADE = {"blue": "Ⅳ级", "yellow": "Ⅲ级", "orange": "Ⅱ级", "red": "Ⅰ级"}
_INSTRUCTION = {
    "landslide": {
        "blue": "注意防范：巡查人员加强对隐患点和切坡建房的巡查，发现裂缝、滚石等征兆及时报告。",
        "yellow": "加强防范：隐患点落实专人监测，危险区内人员做好转移准备，避免在陡坡下停留。",
        "orange": "立即防范：组织危险区内群众（优先独居老人、残疾人等重点人员）转移到安全区域，"
        "暂停户外作业，包保责任人逐户叫应。",
        "red": "紧急避险：立即转移危险区内全部人员并实行管控，严禁返回，"
        "包保责任人逐人核实转移情况并报告。",
    },
    "flood": {
        "blue": "注意防范：检查排水设施，低洼地带住户关注水位变化。",
        "yellow": "加强防范：低洼易涝点设置警示，地下空间做好挡水准备，行人车辆绕行积水路段。",
        "orange": "立即防范：关闭地下车库和下穿通道，转移低洼地带和地下空间人员（优先重点人员），"
        "停止户外作业。",
        "red": "紧急避险：立即转移受淹区域全部人员，实行交通管制，严禁涉水通行，"
        "包保责任人逐人核实转移情况。",
    },
}
_INSTRUCTION["rainstorm"] = _INSTRUCTION["flood"]


def cap_time(t: dt.datetime) -> str:
    """A CAP dateTime: Beijing time, whole seconds, ``+08:00`` (XSD pattern of CAP 1.2)."""
    if t.tzinfo is None:
        raise ValueError("CAP times need a time zone")
    return t.astimezone(BEIJING).replace(microsecond=0).isoformat()


def make_identifier(sender_code: str, sent: dt.datetime, seq: int) -> str:
    """``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`` (GB/T 35965.1 A.1.1, 31 characters).

    >>> make_identifier("44200000000000", dt.datetime(2026, 6, 1, 0, 30, tzinfo=dt.UTC), 0)
    '44200000000000_20260601083000_0'
    """
    if not 0 <= seq <= 9:
        raise ValueError("the sequence digit is 0-9")
    return f"{sender_code}_{sent.astimezone(BEIJING):%Y%m%d%H%M%S}_{seq}"


@dataclass(frozen=True)
class MessageRef:
    """An earlier message a new one refers to."""

    sender: str
    identifier: str
    sent: dt.datetime

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


# --- the area ------------------------------------------------------------------------------


def _local_crs(geom: BaseGeometry) -> pyproj.Transformer:
    c = geom.centroid
    aeqd = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m")
    return pyproj.Transformer.from_crs("EPSG:4326", aeqd, always_xy=True)


def _xy(t: pyproj.Transformer) -> Any:
    """A shapely ``transform`` function (x and y arrays in, x and y arrays out)."""
    return lambda x, y: t.transform(x, y)


def _shells(geom: BaseGeometry) -> list[shapely.Polygon]:
    return [
        shapely.Polygon(p.exterior)
        for p in shapely.get_parts(geom)
        if isinstance(p, shapely.Polygon) and not p.is_empty
    ]


def cap_polygons(geom: BaseGeometry) -> list[list[tuple[float, float]]]:
    """The area as CAP rings of (lon, lat), each closed, holes filled, covering ``geom``.

    Tolerance t starts at :data:`FIRST_TOLERANCE_M` and doubles: the area is grown by t
    (closing gaps narrower than 2t, which also merges nearby patches) and simplified by t
    (Douglas-Peucker moves the boundary at most t, so the grown shape still covers the
    original), until each ring and the ring count fit.
    """
    if geom.is_empty:
        return []
    fwd = _local_crs(geom)
    back = pyproj.Transformer.from_crs(fwd.target_crs, "EPSG:4326", always_xy=True)
    metric = shapely.transform(geom, _xy(fwd), interleaved=False)
    tol = FIRST_TOLERANCE_M
    while True:
        grown = shapely.union_all(_shells(metric.buffer(tol, quad_segs=2)))
        rings = _shells(grown.simplify(tol, preserve_topology=True))
        if len(rings) <= MAX_POLYGONS and all(
            len(r.exterior.coords) <= MAX_RING_POINTS for r in rings
        ):
            break
        tol *= 2
    # largest first: a receiver that keeps only a few keeps the most area
    rings.sort(key=lambda r: r.area, reverse=True)
    out = []
    for r in rings:
        ring = shapely.transform(r, _xy(back), interleaved=False).exterior
        coords = [(round(x, 5), round(y, 5)) for x, y in ring.coords]
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        out.append(coords)
    return out


def polygon_text(ring: Sequence[tuple[float, float]]) -> str:
    """A CAP ``polygon``: space-separated ``lat,lon`` pairs."""
    return " ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in ring)


# --- the message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WarningFacts:
    """What a message says about its warning."""

    code: str
    hazard: str
    level: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    title: str | None
    summary: dict[str, Any]
    polygons: list[list[tuple[float, float]]]
    area_name: str


def headline(hazard: str, level: str, cancel: bool = False) -> str:
    """e.g. 地质灾害气象风险红色预警 (``解除…`` when lifted)."""
    name = _HAZARD[hazard][2] + _COLOUR_ZH[level] + "预警"
    return ("解除" + name) if cancel else name


def _description(f: WarningFacts, cancel: bool, reason: str | None) -> str:
    s = f.summary
    colour = _COLOUR_ZH[f.level]
    if cancel:
        text = f"{f.area_name}{headline(f.hazard, f.level)}（{f.code}）已解除。"
        return text + (f"原因：{reason}。" if reason else "")
    parts = [
        f"{f.area_name}发布{colour}（{_GRADE[f.level]}）{_HAZARD[f.hazard][1]}（{f.code}）",
        f"有效期至{f.valid_to.astimezone(BEIJING):%Y年%m月%d日%H时%M分}。",
    ]
    facts = []
    if s.get("area_km2") is not None:
        facts.append(f"预警区域约{float(s['area_km2']):.1f}平方公里")
    if s.get("grids"):
        facts.append(f"涉及{int(s['grids'])}个网格")
    if s.get("addresses") is not None:
        facts.append(f"{int(s['addresses'])}个标准地址")
    if s.get("residents"):
        facts.append(f"实有人口{int(s['residents'])}人")
    if s.get("vulnerable"):
        facts.append(f"其中重点人员{int(s['vulnerable'])}人")
    if facts:
        parts.append("，".join(facts) + "。")
    if f.title:
        parts.insert(0, f"{f.title}：")
    return "".join(parts)


def _sub(parent: ET._Element, tag: str, text: str | None = None) -> ET._Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def build_alert(
    profile: CapProfile,
    facts: WarningFacts,
    *,
    identifier: str,
    sent: dt.datetime,
    msg_type: str,
    references: Sequence[MessageRef] = (),
    reason: str | None = None,
) -> str:
    """The CAP 1.2 ``alert`` document (UTF-8 XML text with its declaration).

    Elements are in the order the OASIS schema requires."""
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise ValueError(f"msgType {msg_type!r}")
    if msg_type != "Alert" and not references:
        raise ValueError(f"a {msg_type} message must reference the messages it follows")
    cancel = msg_type == "Cancel"
    alert = ET.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(alert, "identifier", identifier)
    _sub(alert, "sender", profile.sender)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", "Public")
    _sub(alert, "code", "GB/T 35965.1-2018")
    if cancel and reason:
        _sub(alert, "note", reason)
    if references:
        _sub(alert, "references", " ".join(r.text() for r in references))
    category, event, _ = _HAZARD[facts.hazard]
    urgency, severity, certainty = _COLOUR_CAP[facts.level]
    info = _sub(alert, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", category)
    _sub(info, "event", event)
    _sub(info, "responseType", "AllClear" if cancel else "Evacuate" if facts.level in
         ("orange", "red") else "Prepare")  # fmt: skip
    _sub(info, "urgency", "Past" if cancel else urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", "Observed" if cancel else certainty)
    code = _sub(info, "eventCode")
    _sub(code, "valueName", "OneMap:hazard")
    _sub(code, "value", facts.hazard)
    _sub(info, "effective", cap_time(sent if cancel else max(facts.valid_from, sent)))
    if not cancel:
        _sub(info, "onset", cap_time(facts.valid_from))
    _sub(info, "expires", cap_time(sent if cancel else facts.valid_to))
    _sub(info, "senderName", profile.sender_name)
    _sub(info, "headline", headline(facts.hazard, facts.level, cancel))
    _sub(info, "description", _description(facts, cancel, reason))
    if not cancel:
        _sub(info, "instruction", _INSTRUCTION[facts.hazard][facts.level])
    if profile.web:
        _sub(info, "web", f"{profile.web.rstrip('/')}/warnings/{facts.code}")
    for name, value in (
        ("level", facts.level),
        ("colour", _COLOUR_ZH[facts.level]),
        ("grade", _GRADE[facts.level]),
        ("warning", facts.code),
    ):
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", f"{facts.area_name}{headline(facts.hazard, facts.level)}区域")
    for ring in facts.polygons:
        _sub(area, "polygon", polygon_text(ring))
    geocode = _sub(area, "geocode")
    _sub(geocode, "valueName", "GB/T 2260")
    _sub(geocode, "value", profile.region_code)
    return _text(alert)


def _text(root: ET._Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True).decode()


# --- stored messages ----------------------------------------------------------------------


def _facts_from_row(r: asyncpg.Record, polygons: list[list[tuple[float, float]]]) -> WarningFacts:
    summary: dict[str, Any] = loads(r["summary"]) if r["summary"] else {}
    return WarningFacts(
        code=r["code"],
        hazard=r["hazard"],
        level=r["level"],
        valid_from=r["valid_from"],
        valid_to=r["valid_to"],
        title=r["title"],
        summary=summary,
        polygons=polygons,
        area_name=r["area_name"] or "",
    )


async def _next_identifier(
    conn: asyncpg.Connection, profile: CapProfile
) -> tuple[str, dt.datetime]:
    """An unused identifier and its ``sent`` time (whole seconds), inside the caller's
    transaction; concurrent writers queue on one advisory lock."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('onemap.cap_identifier'))")
    now: dt.datetime = await conn.fetchval("SELECT now()")
    sent = now.replace(microsecond=0)
    while True:
        prefix = make_identifier(profile.sender_code, sent, 0)[:-1]
        used = await conn.fetchval(
            "SELECT count(*) FROM cap_messages WHERE identifier LIKE $1 || '%'", prefix
        )
        if used < 10:
            return prefix + str(used), sent
        sent += dt.timedelta(seconds=1)


async def _refs(conn: asyncpg.Connection, warning_ids: Sequence[int]) -> list[MessageRef]:
    rows = await conn.fetch(
        "SELECT xml, identifier, sent FROM cap_messages WHERE warning_id = ANY($1::bigint[]) "
        "ORDER BY sent, id",
        list(warning_ids),
    )
    return [MessageRef(_sender_of(r["xml"]), r["identifier"], r["sent"]) for r in rows]


def _sender_of(xml: str) -> str:
    el = ET.fromstring(xml.encode()).find(f"{{{CAP_NS}}}sender")
    return el.text or "" if el is not None else ""


async def record_message(
    conn: asyncpg.Connection,
    warning_id: int,
    msg_type: str,
    profile: CapProfile,
    *,
    geom: BaseGeometry | None = None,
    follows: Sequence[int] = (),
    reason: str | None = None,
) -> dict[str, Any]:
    """Build, store and queue for push (:mod:`emergency.push`) one message of a warning,
    in the caller's transaction; returns ``{id, identifier, msg_type, sent, references}``.

    ``geom`` is the warning's area (EPSG:4326; read from the row when omitted);
    ``follows`` the warnings whose messages it references (the warning itself for a
    Cancel, the replaced one for an Update)."""
    from emergency import push

    r = await conn.fetchrow(
        "SELECT code, hazard, level, valid_from, valid_to, title, "
        "(exposure -> 'summary')::text AS summary, "
        "CASE WHEN $2 THEN NULL ELSE ST_AsBinary(geom) END AS wkb, "
        "(SELECT string_agg(a.name, '、' ORDER BY a.code) FROM admin_areas a "
        " WHERE a.level = 'district' AND ST_Intersects(a.geom, w.geom)) AS area_name "
        "FROM warnings w WHERE w.id = $1",
        warning_id,
        geom is not None,
    )
    if r is None:
        raise WarningNotFound(f"no warning with id {warning_id}")
    if geom is None:
        geom = shapely.from_wkb(bytes(r["wkb"]))
    polygons = await asyncio.to_thread(cap_polygons, geom)
    facts = _facts_from_row(r, polygons)
    references = await _refs(conn, follows)
    identifier, sent = await _next_identifier(conn, profile)
    xml = build_alert(
        profile,
        facts,
        identifier=identifier,
        sent=sent,
        msg_type=msg_type,
        references=references,
        reason=reason,
    )
    ref_text = " ".join(x.text() for x in references) or None
    mid = await conn.fetchval(
        'INSERT INTO cap_messages (warning_id, identifier, msg_type, sent, "references", xml) '
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        warning_id,
        identifier,
        msg_type,
        sent,
        ref_text,
        xml,
    )
    await push.enqueue(conn, mid)
    return {
        "id": mid,
        "identifier": identifier,
        "msg_type": msg_type,
        "sent": cap_time(sent),
        "references": ref_text,
    }


async def message_xml(conn: asyncpg.Connection, code: str, identifier: str | None = None) -> str:
    """A warning's latest CAP message (or the one with ``identifier``).

    Raises:
        WarningNotFound: no such warning, or no such message of it.
    """
    row = await conn.fetchrow(
        "SELECT m.xml FROM cap_messages m JOIN warnings w ON w.id = m.warning_id "
        "WHERE w.code = $1 AND ($2::text IS NULL OR m.identifier = $2) "
        "ORDER BY m.sent DESC, m.id DESC LIMIT 1",
        code,
        identifier,
    )
    if row is None:
        exists = await conn.fetchval("SELECT 1 FROM warnings WHERE code = $1", code)
        if not exists:
            raise WarningNotFound(f"no warning {code!r}")
        what = f"message {identifier!r}" if identifier else "CAP message"
        raise WarningNotFound(f"warning {code} has no {what}")
    return str(row["xml"])


async def list_messages(conn: asyncpg.Connection, code: str) -> list[dict[str, Any]]:
    """A warning's CAP messages, oldest first."""
    wid = await conn.fetchval("SELECT id FROM warnings WHERE code = $1", code)
    if wid is None:
        raise WarningNotFound(f"no warning {code!r}")
    rows = await conn.fetch(
        'SELECT identifier, msg_type, sent, "references" FROM cap_messages '
        "WHERE warning_id = $1 ORDER BY sent, id",
        wid,
    )
    return [
        {
            "identifier": r["identifier"],
            "msg_type": r["msg_type"],
            "sent": cap_time(r["sent"]),
            "references": r["references"],
        }
        for r in rows
    ]


#: Hours a Cancel stays in the feed after its warning was lifted.
FEED_CANCEL_HOURS = 24.0


async def atom_feed(conn: asyncpg.Connection, base: str, profile: CapProfile) -> str:
    """The Atom index of current CAP messages: the latest message of every warning in force,
    and the ``Cancel`` of warnings lifted in the last :data:`FEED_CANCEL_HOURS` hours."""
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT DISTINCT ON (w.id) w.code, w.status, w.valid_to, w.lifted_at,
                   m.identifier, m.msg_type, m.sent, m.xml
            FROM warnings w JOIN cap_messages m ON m.warning_id = w.id
            WHERE w.status = 'active'
               OR (w.status = 'lifted' AND w.lifted_at > now() - make_interval(secs => $1))
            ORDER BY w.id, m.sent DESC, m.id DESC) latest
        WHERE (status = 'active' AND valid_to > now()) OR msg_type = 'Cancel'
        """,
        FEED_CANCEL_HOURS * 3600.0,
    )
    rows = sorted(rows, key=lambda r: (r["sent"], r["identifier"]), reverse=True)
    base = base.rstrip("/")
    a = f"{{{ATOM_NS}}}"
    feed = ET.Element(f"{a}feed", nsmap={None: ATOM_NS, "cap": CAP_NS})
    ET.SubElement(feed, f"{a}id").text = f"{base}/warnings/feed.atom"
    ET.SubElement(feed, f"{a}title").text = f"{profile.sender_name} 预警信息（CAP）"
    updated = max((r["sent"] for r in rows), default=None)
    now = await conn.fetchval("SELECT now()")
    ET.SubElement(feed, f"{a}updated").text = cap_time(updated or now)
    author = ET.SubElement(feed, f"{a}author")
    ET.SubElement(author, f"{a}name").text = profile.sender_name
    ET.SubElement(
        feed, f"{a}link", rel="self", type=ATOM_MEDIA_TYPE, href=f"{base}/warnings/feed.atom"
    )
    for r in rows:
        doc = ET.fromstring(r["xml"].encode())
        info = doc.find(f"{{{CAP_NS}}}info")

        def cap(tag: str, info: ET._Element | None = info) -> str:
            el = info.find(f".//{{{CAP_NS}}}{tag}") if info is not None else None
            return (el.text or "") if el is not None else ""

        href = f"{base}/warnings/{r['code']}.cap?identifier={r['identifier']}"
        entry = ET.SubElement(feed, f"{a}entry")
        ET.SubElement(entry, f"{a}id").text = href
        ET.SubElement(entry, f"{a}title").text = cap("headline")
        ET.SubElement(entry, f"{a}updated").text = cap_time(r["sent"])
        ET.SubElement(entry, f"{a}published").text = cap_time(r["sent"])
        ET.SubElement(entry, f"{a}summary").text = cap("description")
        ET.SubElement(entry, f"{a}link", rel="alternate", type=CAP_MEDIA_TYPE, href=href)
        ET.SubElement(entry, f"{a}category", term=cap("severity"))
        for tag in ("event", "urgency", "severity", "certainty", "expires", "areaDesc"):
            ET.SubElement(entry, f"{{{CAP_NS}}}{tag}").text = cap(tag)
        ET.SubElement(entry, f"{{{CAP_NS}}}msgType").text = r["msg_type"]
        ET.SubElement(entry, f"{{{CAP_NS}}}identifier").text = r["identifier"]
    return _text(feed)


__all__ = [
    "CAP_MEDIA_TYPE",
    "CapProfile",
    "atom_feed",
    "build_alert",
    "cap_polygons",
    "list_messages",
    "message_xml",
    "record_message",
]
