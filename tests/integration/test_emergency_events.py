"""Live events over SSE on real server processes: delivery across processes, Last-Event-ID
resume, layer changes and finished runs, shutdown with open streams, and a warning issue
killed with SIGKILL halfway that leaves nothing behind."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psycopg
import pytest

from layers.events import record_event
from layers.keys import create_key
from tests.support.emergency_world import build_world
from tests.support.sse_client import SseReader


def _env(db_url: str, tmp_path) -> dict[str, str]:
    return {"ONEMAP_DATABASE_URL": db_url, "ONEMAP_DATA_DIR": str(tmp_path / "data")}


def test_events_reach_clients_of_every_process_and_resume(
    db_url: str, tmp_path, live_server_factory
) -> None:
    a = live_server_factory(_env(db_url, tmp_path))
    b = live_server_factory(_env(db_url, tmp_path))
    on_a = SseReader(a.base_url + "/events")
    on_b = SseReader(b.base_url + "/events")
    assert on_a.status == 200 and any("connected" in c for c in on_a.comments)
    time.sleep(0.5)  # both listeners are up before the commit

    with psycopg.connect(db_url) as conn:
        eid = record_event(conn, "incident_reported", {"code": "INC-T1", "grid_code": "G1"})
        conn.commit()
        committed = time.monotonic()
    for reader in (on_a, on_b):
        ev = reader.next("incident_reported", timeout_s=5)
        assert (ev.id, ev.data) == (eid, {"code": "INC-T1", "grid_code": "G1"})
        assert ev.received - committed <= 2.0  # the spec's latency bound

    # A rolled-back change announces nothing.
    with psycopg.connect(db_url) as conn:
        record_event(conn, "incident_reported", {"code": "ROLLED-BACK"})
        conn.rollback()
    # A layer write gives layer_changed with the new version; a finished run gives run_finished.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO incidents (code, kind, status, geom) "
            "VALUES ('INC-T2', 'flood', 'open', ST_SetSRID(ST_MakePoint(113.4, 22.5), 4326))"
        )
        version = conn.execute(
            "SELECT version FROM layer_versions WHERE layer = 'incidents'"
        ).fetchone()
        conn.execute("INSERT INTO risk_runs (model, status) VALUES ('flood', 'running')")
        conn.execute("UPDATE risk_runs SET status = 'done' WHERE status = 'running'")
    assert version is not None
    ev = on_a.next("layer_changed")
    assert ev.data == {"layer": "incidents", "version": version[0]}
    run = on_b.next("run_finished")
    assert run.data["status"] == "done" and run.data["model"] == "flood"
    seen = []
    while not on_a.events.empty():
        seen.append(on_a.events.get().data)
    assert {"code": "ROLLED-BACK"} not in seen

    # Resume: everything after the first event, in order, then live.
    resumed = SseReader(a.base_url + "/events", headers={"Last-Event-ID": str(eid)})
    replayed = [resumed.next(timeout_s=5) for _ in range(2)]
    assert [e.type for e in replayed] == ["layer_changed", "run_finished"]
    assert replayed[0].id is not None and replayed[0].id > eid
    bad = httpx.get(a.base_url + "/events", headers={"Last-Event-ID": "abc"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_last_event_id"

    # ?types= keeps only the named types.
    only = SseReader(b.base_url + "/events?types=warning_lifted")
    with psycopg.connect(db_url) as conn:
        record_event(conn, "incident_reported", {"code": "INC-T3"})
        record_event(conn, "warning_lifted", {"code": "W-T"})
    assert only.next(timeout_s=5).type == "warning_lifted"
    # A heartbeat comment every 15 s keeps idle streams open through proxies.
    deadline = time.monotonic() + 20
    while not any("heartbeat" in c for c in on_b.comments) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert any("heartbeat" in c for c in on_b.comments)

    # Stopping a server with open streams is not held up by them.
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    a.proc.wait(timeout=15)
    assert time.monotonic() - t0 < 10
    assert on_a.ended.wait(5) and resumed.ended.wait(5)


def test_sigkill_during_warning_issue_leaves_nothing(
    db_url: str, tmp_path, live_server_factory
) -> None:
    world = build_world(db_url, n_addresses=50)
    key, _ = create_key(db_url, "值班员", "operator")
    server = live_server_factory(_env(db_url, tmp_path))

    def counts() -> tuple[int, ...]:
        with psycopg.connect(db_url) as c:
            row = c.execute(
                "SELECT (SELECT count(*) FROM warnings), (SELECT count(*) FROM warning_areas), "
                "(SELECT count(*) FROM events WHERE type = 'warning_issued'), "
                "(SELECT count(*) FROM audit_log WHERE action = 'warning.issue')"
            ).fetchone()
        assert row is not None
        return tuple(row)

    assert counts() == (0, 0, 0, 0)
    # Hold warning_areas so the issue stops right after writing its warning row.
    blocker = psycopg.connect(db_url)
    blocker.execute("LOCK TABLE warning_areas IN EXCLUSIVE MODE")

    def post() -> None:
        try:
            httpx.post(
                server.base_url + "/warnings",
                json={"run_id": world.run_id, "level_min": "yellow"},
                headers={"X-API-Key": key},
                timeout=30,
            )
        except httpx.HTTPError:
            pass  # the server dies under it

    t = threading.Thread(target=post, daemon=True)
    t.start()
    waiting = None
    with psycopg.connect(db_url, autocommit=True) as watch:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and waiting is None:
            waiting = watch.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO warning_areas%'"
            ).fetchone()
            time.sleep(0.05)
        assert waiting is not None, "the issue never reached warning_areas"
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        blocker.rollback()
        blocker.close()
        # The orphaned backend finishes its statement, finds no client and rolls back.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (waiting[0],)
            ).fetchone()
            if alive == (0,):
                break
            time.sleep(0.1)
    t.join(10)
    assert counts() == (0, 0, 0, 0)
    # The service is whole again: a new server issues the same warning.
    again = live_server_factory(_env(db_url, tmp_path))
    r = httpx.post(
        again.base_url + "/warnings",
        json={"run_id": world.run_id, "level_min": "yellow"},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert counts() == (1, 3, 1, 1)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
