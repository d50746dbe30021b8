"""Camera coverage of key sites against hand-placed cameras and venues, and the KPI
endpoints (/stats/summary, /stats/grids/{code}) against direct counts."""

from __future__ import annotations

import h3
import httpx
import psycopg
import pytest
import shapely

from layers.keys import create_key
from tests.support.emergency_world import add_point, build_world, centre, hexagon, offset


@pytest.fixture
def covered_world(db_url: str):
    """Camera A stands 50 m west of c0's centre looking east (fov 60°, range 100 m).

    Key sites in G1: V1 50 m ahead (seen), V5 80 m at 20° off axis (seen), V6 80 m at 40°
    off axis (outside the fov), V7 150 m ahead (out of range).  In G2: V8 seen only by an
    offline camera, V9 30 m from an online 360° dome.  In G4 (community C2): V11, no camera.
    V10 (not a key site) stands in front of camera A.
    Expected: G1 2/4, G2 1/2, C1 3/6, C2 0/1, overall 3/7; uncovered V6, V7, V8, V11.
    """
    w = build_world(db_url, n_addresses=20)
    lon0, lat0 = centre(w.c0)
    lon1, lat1 = centre(w.c1)
    ax, ay = offset(lon0, lat0, 270, 50)
    with psycopg.connect(db_url) as conn:
        c4 = shapely.MultiPolygon([hexagon(w.c4)]).wkt
        conn.execute(
            "INSERT INTO admin_areas (code, name, level, parent_code, geom) "
            "VALUES ('C2', '第二社区', 'community', 'S1', ST_GeomFromText(%s, 4326))",
            (c4,),
        )
        conn.execute(
            "INSERT INTO grids (code, name, community_code, population, geom) "
            "VALUES ('G4', '网格G4', 'C2', 50, ST_GeomFromText(%s, 4326))",
            (c4,),
        )
        cam = "cameras"
        add_point(
            conn,
            cam,
            {
                "code": "CA",
                "name": "A",
                "heading_deg": 90.0,
                "fov_deg": 60.0,
                "range_m": 100.0,
                "status": "online",
                "grid_code": "G1",
            },
            ax,
            ay,
        )  # noqa: E501
        bx, by = offset(lon1, lat1, 0, 40)
        add_point(
            conn,
            cam,
            {
                "code": "CB",
                "name": "B",
                "heading_deg": 180.0,
                "fov_deg": 90.0,
                "range_m": 100.0,
                "status": "offline",
                "grid_code": "G2",
            },
            bx,
            by,
        )  # noqa: E501
        v9 = offset(lon1, lat1, 90, 60)
        dx, dy = offset(*v9, 180, 30)
        add_point(
            conn,
            cam,
            {
                "code": "CD",
                "name": "球机",
                "kind": "dome",
                "heading_deg": None,
                "fov_deg": 360.0,
                "range_m": 50.0,
                "status": "online",
                "grid_code": "G2",
            },
            dx,
            dy,
        )  # noqa: E501
        sites = {
            "V1": (offset(ax, ay, 90, 50), "G1", True),
            "V5": (offset(ax, ay, 110, 80), "G1", True),
            "V6": (offset(ax, ay, 130, 80), "G1", True),
            "V7": (offset(ax, ay, 90, 150), "G1", True),
            "V8": ((lon1, lat1), "G2", True),
            "V9": (v9, "G2", True),
            "V10": (offset(ax, ay, 90, 60), "G1", False),
            "V11": (centre(w.c4), "G4", True),
        }
        for code, ((x, y), grid, key) in sites.items():
            add_point(
                conn,
                "venues",
                {
                    "code": code,
                    "name": code,
                    "category": "school",
                    "key_site": key,
                    "grid_code": grid,
                },
                x,
                y,
            )  # noqa: E501
    cells = {"G1": w.c0, "G2": w.c1, "G4": w.c4}
    for code, ((x, y), grid, _) in sites.items():  # preconditions of the layout
        assert h3.latlng_to_cell(y, x, 9) == cells[grid], code
    return w


