"""Free-text Chinese address → components (省 市 区 街道 社区 路 号 小区 栋 单元 层 室).

The admin levels are matched left to right against the gazetteer (longest name first,
never going back up a level), then by generic suffix patterns (…区/县, …街道/镇/乡,
…社区/村).  Road and house number are found anywhere in what is left, so
``翠景花园3栋，中山路12号`` parses like the standard order; the rest is the estate,
building, unit, floor and room, including compact forms such as ``3-2-502``.

Examples:
    >>> p = parse("广东省中山市石岐区中山路12号翠景花园3-2-502")
    >>> p.building, p.unit, p.floor, p.room
    ('3栋', '2单元', '5层', '502室')
    >>> parse("上海浦东陆家嘴杨高南路759号").district
    '浦东新区'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from layers.addresses.gazetteer import (
    ALIAS_GUARD,
    CITY,
    COMMUNITY,
    DISTRICT,
    LEVELS,
    PROVINCE,
    STREET,
    Entry,
    Gazetteer,
    default_gazetteer,
)
from layers.addresses.normalise import normalise_text

#: Longest input accepted by :func:`parse` (characters).
MAX_CHARS = 500

COMPONENTS = (
    "province", "city", "district", "street", "community", "road", "house_number",
    "estate", "building", "unit", "floor", "room",
)  # fmt: skip
#: Components joined into the normalised string (floor is implied by the room).
_FULL = COMPONENTS[:10] + ("room",)

_HAN = r"\u4e00-\u9fff"
_G_DISTRICT = re.compile(rf"[{_HAN}]{{1,5}}?(?:新区|区|县|旗)")
_G_COUNTY_CITY = re.compile(rf"[{_HAN}]{{2,4}}?市")
_NOT_DISTRICT = re.compile(
    r"(?:开发|工业|园|高新|保税|景|小|校|社|厂|商业|功能|试验|示范|经济|实验|产业|商务|度假|"
    r"科技|物流|软件|城|片|管理|营业|新城|老城|市)区$"
)
_G_STREET = re.compile(rf"[{_HAN}]{{2,6}}?(?:街道办事处|街道|镇|乡)(?![路街道巷])")
_G_COMMUNITY = re.compile(rf"[{_HAN}]{{2,6}}?(?:社区居委会|社区|居委会|村民委员会|村委会)")
_G_VILLAGE = re.compile(rf"[{_HAN}]{{2,5}}?村(?![路街道巷里弄委])")
_KNOWN_ADMIN = re.compile(rf"[{_HAN}]{{2,8}}?(?:街道|镇|乡|社区)")
#: A character of a road name: not a building/unit/room word.
_RC = rf"(?:(?![栋幢座室层号单楼户])[{_HAN}])"
_ROAD = re.compile(
    rf"((?:{_RC}{{0,7}}?{_RC})(?:大道|大街|公路|横街|新街|路|街(?!道)|巷|道(?![路街])|"
    rf"胡同|里(?=\d)))(?:(\d+(?:-\d+)?)(号院|号|弄)(?!楼))?"
)
#: An unrecognised zone before the road name (高新区丈八一路 → 丈八一路).
_ROAD_JUNK = re.compile(rf"^.*[区县市镇乡村](?=[{_HAN}]{{3}})")
_NUMBER = re.compile(r"(\d+(?:-\d+)?)(号院|号|弄)(?!楼)")
_FIRST_MARK = re.compile(
    r"(?:[A-Z]?\d+[A-Z]?|[A-Z])(?=栋|幢|座|号楼|号馆|单元|层|楼|室|房|户|-|$)|\d{3,}"
)
_T_COMPACT3 = re.compile(r"([A-Z]?\d+[A-Z]?)-(\d+)-(\d+)(?:室|号|房)?")
_T_BUILDING = re.compile(r"([A-Z]?\d+[A-Z]?|[A-Z])(栋|幢|座|号楼|号馆)")
_T_UNIT = re.compile(r"(\d+)单元")
_T_COMPACT2 = re.compile(r"([A-Z]?\d+[A-Z]?)-(\d+)(?:室|号|房)?$")
_T_FLOOR = re.compile(r"(-?\d+)(?:层|楼)")
_T_ROOM = re.compile(
    r"([A-Z]?\d{1,6}[A-Z]?(?:-\d{1,6})?)(?:室|房|户|号)?$|([A-Z]?\d+[A-Z]?)(?:室|房|户)"
)


@dataclass(slots=True)
class ParsedAddress:
    """The components of one address (``None`` where absent) and its normalised form."""

    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    road: str | None = None
    house_number: str | None = None
    estate: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    normalised: str = ""
    rest: str = ""

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @property
    def full(self) -> str:
        """The components joined in the standard order (``normalised`` is this)."""
        return "".join(getattr(self, k) or "" for k in _FULL)


def _consistent(p: ParsedAddress, e: Entry, deepest: int) -> bool:
    if e.level <= deepest:
        return False
    for lvl in range(e.level):
        have, want = getattr(p, LEVELS[lvl]), e.parent(lvl)
        if have and want and have != want:
            return False
    return True


def _apply(p: ParsedAddress, entries: list[Entry]) -> int:
    """Set the level of ``entries`` (same name) and the parents they all agree on."""
    e0 = entries[0]
    setattr(p, LEVELS[e0.level], e0.name)
    for lvl in range(e0.level):
        vals = {e.parent(lvl) for e in entries}
        if len(vals) == 1 and None not in vals and not getattr(p, LEVELS[lvl]):
            setattr(p, LEVELS[lvl], vals.pop())
    if e0.level == CITY and e0.name == e0.province and not p.province:
        p.province = e0.name
    if e0.level == PROVINCE and e0.province and not p.city:  # a municipality
        p.city = e0.province
    return e0.level


def _match_admin(s: str, p: ParsedAddress, g: Gazetteer) -> int:
    """Match admin names at the start of ``s``; returns the position after them."""
    pos, n, deepest = 0, len(s), -1
    while pos < n:
        found: list[Entry] = []
        length = 0
        for length in range(min(g.longest.get(s[pos : pos + 2], 0), n - pos), 1, -1):
            cands = g.names.get(s[pos : pos + length])
            if not cands:
                continue
            nxt = s[pos + length] if pos + length < n else ""
            found = [
                e for e in cands
                if _consistent(p, e, deepest) and not (e.alias and nxt in ALIAS_GUARD)
            ]  # fmt: skip
            if found:
                lvl = min(e.level for e in found)  # prefer the higher level on a tie
                found = [e for e in found if e.level == lvl]
                break
        if found:
            deepest = _apply(p, found)
            pos += length
            continue
        m = None
        if deepest < DISTRICT and deepest >= PROVINCE:
            m = _G_DISTRICT.match(s, pos)
            if m and _NOT_DISTRICT.search(m.group()):
                m = None
            if m:
                p.district, deepest = m.group(), DISTRICT
        if m is None and deepest in (PROVINCE, CITY):
            m = _G_COUNTY_CITY.match(s, pos)
            if m:
                p.district, deepest = m.group(), DISTRICT
        if m is None and deepest < STREET:
            m = _G_STREET.match(s, pos)
            if m:
                p.street, deepest = m.group(), STREET
        if m is None and deepest < COMMUNITY:
            m = _G_COMMUNITY.match(s, pos)
            if m is None and deepest == STREET:
                m = _G_VILLAGE.match(s, pos)
                if m and m.group().endswith("新村"):
                    m = None
            if m:
                p.community, deepest = m.group(), COMMUNITY
        if m is None:
            break
        pos = m.end()
    return pos


def _search_admin(rest: str, p: ParsedAddress, g: Gazetteer) -> str:
    """Known street/community names anywhere in ``rest`` (re-ordered addresses)."""
    if p.street and p.community:
        return rest
    for m in _KNOWN_ADMIN.finditer(rest):
        text = m.group()
        for i in range(len(text) - 2):
            for e in g.names.get(text[i:], ()):
                if e.alias or e.level < STREET or getattr(p, LEVELS[e.level]):
                    continue
                if e.level == STREET and p.community:
                    continue
                _apply(p, [e])
                return _search_admin(rest[: m.start() + i] + rest[m.end() :], p, g)
    return rest


def _building(num: str, kind: str) -> str:
    return num + ("座" if kind == "座" else "栋")


def _room(p: ParsedAddress, room: str) -> None:
    p.room = room + "室"
    if p.floor is None and room.isdigit() and 3 <= len(room) <= 4:
        p.floor = room[:-2] + "层"


def _parse_tail(t: str, p: ParsedAddress, have_place: bool) -> str:
    """Estate, building, unit, floor and room from what follows the road and number."""
    m = _FIRST_MARK.search(t)
    head = t[: m.start()] if m else t
    if head:
        p.estate = head
    t = t[len(head) :]
    have_place = have_place or bool(head)
    if m3 := _T_COMPACT3.match(t):
        p.building, p.unit = m3.group(1) + "栋", m3.group(2) + "单元"
        _room(p, m3.group(3))
        return t[m3.end() :]
    if mb := _T_BUILDING.match(t):
        p.building = _building(mb.group(1), mb.group(2))
        t = t[mb.end() :]
    if mu := _T_UNIT.match(t):
        p.unit = mu.group(1) + "单元"
        t = t[mu.end() :]
    if m2 := _T_COMPACT2.match(t):
        if p.building and not p.unit:
            p.unit = m2.group(1) + "单元"
        elif not p.building and have_place and m2.group(1).isdigit() and len(m2.group(2)) >= 3:
            p.building = m2.group(1) + "栋"
        else:
            _room(p, m2.group(0).rstrip("室号房"))
            return ""
        _room(p, m2.group(2))
        return ""
    if mf := _T_FLOOR.match(t):
        p.floor = mf.group(1) + "层"
        t = t[mf.end() :]
    if mr := _T_ROOM.match(t):
        _room(p, mr.group(1) or mr.group(2))
        t = t[mr.end() :]
    return t


def parse(text: str, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse one free-text address; never raises on odd input (it just finds less).

    Args:
        text: the address, any width, with or without noise; at most :data:`MAX_CHARS`
            characters are read.
        gazetteer: admin names to match; the national one by default.
    """
    g = gazetteer if gazetteer is not None else default_gazetteer()
    s = normalise_text(text[:MAX_CHARS])
    p = ParsedAddress()
    pos = _match_admin(s, p, g)
    rest = _search_admin(s[pos:], p, g)
    have_place = False
    m = _ROAD.search(rest)
    if m:
        p.road = _ROAD_JUNK.sub("", m.group(1))
        if m.group(2):
            p.house_number = m.group(2) + m.group(3)
            have_place = True
        tail = rest[: m.start()] + rest[m.end() :]
    else:
        tail = rest
    if p.house_number is None and (mn := _NUMBER.search(tail)):
        p.house_number = mn.group(1) + mn.group(2)
        have_place = True
        tail = tail[: mn.start()] + tail[mn.end() :]
    p.rest = _parse_tail(tail, p, have_place)
    p.normalised = p.full
    return p
