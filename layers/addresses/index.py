"""The geocoding cascade over the standard-address table.

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

Only the names (estates and roads per community and street, admin areas) are held in
memory; the address rows are looked up in PostgreSQL (:mod:`layers.addresses.store`), a
whole batch per statement. The cascade is one generator that yields its lookups phase by
phase; :meth:`AddressIndex.geocode_many` (psycopg) and
:meth:`AddressIndex.geocode_many_async` (asyncpg) only carry them to the database.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from layers.addresses.gazetteer import Gazetteer, default_gazetteer
from layers.addresses.normalise import normalise_text
from layers.addresses.parse import ParsedAddress, parse
from layers.addresses.store import (
    Ask,
    answer,
    answer_async,
    fetch_vocabulary,
    fetch_vocabulary_async,
)
from layers.schema import ADDRESS_FALLBACKS

LEVEL_SCORES = {
    "room": 1.0, "building": 0.9, "number": 0.8, "road": 0.6,
    "community": 0.5, "street": 0.4, "district": 0.3, "none": 0.0,
}  # fmt: skip
_CODE = re.compile(r"^\s*([0-9A-Za-z-]{6,40})\s*$")
_KEY = re.compile(r"[^0-9A-Z-]")
#: Least rapidfuzz ratio (0–100) for a misspelt estate or road name.
FUZZY_CUTOFF = 70.0
#: Vocabularies larger than this are narrowed to the names sharing two-character pieces
#: with the query (the :data:`PREFILTER_KEEP` sharing most) before fuzzy scoring.
PREFILTER_ABOVE = 300
PREFILTER_KEEP = 200
#: A piece found in more than this share of the names (and more than the minimum) is too
#: common to narrow the choice.
PREFILTER_COMMON_SHARE = 0.02
PREFILTER_COMMON_MIN = 500

#: One phase of the cascade: the lookups it needs; it is sent their answers.
Job = Generator[list[Ask], list[dict[Any, Any]], list["GeocodeResult"]]


def _key(value: str | None) -> str:
    """The bare number/letters of a component: ``3栋`` → ``3``, ``502室`` → ``502``
    (the ``*_key`` columns of ``addresses`` hold the same, computed by PostgreSQL)."""
    return _KEY.sub("", value) if value else ""


def _row_level(room: str | None, building: str | None) -> str:
    if room:
        return "room"
    return "building" if building else "number"


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


@dataclass(slots=True)
class _Query:
    """A parsed query on its way through the cascade."""

    at: int
    p: ParsedAddress
    estates: list[tuple[str, float]]
    roads: list[tuple[str, float]]
    num: str
    bkey: str
    rkey: str
    road: str | None = None
    rs: float = 0.0
    places: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Found:
    """The database's answers for one batch."""

    number: dict[Any, Any] = field(default_factory=dict)
    room: dict[Any, Any] = field(default_factory=dict)
    building: dict[Any, Any] = field(default_factory=dict)
    place: dict[Any, Any] = field(default_factory=dict)


