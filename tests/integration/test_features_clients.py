"""Real OGC API Features clients against a live server: GDAL's OAPIF driver and OWSLib."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg

from tests.support.district import N_VENUES, seed

OGRINFO = "/usr/bin/ogrinfo"
OGR2OGR = "/usr/bin/ogr2ogr"


def db_rows(db_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def test_gdal_oapif(db_url: str, live_server_factory, tmp_path: Path) -> None:
    seed(db_url)
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url})
    url = f"OAPIF:{server.base_url}/collections/venues"
    env = {"GDAL_HTTP_TIMEOUT": "20", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"}
    info = subprocess.run(
        [OGRINFO, "-ro", "-so", url, "venues"], capture_output=True, text=True, timeout=60, env=env
    )
    assert info.returncode == 0, info.stderr
    out = info.stdout
    assert f"Feature Count: {N_VENUES}" in out, out
    for field in ("name: String", "category: String", "capacity: Integer", "key_site: "):
        assert field in out, out
    assert "Extent: (108.260000, 22.800000) - (108.318000, 22.800000)" in out, out

    dest = tmp_path / "venues.geojson"
    conv = subprocess.run(
        [OGR2OGR, "-f", "GeoJSON", str(dest), url, "-oo", "PAGE_SIZE=7"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert conv.returncode == 0, conv.stderr
    got = json.loads(dest.read_text())["features"]
    expected = db_rows(db_url, "SELECT code, name, capacity FROM venues ORDER BY id")
    assert [
        (f["properties"]["code"], f["properties"]["name"], f["properties"]["capacity"]) for f in got
    ] == [tuple(r) for r in expected]

    # attribute + spatial filters (GDAL may send them as CQL2 / bbox or filter locally)
    conv = subprocess.run(
        [
            OGR2OGR,
            "-f",
            "GeoJSON",
            str(tmp_path / "s.geojson"),
            url,
            "-where",
            "category = 'school'",
            "-spat",
            "108.259",
            "22.79",
            "108.281",
            "22.81",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert conv.returncode == 0, conv.stderr
    got = json.loads((tmp_path / "s.geojson").read_text())["features"]
    expected = db_rows(
        db_url,
        "SELECT code FROM venues WHERE category = 'school' AND "
        "ST_Intersects(geom, ST_MakeEnvelope(108.259, 22.79, 108.281, 22.81, 4326)) ORDER BY id",
    )
    assert [f["properties"]["code"] for f in got] == [r[0] for r in expected] != []


def test_owslib_features(db_url: str, live_server_factory) -> None:
    from owslib.ogcapi.features import Features

    seed(db_url)
    server = live_server_factory({"ONEMAP_DATABASE_URL": db_url})
    api = Features(server.base_url)
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in api.conformance()["conformsTo"]
    )
    ids = [c["id"] for c in api.collections()["collections"]]
    assert "venues" in ids and "grids" in ids
    assert api.collection("venues")["id"] == "venues"
    q = api.collection_queryables("grids")
    assert "name" in q["properties"] and "worker_phone" not in q["properties"]

    items = api.collection_items("venues", limit=100)
    assert items["numberMatched"] == N_VENUES == len(items["features"])
    by_code = {f["id"]: f["properties"] for f in items["features"]}
    for code, name, cat, cap in db_rows(
        db_url, "SELECT code, name, category, capacity FROM venues"
    ):
        assert by_code[code]["name"] == name
        assert (by_code[code]["category"], by_code[code]["capacity"]) == (cat, cap)

    schools = api.collection_items(
        "venues", limit=100, filter="category = 'school' AND capacity >= 90"
    )
    n = db_rows(db_url, "SELECT count(*) FROM venues WHERE category = 'school' AND capacity >= 90")[
        0
    ][0]
    assert schools["numberMatched"] == n == len(schools["features"]) > 0
    one = api.collection_item("venues", "V03")
    assert one["properties"]["name"] == "竹溪第3小学"
    grids = api.collection_items("grids")
    assert grids["numberMatched"] == 2
    assert "worker_name" not in grids["features"][0]["properties"]
