"""Headers of the caller are not trusted: generated URLs come from ONEMAP_PUBLIC_URL when set,
Host values can be limited to ONEMAP_ALLOWED_HOSTS, and X-Forwarded-For is believed only
from ONEMAP_TRUSTED_PROXIES (the audit log's client address)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from geo_service.app import create_app
from geo_service.settings import Settings
from layers.keys import create_key
from tests.support.district import seed

PUBLIC = "https://map.example.cn/onemap"
EVIL = {"Host": "evil.example"}


async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def hrefs(doc: object) -> list[str]:
    """Every string in ``doc`` that looks like an absolute URL."""
    text = json.dumps(doc)
    return [part.split('"')[0] for part in text.split('"http')[1:]]


async def test_public_url_is_used_for_every_generated_url(settings: Settings, db_url: str) -> None:
    seed(db_url)
    async for c in app_client(settings.model_copy(update={"public_url": PUBLIC + "/"})):
        docs = [
            (await c.get("/", headers=EVIL)).json(),
            (await c.get("/collections", headers=EVIL)).json(),
            (await c.get("/collections/venues/queryables", headers=EVIL)).json(),
            (await c.get("/collections/venues/items?limit=5&offset=5", headers=EVIL)).json(),
            (await c.get("/collections/venues/items/V01", headers=EVIL)).json(),
            (await c.get("/styles/onemap.json", headers=EVIL)).json(),
            (await c.get("/tiles/venues/tilejson.json", headers=EVIL)).json(),
        ]
        urls = [u for d in docs for u in hrefs(d)]
        ours = [u for u in urls if "evil.example" in u or "testserver" in u]
        assert not ours, ours[:5]
        page = docs[3]
        rels = {lk["rel"]: lk["href"] for lk in page["links"]}
        assert rels["self"] == PUBLIC + "/collections/venues/items?limit=5&offset=5"
        assert rels["next"] == PUBLIC + "/collections/venues/items?limit=5&offset=10"
        assert rels["prev"] == PUBLIC + "/collections/venues/items?limit=5"
        assert docs[6]["tiles"][0].startswith(PUBLIC + "/tiles/venues/")
    # Without it, links follow the request (local use).
    async for c in app_client(settings):
        landing = (await c.get("/", headers={"Host": "localhost:8000"})).json()
        assert landing["links"][0]["href"] == "http://localhost:8000/"


async def test_allowed_hosts(settings: Settings) -> None:
    allowed = settings.model_copy(update={"allowed_hosts": ["map.example.cn", "*.onemap.cn"]})
    async for c in app_client(allowed):
        r = await c.get("/conformance", headers=EVIL)
        assert r.status_code == 400 and r.json()["code"] == "invalid_host"
        for host in ("map.example.cn", "map.example.cn:8443", "a.onemap.cn"):
            assert (await c.get("/conformance", headers={"Host": host})).status_code == 200
    async for c in app_client(settings):  # the default accepts any Host
        assert (await c.get("/conformance", headers=EVIL)).status_code == 200


def _audited_addresses(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT client_addr FROM audit_log WHERE action = 'incident.report' ORDER BY id"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("trusted", "forwarded", "seen"),
    [
        ([], "198.51.100.9", "127.0.0.1"),  # nobody is trusted: the peer is the client
        (["10.0.0.0/8"], "198.51.100.9", "127.0.0.1"),  # the peer is not a trusted proxy
        (["127.0.0.1"], "198.51.100.9", "198.51.100.9"),
        # Only the right-most untrusted hop counts; what the caller wrote left of it is not.
        (["127.0.0.1", "10.0.0.0/8"], "6.6.6.6, 198.51.100.9, 10.1.2.3", "198.51.100.9"),
        (["127.0.0.1"], "not-an-address", "127.0.0.1"),
    ],
)
async def test_forwarded_for_only_from_trusted_proxies(
    settings: Settings, db_url: str, trusted: list[str], forwarded: str, seen: str
) -> None:
    key, _ = create_key(db_url, "值班员", "operator")
    async for c in app_client(settings.model_copy(update={"trusted_proxies": trusted})):
        r = await c.post(
            "/incidents",
            json={"kind": "flood", "lon": 108.27, "lat": 22.78},
            headers={"X-API-Key": key, "X-Forwarded-For": forwarded},
        )
        assert r.status_code == 201, r.text
    assert _audited_addresses(db_url) == [seen]


def test_settings_refuse_bad_proxies_and_public_url() -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        Settings(public_url="map.example.cn")
    assert Settings(public_url=PUBLIC + "/").public_url == PUBLIC
