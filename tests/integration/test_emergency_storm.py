"""The whole storm on a demo city and a real server process: gauge readings → nowcast (both
models) → warning → CAP message valid against the OASIS schema → the Atom feed lists it → a
subscriber receives it signed → exposure (checked against H3 cells of the addresses) → cadres
acknowledge and a vulnerable resident is moved, all followed live on /screen → lift sends a
Cancel referencing the alert; and ``onemap nowcast`` from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import h3
import httpx
import psycopg
import pytest

from layers.keys import create_key
from tests.support.cap import assert_valid_cap, parse_cap
from tests.support.chromium import chromium, last_mile_box, wait_last_mile, wait_ready
from tests.support.pg import demo_database
from tests.support.receiver import Receiver
from tests.support.sse_client import SseReader

DB_NAME = "emergency_storm_module"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("storm-demo")
    with demo_database(pg_admin_url, template_db, DB_NAME, data_dir, 1, 42) as url:
        yield url, data_dir


def _wait_run(base: str, run_id: int, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/risk/runs/{run_id}", timeout=10).json()
        if run["status"] in ("done", "failed"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


def _subscribe(url: str, receiver: Receiver, secret: str) -> None:
    proc = subprocess.run(
        [str(BIN / "onemap"), "subscriptions", "add", receiver.url, "--secret", secret],
        env={**os.environ, "ONEMAP_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def _signed(post, secret: str) -> bool:
    ts = post.headers["X-OneMap-Timestamp"]
    mac = hmac.new(secret.encode(), ts.encode() + b"." + post.body, hashlib.sha256)
    return post.headers["X-OneMap-Signature"] == "sha256=" + mac.hexdigest()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_storm_walk(demo, live_server_factory, receiver) -> None:
    url, data_dir = demo
    key, _ = create_key(url, "应急值班", "operator")
    op = {"X-API-Key": key}
    secret = "a-secret-the-county-system-shares"
    _subscribe(url, receiver, secret)
    server = live_server_factory(
        {"ONEMAP_DATABASE_URL": url, "ONEMAP_DATA_DIR": str(data_dir), "ONEMAP_PUSH_POLL_S": "0.2"}
    )
    base = server.base_url
    sse = SseReader(base + "/events")

    # 1. A storm on every rain gauge: 12 mm every 10 minutes for the last 6 hours.
    with psycopg.connect(url) as conn:
        gauges = [r[0] for r in conn.execute("SELECT code FROM sensors WHERE kind = 'rain_gauge'")]
    assert gauges
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    readings = [
        {"sensor_code": g, "observed_at": (now - dt.timedelta(minutes=10 * k)).isoformat(),
         "value": 12.0}
        for g in gauges
        for k in range(36)
    ]  # fmt: skip
    r = httpx.post(base + "/sensors/readings", json={"readings": readings}, headers=op, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == len(readings)
    sensors = httpx.get(base + "/sensors?kind=rain_gauge", timeout=30).json()["features"]
    assert all(f["properties"]["rain_mm_3h"] == pytest.approx(12.0 * 18) for f in sensors)
    assert sse.next("readings_received").data["inserted"] == len(readings)

    # 2. Nowcast: both models on the latest readings.
    r = httpx.post(base + "/nowcast", json={"hours": 24}, headers=op, timeout=60)
    assert r.status_code == 202, r.text
    runs = r.json()["runs"]
    assert sorted(x["model"] for x in runs) == ["flood", "landslide"]
    finished = {x["id"]: _wait_run(base, x["id"]) for x in runs}
    assert all(f["status"] == "done" for f in finished.values()), finished
    for f in finished.values():
        assert f["inputs"]["rain"] == {"gauges": True, "hours": 24}
    got = {sse.next("run_finished", timeout_s=30).data["run_id"] for _ in runs}
    assert got == set(finished)

    # 3. A warning from the run with the most cells at the highest level reached.
    def best(run: dict) -> tuple[int, int]:
        by = run["summary"]["by_level"]
        top = max((i for i, n in enumerate(("none", "blue", "yellow", "orange", "red"))
                   if by.get(n)), default=0)  # fmt: skip
        return top, by.get(("none", "blue", "yellow", "orange", "red")[top], 0)

    run = max(finished.values(), key=best)
    top, _ = best(run)
    assert top >= 2, run["summary"]  # a 430 mm storm reaches at least yellow somewhere
    level = ("none", "blue", "yellow", "orange", "red")[top]
    body = {"run_id": run["id"], "level_min": level, "title": "暴雨预警"}
    r = httpx.post(base + "/warnings", json=body, headers=op, timeout=60)
    committed = time.monotonic()
    assert r.status_code == 201, r.text
    warning = r.json()
    code = warning["id"]
    ev = sse.next("warning_issued", timeout_s=5)
    assert ev.data["code"] == code and ev.received - committed <= 2.0

    # 3b. Its CAP Alert: valid, in the feed, pushed signed to the subscriber.
    cap_xml = httpx.get(f"{base}/warnings/{code}.cap", timeout=30).content
    assert_valid_cap(cap_xml)
    alert = parse_cap(cap_xml)
    assert alert["msgType"] == "Alert" and alert["identifier"] == ev.data["cap"]
    assert alert["severity"] == {"yellow": "Moderate", "orange": "Severe", "red": "Extreme"}[level]
    feed = feedparser.parse(httpx.get(base + "/warnings/feed.atom", timeout=30).content)
    assert [e.get("cap_identifier") for e in feed.entries] == [alert["identifier"]]
    (pushed,) = receiver.wait_accepted(1)
    assert pushed.body == cap_xml and _signed(pushed, secret)

    # 4. Exposure: the addresses whose H3 cell is one of the run's cells at the level.
    cells = httpx.get(
        f"{base}/risk/runs/{run['id']}/cells", params={"level_min": top}, timeout=60
    ).json()["features"]
    cell_ids = {f["id"] for f in cells}
    res = h3.get_resolution(next(iter(cell_ids)))
    with psycopg.connect(url) as conn:
        pts = conn.execute("SELECT code, ST_X(geom), ST_Y(geom) FROM addresses").fetchall()
    expected = {c for c, x, y in pts if h3.latlng_to_cell(y, x, res) in cell_ids}
    exposure = warning["properties"]["exposure"]
    assert exposure["addresses"]["count"] == len(expected)
    analysis = httpx.get(
        f"{base}/analysis/exposure", params={"run": run["id"], "level_min": level}, timeout=60
    ).json()
    assert analysis["addresses"]["count"] == len(expected)
    rows = httpx.get(f"{base}/warnings/{code}/addresses.csv", timeout=60).content
    listed = {row["code"] for row in csv.DictReader(io.StringIO(rows.decode("utf-8-sig")))}
    assert listed == expected
    if expected:
        assert exposure["summary"]["grids"] >= 1 and exposure["population"] > 0
    summary = httpx.get(base + "/stats/summary", timeout=30).json()
    assert summary["warnings"]["active"] == 1 and summary["warnings"]["by_level"][level] == 1
    assert summary["latest_run"]["id"] == max(finished)

    # 4b. The last mile, watched on the wall: cadres acknowledge, a resident is moved.
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(base + "/screen")
        wait_ready(page)
        acks = httpx.get(f"{base}/warnings/{code}/acks", headers=op, timeout=30).json()
        progress = acks["progress"]
        assert progress["recipients"] >= 2 and progress["vulnerable"] >= 1, progress
        wait_last_mile(page, code, "recipients", progress["recipients"])
        cadres = [x["code"] for x in acks["waiting"] if x["kind"] == "cadre"][:2]
        assert len(cadres) == 2, acks["waiting"][:3]
        for cadre in cadres:
            r = httpx.post(f"{base}/warnings/{code}/acks", json={"code": cadre}, headers=op)
            assert r.status_code == 200, r.text
        wait_last_mile(page, code, "acknowledged", 2)
        evacuation = httpx.get(f"{base}/warnings/{code}/evacuation.csv", headers=op, timeout=60)
        first = next(csv.DictReader(io.StringIO(evacuation.content.decode("utf-8-sig"))))
        r = httpx.post(
            f"{base}/warnings/{code}/residents/{first['resident_code']}/status",
            json={"status": "已转移"},
            headers=op,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        wait_last_mile(page, code, "toMove", progress["vulnerable"] - 1)
        assert f"2/{progress['recipients']}" in last_mile_box(page, code)["text"]

        # 5. Lift: every client hears it, the wall drops it; the warning stays in the history.
        r = httpx.post(
            f"{base}/warnings/{code}/lift", json={"reason": "雨停"}, headers=op, timeout=30
        )
        assert r.status_code == 200
        page.wait_for_function(
            "(code) => !document.querySelector(`li.warning[data-warning-code='${code}']`)",
            arg=code,
            timeout=15_000,
        )
    assert sse.next("warning_lifted", timeout_s=5).data["code"] == code
    cancel_xml = receiver.wait_accepted(2)[1].body
    assert_valid_cap(cancel_xml)
    cancel = parse_cap(cancel_xml)
    assert (
        cancel["msgType"] == "Cancel"
        and cancel["references"].split(",")[1] == (alert["identifier"])
    )
    feed = feedparser.parse(httpx.get(base + "/warnings/feed.atom", timeout=30).content)
    assert [e.get("cap_msgtype") for e in feed.entries] == ["Cancel"]
    assert httpx.get(base + "/warnings", timeout=30).json()["features"] == []
    history = httpx.get(base + "/warnings?status=all", timeout=30).json()["features"]
    assert [f["properties"]["status"] for f in history] == ["lifted"]
    with psycopg.connect(url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    for action in (
        "readings.ingest",
        "nowcast.start",
        "warning.issue",
        "warning.ack",
        "warning.resident_status",
        "warning.evacuation_list",
        "warning.lift",
    ):
        assert action in actions


def test_nowcast_command(demo) -> None:
    url, data_dir = demo
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) FROM risk_runs").fetchone()
    env = {**os.environ, "ONEMAP_DATABASE_URL": url, "ONEMAP_DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [str(BIN / "onemap"), "nowcast", "--hours", "24"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with psycopg.connect(url) as conn:
        runs = conn.execute(
            "SELECT model, status, inputs->'rain' FROM risk_runs WHERE id > %s ORDER BY model",
            before,
        ).fetchall()
        audit = conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'nowcast.start' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert [(m, s) for m, s, _ in runs] == [("flood", "done"), ("landslide", "done")]
    assert all(rain == {"gauges": True, "hours": 24} for _, _, rain in runs)
    assert audit is not None and audit[0].startswith("cli:")
    bad = subprocess.run(
        [str(BIN / "onemap"), "nowcast", "--every", "soon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "duration" in bad.stderr
