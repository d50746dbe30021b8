"""The /screen page, its allow-listed npm assets under /vendor and the map's glyphs, over
HTTP through the app (the browser tests are in test_screen_browser.py)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest

from layers.catalog import CATALOG
from tiles.style import FONT_STACK

FONT = FONT_STACK[0]


class _Refs(HTMLParser):
    """Script/link references and the embedded catalog of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.catalog = ""
        self._in_catalog = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"] or "")
        self._in_catalog = tag == "script" and a.get("id") == "onemap-catalog"

    def handle_data(self, data: str) -> None:
        if self._in_catalog:
            self.catalog += data

    def handle_endtag(self, tag: str) -> None:
        self._in_catalog = False


def glyph_ids(pbf: bytes) -> tuple[list[str], set[int]]:
    """Font stack names and glyph code points of a MapLibre glyphs PBF (protobuf:
    glyphs{1: fontstack{1: name, 2: range, 3: glyph{1: id, …}}})."""

    def varint(buf: bytes, pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos
            shift += 7

    def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
        out: list[tuple[int, int | bytes]] = []
        pos = 0
        while pos < len(buf):
            key, pos = varint(buf, pos)
            if key & 7 == 2:
                n, pos = varint(buf, pos)
                out.append((key >> 3, buf[pos : pos + n]))
                pos += n
            elif key & 7 == 0:
                v, pos = varint(buf, pos)
                out.append((key >> 3, v))
            else:
                raise AssertionError(f"unexpected wire type {key & 7}")
        return out

    names, ids = [], set()
    for num, stack in fields(pbf):
        assert num == 1 and isinstance(stack, bytes)
        for f, value in fields(stack):
            if f == 1:
                assert isinstance(value, bytes)
                names.append(value.decode())
            elif f == 3:
                assert isinstance(value, bytes)
                ids.update(v for g, v in fields(value) if g == 1 and isinstance(v, int))
    return names, ids


async def test_page_in_chinese_and_english(client: httpx.AsyncClient) -> None:
    zh = await client.get("/screen")
    assert zh.status_code == 200
    assert zh.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in zh.text and "指挥中心" in zh.text
    en = await client.get("/screen?lang=en")
    assert '<html lang="en">' in en.text and "Command Centre" in en.text
    bad = await client.get("/screen?lang=fr")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


async def test_page_loads_only_files_of_this_server(client: httpx.AsyncClient) -> None:
    page = await client.get("/screen")
    refs = _Refs()
    refs.feed(page.text)
    assert len(refs.refs) >= 4
    for ref in refs.refs:
        if ref.startswith("data:"):
            continue
        assert ref.startswith("/") and not ref.startswith("//"), ref
        r = await client.get(ref)
        assert r.status_code == 200, (ref, r.text[:200])
        if ref.endswith((".js", ".mjs")):
            assert r.headers["content-type"].startswith("text/javascript"), ref
            # Module imports inside our own scripts stay on this server too.
            for spec in re.findall(r"from '([^']+)'|import\('([^']+)'\)", r.text):
                target = next(s for s in spec if s)
                assert target.startswith(("/", "./")), (ref, target)
        if ref.endswith(".css"):
            assert r.headers["content-type"].startswith("text/css"), ref
    # The catalog is embedded once, as data: every layer, with its sensitive fields flagged.
    catalog = json.loads(refs.catalog)
    assert set(catalog) == set(CATALOG)
    for layer in CATALOG.values():
        sent = {p["name"]: p["sensitive"] for p in catalog[layer.id]["properties"]}
        assert sent == {p.name: p.sensitive for p in layer.properties}
        assert catalog[layer.id]["title_zh"] == layer.title_zh


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/maplibre-gl/dist/maplibre-gl.mjs",
        "/vendor/maplibre-gl/dist/maplibre-gl-worker.mjs",
        "/vendor/maplibre-gl/dist/maplibre-gl.css",
        "/vendor/echarts/dist/echarts.esm.min.mjs",
        "/vendor/leaflet/dist/leaflet.js",
        "/vendor/leaflet/dist/leaflet.css",
        "/vendor/leaflet/dist/images/marker-icon.png",
    ],
)
async def test_vendor_files_installed_from_npm(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200, r.text[:200]
    assert len(r.content) > 1000
    expected = {".mjs": "text/javascript", ".js": "text/javascript", ".css": "text/css"}
    suffix = path[path.rindex(".") :]
    assert r.headers["content-type"].startswith(expected.get(suffix, "image/png"))
    assert "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/maplibre-gl/package.json",
        "/vendor/maplibre-gl/dist/maplibre-gl-dev.mjs",
        "/vendor/maplibre-gl/dist/../package.json",
        "/vendor/maplibre-gl/dist/..%2F..%2F..%2Fpackage.json",
        "/vendor/leaflet/dist/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/vendor/fontnik/index.js",
        "/vendor/..%2Fpyproject.toml/x",
        "/vendor/leaflet/",
        "/screen/static/..%2F..%2Fapp.py",
        "/screen/static/assets.py",
        "/screen/static/build-glyphs.cjs",
    ],
)
async def test_only_allow_listed_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.json()["code"] in ("not_found", "asset_not_installed")
    assert "[tool" not in r.text and "import" not in r.text


