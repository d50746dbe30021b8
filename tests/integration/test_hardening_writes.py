"""Risk runs shown to viewers without the operator's name, level names in /cells, and
incident reports made idempotent with an Idempotency-Key (stored with the audit row)."""

from __future__ import annotations

import asyncio
import json

import h3
import httpx
import psycopg
import pytest

from layers.keys import create_key
from tests.support.district import db_scalar, err, seed


def insert_run(db_url: str) -> int:
    """A finished run started by 值班员A with one cell at each level 0–4."""
    cells = [h3.str_to_int(h3.latlng_to_cell(22.79, 108.26 + i * 0.01, 9)) for i in range(5)]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO risk_runs (model, status, inputs, params) VALUES "
            "('landslide', 'done', %s, '{\"res\": 9}') RETURNING id",
            (json.dumps({"actor": "值班员A", "rain": {"scenario": "x"}}),),
        ).fetchone()
        assert row is not None
        for level, cell in enumerate(cells):
            conn.execute(
                "INSERT INTO risk_cells (run_id, h3, res, level, score) "
                "VALUES (%s, %s, 9, %s, 0.5)",
                (row[0], cell, level),
            )
    return int(row[0])


async def test_runs_hide_who_started_them_below_operator(
    client: httpx.AsyncClient, db_url: str
) -> None:
    run_id = insert_run(db_url)
    operator = {"X-API-Key": create_key(db_url, "值班员A", "operator")[0]}
    viewer = {"X-API-Key": create_key(db_url, "大屏", "viewer")[0]}
    for headers in ({}, viewer):
        one = (await client.get(f"/risk/runs/{run_id}", headers=headers)).json()
        assert "actor" not in one["inputs"] and one["inputs"]["rain"] == {"scenario": "x"}
        listed = (await client.get("/risk/runs", headers=headers)).json()["runs"]
        assert [r["id"] for r in listed] == [run_id]
        assert "actor" not in listed[0]["inputs"]
    one = (await client.get(f"/risk/runs/{run_id}", headers=operator)).json()
    assert one["inputs"]["actor"] == "值班员A"
    listed = (await client.get("/risk/runs", headers=operator)).json()["runs"]
    assert listed[0]["inputs"]["actor"] == "值班员A"


@pytest.mark.parametrize(
    ("level_min", "levels"),
    [
        (None, [4, 3, 2, 1, 0]),
        ("0", [4, 3, 2, 1, 0]),
        ("none", [4, 3, 2, 1, 0]),
        ("3", [4, 3]),
        ("orange", [4, 3]),
        ("Yellow", [4, 3, 2]),
        ("red", [4]),
        ("1", [4, 3, 2, 1]),
    ],
)
async def test_cells_level_min_takes_numbers_and_names(
    client: httpx.AsyncClient, db_url: str, level_min: str | None, levels: list[int]
) -> None:
    run_id = insert_run(db_url)
    params = {} if level_min is None else {"level_min": level_min}
    r = await client.get(f"/risk/runs/{run_id}/cells", params=params)
    assert r.status_code == 200, r.text
    assert [f["properties"]["level"] for f in r.json()["features"]] == levels


async def test_cells_level_min_refuses_other_values(client: httpx.AsyncClient, db_url: str) -> None:
    run_id = insert_run(db_url)
    for bad in ("5", "-1", "purple", "2.5"):
        body = await err(client, f"/risk/runs/{run_id}/cells?level_min={bad}")
        assert body["code"] == "invalid_level"


REPORT = {"kind": "flood", "lon": 108.27, "lat": 22.78, "description": "积水 30 cm"}


def incidents(db_url: str) -> int:
    return int(db_scalar(db_url, "SELECT count(*) FROM incidents"))  # type: ignore[arg-type]


async def test_idempotency_key_makes_a_report_once(client: httpx.AsyncClient, db_url: str) -> None:
    seed(db_url)
    before = incidents(db_url)
    key = create_key(db_url, "网格员", "operator")[0]
    headers = {"X-API-Key": key, "Idempotency-Key": "c0ffee-1"}
    first = await client.post("/incidents", json=REPORT, headers=headers)
    assert first.status_code == 201, first.text
    replay = await client.post("/incidents", json=REPORT, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == first.json()["id"]
    assert incidents(db_url) == before + 1

    other = await client.post("/incidents", json={**REPORT, "lon": 108.28}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    # Another key, or no key, is another report.
    fresh = await client.post(
        "/incidents", json=REPORT, headers={**headers, "Idempotency-Key": "c0ffee-2"}
    )
    assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]
    plain = await client.post("/incidents", json=REPORT, headers={"X-API-Key": key})
    assert plain.status_code == 201
    assert incidents(db_url) == before + 3
    # The same Idempotency-Key from another API key is that key's own.
    key2 = create_key(db_url, "另一网格员", "operator")[0]
    theirs = await client.post(
        "/incidents", json=REPORT, headers={"X-API-Key": key2, "Idempotency-Key": "c0ffee-1"}
    )
    assert theirs.status_code == 201


async def test_concurrent_identical_reports_make_one_incident(
    client: httpx.AsyncClient, db_url: str
) -> None:
    seed(db_url)
    before = incidents(db_url)
    key = create_key(db_url, "网格员", "operator")[0]
    headers = {"X-API-Key": key, "Idempotency-Key": "8d1f7a2e-retry"}
    rs = await asyncio.gather(
        *[client.post("/incidents", json=REPORT, headers=headers) for _ in range(6)]
    )
    assert sorted(r.status_code for r in rs) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in rs}) == 1
    assert incidents(db_url) == before + 1