class AddressIndex:
    """The geocoder of one standard-address table: its names in memory.

    Args:
        vocabulary: the rows of :data:`layers.addresses.store.VOCABULARY_SQL` (as
            :func:`~layers.addresses.store.fetch_vocabulary` returns them).
        gazetteer: national admin names; the local ones are added to a copy.
    """

    def __init__(
        self, vocabulary: dict[str, list[tuple[Any, ...]]], gazetteer: Gazetteer | None = None
    ):
        self.gazetteer = (gazetteer or default_gazetteer()).copy()
        estates_in: dict[str, dict[str, None]] = {}  # community/street/"" → estates
        roads_in: dict[str, dict[str, None]] = {}
        #: Names as the parser writes them (``莲埔府十期`` → ``莲埔府10期``) → as stored; two
        #: names written alike (东侧花园, 西侧花园 → 花园) are tied candidates, which the
        #: road, number or building then tell apart.
        self.stored_estate: dict[str, list[str]] = {}
        self.stored_road: dict[str, list[str]] = {}
        normal: dict[str, str] = {}

        def written(name: str | None, stored: dict[str, list[str]]) -> str | None:
            if not name:
                return None
            if (n := normal.get(name)) is None:
                n = normal[name] = normalise_text(name) or name
                spellings = stored.setdefault(n, [])
                if name not in spellings:
                    spellings.append(name)
            return n

        for estate_name, road_name, street, comm in vocabulary["names"]:
            estate = written(estate_name, self.stored_estate)
            road = written(road_name, self.stored_road)
            for scope in ("", street or "", comm or ""):
                if estate:
                    estates_in.setdefault(scope, {})[estate] = None
                if road:
                    roads_in.setdefault(scope, {})[road] = None
        self.estates_in = {k: list(v) for k, v in estates_in.items()}
        self.roads_in = {k: list(v) for k, v in roads_in.items()}
        self.known_estates = set(self.estates_in.get("", []))
        self.known_roads = set(self.roads_in.get("", []))
        self.estate_road: dict[str, tuple[str, str]] = {
            estate: (road, num) for estate, road, num in vocabulary["estate_roads"]
        }
        admin = vocabulary["admin"]
        #: The provinces and cities the standard addresses lie in: a query the gazetteer
        #: places elsewhere (浙江省杭州市… against a table of 中山市) matches nothing here.
        self.provinces = {a[0] for a in admin if a[0]}
        self.cities = {a[1] for a in admin if a[1]}
        #: (level, name) → mean position of its addresses: only these names have a
        #: representative (the address nearest that mean, looked up once).
        self.means: dict[tuple[str, str], tuple[float, float]] = {
            (lvl, name): (mx, my) for lvl, name, mx, my in vocabulary.get("means", [])
        }
        self.gazetteer.add_local(sorted(admin, key=lambda t: tuple(x or "" for x in t)))
        top = vocabulary["top"][0] if vocabulary["top"] else (None, None)
        self.gazetteer.add_local(
            [(top[0], top[1], d, s, c) for c, s, d in vocabulary["admin_areas"]]
        )
        #: (level, name) → id of its representative address, or None (looked up once).
        self.representative: dict[tuple[str, str], int | None] = {}
        self._bigrams: dict[tuple[int, str], dict[str, list[int]]] = {}
        for vocab in (self.estates_in, self.roads_in):
            if len(everything := vocab.get("", [])) > PREFILTER_ABOVE:
                self._grams(id(vocab), "", everything)

    @classmethod
    def load(cls, conn: Any, gazetteer: Gazetteer | None = None) -> AddressIndex:
        """The index of the table behind a psycopg connection."""
        return cls(fetch_vocabulary(conn), gazetteer)

    @classmethod
    async def load_async(cls, conn: Any, gazetteer: Gazetteer | None = None) -> AddressIndex:
        """The index of the table behind an asyncpg connection (built off the loop)."""
        vocabulary = await fetch_vocabulary_async(conn)
        return await asyncio.to_thread(cls, vocabulary, gazetteer)

    @property
    def names(self) -> int:
        """Estate and road names held in memory (what the index's size grows with)."""
        return len(self.known_estates) + len(self.known_roads)

    # -- name resolution ---------------------------------------------------------------
    def _scopes(self, p: ParsedAddress) -> list[str]:
        return [s for s in (p.community, p.street) if s] + [""]

    def _resolve(
        self,
        text: str | None,
        known: set[str],
        vocab: dict[str, list[str]],
        p: ParsedAddress,
        stored: dict[str, list[str]] | None = None,
    ) -> list[tuple[str, float]]:
        """Known names for ``text`` (as ``stored`` spells them): exact, contained in it,
        or the best fuzzy matches (all those tied for the best score, so later clues can
        decide)."""
        found = self._resolve_written(text, known, vocab, p)
        if not stored:
            return found
        return [(name, s) for n, s in found for name in stored.get(n, [n])]

    def _resolve_written(
        self, text: str | None, known: set[str], vocab: dict[str, list[str]], p: ParsedAddress
    ) -> list[tuple[str, float]]:
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
        grams = self._grams(vocab_id, scope, choices)
        postings = [p for g in {text[k : k + 2] for k in range(len(text) - 1)}
                    if (p := grams.get(g))]  # fmt: skip
        # Pieces shared by a large part of the names (花园, 0期 …) say little and would
        # cost the most: only the rarer ones count, unless the query has no other.
        common = max(PREFILTER_COMMON_MIN, int(len(choices) * PREFILTER_COMMON_SHARE))
        rare = [p for p in postings if len(p) <= common] or postings
        hits: Counter[int] = Counter()
        for p in rare:
            hits.update(p)
        return [choices[i] for i, _ in hits.most_common(PREFILTER_KEEP)]

    def _grams(self, vocab_id: int, scope: str, choices: list[str]) -> dict[str, list[int]]:
        """Two-character piece → positions in ``choices`` of the names holding it (built
        on first use of a scope; the whole table's at load)."""
        key = (vocab_id, scope)
        grams = self._bigrams.get(key)
        if grams is None:
            grams = {}
            for i, name in enumerate(choices):
                for g in {name[k : k + 2] for k in range(len(name) - 1)}:
                    grams.setdefault(g, []).append(i)
            self._bigrams[key] = grams
        return grams

    # -- the cascade -----------------------------------------------------------------------
    def geocode(self, conn: Any, query: str) -> GeocodeResult:
        """Geocode one free-text address (or an address code) over psycopg."""
        return self.geocode_many(conn, [query])[0]

    def geocode_many(self, conn: Any, queries: Iterable[str]) -> list[GeocodeResult]:
        """Geocode a batch over a psycopg connection (tuple rows)."""
        job = self._job(list(queries))
        done, value = _step(job, None)
        while not done:
            done, value = _step(job, answer(conn, value))
        return value

    async def geocode_many_async(
        self, pool: Any, queries: Sequence[str], *, offload: bool = True
    ) -> list[GeocodeResult]:
        """Geocode a batch over an asyncpg pool, holding a connection only while a phase's
        lookups run; ``offload`` runs the parsing and matching in a thread, off the event
        loop."""
        job = self._job(list(queries))

        async def step(value: Any) -> tuple[bool, Any]:
            return await asyncio.to_thread(_step, job, value) if offload else _step(job, value)

        done, value = await step(None)
        while not done:
            async with pool.acquire() as conn:
                found = await answer_async(conn, value)
            done, value = await step(found)
        return value

    def _job(self, queries: list[str]) -> Job:
        """The cascade over ``queries``: yields the lookups of each phase, returns the
        results in the order of ``queries``."""
        results = [GeocodeResult(query=q) for q in queries]
        hits: dict[int, tuple[int, str, float]] = {}  # query → (row id, level, confidence)
        codes = {i: m.group(1) for i, q in enumerate(queries) if q and (m := _CODE.match(q))}
        if codes:
            (found,) = yield [Ask("code", tuple({(c,) for c in codes.values()}))]
            for i, c in codes.items():
                if (v := found.get((c,))) is not None:
                    hits[i] = (v[0], _row_level(v[1], v[2]), 1.0)
        todo: list[_Query] = []
        for i, q in enumerate(queries):
            if i in hits or not q or not q.strip():
                continue
            p = parse(q, self.gazetteer)
            results[i].parsed_address = p
            if self._elsewhere(p):
                continue
            todo.append(
                _Query(
                    i,
                    p,
                    self._resolve(
                        p.estate, self.known_estates, self.estates_in, p, self.stored_estate
                    ),
                    self._resolve(p.road, self.known_roads, self.roads_in, p, self.stored_road),
                    _key(p.house_number),
                    _key(p.building),
                    _key(p.room),
                )  # fmt: skip
            )
        # 1. the full address, and the places at each candidate road's number
        full, number = yield [
            Ask("full", _distinct((t.p.normalised,) for t in todo if t.p.normalised)),
            Ask("number", _distinct((r, t.num) for t in todo if t.num for r, _ in t.roads)),
        ]
        f = _Found(number=number)
        rest = []
        for t in todo:
            if (v := full.get((t.p.normalised,))) is not None:
                hits[t.at] = (v[0], _row_level(v[1], v[2]), 1.0)
                continue
            self._pick_road(t, f)
            places = [name for name, _ in t.estates]
            if t.road and t.num:
                places += f.number.get((t.road, t.num), [])
            t.places = places
            rest.append(t)
        # 2. rooms, buildings and houses of every candidate place
        f.room, f.building, f.place = yield [
            Ask("room", _distinct((pl, t.bkey, t.rkey) for t in rest if t.rkey for pl in t.places)),
            Ask("building", _distinct((pl, t.bkey) for t in rest if t.bkey for pl in t.places)),
            Ask("place", _distinct((pl,) for t in rest for pl in t.places)),
        ]
        fallbacks: list[tuple[_Query, list[tuple[str, str, float]]]] = []
        for t in rest:
            decided = self._components(t, f)
            if isinstance(decided, tuple):
                hits[t.at] = decided
            else:
                fallbacks.append((t, decided))
        # 3. representatives of the roads, communities, streets and districts fallen back to
        # (only of names some address carries, so the cache stays within the vocabulary)
        wanted = {
            (lvl, name) for _, chain in fallbacks for lvl, name, _ in chain
            if (lvl, name) in self.means
        }  # fmt: skip
        missing = sorted(k for k in wanted if k not in self.representative)
        if missing:
            answers = yield [
                Ask(f"rep:{lvl}", tuple((n, *self.means[(v, n)]) for v, n in missing if v == lvl))
                for lvl in ADDRESS_FALLBACKS
            ]
            for lvl, reps in zip(ADDRESS_FALLBACKS, answers, strict=True):
                for lv, name in missing:
                    if lv == lvl:
                        self.representative[(lvl, name)] = reps.get((name,))
        for t, chain in fallbacks:
            for lvl, name, s in chain:
                if (lvl, name) not in self.means:
                    continue
                if (rep := self.representative.get((lvl, name))) is not None:
                    hits[t.at] = (rep, lvl, s)
                    break
        # 4. the matched rows
        if hits:
            (rows,) = yield [Ask("row", tuple(sorted({h[0] for h in hits.values()})))]
            for at, (i, level, conf) in hits.items():
                _fill(results[at], rows[i], level, conf)
        return results

    def _elsewhere(self, p: ParsedAddress) -> bool:
        """The query names a province or city none of the standard addresses is in."""
        if p.province and self.provinces and p.province not in self.provinces:
            return True
        return bool(p.city and self.cities and p.city not in self.cities)

    def _pick_road(self, t: _Query, f: _Found) -> None:
        """One road: the only candidate, or among misspelt ones the one with this number."""
        t.road, t.rs = t.roads[0] if len(t.roads) == 1 else (None, 0.0)
        if len(t.roads) > 1 and t.num:
            hits = [(r, s) for r, s in t.roads if (r, t.num) in f.number]
            t.road, t.rs = hits[0] if len(hits) == 1 else (None, 0.0)

    def _pick_estate(self, t: _Query, f: _Found) -> tuple[str | None, float]:
        """One estate among tied candidates: the one the road/number or the building and
        room confirm; ``None`` when still ambiguous."""
        cands = t.estates
        if len(cands) <= 1:
            return cands[0] if cands else (None, 0.0)
        if t.road and t.num:
            hits = [c for c in cands if self.estate_road.get(c[0]) == (t.road, t.num)]
            if len(hits) == 1:
                return hits[0][0], max(hits[0][1], 0.9)
        if t.rkey:
            hits = [c for c in cands if (c[0], t.bkey, t.rkey) in f.room]
        elif t.bkey:
            hits = [c for c in cands if (c[0], t.bkey) in f.building]
        else:
            hits = []
        if len(hits) == 1:
            return hits[0][0], hits[0][1] * 0.95
        return None, 0.0

    def _components(
        self, t: _Query, f: _Found
    ) -> tuple[int, str, float] | list[tuple[str, str, float]]:
        """The matched row (id, level, confidence), or the fallback levels to try."""
        conf = 1.0
        road, rs, num = t.road, t.rs, t.num
        estate, es = self._pick_estate(t, f)
        place: str | None = None
        if estate:
            place, conf = estate, es
            er = self.estate_road.get(estate)
            if er and road and num:
                if er == (road, num):
                    conf = max(conf, rs)  # the road and number confirm the estate
                elif er[0] != road and es < 1.0:
                    conf *= 0.85  # two disagreeing clues
        elif road and num and (places := f.number.get((road, num))):
            place, conf = (places[0], rs) if len(places) == 1 else (None, rs)
            if place is None:  # several places at one number: the estate decides
                place = places[0]
                conf *= 0.7
        if place is not None:
            bkey, rkey, p = t.bkey, t.rkey, t.p
            if rkey and (room := f.room.get((place, bkey, rkey))) is not None:
                i, unit = room
                if not p.unit or _key(p.unit) == _key(unit):
                    room_conf = conf if conf >= 0.85 else conf * 0.8
                    if room_conf >= 0.7:
                        return i, "room", room_conf
            if bkey and (i := f.building.get((place, bkey))) is not None:
                return i, "building", conf * (0.9 if rkey else 1.0)
            if (i := f.place.get((place,))) is not None:
                if not bkey:
                    return i, "number", conf * (0.9 if rkey else 1.0)
                return i, "number", conf * 0.7
        chain = (
            ("road", road, rs * 0.9 if num else rs),
            ("community", t.p.community, 1.0),
            ("street", t.p.street, 1.0),
            ("district", t.p.district, 1.0),
        )
        return [(lvl, name, s) for lvl, name, s in chain if name]


def _distinct(keys: Iterable[tuple[Any, ...]]) -> tuple[tuple[Any, ...], ...]:
    return tuple(dict.fromkeys(keys))


def _step(job: Job, value: Any) -> tuple[bool, Any]:
    """Advance the cascade: ``(False, lookups)`` or ``(True, results)``."""
    try:
        return False, job.send(value)
    except StopIteration as stop:
        return True, stop.value


def _fill(res: GeocodeResult, row: tuple[Any, ...], level: str, conf: float) -> None:
    _id, res.code, res.full_address, res.lon, res.lat, res.grid_code = row
    res.match_level = level
    res.score = LEVEL_SCORES[level] * max(0.0, min(conf, 1.0))
