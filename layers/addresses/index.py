"""The in-memory standard-address index and the geocoding cascade.

The cascade, from the most to the least precise (each result says which level won):

1. the exact address code;
   (a query the national gazetteer places in a province or city that holds none of the
   standard addresses stops here: ``none``, however well its road and number match;)
2. the exact normalised full address;
3. components: estate or road + number → building → unit/room, names resolved exactly,
   by a known name inside the parsed text, or fuzzily with ``rapidfuzz`` among the
   names of the admin area found (community, then street, then everything);
4. fall back to the road, community, street or district;
5. ``none``.

A room is only claimed when building and room both match and nothing given
contradicts it (a different unit, an unmatched road): a wrong room is worse than a
right building.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process

from layers.addresses.gazetteer import Gazetteer, default_gazetteer
from layers.addresses.parse import ParsedAddress, parse

LEVEL_SCORES = {
    "room": 1.0, "building": 0.9, "number": 0.8, "road": 0.6,
    "community": 0.5, "street": 0.4, "district": 0.3, "none": 0.0,
}  # fmt: skip
FIELDS = (
    "code", "full_address", "province", "city", "district", "street", "community", "road",
    "house_number", "estate", "building", "unit", "floor", "room", "grid_code", "lon", "lat",
)  # fmt: skip
_CODE = re.compile(r"^\s*([0-9A-Za-z-]{6,40})\s*$")
_KEY = re.compile(r"[^0-9A-Z-]")
#: Least rapidfuzz ratio (0–100) for a misspelt estate or road name.
FUZZY_CUTOFF = 70.0
#: Vocabularies larger than this are narrowed to the names sharing two-character pieces
#: with the query (the :data:`PREFILTER_KEEP` sharing most) before fuzzy scoring.
PREFILTER_ABOVE = 300
PREFILTER_KEEP = 200


def _key(value: str | None) -> str:
    """The bare number/letters of a component: ``3栋`` → ``3``, ``502室`` → ``502``."""
    return _KEY.sub("", value) if value else ""


@dataclass(slots=True)
class GeocodeResult:
    """One geocoding answer; ``match_level`` is ``none`` when nothing matched."""

    query: str
    match_level: str = "none"
    score: float = 0.0
    code: str | None = None
    full_address: str | None = None
    lon: float | None = None
    lat: float | None = None
    grid_code: str | None = None
    parsed_address: ParsedAddress | None = None

    @property
    def parsed(self) -> dict[str, Any]:
        """The components the query was parsed into (with their spans), or ``{}``."""
        return self.parsed_address.as_dict() if self.parsed_address is not None else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query, "match_level": self.match_level, "score": round(self.score, 3),
            "code": self.code, "full_address": self.full_address, "lon": self.lon,
            "lat": self.lat, "grid_code": self.grid_code,
        }  # fmt: skip


class AddressIndex:
    """Standard addresses held in memory with the lookup tables of the cascade.

    Args:
        rows: mappings with the keys of :data:`FIELDS` (``lon``/``lat`` in degrees,
            EPSG:4326).
        gazetteer: national admin names; the local ones of ``rows`` are added to a copy.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], gazetteer: Gazetteer | None = None):
        self.rows: list[tuple[Any, ...]] = [tuple(r.get(f) for f in FIELDS) for r in rows]
        self.gazetteer = (gazetteer or default_gazetteer()).copy()
        col = {f: i for i, f in enumerate(FIELDS)}
        self._col = col
        self.by_code: dict[str, int] = {}
        self.by_full: dict[str, int] = {}
        self.rooms: dict[tuple[str, str, str], int] = {}
        self.buildings: dict[tuple[str, str], int] = {}
        self.places: dict[str, list[int]] = {}  # estate or road+number → house rows
        self.numbers: dict[tuple[str, str], list[str]] = {}  # (road, number) → places
        self.estate_road: dict[str, tuple[str, str]] = {}
        estates_in: dict[str, dict[str, None]] = {}  # community/street/"" → estates
        roads_in: dict[str, dict[str, None]] = {}
        groups: dict[tuple[str, str], list[int]] = {}
        admin = set()
        for i, r in enumerate(self.rows):
            code, full = r[col["code"]], r[col["full_address"]]
            road, num, estate = r[col["road"]], _key(r[col["house_number"]]), r[col["estate"]]
            bkey, rkey = _key(r[col["building"]]), _key(r[col["room"]])
            comm, street = r[col["community"]] or "", r[col["street"]] or ""
            self.by_code[code] = i
            self.by_full.setdefault(full, i)
            place = estate or f"{road}#{num}"
            if rkey:
                self.rooms.setdefault((place, bkey, rkey), i)
            elif not r[col["unit"]]:
                if bkey:
                    self.buildings.setdefault((place, bkey), i)
                self.places.setdefault(place, []).append(i)
                if road and num:
                    lst = self.numbers.setdefault((road, num), [])
                    if place not in lst:
                        lst.append(place)
                if estate and road:
                    self.estate_road.setdefault(estate, (road, num))
            for scope in ("", street, comm):
                if estate:
                    self._add(estates_in, scope, estate)
                if road:
                    self._add(roads_in, scope, road)
            for lvl, name in (("road", road), ("community", comm), ("street", street),
                              ("district", r[col["district"]])):  # fmt: skip
                if name:
                    groups.setdefault((lvl, name), []).append(i)
            admin.add((r[col["province"]], r[col["city"]], r[col["district"]], street or None,
                       comm or None))  # fmt: skip
        #: The provinces and cities the standard addresses lie in: a query the gazetteer
        #: places elsewhere (浙江省杭州市… against a table of 中山市) matches nothing here.
        self.provinces = {a[0] for a in admin if a[0]}
        self.cities = {a[1] for a in admin if a[1]}
        bcol = col["building"]
        for ids in self.places.values():
            ids.sort(key=lambda i: (len(_key(self.rows[i][bcol])), _key(self.rows[i][bcol])))
        self.gazetteer.add_local(sorted(admin, key=lambda t: tuple(x or "" for x in t)))
        self.estates_in = {k: list(v) for k, v in estates_in.items()}
        self.roads_in = {k: list(v) for k, v in roads_in.items()}
        self.known_estates = set(self.estates_in.get("", []))
        self.known_roads = set(self.roads_in.get("", []))
        self.representative = {k: self._central(ids) for k, ids in groups.items()}
        self._bigrams: dict[tuple[int, str], dict[str, list[int]]] = {}

    @staticmethod
    def _add(d: dict[str, dict[str, None]], scope: str, name: str) -> None:
        d.setdefault(scope, {})[name] = None

    def _central(self, ids: list[int]) -> int:
        """The row nearest the mean position of ``ids`` (a group's representative)."""
        lo, la = self._col["lon"], self._col["lat"]
        pts = [(self.rows[i][lo] or 0.0, self.rows[i][la] or 0.0) for i in ids]
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        best = min(range(len(ids)), key=lambda k: (pts[k][0] - mx) ** 2 + (pts[k][1] - my) ** 2)
        return ids[best]

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, i: int) -> dict[str, Any]:
        return dict(zip(FIELDS, self.rows[i], strict=True))

    # -- name resolution ---------------------------------------------------------------
    def _scopes(self, p: ParsedAddress) -> list[str]:
        return [s for s in (p.community, p.street) if s] + [""]

    def _resolve(
        self, text: str | None, known: set[str], vocab: dict[str, list[str]], p: ParsedAddress
    ) -> list[tuple[str, float]]:
        """Known names for ``text``: exact, contained in it, or the best fuzzy matches
        (all those tied for the best score, so later clues can decide)."""
        if not text:
            return []
        if text in known:
            return [(text, 1.0)]
        n = len(text)
        for i in range(1, n - 1):  # junk before the name (an unparsed zone)
            if text[i:] in known:
                return [(text[i:], 0.98)]
        for j in range(n - 1, 1, -1):  # junk after it
            if text[:j] in known:
                return [(text[:j], 0.95)]
        for scope in self._scopes(p):
            choices = vocab.get(scope)
            if not choices:
                continue
            if len(choices) > PREFILTER_ABOVE:
                choices = self._sharing_bigrams(text, id(vocab), scope, choices)
            found = process.extract(
                text, choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=6
            )
            if found:
                top = found[0][1]
                return [(name, sc / 100.0) for name, sc, _ in found if sc >= top - 1e-6]
        return []

    def _sharing_bigrams(
        self, text: str, vocab_id: int, scope: str, choices: list[str]
    ) -> list[str]:
        """The names of ``choices`` sharing most two-character pieces with ``text``.

        A misspelt name that still scores :data:`FUZZY_CUTOFF` shares at least one piece
        with the right one, so only those are scored (as ``pg_trgm`` does with trigrams):
        the cost of a fuzzy match no longer grows with every estate of the city."""
        key = (vocab_id, scope)
        grams = self._bigrams.get(key)
        if grams is None:
            grams = {}
            for i, name in enumerate(choices):
                for g in {name[k : k + 2] for k in range(len(name) - 1)}:
                    grams.setdefault(g, []).append(i)
            self._bigrams[key] = grams
        hits: dict[int, int] = {}
        for g in {text[k : k + 2] for k in range(len(text) - 1)}:
            for i in grams.get(g, ()):
                hits[i] = hits.get(i, 0) + 1
        best = sorted(hits, key=lambda i: -hits[i])[:PREFILTER_KEEP]
        return [choices[i] for i in best]

    # -- the cascade -----------------------------------------------------------------------
    def geocode(self, query: str) -> GeocodeResult:
        """Geocode one free-text address (or an address code)."""
        res = GeocodeResult(query=query)
        if not query or not query.strip():
            return res
        if (m := _CODE.match(query)) and (i := self.by_code.get(m.group(1))) is not None:
            return self._result(res, i, self._row_level(i), 1.0)
        p = parse(query, self.gazetteer)
        res.parsed_address = p
        if self._elsewhere(p):
            return res
        if (i := self.by_full.get(p.normalised)) is not None and p.normalised:
            return self._result(res, i, self._row_level(i), 1.0)
        return self._components(res, p)

    def _elsewhere(self, p: ParsedAddress) -> bool:
        """The query names a province or city none of the standard addresses is in."""
        if p.province and self.provinces and p.province not in self.provinces:
            return True
        return bool(p.city and self.cities and p.city not in self.cities)

    def _row_level(self, i: int) -> str:
        r, c = self.rows[i], self._col
        if r[c["room"]]:
            return "room"
        return "building" if r[c["building"]] else "number"

    def _pick_estate(
        self, cands: list[tuple[str, float]], p: ParsedAddress, road: str | None, num: str
    ) -> tuple[str | None, float]:
        """One estate among tied candidates: the one the road/number or the building and
        room confirm; ``None`` when still ambiguous."""
        if len(cands) <= 1:
            return cands[0] if cands else (None, 0.0)
        if road and num:
            hits = [c for c in cands if self.estate_road.get(c[0]) == (road, num)]
            if len(hits) == 1:
                return hits[0][0], max(hits[0][1], 0.9)
        bkey, rkey = _key(p.building), _key(p.room)
        if rkey:
            hits = [c for c in cands if (c[0], bkey, rkey) in self.rooms]
        elif bkey:
            hits = [c for c in cands if (c[0], bkey) in self.buildings]
        else:
            hits = []
        if len(hits) == 1:
            return hits[0][0], hits[0][1] * 0.95
        return None, 0.0

    def _components(self, res: GeocodeResult, p: ParsedAddress) -> GeocodeResult:
        c = self._col
        conf = 1.0
        estates = self._resolve(p.estate, self.known_estates, self.estates_in, p)
        roads = self._resolve(p.road, self.known_roads, self.roads_in, p)
        num = _key(p.house_number)
        road, rs = roads[0] if len(roads) == 1 else (None, 0.0)
        if len(roads) > 1 and num:  # a misspelt road: the one that has this number
            hits = [(r, s) for r, s in roads if (r, num) in self.numbers]
            road, rs = hits[0] if len(hits) == 1 else (None, 0.0)
        estate, es = self._pick_estate(estates, p, road, num)
        place: str | None = None
        if estate:
            place, conf = estate, es
            er = self.estate_road.get(estate)
            if er and road and num:
                if er == (road, num):
                    conf = max(conf, rs)  # the road and number confirm the estate
                elif er[0] != road and es < 1.0:
                    conf *= 0.85  # two disagreeing clues
        elif road and num and (places := self.numbers.get((road, num))):
            place, conf = (places[0], rs) if len(places) == 1 else (None, rs)
            if place is None:  # several places at one number: the estate decides
                place = places[0]
                conf *= 0.7
        if place is not None:
            bkey, rkey = _key(p.building), _key(p.room)
            if rkey and (i := self.rooms.get((place, bkey, rkey))) is not None:
                unit = _key(self.rows[i][c["unit"]])
                if not p.unit or _key(p.unit) == unit:
                    room_conf = conf if conf >= 0.85 else conf * 0.8
                    if room_conf >= 0.7:
                        return self._result(res, i, "room", room_conf)
            if bkey and (i := self.buildings.get((place, bkey))) is not None:
                penalty = 0.9 if rkey else 1.0
                return self._result(res, i, "building", conf * penalty)
            if (ids := self.places.get(place)) and not bkey:
                penalty = 0.9 if rkey else 1.0
                return self._result(res, ids[0], "number", conf * penalty)
            if ids := self.places.get(place):
                return self._result(res, ids[0], "number", conf * 0.7)
        for lvl, name, s in (
            ("road", road, rs * 0.9 if num else rs),
            ("community", p.community, 1.0),
            ("street", p.street, 1.0),
            ("district", p.district, 1.0),
        ):
            if name and (i := self.representative.get((lvl, name))) is not None:
                return self._result(res, i, lvl, s)
        return res

    def _result(self, res: GeocodeResult, i: int, level: str, conf: float) -> GeocodeResult:
        r, c = self.rows[i], self._col
        res.match_level = level
        res.score = LEVEL_SCORES[level] * max(0.0, min(conf, 1.0))
        res.code, res.full_address = r[c["code"]], r[c["full_address"]]
        res.lon, res.lat, res.grid_code = r[c["lon"]], r[c["lat"]], r[c["grid_code"]]
        return res

    def geocode_many(self, queries: Iterable[str]) -> list[GeocodeResult]:
        return [self.geocode(q) for q in queries]
