"""SQL-injection corpus against every string parameter: no 5xx and no leak of a canary table."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx
import psycopg
import pytest

CANARY = "CANARY-7f3a9c-密钥"

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE venues; --",
    '" OR 1=1 --',
    "venues; SELECT * FROM canary_secret",
    "' UNION SELECT secret, secret, secret FROM canary_secret --",
    "name) UNION SELECT secret FROM canary_secret --",
    "1; SELECT pg_sleep(5)",
    'code" FROM canary_secret --',
    "$$; SELECT secret FROM canary_secret; $$",
    "name = 'x' OR EXISTS(SELECT 1 FROM canary_secret)",
    "%27%20OR%201%3D1",
    "\\'; SELECT secret FROM canary_secret --",
    "ST_AsText((SELECT secret FROM canary_secret))",
    "name='a' AND (SELECT secret FROM canary_secret) IS NOT NULL",
    "中山路'; DELETE FROM addresses; --",
]


@pytest.fixture
async def seeded(client: httpx.AsyncClient, db_url: str) -> httpx.AsyncClient:
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE canary_secret (secret text)")
        conn.execute("INSERT INTO canary_secret VALUES (%s)", (CANARY,))
        conn.execute(
            "INSERT INTO venues (code, name, category, geom) VALUES "
            "('V1', '中山纪念中学', 'school', ST_SetSRID(ST_MakePoint(113.4, 22.5), 4326))"
        )
    return client


def _urls(payload: str) -> list[str]:
    q = urllib.parse.quote(payload, safe="")
    return [
        f"/collections/{q}",
        f"/collections/{q}/items",
        f"/collections/{q}/queryables",
        f"/collections/venues/items/{q}",
        f"/collections/venues/items?name={q}",
        f"/collections/venues/items?{q}=1",
        f"/collections/venues/items?filter={q}",
        f"/collections/venues/items?filter={q}&filter-lang=cql2-json",
        f"/collections/venues/items?sortby={q}",
        f"/collections/venues/items?properties={q}",
        f"/collections/venues/items?datetime={q}",
        f"/collections/venues/items?bbox={q}",
        f"/collections/venues/items?bbox-crs={q}",
        f"/collections/venues/items?f={q}",
        f"/collections/venues/items?limit={q}",
        f"/geo/nearby?layer={q}&lon=113.4&lat=22.5",
        f"/geo/nearby?layer=venues&lon=113.4&lat=22.5&category={q}",
        f"/geo/locate?lon={q}&lat=22.5",
    ]


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_no_5xx_and_no_leak(seeded: httpx.AsyncClient, db_url: str, payload: str) -> None:
    for url in _urls(payload):
        r = await seeded.get(url, timeout=10)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        assert CANARY not in r.text, url
    body = {"geometry": {"type": "Point", "coordinates": [113.4, 22.5]}, "layers": [payload]}
    r = await seeded.post("/geo/within", json=body)
    assert r.status_code < 500 and CANARY not in r.text
    # Nothing was dropped or deleted.
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM venues").fetchone() == (1,)
        assert conn.execute("SELECT secret FROM canary_secret").fetchone() == (CANARY,)


async def test_cql2_text_injection_is_a_400(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get(
        "/collections/venues/items",
        params={"filter": "name = 'x') OR 1=1; SELECT secret FROM canary_secret --"},
    )
    assert r.status_code == 400
    assert CANARY not in r.text


#: Values for path parameters that are not the one being injected.
PATH_DEFAULTS = {
    "collection_id": "venues",
    "collectionId": "venues",
    "feature_id": "V1",
    "featureId": "V1",
    "tileMatrixSetId": "WebMercatorQuad",
    "z": "14",
    "x": "13352",
    "y": "7140",
    "layers": "venues",
    "dataset": "dem",
    "fontstack": "Noto Sans Regular",
    "glyph_range": "0-255",
    "run_id": "1",
    "cell": "8941aa8c1a3ffff",
    "n": "1",
    "kind": "waterlogging",
    "package": "maplibre-gl",
    "path": "dist/maplibre-gl.js",
    "code": "W1",
}
#: Required query parameters that are not the one being injected.
QUERY_DEFAULTS = {"layer": "venues", "run": "1", "lon": "113.4", "lat": "22.5"}
#: A few payloads of each kind for the sweep over every operation (the whole corpus
#: runs against the features and geo parameters above).
SWEEP = [INJECTIONS[i] for i in (0, 1, 4, 6, 10, 14)]


def _is_string(schema: dict) -> bool:
    types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    return "string" in types


def _streams(op: dict) -> bool:
    """An endless response (Server-Sent Events) is not swept: it never completes."""
    content = op.get("responses", {}).get("200", {}).get("content", {})
    return "text/event-stream" in content


def _sweep_urls(spec: dict, payload: str) -> list[str]:
    """Every GET operation of the OpenAPI document with each string parameter (path or
    query) set to ``payload`` in turn, the other parameters at harmless defaults."""
    q = urllib.parse.quote(payload, safe="")
    urls = []
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        if op is None or _streams(op):
            continue
        params = op.get("parameters", [])
        for target in params:
            if not _is_string(target["schema"]):
                continue
            url = path
            query = {}
            for p in params:
                value = q if p is target else None
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", value or PATH_DEFAULTS[p["name"]])
                elif value is not None:
                    query[p["name"]] = value
                elif p.get("required"):
                    query[p["name"]] = QUERY_DEFAULTS[p["name"]]
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            urls.append(url + ("?" + qs if qs else ""))
    return urls


async def test_every_get_parameter_of_the_api(seeded: httpx.AsyncClient, db_url: str) -> None:
    """The OpenAPI document names every string parameter; each gets the sweep: no 5xx, no
    canary, nothing deleted.  New endpoints are covered as soon as they exist."""
    spec = (await seeded.get("/openapi.json")).json()
    tried = 0
    for payload in SWEEP:
        for url in _sweep_urls(spec, payload):
            # The in-process transport ignores client timeouts: bound each request here.
            r = await asyncio.wait_for(seeded.get(url), timeout=30)
            assert r.status_code < 500, (url, r.status_code, r.text[:300])
            assert CANARY not in r.text, url
            tried += 1
    assert tried >= 50 * len(SWEEP)  # the sweep really went through the API
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM venues").fetchone() == (1,)
        assert conn.execute("SELECT secret FROM canary_secret").fetchone() == (CANARY,)
