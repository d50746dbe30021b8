"""The demo city in a real PostGIS: counts, grids tile communities, addresses in their grid."""

from __future__ import annotations

import psycopg
import pytest

from layers.seed import database_is_empty, load_demo
from tests.support.pg import demo_database

MINIMUM = {
    "admin_areas": 36,  # 1 district + 5 streets + 30 communities
    "grids": 300,
    "addresses": 20_000,
    "buildings": 10_000,
    "venues": 3_000,
    "cameras": 1_000,
    "sensors": 30,
    "shelters": 30,
    "hazard_sites": 50,
    "rivers": 1,
    "roads": 1,
    "incidents": 100,
}


@pytest.fixture(scope="module")
def demo_db(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory):
    """One database with the scale-1 demo city, shared by the tests of this module."""
    data_dir = tmp_path_factory.mktemp("demo-data")
    with demo_database(pg_admin_url, template_db, "demo_city_module", data_dir, None, 0) as url:
        assert database_is_empty(url)
        yield url, load_demo(url, data_dir, scale=1, seed=42)


def _scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_counts(demo_db) -> None:
    url, result = demo_db
    for layer, minimum in MINIMUM.items():
        n = _scalar(url, f"SELECT count(*) FROM {layer}")
        assert n >= minimum, f"{layer}: {n} < {minimum}"
        assert n == result.counts[layer]
    levels = dict(
        psycopg.connect(url)
        .execute("SELECT level, count(*) FROM admin_areas GROUP BY level")
        .fetchall()
    )
    assert levels["district"] == 1 and levels["street"] >= 5 and levels["community"] >= 30
    assert _scalar(url, "SELECT count(*) FROM venues WHERE key_site") > 0
    assert _scalar(url, "SELECT count(*) FROM sensor_readings") >= 30 * 24 * 7
    assert _scalar(url, "SELECT count(*) FROM sensors WHERE kind = 'rain_gauge'") >= 30


def test_grids_tile_communities(demo_db) -> None:
    url, _ = demo_db
    # No two grids overlap by more than 1 m² (areas on the spheroid).
    worst_overlap = _scalar(
        url,
        """
        SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
        FROM grids a JOIN grids b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)
        """,
    )
    assert worst_overlap <= 1.0, f"grids overlap by {worst_overlap:.2f} m²"
    # Each community's grids cover it: union area equal within 0.1%.
    rows = (
        psycopg.connect(url)
        .execute(
            """
        SELECT c.code, ST_Area(c.geom::geography) AS community_m2,
               ST_Area(ST_Union(g.geom)::geography) AS grids_m2,
               ST_Area(ST_Difference(c.geom, ST_Union(g.geom))::geography) AS gap_m2
        FROM admin_areas c JOIN grids g ON g.community_code = c.code
        WHERE c.level = 'community'
        GROUP BY c.code, c.geom
        """
        )
        .fetchall()
    )
    communities = _scalar(url, "SELECT count(*) FROM admin_areas WHERE level = 'community'")
    assert len(rows) == communities, "every community has grids"
    for code, community_m2, grids_m2, gap_m2 in rows:
        assert abs(grids_m2 - community_m2) / community_m2 < 0.001, code
        assert gap_m2 / community_m2 < 0.001, f"{code}: grids leave a gap of {gap_m2:.0f} m²"


def test_every_address_lies_in_its_grid(demo_db) -> None:
    url, _ = demo_db
    outside = _scalar(
        url,
        """
        SELECT count(*) FROM addresses a LEFT JOIN grids g ON g.code = a.grid_code
        WHERE g.code IS NULL OR NOT ST_Covers(g.geom, a.geom)
        """,
    )
    assert outside == 0
    # The address components name the admin units that contain it.
    wrong_community = _scalar(
        url,
        """
        SELECT count(*) FROM addresses a JOIN grids g ON g.code = a.grid_code
        JOIN admin_areas c ON c.code = g.community_code
        WHERE a.community <> c.name
        """,
    )
    assert wrong_community == 0
    assert _scalar(url, "SELECT count(*) FROM addresses WHERE full_address NOT LIKE '广东省%'") == 0


def test_communities_nest_in_streets(demo_db) -> None:
    url, _ = demo_db
    orphans = _scalar(
        url,
        """
        SELECT count(*) FROM admin_areas c JOIN admin_areas s ON s.code = c.parent_code
        WHERE c.level = 'community'
          AND ST_Area(ST_Difference(c.geom, s.geom)::geography) > 1
        """,
    )
    assert orphans == 0


def test_demo_is_deterministic_and_idempotent(demo_db, tmp_path) -> None:
    url, _ = demo_db
    fingerprint = (
        "SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code)) FROM addresses"
    )
    before = _scalar(url, fingerprint)
    version_before = _scalar(url, "SELECT version FROM layer_versions WHERE layer = 'addresses'")
    again = load_demo(url, tmp_path, scale=1, seed=42)
    assert again.counts["addresses"] == _scalar(url, "SELECT count(*) FROM addresses")
    assert _scalar(url, fingerprint) == before
    # The reload was a real write: the layer's version moved (tile caches depend on it).
    assert (
        _scalar(url, "SELECT version FROM layer_versions WHERE layer = 'addresses'")
        > version_before
    )
    skipped = load_demo(url, tmp_path, scale=1, seed=42, if_empty=True)
    assert skipped.skipped


def test_dem_registered_as_cog(demo_db) -> None:
    import rasterio

    url, _ = demo_db
    path = str(_scalar(url, "SELECT path FROM rasters WHERE name = 'dem'"))
    assert path.endswith("rasters/dem.tif")
    with rasterio.open(path) as ds:
        assert ds.width >= 1000 and ds.height >= 1000
        assert ds.profile.get("tiled") and ds.overviews(1)
        assert ds.crs.is_projected