async def test_camera_coverage_hand_computed(client: httpx.AsyncClient, covered_world):
    r = await client.get("/analysis/camera-coverage")
    assert r.status_code == 200, r.text
    cov = r.json()
    assert (cov["key_sites"], cov["covered"]) == (7, 3)
    assert cov["share"] == pytest.approx(3 / 7, abs=1e-4) and cov["meets_target"] is False
    grids = {g["code"]: (g["key_sites"], g["covered"]) for g in cov["grids"]}
    assert grids == {"G1": (4, 2), "G2": (2, 1), "G4": (1, 0)}
    comms = {c["code"]: (c["key_sites"], c["covered"], c["share"]) for c in cov["communities"]}
    assert comms == {"C1": (6, 3, 0.5), "C2": (1, 0, 0.0)}
    assert {u["code"] for u in cov["uncovered"]} == {"V6", "V7", "V8", "V11"}
    only = (await client.get("/analysis/camera-coverage?community=C2")).json()
    assert (only["key_sites"], only["covered"]) == (1, 0)
    low = (await client.get("/analysis/camera-coverage?target=0.4")).json()
    assert low["meets_target"] is True
    assert (await client.get("/analysis/camera-coverage?target=2")).status_code == 422


async def test_stats_summary_and_grid(client: httpx.AsyncClient, covered_world, db_url):
    w = covered_world
    op_key, _ = create_key(db_url, "值班员", "operator")
    op = {"X-API-Key": op_key}
    r = await client.post("/warnings", json={"run_id": w.run_id, "level_min": "red"}, headers=op)
    assert r.status_code == 201
    population = r.json()["properties"]["exposure"]["population"]
    assert population == 1000  # G1 whole (its hexagon is the red cell)
    x, y = centre(w.c0)
    await client.post("/incidents", json={"kind": "flood", "lon": x, "lat": y}, headers=op)

    s = (await client.get("/stats/summary")).json()
    with psycopg.connect(db_url) as conn:
        for layer in ("addresses", "venues", "cameras", "grids", "incidents", "warnings"):
            n = conn.execute(f"SELECT count(*) FROM {layer}").fetchone()
            assert s["layers"][layer] == n[0], layer
        last_run = conn.execute("SELECT max(id) FROM risk_runs").fetchone()
    assert s["warnings"] == {
        "active": 1,
        "by_level": {"blue": 0, "yellow": 0, "orange": 0, "red": 1},
    }
    assert s["exposed_population"] == 1000
    assert s["cameras"] == {"online": 2, "offline": 1, "online_rate": pytest.approx(2 / 3, 1e-3)}
    assert s["camera_coverage"] == pytest.approx(3 / 7, abs=1e-4)
    assert s["incidents"] == {"open": 1, "today": 1, "overdue": 0, "on_time_rate": None}
    assert s["latest_run"]["id"] == last_run[0]

    g = (await client.get("/stats/grids/G1", headers=op)).json()
    n_addr = sum(1 for (x, y) in w.addresses.values() if w.cell_of(x, y) == w.c0)
    assert g["addresses"] == n_addr
    assert g["worker_name"] == "网格员G1" and g["population"] == 1000
    assert g["venues"] == {"total": 5, "key_sites": 4, "by_category": {"school": 5}}
    assert g["camera_coverage"] == 0.5
    assert {u["code"] for u in g["uncovered_key_sites"]} == {"V6", "V7"}
    assert [a["level"] for a in g["active_warnings"]] == ["red"]
    assert (g["cameras_online"], g["incidents_open"]) == (1, 1)
    viewer = (await client.get("/stats/grids/G1")).json()
    assert "worker_name" not in viewer and "population" not in viewer
    g2 = (await client.get("/stats/grids/G2")).json()
    assert g2["active_warnings"] == []  # touches the red cell, shares no area
    assert (await client.get("/stats/grids/NOPE")).status_code == 404