async def test_glyphs_for_latin_digits_and_cjk_punctuation(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/fonts/{quote(FONT)}/0-255.pbf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    names, ids = glyph_ids(r.content)
    assert names == [FONT]  # one font stack (not one per face of the .ttc)
    assert {ord(c) for c in "0123456789 ABCxyz-.()"} <= ids
    assert all(0 <= i <= 255 for i in ids)
    # CJK symbols and punctuation (、。《》) and full-width forms (（）０) are served too.
    names, ids = glyph_ids((await client.get(f"/fonts/{quote(FONT)}/12288-12543.pbf")).content)
    assert {ord(c) for c in "、。《》"} <= ids
    names, ids = glyph_ids((await client.get(f"/fonts/{quote(FONT)}/65280-65535.pbf")).content)
    assert {ord(c) for c in "（）０"} <= ids
    # MapLibre sends the whole font stack; the first font we have answers.
    r = await client.get(f"/fonts/{quote('Unknown Font,' + FONT)}/0-255.pbf")
    assert r.status_code == 200


async def test_glyph_errors(client: httpx.AsyncClient) -> None:
    # Ideographs are drawn by the browser's own CJK font (localIdeographFontFamily).
    r = await client.get(f"/fonts/{quote(FONT)}/19968-20223.pbf")
    assert r.status_code == 404 and r.json()["code"] == "no_glyphs"
    for bad in ("0-256", "1-256", "65536-65791", "abc", "0-255-1"):
        r = await client.get(f"/fonts/{quote(FONT)}/{bad}.pbf")
        assert r.status_code == 404 and r.json()["code"] == "not_found", bad
    r = await client.get(f"/fonts/{quote('../../etc')}/0-255.pbf")
    assert r.status_code == 404
    r = await client.get("/fonts/Arial%20Unicode%20MS%20Regular/0-255.pbf")
    assert r.status_code == 404 and FONT in r.json()["detail"]


async def test_every_label_font_of_the_style_is_served(client: httpx.AsyncClient) -> None:
    style = (await client.get("/styles/onemap.json")).json()
    template = style["glyphs"].removeprefix("http://testserver")
    stacks = {
        ",".join(lyr["layout"]["text-font"])
        for lyr in style["layers"]
        if lyr["type"] == "symbol" and "text-font" in lyr.get("layout", {})
    }
    assert stacks
    for stack in stacks:
        url = template.replace("{fontstack}", quote(stack)).replace("{range}", "0-255")
        assert (await client.get(url)).status_code == 200, stack
