"""The MapLibre style: built from the catalog, every URL on this server, no external URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from layers.catalog import CATALOG, WARNING_LEVELS
from layers.seed import load_demo
from tiles.style import WARNING_COLORS, build_style

BASE = "http://testserver"


def strings(doc: object) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings(v)


@pytest.fixture
def demo_loaded(settings, tmp_path: Path) -> None:
    load_demo(settings.effective_database_url, settings.data_dir, scale=0.2, seed=3)


async def test_style_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/styles/onemap.json")
    assert r.status_code == 200
    style = r.json()
    assert style["version"] == 8
    assert style["layers"][0]["type"] == "background"
    bg = style["layers"][0]["paint"]["background-color"]
    assert int(bg[1:3], 16) < 0x30 and int(bg[3:5], 16) < 0x30  # dark theme
    assert style["glyphs"] == f"{BASE}/fonts/{{fontstack}}/{{range}}.pbf"
    assert "sprite" not in style
    # Every catalog layer appears, with its catalog colour and kind.
    by_source_layer: dict[str, list[dict]] = {}
    for lyr in style["layers"]:
        by_source_layer.setdefault(lyr.get("source-layer", ""), []).append(lyr)
    for layer in CATALOG.values():
        drawn = by_source_layer.get(layer.id)
        assert drawn, layer.id
        assert any(d["type"] == layer.style.kind for d in drawn), layer.id
        main = next(d for d in drawn if d["type"] == layer.style.kind)
        assert main["minzoom"] == layer.min_zoom
        assert main["layout"]["visibility"] == ("visible" if layer.default_on else "none")
        if layer.id != "warnings":
            assert layer.style.color in str(main["paint"]), layer.id
    warn = next(d for d in by_source_layer["warnings"] if d["type"] == "fill")
    colour = warn["paint"]["fill-color"]
    assert colour[:2] == ["match", ["get", "level"]]
    for level in WARNING_LEVELS:
        assert colour[colour.index(level) + 1] == WARNING_COLORS[level]
    assert style["sources"]["hillshade"]["type"] == "raster"
    assert any(lyr.get("source") == "hillshade" for lyr in style["layers"])
    assert any(lyr.get("source-layer") == "risk" for lyr in style["layers"])


async def test_no_external_url_and_every_source_answers(
    client: httpx.AsyncClient, demo_loaded: None
) -> None:
    style = (await client.get("/styles/onemap.json")).json()
    urls = [s for s in strings(style) if "://" in s or s.startswith("//")]
    assert urls, "the style has no URL at all"
    for url in urls:
        assert url.startswith(BASE + "/"), url
    for name, source in style["sources"].items():
        assert source["url"].startswith(BASE + "/")
        r = await client.get(source["url"].removeprefix(BASE))
        assert r.status_code == 200, (name, r.text)
        tilejson = r.json()
        for template in tilejson["tiles"]:
            assert template.startswith(BASE + "/")
            # One tile of each source answers (200/204 for data, never an error).
            t = (
                template.removeprefix(BASE)
                .replace("{z}", "13")
                .replace("{x}", "6676")
                .replace("{y}", "3570")
            )
            assert (await client.get(t)).status_code in (200, 204), t
        if source["type"] == "vector":
            ids = {v["id"] for v in tilejson["vector_layers"]}
            used = {lyr["source-layer"] for lyr in style["layers"] if lyr.get("source") == name}
            assert used <= ids


def test_style_follows_the_base_url_and_role() -> None:
    style = build_style(CATALOG, "https://map.example.gov.cn/onemap/")
    assert style["glyphs"].startswith("https://map.example.gov.cn/onemap/fonts/")
    assert all(
        s["url"].startswith("https://map.example.gov.cn/onemap/") for s in style["sources"].values()
    )
    anon = build_style(CATALOG, BASE, role="anonymous")
    assert {lyr.get("source-layer") for lyr in anon["layers"]} >= {"admin_areas", "roads"}
