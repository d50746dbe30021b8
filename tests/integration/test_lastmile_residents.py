"""Residents (实有人口): the import masks and hashes ID numbers and checks tags, the demo
city generates plausible residents, and personal fields stay hidden from anonymous and
viewer callers in features, tiles and CSV."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import mapbox_vector_tile
import morecantile
import numpy as np
import psycopg
import pytest

from layers.catalog import CATALOG, RESIDENT_TAGS
from layers.demo import generate_city
from layers.keys import create_key
from layers.residents import id_matches
from tests.support.emergency_world import add_residents, build_world, id_number

ONEMAP = str(Path(sys.executable).parent / "onemap")
PERSONAL = {"name", "id_number", "id_hash", "phone", "cadre_name", "cadre_phone"}


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _import(url: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ONEMAP, "import", str(path), "--layer", "residents"],
        env={"ONEMAP_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(world, n: int) -> list[dict]:
    rows = []
    for i, (code, (lon, lat)) in enumerate(sorted(world.addresses.items())[:n]):
        rows.append(
            {
                "code": f"R{i}",
                "name": f"居民{i}",
                "id_number": id_number(i).lower(),  # a lower-case x is accepted too
                "phone": f"1390000{i:04d}",
                "birth_year": 1950 + i,
                "tags": "高龄、独居老人" if i % 2 else "",
                "residence_type": "租住",
                "address_code": code,
                "lon": lon,
                "lat": lat,
            }
        )
    return rows


def test_import_masks_and_hashes_id_numbers(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, n_addresses=20)
    rows = _rows(world, 6)
    path = tmp_path / "residents.csv"
    _write_csv(path, rows)
    proc = _import(db_url, path)
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT code, id_number, id_hash, tags FROM residents ORDER BY code"
        ).fetchall()
        dump = " ".join(str(r) for r in conn.execute("SELECT * FROM residents").fetchall())
    assert len(stored) == 6
    for code, masked, digest, tags in stored:
        full = id_number(int(code[1:]))
        assert masked == full[:3] + "*" * 11 + full[-4:]
        assert id_matches(digest, full) and not id_matches(digest, id_number(99))
        assert full not in dump and full[3:14] not in dump  # the middle digits are gone
        assert tags == ("独居老人,高龄" if int(code[1:]) % 2 else None)
    salts = {d.split("$")[0] for _, _, d, _ in stored}
    assert len(salts) == 6  # one salt per row: equal numbers do not give equal hashes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id_number": "44200019500101000"}, "neither an 18-character"),
        ({"id_number": "wrong check"}, "wrong check character"),
        ({"id_number": "442***********0001"}, "needs its id_hash"),
        ({"tags": "独居老人,VIP"}, "unknown tag"),
        ({"residence_type": "借住"}, "residence_type"),
    ],
)
def test_bad_rows_are_refused_and_leave_the_layer(db_url, tmp_path, change, message) -> None:
    world = build_world(db_url, n_addresses=20)
    good = tmp_path / "good.csv"
    _write_csv(good, _rows(world, 3))
    assert _import(db_url, good).returncode == 0
    rows = _rows(world, 5)
    if change.get("id_number") == "wrong check":
        right = id_number(3)
        change = {"id_number": right[:17] + ("0" if right[-1] != "0" else "1")}
    rows[3].update(change)
    bad = tmp_path / "bad.csv"
    _write_csv(bad, rows)
    proc = _import(db_url, bad)
    assert proc.returncode != 0
    assert message in proc.stderr and "row 4" in proc.stderr, proc.stderr
    with psycopg.connect(db_url) as conn:
        n = conn.execute("SELECT count(*) FROM residents").fetchone()
    assert n == (3,)


def test_demo_residents_are_plausible(tmp_path: Path) -> None:
    city = generate_city(tmp_path, scale=0.2, seed=7)
    res, addr = city.layers["residents"], city.layers["addresses"]
    assert 2.2 <= len(res) / len(addr) <= 3.2
    tagged = res["tags"].notna()
    assert 0.10 <= tagged.mean() <= 0.22
    used = {t for s in res["tags"].dropna() for t in s.split(",")}
    assert used == set(RESIDENT_TAGS)
    assert res["id_number"].str.fullmatch(r"\d{3}\*{11}[\dX]{4}").all()
    assert res["id_hash"].str.fullmatch(r"[0-9a-f]{16}\$[0-9a-f]{64}").all()
    # Every resident stands on its address and is in that address's grid.
    a = addr.set_index("code")
    assert res["address_code"].isin(a.index).all()
    assert (res["grid_code"].to_numpy() == a.loc[res["address_code"], "grid_code"].to_numpy()).all()
    at = a.loc[res["address_code"]].geometry
    assert np.array_equal(res.geometry.x, at.x) and np.array_equal(res.geometry.y, at.y)
    # Cadres: 2–4 per grid, each with one name and phone, serving only that grid.
    cadres = res.groupby("cadre_code").agg(
        grids=("grid_code", "nunique"),
        names=("cadre_name", "nunique"),
        phones=("cadre_phone", "nunique"),
    )
    assert (cadres[["grids", "names", "phones"]] == 1).all().all()
    per_grid = res.groupby("grid_code")["cadre_code"].nunique()
    assert per_grid.between(1, 4).all() and per_grid.median() >= 2
    # Tags follow the ages: 高龄 ≥ 80, 婴幼儿 ≤ 3.
    age = 2026 - res["birth_year"]
    has = lambda tag: res["tags"].fillna("").str.contains(tag).to_numpy()  # noqa: E731
    assert (age[has("高龄")] >= 80).all() and (age[has("婴幼儿")] <= 3).all()
    again = generate_city(tmp_path / "again", scale=0.2, seed=7).layers["residents"]
    assert again.drop(columns="geometry").equals(res.drop(columns="geometry"))
    assert np.array_equal(again.geometry.x, res.geometry.x)


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return t.z, t.x, t.y


async def test_personal_fields_hidden_from_anonymous_and_viewer(client, db_url: str) -> None:
    world = build_world(db_url, n_addresses=30)
    residents = add_residents(db_url, world)
    viewer, _ = create_key(db_url, "大屏", "viewer")
    operator, _ = create_key(db_url, "值班", "operator")
    lon, lat = residents[0].lon, residents[0].lat
    z, x, y = _tile(lon, lat, 16)
    for headers, sees in (
        ({}, False),
        ({"X-API-Key": viewer}, False),
        ({"X-API-Key": operator}, True),
    ):
        items = await client.get("/collections/residents/items?limit=100", headers=headers)
        assert items.status_code == 200
        feats = items.json()["features"]
        assert len(feats) == len(residents)
        for f in feats:
            assert bool(PERSONAL & set(f["properties"])) == sees
            assert "tags" in f["properties"] and "cadre_code" in f["properties"]
        one = (
            await client.get(f"/collections/residents/items/{residents[0].code}", headers=headers)
        ).json()
        assert ("phone" in one["properties"]) == sees
        text = (
            await client.get("/collections/residents/items?f=csv&limit=100", headers=headers)
        ).text
        assert ("居民0" in text) == sees and ("13900000000" in text) == sees
        tile = await client.get(f"/tiles/residents/{z}/{x}/{y}.mvt", headers=headers)
        assert tile.status_code == 200
        props = [
            f["properties"]
            for f in mapbox_vector_tile.decode(tile.content)["residents"]["features"]
        ]
        assert props and all(bool(PERSONAL & set(p)) == sees for p in props)
        for field in ("name", "phone", "cadre_phone", "id_number"):
            r = await client.get(
                f"/collections/residents/items?filter={field} LIKE '1%'", headers=headers
            )
            assert (r.status_code == 200) == sees, (field, r.status_code)
    assert {p.name for p in CATALOG["residents"].sensitive_properties} == PERSONAL
