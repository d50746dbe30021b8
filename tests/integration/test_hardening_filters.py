"""CQL2 filters from hostile callers: bounded size and nesting (checked before the ``cql2``
parser, which recurses on a native stack), type-checked expressions and arithmetic errors
as 400s — against a real PostGIS, and a real server process for the crash case."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from geo_service.features.cql import MAX_FILTER_CHARS, MAX_FILTER_DEPTH, text_depth
from tests.support.district import err, seed

ITEMS = "/collections/buildings/items"


def seed_buildings(db_url: str) -> None:
    """The small district plus three buildings of 2, 5 and 30 floors."""
    seed(db_url)
    with psycopg.connect(db_url) as conn:
        for i, floors in enumerate((2, 5, 30)):
            x = 108.26 + i * 0.002
            conn.execute(
                "INSERT INTO buildings (code, address_code, floors, use, geom) VALUES "
                "(%s, 'A0', %s, 'residential', "
                "ST_MakeEnvelope(%s, 22.79, %s + 0.001, 22.791, 4326))",
                (f"B{i}", floors, x, x),
            )


@pytest.fixture
async def buildings(client: httpx.AsyncClient, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    seed_buildings(db_url)
    yield client


async def codes(c: httpx.AsyncClient, filter_: str, lang: str = "cql2-text") -> list[str]:
    r = await c.get(ITEMS, params={"filter": filter_, "filter-lang": lang})
    assert r.status_code == 200, (filter_[:80], r.status_code, r.text[:300])
    return sorted(f["id"] for f in r.json()["features"])


def not_chain(n: int) -> str:
    return "NOT " * n + "code = 'B0'"


def not_chain_json(n: int) -> str:
    node: dict = {"op": "=", "args": [{"property": "code"}, "B0"]}
    for _ in range(n):
        node = {"op": "not", "args": [node]}
    return json.dumps(node)


# --- size and nesting ---------------------------------------------------------------------


async def test_nesting_at_the_bound_is_answered_beyond_it_is_400(
    buildings: httpx.AsyncClient,
) -> None:
    c, n = buildings, MAX_FILTER_DEPTH
    even = ["B0"] if n % 2 == 0 else ["B1", "B2"]
    assert await codes(c, not_chain(n)) == even
    assert (await err(c, f"{ITEMS}?filter={not_chain(n + 1)}"))["code"] == "filter_too_deep"

    parens = "(" * n + "floors > 3" + ")" * n
    assert await codes(c, parens) == ["B1", "B2"]
    deeper = "(" * (n + 1) + "floors > 3" + ")" * (n + 1)
    body = await err(c, ITEMS, params={"filter": deeper})
    assert body["code"] == "filter_too_deep"

    # Arithmetic chains nest without parentheses: floors + 1 + 1 + … is left-nested.
    assert await codes(c, "floors" + " + 1" * n + f" > {n + 4}") == ["B1", "B2"]
    body = await err(c, ITEMS, params={"filter": "floors" + " + 1" * (n + 1) + " > 0"})
    assert body["code"] == "filter_too_deep"

    # cql2-json: the same chain, one more operator for the comparison at the bottom.
    assert await codes(c, not_chain_json(n), "cql2-json") == even
    body = await err(c, ITEMS, params={"filter": not_chain_json(n + 1), "filter-lang": "cql2-json"})
    assert body["code"] == "filter_too_deep"
    # Raw JSON nesting is refused before json.loads (which recurses per level).
    body = await err(c, ITEMS, params={"filter": "[" * 20_000, "filter-lang": "cql2-json"})
    assert body["code"] == "filter_too_deep"


async def test_length_at_the_bound_is_answered_beyond_it_is_400(
    buildings: httpx.AsyncClient,
) -> None:
    head = "code = '"
    at_bound = head + "x" * (MAX_FILTER_CHARS - len(head) - 1) + "'"
    assert len(at_bound) == MAX_FILTER_CHARS
    assert await codes(buildings, at_bound) == []
    body = await err(buildings, ITEMS, params={"filter": at_bound + " "})
    assert body["code"] == "filter_too_long"


def test_text_depth_ignores_literals_numbers_and_geometry() -> None:
    """Signs of numbers, quoted text and WKT coordinates are not nesting."""
    assert text_depth("name = 'NOT NOT ((((((((('") == 0
    assert text_depth('"NOT(((" = 1') == 0
    assert text_depth("capacity IN (-1, -2, -3, -4, -5, -6, -7, -8, -9, -10)") == 1
    wkt = ", ".join(f"-{i}.5 -{i}.25" for i in range(500))
    assert text_depth(f"S_INTERSECTS(geometry, POLYGON(({wkt})))") == 3
    assert text_depth("a = 1e-5 AND b = 2E+3") == 1
    assert text_depth("NOT a = 1 AND NOT b = 2 OR NOT c = 3") == 2
    assert text_depth("a > - - - - 1") == 4


@pytest.mark.slow
def test_hostile_nesting_does_not_kill_the_server(db_url: str, live_server_factory) -> None:
    """The probe's filters against a real server process: a crash inside the parser would
    show as a dead process or a connection error."""
    seed_buildings(db_url)
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, "ONEMAP_LOG_LEVEL": "ERROR"})
    hostile = [
        ("cql2-text", "NOT " * 400 + "code = 'x'"),
        ("cql2-text", "(" * 2000 + "code = 'x'" + ")" * 2000),
        ("cql2-text", "floors" + " + 1" * 2000 + " > 0"),
        ("cql2-json", not_chain_json(400)),
    ]
    with httpx.Client(base_url=server.base_url, timeout=20) as c:
        for lang, f in hostile:
            r = c.get(ITEMS, params={"filter": f, "filter-lang": lang})
            assert r.status_code == 400, (f[:40], r.status_code, r.text[:200])
            assert r.json()["code"] == "filter_too_deep"
        assert server.proc.poll() is None, "the server process died"
        assert c.get("/health").status_code == 200
        assert c.get(ITEMS, params={"filter": "floors > 3"}).json()["numberMatched"] == 2


# --- types and arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "code"),
    [
        ("floors / 0 > 1", "invalid_arithmetic"),
        ("floors * 1e308 * 1e308 > 1", "invalid_arithmetic"),
        ("CASEI(floors) = 'x'", "invalid_filter"),
        ("ACCENTI(floors) = 'x'", "invalid_filter"),
        ("floors LIKE code", "invalid_filter"),
        ("floors BETWEEN 1 AND code", "invalid_filter"),
        ("floors IN (code, 2)", "invalid_filter"),
        ("use + 1 > 2", "invalid_filter"),
        ("floors = 'x'", "invalid_filter"),
        ("code = floors", "invalid_filter"),
    ],
)
async def test_ill_typed_or_failing_arithmetic_is_400(
    buildings: httpx.AsyncClient, filter_: str, code: str
) -> None:
    body = await err(buildings, ITEMS, params={"filter": filter_})
    assert body["code"] == code, body
    assert "SELECT" not in body["detail"]


async def test_well_typed_expressions_still_work(buildings: httpx.AsyncClient) -> None:
    c = buildings
    assert await codes(c, "floors * 2 > 9") == ["B1", "B2"]
    assert await codes(c, "floors / 5 >= 1") == ["B1", "B2"]
    assert await codes(c, "CASEI(use) = casei('RESIDENTIAL') AND floors < 10") == ["B0", "B1"]
    assert await codes(c, "floors BETWEEN 2 AND 5") == ["B0", "B1"]
    assert await codes(c, "floors IN (2, 30)") == ["B0", "B2"]
    assert await codes(c, "code LIKE 'B%' AND NOT floors = 5") == ["B0", "B2"]
