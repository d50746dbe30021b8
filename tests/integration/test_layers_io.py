"""Import and export through the CLI and the library, against a real PostGIS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from layers.errors import ImportFailed, UnknownLayer
from layers.io import export_layer, import_file, read_layer

ONEMAP = str(Path(sys.executable).parent / "onemap")


def onemap(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONEMAP_DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run([ONEMAP, *args], env=env, capture_output=True, text=True, timeout=300)


def venues_csv(path: Path, n: int, prefix: str = "V", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pd.DataFrame(
        {
            "code": [f"{prefix}{i:07d}" for i in range(n)],
            "name": [f"第{i}号商店" for i in range(n)],
            "category": rng.choice(["shop", "school", "market"], n),
            "key_site": rng.choice(["true", "false"], n),
            "capacity": rng.integers(10, 500, n),
            "lon": 113.35 + rng.random(n) * 0.1,
            "lat": 22.45 + rng.random(n) * 0.1,
        }
    ).to_csv(path, index=False)
    return path


def fingerprint(db_url: str, table: str) -> tuple[int, str]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), "
            "md5(coalesce(string_agg(code || ST_AsText(geom), ',' ORDER BY code), '')) "
            f"FROM {table}"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def test_import_csv_then_export_round_trip(db_url: str, tmp_path: Path) -> None:
    src = venues_csv(tmp_path / "venues.csv", 250)
    result = import_file(db_url, src, "venues")
    assert (result.rows_before, result.rows_after) == (0, 250)
    frame = read_layer(db_url, "venues")
    assert len(frame) == 250 and frame.crs.to_epsg() == 4326
    assert frame["key_site"].isin([True, False]).all()
    original = pd.read_csv(src)
    row = frame.set_index("code").loc["V0000007"]
    assert row["name"] == "第7号商店"
    assert row.geometry.x == pytest.approx(original.loc[7, "lon"])

    for suffix in (".gpkg", ".geojson", ".csv"):
        out = tmp_path / f"out{suffix}"
        assert export_layer(db_url, "venues", out) == 250
        before = fingerprint(db_url, "venues")
        again = import_file(db_url, out, "venues")
        assert again.rows_after == 250
        assert fingerprint(db_url, "venues")[0] == before[0]
        assert set(read_layer(db_url, "venues")["code"]) == set(original["code"])


def test_field_map_and_crs(db_url: str, tmp_path: Path) -> None:
    # Web-Mercator coordinates with Chinese column names.
    x, y = 12_623_000.0, 2_571_000.0
    src = tmp_path / "rivers.csv"
    pd.DataFrame(
        {"编号": ["R1"], "名称": ["石岐河"], "wkt": [f"LINESTRING({x} {y}, {x + 500} {y + 500})"]}
    ).to_csv(src, index=False)
    r = onemap(
        db_url,
        "import",
        str(src),
        "--layer",
        "rivers",
        "--field-map",
        "编号=code",
        "--field-map",
        "名称=name",
        "--crs",
        "EPSG:3857",
    )
    assert r.returncode == 0, r.stderr
    frame = read_layer(db_url, "rivers")
    assert frame.loc[0, "name"] == "石岐河"
    geom = frame.geometry.iloc[0]
    assert geom.geom_type == "MultiLineString"  # promoted to the layer's type
    lon, lat = geom.geoms[0].coords[0]
    from pyproj import Transformer

    want = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    assert (lon, lat) == pytest.approx(want, abs=1e-7)
    assert 113 < lon < 114 and 22 < lat < 23


BAD_INPUTS = {
    "truncated.geojson": (
        lambda p: p.write_text('{"type": "FeatureCollection", "features": [{"type": "Feat'),
        "cannot read",
    ),
    "latin1.csv": (
        lambda p: p.write_bytes(
            "code,name,category,lon,lat\nA1,caf\xe9,shop,113.4,22.5\n".encode("latin-1")
        ),
        "not valid UTF-8",
    ),
    "bowtie.geojson": (
        lambda p: p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"code": "G1", "name": "x"},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                            },
                        }
                    ],
                }
            )
        ),
        "row 1: invalid geometry: Self-intersection",
    ),
    "no_category.csv": (
        lambda p: p.write_text("code,name,lon,lat\nA1,店,113.4,22.5\n"),
        "required field 'category' is missing",
    ),
    "bad_category.csv": (
        lambda p: p.write_text(
            "code,name,category,lon,lat\nA1,店,shop,113.4,22.5\nA2,店,spaceport,113.4,22.5\n"
        ),
        "row 2: category='spaceport' is not one of",
    ),
    "lines_for_points.geojson": (
        lambda p: p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"code": "L1", "name": "x", "category": "shop"},
                            "geometry": {
                                "type": "LineString",
                                "coordinates": [[113.4, 22.5], [113.5, 22.6]],
                            },
                        }
                    ],
                }
            )
        ),
        "row 1: geometry type LineString does not match layer 'venues' (Point)",
    ),
    "dup.csv": (
        lambda p: p.write_text(
            "code,name,category,lon,lat\nA1,店,shop,113.4,22.5\nA1,店,shop,113.4,22.5\n"
        ),
        "row 2: duplicate code 'A1'",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_leaves_layer_untouched(db_url: str, tmp_path: Path, name: str) -> None:
    import_file(db_url, venues_csv(tmp_path / "good.csv", 20), "venues")
    before = fingerprint(db_url, "venues")
    make, message = BAD_INPUTS[name]
    bad = tmp_path / name
    make(bad)
    layer = "grids" if name.startswith("bowtie") else "venues"
    r = onemap(db_url, "import", str(bad), "--layer", layer)
    assert r.returncode != 0
    err = " ".join(r.stderr.split())
    assert str(bad) in err and message in err, err
    assert "left unchanged" in err
    assert fingerprint(db_url, "venues") == before


def test_unknown_crs_and_layer(db_url: str, tmp_path: Path) -> None:
    src = venues_csv(tmp_path / "v.csv", 5)
    with pytest.raises(ImportFailed, match="unknown CRS 'EPSG:999999'"):
        import_file(db_url, src, "venues", crs="EPSG:999999")
    with pytest.raises(UnknownLayer, match="unknown layer 'nope'"):
        import_file(db_url, src, "nope")


def test_broken_reference_rolls_back(db_url: str, tmp_path: Path) -> None:
    """An address naming a grid that does not exist fails at commit; nothing changes."""
    src = tmp_path / "addr.csv"
    pd.DataFrame(
        {
            "code": ["A1"],
            "full_address": ["某路1号"],
            "grid_code": ["NO-SUCH-GRID"],
            "lon": [113.4],
            "lat": [22.5],
        }
    ).to_csv(src, index=False)
    with pytest.raises(ImportFailed, match="broken reference"):
        import_file(db_url, src, "addresses")
    assert fingerprint(db_url, "addresses")[0] == 0


def test_export_refuses_bad_target(db_url: str, tmp_path: Path) -> None:
    r = onemap(db_url, "export", "venues", str(tmp_path / "x.shp"))
    assert r.returncode != 0 and "unsupported output type" in r.stderr
    r = onemap(db_url, "export", "venues", str(tmp_path / "missing-dir" / "x.gpkg"))
    assert r.returncode != 0 and "does not exist" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["COPY", "INSERT INTO"])
def test_sigkill_midway_keeps_previous_rows(db_url: str, tmp_path: Path, phase: str) -> None:
    """Killed while staging (COPY) or after the old rows were deleted (INSERT): no change."""
    import_file(db_url, venues_csv(tmp_path / "old.csv", 100, prefix="OLD"), "venues")
    before = fingerprint(db_url, "venues")
    big = venues_csv(tmp_path / "big.csv", 600_000, prefix="NEW", seed=1)

    env = {**os.environ, "ONEMAP_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [ONEMAP, "import", str(big), "--layer", "venues"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from urllib.parse import urlsplit

    dbname = urlsplit(db_url).path.lstrip("/")
    copying = False
    deadline = time.monotonic() + 120
    with psycopg.connect(db_url, autocommit=True) as watch:
        while time.monotonic() < deadline and proc.poll() is None:
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND state = 'active' AND query LIKE %s",
                (dbname, phase + "%"),
            ).fetchone()
            if row and row[0]:
                copying = True
                time.sleep(0.3)  # well inside that phase
                break
            time.sleep(0.05)
        assert copying, f"the import never reached its {phase}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # The server notices the dead client and rolls its transaction back.
        while watch.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchone()[0]:
            assert time.monotonic() < deadline + 30
            time.sleep(0.1)
    assert proc.returncode == -signal.SIGKILL
    assert fingerprint(db_url, "venues") == before


@pytest.mark.realdata
def test_import_zhongshan_admin_boundaries(db_url: str, shared_data: Path) -> None:
    path = shared_data / "zhongshan" / "zhongshan_osm_township_community_boundaries.geojson"
    r = onemap(
        db_url,
        "import",
        str(path),
        "--layer",
        "admin_areas",
        "--field-map",
        "osm_relation_id=code",
        "--field-map",
        "admin_level=level",
    )
    assert r.returncode == 0, r.stderr
    with psycopg.connect(db_url) as conn:
        levels = dict(
            conn.execute("SELECT level, count(*) FROM admin_areas GROUP BY level").fetchall()
        )
        invalid = conn.execute(
            "SELECT count(*) FROM admin_areas WHERE NOT ST_IsValid(geom)"
        ).fetchone()
        names = {r[0] for r in conn.execute("SELECT name FROM admin_areas").fetchall()}
    assert levels == {"street": 23, "community": 45}
    assert invalid == (0,)
    assert "坦洲镇" in names
    source = gpd.read_file(path)
    frame = read_layer(db_url, "admin_areas")
    # Same shapes as the source, to the metre.
    src = source.set_index(source["osm_relation_id"].astype(str)).geometry
    got = frame.set_index("code").geometry
    assert shapely.equals_exact(
        np.asarray(got.loc[src.index].values), np.asarray(src.values), tolerance=1e-5
    ).all()


@pytest.mark.realdata
def test_import_guilin_dem_as_cog(db_url: str, shared_data: Path, tmp_path: Path) -> None:
    import rasterio

    path = shared_data / "guilin" / "guilin_oldcity_dem_12p5m_utm49n.tif"
    env_url = db_url
    r = subprocess.run(
        [ONEMAP, "import-raster", str(path), "--name", "guilin-dem"],
        env={**os.environ, "ONEMAP_DATABASE_URL": env_url, "ONEMAP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    cog = tmp_path / "rasters" / "guilin-dem.tif"
    with rasterio.open(path) as src, rasterio.open(cog) as dst:
        assert dst.profile["tiled"] and dst.overviews(1)
        assert dst.crs.to_epsg() == 32649 and (dst.width, dst.height) == (src.width, src.height)
        assert dst.nodata == src.nodata
        a, b = src.read(1), dst.read(1)
        assert np.array_equal(a, b)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT crs, width, bounds_4326 FROM rasters WHERE name = 'guilin-dem'"
        ).fetchone()
    assert row is not None and row[1] == 1132
    west, south, east, north = row[2]
    assert 110.1 < west < east < 110.5 and 25.1 < south < north < 25.4  # central Guilin
    bad = subprocess.run(
        [ONEMAP, "import-raster", str(path), "--name", "Bad Name"],
        env={**os.environ, "ONEMAP_DATABASE_URL": env_url, "ONEMAP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "must match" in bad.stderr


def test_imports_are_audited_and_failures_are_not(db_url: str, tmp_path: Path) -> None:
    import_file(db_url, venues_csv(tmp_path / "v.csv", 3), "venues")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,category,lon,lat\nA1,店,spaceport,113.4,22.5\n")
    with pytest.raises(ImportFailed):
        import_file(db_url, bad, "venues")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT actor, action, target, detail FROM audit_log").fetchall()
    assert len(rows) == 1  # the refused import left no trace but its error message
    actor, action, target, detail = rows[0]
    assert actor.startswith("cli:") and action == "layer.import" and target == "venues"
    assert detail["rows"] == {"venues": 3} and detail["source"].endswith("v.csv")
