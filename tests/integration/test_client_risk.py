"""The Python client's risk runs, cells, exposure, warnings and camera coverage, on a live
server with a small demo city and the typhoon scenario."""

from __future__ import annotations

from collections.abc import Iterator

import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from geo_service.client import AuthError, BadRequestError, NotFoundError, OneMap, OneMapError
from layers.keys import create_key
from tests.support.html import external_references
from tests.support.servers import demo_server

SCENARIO = "typhoon_300mm_24h"


@pytest.fixture(scope="module")
def live(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[dict]:
    """A demo city behind ``onemap serve``, an operator key, and one finished landslide run."""
    data_dir = tmp_path_factory.mktemp("client-risk-data")
    with demo_server(pg_admin_url, template_db, "client_risk_module", data_dir, 0.2, 3) as (
        url,
        server,
    ):
        key, _ = create_key(url, "应急值班", "operator")
        with OneMap(server.base_url, api_key=key, progress=False) as om:
            run = om.risk_run("landslide", scenario=SCENARIO, timeout_s=300)
            yield {"db": url, "url": server.base_url, "key": key, "run": run}


@pytest.fixture
def om(live: dict) -> Iterator[OneMap]:
    with OneMap(live["url"], api_key=live["key"], progress=False) as client:
        yield client


def rows(db: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


def test_run_and_cells_match_the_database(om: OneMap, live: dict) -> None:
    run = live["run"]
    assert run["status"] == "done" and run["model"] == "landslide"
    stored = rows(live["db"], "SELECT h3, level FROM risk_run_cells(%s)", run["id"])
    assert stored and {lvl for _, lvl in stored} - {0} != set()

    cells = om.cells(run)
    assert cells.crs.to_epsg() == 4326 and len(cells) == len(stored)
    assert dict(zip(cells["h3"], cells["level"], strict=True)) == {
        format(c, "x"): lvl for c, lvl in stored
    }
    assert str(cells["level"].dtype) == "Int64"
    # Each hexagon is drawn where H3 puts its cell.
    lat, lon = np.array([h3.cell_to_latlng(c) for c in cells["h3"][:50]]).T
    assert shapely.contains_xy(cells.geometry[:50].to_numpy(), lon, lat).all()

    orange = om.cells(run["id"], level_min="orange")
    assert len(orange) == sum(1 for _, lvl in stored if lvl >= 3)
    assert (orange["level"] >= 3).all()


def test_explain_a_cell(om: OneMap, live: dict) -> None:
    cell, level = rows(
        live["db"],
        "SELECT h3, level FROM risk_cells WHERE run_id = %s ORDER BY level DESC, h3 LIMIT 1",
        live["run"]["id"],
    )[0]
    why = om.explain(format(cell, "x"), live["run"])
    assert why["level"] == level and why["h3"] == format(cell, "x")
    assert why["explanation"]
    assert om.explain(cell, live["run"]["id"])["level"] == level  # integer index too


def test_run_errors_and_roles(om: OneMap, live: dict) -> None:
    with pytest.raises(BadRequestError) as bad:
        om.risk_run("earthquake", scenario=SCENARIO)
    assert bad.value.code == "unknown_model"
    with pytest.raises(NotFoundError) as missing:
        om.run(987654)
    assert missing.value.code == "unknown_run"
    with OneMap(live["url"], progress=False) as anonymous, pytest.raises(AuthError):
        anonymous.risk_run("landslide", scenario=SCENARIO)
    with pytest.raises(ValueError):
        om.risk_run("landslide")


def test_run_without_waiting(om: OneMap, live: dict) -> None:
    started = om.risk_run("flood", scenario=SCENARIO, wait=False)
    assert started["status"] in ("pending", "running", "done")
    done = om.wait_run(started, timeout_s=300)
    assert done["status"] == "done" and done["id"] == started["id"]
    listed = om.runs()
    assert list(listed["id"][:2]) == [started["id"], live["run"]["id"]]  # newest first


def test_exposure_counts_the_addresses_in_the_cells(om: OneMap, live: dict) -> None:
    run = live["run"]
    hot = {
        c
        for (c,) in rows(
            live["db"], "SELECT h3 FROM risk_cells WHERE run_id = %s AND level >= 3", run["id"]
        )
    }
    res = rows(live["db"], "SELECT res FROM risk_cells WHERE run_id = %s LIMIT 1", run["id"])[0][0]
    pts = rows(live["db"], "SELECT code, ST_X(geom), ST_Y(geom) FROM addresses")
    inside = {code for code, x, y in pts if h3.str_to_int(h3.latlng_to_cell(y, x, res)) in hot}
    ex = om.exposure(run, "orange")
    assert ex["level_min"] == "orange" and ex["area"]["cells"] == len(hot)
    # Points exactly on a hexagon edge may fall either side: allow a handful.
    assert abs(ex["summary"]["addresses"] - len(inside)) <= max(2, len(inside) // 200)

    listed = om.exposed_addresses(run, 3)
    assert len(listed) == ex["summary"]["addresses"]
    assert listed["code"].is_unique and listed.crs.to_epsg() == 4326
    assert len(set(listed["code"]) ^ inside) <= max(2, len(inside) // 200)


def test_warning_issue_list_map_lift(om: OneMap, live: dict) -> None:
    issued = om.issue_warning(live["run"], "orange", valid_hours=6, title="台风暴雨滑坡预警")
    code = issued["properties"]["code"]
    active = om.warnings()
    assert code in set(active["code"])
    w = active.set_index("code").loc[code]
    assert w["level"] == "orange" and w["status"] == "active"
    assert w["valid_to"] - w["valid_from"] == pd.Timedelta(hours=6)
    assert om.warning(code)["properties"]["exposure"]["summary"]["addresses"] >= 0
    assert om.stats()["warnings"]["active"] == len(active)

    html = om.map(active, om.cells(live["run"], level_min=3)).get_root().render()
    assert external_references(html, om.base_url) == []
    assert "#ff7f0e" in html  # orange

    lifted = om.lift_warning(code, reason="雨停")
    assert lifted["properties"]["status"] == "lifted"
    assert code not in set(om.warnings()["code"] if len(om.warnings()) else [])
    assert code in set(om.warnings("all")["code"])


def test_camera_coverage(om: OneMap, live: dict) -> None:
    cov = om.camera_coverage()
    n_key = rows(live["db"], "SELECT count(*) FROM venues WHERE key_site")[0][0]
    assert cov["key_sites"] == n_key > 0
    assert cov["share"] == pytest.approx(cov["covered"] / cov["key_sites"], abs=1e-3)
    assert sum(c["key_sites"] for c in cov["communities"]) == n_key


def test_last_mile_from_the_client(om: OneMap, live: dict) -> None:
    from tests.support.cap import assert_valid_cap, parse_cap
    from tests.support.emergency_world import insert_run

    with psycopg.connect(live["db"]) as conn:
        (wkb,) = conn.execute(
            "SELECT ST_AsBinary(ST_Centroid(geom)) FROM admin_areas WHERE level = 'district'"
        ).fetchone()
        c = shapely.from_wkb(bytes(wkb))
        centre = h3.latlng_to_cell(c.y, c.x, 9)
        run = insert_run(conn, "flood", {cell: 4 for cell in h3.grid_disk(centre, 5)})
    code = om.issue_warning(run, "red", title="城区内涝")["properties"]["code"]
    alert = om.cap(code)
    assert_valid_cap(alert)
    evac = om.evacuation(code)
    summary = om.warning(code)["properties"]["exposure"]["summary"]
    assert len(evac) == summary["vulnerable"] > 0
    assert set(evac["transfer_status"]) == {"待转移"} and evac["resident_code"].is_unique
    acks = om.acks(code)
    who = acks["waiting"][0]["code"]
    assert om.acknowledge(code, who, note="收到")["progress"]["acknowledged"] == 1
    moved = om.set_transfer(code, evac["resident_code"].iloc[0], "已转移")
    assert moved["progress"]["to_move"] == summary["vulnerable"] - 1
    after = om.evacuation(code).set_index("resident_code")["transfer_status"]
    assert (
        after[evac["resident_code"].iloc[0]] == "已转移"
        and (after == "待转移").sum() == len(evac) - 1
    )
    with pytest.raises(BadRequestError):
        om.set_transfer(code, evac["resident_code"].iloc[0], "走了")
    newer = om.issue_warning(run, "orange", replaces=code)["properties"]["code"]
    update = parse_cap(om.cap(newer))
    assert update["msgType"] == "Update" and parse_cap(alert)["identifier"] in update["references"]
    om.lift_warning(newer)


def test_field_work_from_the_client(om: OneMap, live: dict, tmp_path) -> None:
    import io

    from PIL import Image

    photo = tmp_path / "现场.jpg"
    Image.new("RGB", (80, 60), "navy").save(photo, "JPEG")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, "PNG")
    with psycopg.connect(live["db"]) as conn:
        (wkb,) = conn.execute(
            "SELECT ST_AsBinary(ST_Centroid(geom)) FROM admin_areas WHERE level = 'district'"
        ).fetchone()
    c = shapely.from_wkb(bytes(wkb))
    inc = om.report_incident(
        "waterlogging", c.x, c.y, "地下通道积水", photos=[photo, buf.getvalue()]
    )
    code = inc["properties"]["code"]
    assert [p["media_type"] for p in inc["properties"]["photos"]] == ["image/jpeg", "image/png"]
    for stage in ("受理", "派遣", "处置", "核查", "结案"):
        assert om.incident_step(code, stage)["properties"]["stage"] == stage
    kpis = om.incident_kpis("kind").set_index("key")
    assert kpis.loc["waterlogging", "closed"] >= 1
    with pytest.raises(BadRequestError):
        om.report_incident("waterlogging", c.x, c.y, photos=[b"not a photo"])

    shelter = rows(live["db"], "SELECT code, capacity FROM shelters ORDER BY code LIMIT 1")[0]
    tag = om.edit("shelters", shelter[0], capacity=(shelter[1] or 0) + 10)
    assert om.feature("shelters", shelter[0])["properties"]["capacity"] == (shelter[1] or 0) + 10
    om.edit("shelters", shelter[0], if_match=tag, capacity=shelter[1])
    with pytest.raises(OneMapError) as stale:
        om.edit("shelters", shelter[0], if_match=tag, capacity=1)
    assert stale.value.status == 412
