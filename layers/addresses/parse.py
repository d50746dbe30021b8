"""Free-text Chinese address → components (省 市 区 街道 社区 路 号 小区 栋 单元 层 室).

The admin levels are matched left to right against the gazetteer (longest name first,
never going back up a level), then by generic suffix patterns (…区/县, …街道/镇/乡,
…社区/村).  Road and house number are found anywhere in what is left, so
``翠景花园3栋，中山路12号`` parses like the standard order; the rest is the estate,
building, unit, floor and room, including compact forms such as ``3-2-502``.

Examples:
    >>> p = parse("广东省中山市石岐区中山路12号翠景花园3-2-502")
    >>> p.building, p.unit, p.floor, p.room
    ('3栋', '2单元', None, '502室')
    >>> p = parse("浙江杭州西湖区文三路90号A90楼1205")
    >>> p.city, p.spans["city"], p.building, p.spans["building"]
    ('杭州市', '杭州', 'A90栋', 'A90楼')
    >>> parse("上海浦东陆家嘴杨高南路759号").district
    '浦东新区'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from layers.addresses.gazetteer import (
    ALIAS_GUARD,
    ALIAS_SUFFIX,
    CITY,
    COMMUNITY,
    DISTRICT,
    LEVELS,
    NAME_TAIL,
    PROVINCE,
    STREET,
    Entry,
    Gazetteer,
    default_gazetteer,
)
from layers.addresses.normalise import normalise_text, normalise_tracked

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
#: A county-level city not in the gazetteer; 市场, 超市, 门市 … are places, not cities.
_G_COUNTY_CITY = re.compile(rf"[{_HAN}]{{2,4}}?(?<![超门夜街])市(?![场民政委级府区内中])")
_NOT_DISTRICT = re.compile(
    r"(?:开发|工业|园|高新|保税|景|小|校|社|厂|商业|功能|试验|示范|经济|实验|产业|商务|度假|"
    r"科技|物流|软件|城|片|管理|营业|新城|老城|市)区$"
)
_G_STREET = re.compile(rf"[{_HAN}]{{2,6}}?(?:街道办事处|街道|镇|乡)(?![路街道巷])")
_G_COMMUNITY = re.compile(rf"[{_HAN}]{{2,6}}?(?:社区居委会|社区|居委会|村民委员会|村委会)")
_G_VILLAGE = re.compile(rf"[{_HAN}]{{2,5}}?村(?![路街道巷里弄委])")
_KNOWN_ADMIN = re.compile(rf"[{_HAN}]{{2,8}}?(?:街道|镇|乡|社区)")
#: A character of a road name: not a building/unit/room word.
_RC = rf"(?:(?![栋幢座室层号单户])[{_HAN}])"
#: A section or end of a road written after it (天府大道中段, 日月大道二段, 科学大道中99号).
_SECTION = r"(?:[东南西北中]?[一二三四五六七八九十]{0,2}段|[东南西北中](?=[甲乙丙丁]?\d))"
#: A road suffix with at most a direction before it: no road name of its own (外大街, 南大街).
_BARE_ROAD = re.compile(r"[外内东南西北中]?(?:大道|大街|公路|横街|新街|路|街|巷|道|胡同)")
_ROAD = re.compile(
    rf"((?:{_RC}{{0,7}}?{_RC})(?:大道|大街|公路|横街|新街|路|街(?!道)|巷|道(?![路街])|"
    rf"胡同|里(?=\d)){_SECTION}?)(?:([甲乙丙丁]?\d+[A-Z]?(?:-\d+)?)(号院|号|弄)(?!楼))?"
)
#: An unrecognised zone before the road name (高新区丈八一路 → 丈八一路).
_ROAD_JUNK = re.compile(
    rf".*(?:[区县镇乡村]|市(?!场)|新城|开发区|工业园|产业园|园区)(?=[{_HAN}]{{3}})"
)
#: A place name run into the road after it (丝绸市场西健康路 → 丝绸市场 + 西健康路).
_PLACE_IN_ROAD = re.compile(
    r"市场|广场|大厦|中心|商城|花园|小区|公寓|大楼|工业园|科技园|产业园|园区"
)
#: Text before the road that is a zone or area, not a place of the address.
_ZONE_END = re.compile(r"(?:区|新城|工业园|产业园|科技园|园区|开发区|国道|[东南西北]侧)$")
#: Generic zone words opening an estate (高新区航兴国际 → 航兴国际).
_ZONE_START = re.compile(
    r"(?:高新技术产业开发区|经济技术开发区|高新开发区|经济开发区|高新区|开发区|工业园区|新区)"
    rf"(?=[{_HAN}A-Z0-9]{{2}})"
)
_NUMBER = re.compile(r"([甲乙丙丁]?\d+[A-Z]?(?:-\d+)?)(号院|号|弄)(?!楼)")
#: In a lane (弄) the next number is a building: 758弄36号 → 758弄 + 36栋.
_LANE_BUILDING = re.compile(r"(\d+(?:-\d+)?)号(?![楼院])")
_NAMED_BUILDING = "[东南西北中金银甲乙丙丁戊主]"
_FIRST_MARK = re.compile(
    r"(?:[A-Z]?\d+[A-Z]?|[A-Z])(?=栋|幢|座|号楼|号馆|单元|层|楼|室|房|户|-|$)|\d{3,}"
    rf"|{_NAMED_BUILDING}(?=座|栋)|[东南西北](?=楼(?!\d*[层楼]))"
)
_T_COMPACT3 = re.compile(r"([A-Z]?\d+[A-Z]?|[A-Z])-(\d+)-(\d+)(?:室|号|房)?")
_T_BUILDING = re.compile(
    r"([A-Z]?\d+[A-Z]?|[A-Z])(栋|幢|座|号楼|号馆)|([A-Z]\d+[A-Z]?|\d+[A-Z])(楼)(?![0-9A-Z]*[层楼])"
    rf"|({_NAMED_BUILDING})(座|栋)|([东南西北])(楼)(?!\d*[层楼])"
)
_T_UNIT = re.compile(r"(\d{1,2})单元")
_T_COMPACT2 = re.compile(r"([A-Z]?\d+[A-Z]?)-(\d+)(?:室|号|房)?$")
_T_FLOOR = re.compile(r"(-?\d{1,3}(?:-\d{1,3})?)(?:层|楼)")
_T_ROOM = re.compile(
    r"([A-Z]?\d{1,6}[A-Z]?(?:-\d{1,6})?)(?:室|房|户|号)?$|([A-Z]?\d+[A-Z]?)(?:室|房|户)"
    r"|(\d{3,6})单元"  # an office suite: 1405单元
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
    #: The input read and, for each component read from it, its ``(start, end)`` in the
    #: normalised text (what :attr:`spans` maps back to the input).
    source: str = field(default="", repr=False)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def spans(self) -> dict[str, str]:
        """The input text each component was read from (components filled in from the
        gazetteer's hierarchy have none): ``{"city": "杭州", "building": "A90楼"}``.

        Worked out on demand: geocoding never needs it."""
        tr = normalise_tracked(self.source)
        return {k: tr.original(a, b) for k, (a, b) in self.positions.items() if getattr(self, k)}

    def as_dict(self) -> dict[str, Any]:
        """The components, ``normalised``, ``rest`` and ``spans`` as plain values."""
        d: dict[str, Any] = {k: getattr(self, k) for k in COMPONENTS}
        d.update(normalised=self.normalised, rest=self.rest, spans=dict(self.spans))
        return d

    @property
    def full(self) -> str:
        """The components joined in the standard order (``normalised`` is this)."""
        parts = [getattr(self, k) or "" for k in _FULL]
        if parts[0] and parts[0] == parts[1]:  # a municipality is its own city: 北京市海淀区
            parts[1] = ""
        return "".join(parts)


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
        if lvl == DISTRICT and not all(e.local for e in entries):
            continue  # a township name alone does not say which county wrote it
        vals = {e.parent(lvl) for e in entries}
        if len(vals) == 1 and None not in vals and not getattr(p, LEVELS[lvl]):
            setattr(p, LEVELS[lvl], vals.pop())
    if e0.level == CITY and e0.name == e0.province and not p.province:
        p.province = e0.name
    if e0.level == PROVINCE and e0.province and not p.city:  # a municipality
        p.city = e0.province
    return e0.level


def _match_admin(s: str, p: ParsedAddress, g: Gazetteer, at: dict[str, tuple[int, int]]) -> int:
    """Match admin names at the start of ``s``; returns the position after them.

    ``at`` receives the ``(start, end)`` in ``s`` of each level read from the text."""
    pos, n, deepest = 0, len(s), -1
    while pos < n:
        found: list[Entry] = []
        length = 0
        for length in g.lengths.get(s[pos : pos + 2], ()):
            if length > n - pos:
                continue
            cands = g.names.get(s[pos : pos + length])
            if not cands:
                continue
            found = [e for e in cands if _consistent(p, e, deepest)]
            if any(e.alias for e in found) and ALIAS_GUARD.match(s, pos + length):
                found = [e for e in found if not e.alias]
            if found:
                lvl = min(e.level for e in found)  # prefer the higher level on a tie
                found = [e for e in found if e.level == lvl]
                break
        if found:
            deepest = _apply(p, found)
            end = pos + length
            tail = (ALIAS_SUFFIX if found[0].alias else NAME_TAIL).get(deepest)
            if tail is not None and (t := tail.match(s, end)) is not None:
                end = t.end()
            at[LEVELS[deepest]] = (pos, end)
            pos = end
            continue
        m = None
        if deepest < DISTRICT and deepest >= PROVINCE:
            m = _G_DISTRICT.match(s, pos)
            town = (
                _district_as_town(m.group(), p, g)
                if m and not _G_STREET.match(s, m.end())
                else None
            )
            if town is not None:  # 东莞市东城区 is 东城街道: 东莞 has no districts
                deepest = _apply(p, [town])
            elif m and _NOT_DISTRICT.search(m.group()):
                m = None
            elif m:
                p.district, deepest = m.group(), DISTRICT
        if m is None and deepest in (PROVINCE, CITY):
            m = _G_COUNTY_CITY.match(s, pos)
            if m:
                p.district, deepest = m.group(), DISTRICT
        if m is None and deepest < STREET:
            m = _G_STREET.match(s, pos)
            if m:
                start = _known_tail(s, pos, m.end(), p, g)
                p.street, deepest = s[start : m.end()], STREET
                at["street"] = (start, m.end())
                pos = m.end()
                continue
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
        at[LEVELS[deepest]] = m.span()
        pos = m.end()
    return pos


def _district_as_town(name: str, p: ParsedAddress, g: Gazetteer) -> Entry | None:
    """The township an ``XX区`` names in a city without districts (东莞, 中山, 儋州).

    Only asked when no township follows (a local 石岐区 with its 街道 stays a district)."""
    if not p.city or not name.endswith("区"):
        return None
    for e in g.names.get(name[:-1] + "街道", ()):
        if e.level == STREET and e.city == p.city and e.district is None:
            return e
    return None


def _known_tail(s: str, a: int, b: int, p: ParsedAddress, g: Gazetteer) -> int:
    """Where a known township name starts inside the generic town match ``s[a:b]``.

    The town rule is lazy but still reads ``桃源桃源街道`` or ``某某崇仁镇`` as one name;
    when the gazetteer knows a township (in the province/city found) ending the match,
    only that is the street.  Returns ``a`` when it knows none."""
    for k in range(a + 1, b - 2):
        for e in g.names.get(s[k:b], ()):
            if e.level == STREET and not e.alias and _consistent(p, e, -1):
                if e.local or e.province:
                    _apply(p, [e])
                return k
    return a


def _search_admin(
    rest: str, ix: list[int], p: ParsedAddress, g: Gazetteer, at: dict[str, tuple[int, int]]
) -> tuple[str, list[int]]:
    """Known street/community names anywhere in ``rest`` (re-ordered addresses).

    ``ix[i]`` is the position in the normalised text of ``rest[i]``; both come back
    with the names found cut out."""
    if p.street and p.community:
        return rest, ix
    for m in _KNOWN_ADMIN.finditer(rest):
        text = m.group()
        for i in range(len(text) - 2):
            for e in g.names.get(text[i:], ()):
                if e.alias or e.level < STREET or getattr(p, LEVELS[e.level]):
                    continue
                if e.level == STREET and p.community:
                    continue
                if not _consistent(p, e, -1):
                    continue
                _apply(p, [e])
                a, b = m.start() + i, m.end()
                at[LEVELS[e.level]] = (ix[a], ix[b - 1] + 1)
                return _search_admin(rest[:a] + rest[b:], ix[:a] + ix[b:], p, g, at)
    return rest, ix


def _building(num: str, kind: str) -> str:
    return num + ("座" if kind == "座" else "栋")


def _building_of(m: re.Match[str]) -> str:
    """The normalised building of a :data:`_T_BUILDING` match (东楼 and 北栋 stay)."""
    if m.group(1):
        return _building(m.group(1), m.group(2))
    if m.group(3):
        return _building(m.group(3), m.group(4))
    if m.group(5):
        return m.group(5) + m.group(6)
    return m.group(7) + m.group(8)


class _Tail:
    """What follows the road and number, read left to right (``o`` is the position)."""

    __slots__ = ("at", "ix", "o", "p", "t")

    def __init__(self, t: str, ix: list[int], p: ParsedAddress, at: dict[str, tuple[int, int]]):
        self.t, self.ix, self.p, self.at, self.o = t, ix, p, at, 0

    def take(self, comp: str, value: str, a: int, b: int) -> None:
        setattr(self.p, comp, value)
        if a < b:
            self.at[comp] = (self.ix[a], self.ix[b - 1] + 1)


def _parse_tail(tail: _Tail, have_place: bool) -> str:
    """Estate, building, unit, floor and room from what follows the road and number.

    A floor is only read where it is written (层/楼/F): a room number does not say its
    floor (1205 may be floor 12 or a room numbered across floors)."""
    t, p = tail.t, tail.p
    m = _FIRST_MARK.search(t)
    h = m.start() if m else len(t)
    if h:
        tail.take("estate", t[:h], 0, h)
    o = h
    have_place = have_place or bool(h)
    if m3 := _T_COMPACT3.match(t, o):
        tail.take("building", m3.group(1) + "栋", *m3.span(1))
        tail.take("unit", m3.group(2) + "单元", *m3.span(2))
        tail.take("room", m3.group(3) + "室", m3.start(3), m3.end())
        return t[m3.end() :]
    if mb := _T_BUILDING.match(t, o):
        tail.take("building", _building_of(mb), *mb.span())
        o = mb.end()
    if mu := _T_UNIT.match(t, o):
        tail.take("unit", mu.group(1) + "单元", *mu.span())
        o = mu.end()
    if m2 := _T_COMPACT2.match(t, o):
        first, second = m2.group(1), m2.group(2)
        if len(first) == len(second) >= 3 and first.isdigit():  # a range of rooms 1602-1603
            tail.take("room", m2.group(0).rstrip("室号房") + "室", *m2.span())
            return ""
        if p.building and not p.unit:
            tail.take("unit", m2.group(1) + "单元", *m2.span(1))
        elif not p.building and have_place and first[-1].isdigit() and len(second) >= 3:
            tail.take("building", m2.group(1) + "栋", *m2.span(1))
        else:
            tail.take("room", m2.group(0).rstrip("室号房") + "室", *m2.span())
            return ""
        tail.take("room", m2.group(2) + "室", m2.start(2), m2.end())
        return ""
    if mf := _T_FLOOR.match(t, o):
        tail.take("floor", mf.group(1) + "层", *mf.span())
        o = mf.end()
        if p.building is None and (mb := _T_BUILDING.match(t, o)):  # 22楼D座
            tail.take("building", _building_of(mb), *mb.span())
            o = mb.end()
    if mr := _T_ROOM.match(t, o):
        tail.take("room", (mr.group(1) or mr.group(2) or mr.group(3)) + "室", *mr.span())
        o = mr.end()
    return t[o:]


def _town_prefix(road: str, p: ParsedAddress, g: Gazetteer) -> int:
    """Length of a township name without its suffix opening ``road`` (大良南国中路: 大良 is
    大良街道 of the county found), else 0; only asked once a city or county is known."""
    if not (p.city or p.district):
        return 0
    for k in range(2, len(road) - 2):
        if _BARE_ROAD.match(road, k):
            continue
        for suf in ("街道", "镇", "乡"):
            for e in g.names.get(road[:k] + suf, ()):
                if e.level == STREET and not e.alias and _consistent(p, e, -1):
                    return k
    return 0


def _read_road(
    rest: str, ix: list[int], p: ParsedAddress, g: Gazetteer, at: dict[str, tuple[int, int]]
) -> tuple[str, list[int], bool, tuple[int, int] | None]:
    """Road and number anywhere in ``rest``: the first road with a number, else the first.

    Returns what is left (with its positions), whether a number was read and the span of
    a place name run into the front of the road (丝绸市场西健康路)."""
    m = _ROAD.search(rest)
    if m is None:
        return rest, ix, False, None
    prev = None
    if not m.group(2):  # look on for a road that has a number
        last = m
        for later in _ROAD.finditer(rest, m.end()):
            if later.group(2):
                prev, m = last, later
                break
            last = later
    a, b = m.span(1)
    if prev is not None and prev.end() == a and rest[a] in "东南西北":
        a += 1  # 梅华路南梅中路: south of one road, on the next
    zone = False
    if (j := _ROAD_JUNK.match(rest, a, b)) and not _BARE_ROAD.fullmatch(rest, j.end(), b):
        a, zone = j.end(), True  # but 中关村南大街 stays whole: 南大街 is no name
    cut = None
    for pm in _PLACE_IN_ROAD.finditer(rest, a, b):
        if b - pm.end() >= 3:
            cut = pm.end()
    before = None
    if cut is not None:
        before, a = (a, cut), cut
    a += _town_prefix(rest[a:b], p, g)
    p.road = rest[a:b]
    at["road"] = (ix[a], ix[b - 1] + 1)
    have_number = bool(m.group(2))
    if have_number:
        p.house_number = m.group(2) + m.group(3)
        at["house_number"] = (ix[m.start(2)], ix[m.end(3) - 1] + 1)
    pre, start = rest[: m.start()], 0
    if zone or _ZONE_END.search(pre) or (pre and not any(c.isdigit() for c in pre)
                                        and _ROAD.fullmatch(pre)):  # fmt: skip
        start = len(pre)  # a zone, an area or a road without number before the road
    tail = rest[start : m.start()] + rest[m.end() :]
    tix = ix[start : m.start()] + ix[m.end() :]
    return tail, tix, have_number, before


def parse(text: str, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse one free-text address; never raises on odd input (it just finds less).

    Args:
        text: the address, any width, with or without noise; at most :data:`MAX_CHARS`
            characters are read.
        gazetteer: admin names to match; the national one by default.
    """
    g = gazetteer if gazetteer is not None else default_gazetteer()
    source = text[:MAX_CHARS]
    s = normalise_text(source)
    p = ParsedAddress()
    at: dict[str, tuple[int, int]] = {}
    pos = _match_admin(s, p, g, at)
    rest, ix = _search_admin(s[pos:], list(range(pos, len(s))), p, g, at)
    tail, tix, have_place, before = _read_road(rest, ix, p, g, at)
    if p.house_number is None and (mn := _NUMBER.search(tail)):
        p.house_number = mn.group(1) + mn.group(2)
        at["house_number"] = (tix[mn.start()], tix[mn.end() - 1] + 1)
        have_place = True
        tail, tix = tail[: mn.start()] + tail[mn.end() :], tix[: mn.start()] + tix[mn.end() :]
    if (z := _ZONE_START.match(tail)) is not None:
        tail, tix = tail[z.end() :], tix[z.end() :]
    t = _Tail(tail, tix, p, at)
    if p.house_number and p.house_number.endswith("弄") and (ml := _LANE_BUILDING.match(tail)):
        t.take("building", ml.group(1) + "栋", *ml.span())
        t.t, t.ix = tail[ml.end() :], tix[ml.end() :]
    p.rest = _parse_tail(t, have_place)
    if p.estate is None and before is not None:
        p.estate = rest[before[0] : before[1]]
        at["estate"] = (ix[before[0]], ix[before[1] - 1] + 1)
    p.normalised = p.full
    p.source, p.positions = source, at
    return p
