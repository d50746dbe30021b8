"""Push of CAP messages to subscribers: signed POSTs from the outbox, retried with back-off
when the receiver fails, delivered after a crash between the warning's commit and the push."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from layers.keys import create_key
from tests.support.cap import assert_valid_cap, parse_cap
from tests.support.emergency_world import build_world
from tests.support.receiver import Receiver

BIN = Path(sys.executable).parent
SECRET = "s3cret-shared-with-the-receiver"
FAST = {"ONEMAP_PUSH_POLL_S": "0.1", "ONEMAP_PUSH_BACKOFF_S": "0.2", "ONEMAP_LOG_LEVEL": "ERROR"}


def onemap(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONEMAP_DATABASE_URL": db_url}
    return subprocess.run(
        [str(BIN / "onemap"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def assert_signed(post, secret: str = SECRET) -> None:
    ts = post.headers["X-OneMap-Timestamp"]
    mac = hmac.new(secret.encode(), ts.encode() + b"." + post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-OneMap-Signature"] == "sha256=" + mac
    assert abs(time.time() - int(ts)) < 120


def test_subscriber_that_fails_three_times_gets_every_message(db_url, live_server_factory):
    w = build_world(db_url)
    receiver = Receiver(fail_first=3)
    try:
        added = onemap(db_url, "subscriptions", "add", receiver.url, "--secret", SECRET)
        assert added.returncode == 0, added.stderr
        bad = onemap(db_url, "subscriptions", "add", "ftp://example", "--secret", SECRET)
        assert bad.returncode != 0 and "http" in bad.stderr
        short = onemap(db_url, "subscriptions", "add", receiver.url, "--secret", "short")
        assert short.returncode != 0 and "16" in short.stderr
        key, _ = create_key(db_url, "值班", "operator")
        server = live_server_factory({"ONEMAP_DATABASE_URL": db_url, **FAST})
        r = httpx.post(
            server.base_url + "/warnings",
            json={"run_id": w.run_id, "level_min": "orange"},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        code = r.json()["id"]
        (got,) = receiver.wait_accepted(1)
        assert [p.status for p in receiver.posts] == [500, 500, 500, 204]
        assert_signed(got)
        assert got.headers["Content-Type"].startswith("application/cap+xml")
        assert_valid_cap(got.body)
        alert = parse_cap(got.body)
        served = httpx.get(f"{server.base_url}/warnings/{code}.cap", timeout=10).content
        assert got.body == served and alert["msgType"] == "Alert"
        assert got.headers["X-OneMap-CAP-Identifier"] == alert["identifier"]
        # every attempt was the same delivery, signed afresh
        assert {p.headers["X-OneMap-Delivery"] for p in receiver.posts} == {
            got.headers["X-OneMap-Delivery"]
        }
        listed = onemap(db_url, "subscriptions", "list")
        assert listed.returncode == 0 and SECRET not in listed.stdout
        with psycopg.connect(db_url) as conn:
            attempts, delivered = conn.execute(
                "SELECT attempts, delivered_at IS NOT NULL FROM push_outbox"
            ).fetchone()
        assert (attempts, delivered) == (4, True)

        # The lift's Cancel follows, referencing the Alert.
        r = httpx.post(
            f"{server.base_url}/warnings/{code}/lift", headers={"X-API-Key": key}, timeout=30
        )
        assert r.status_code == 200
        cancel = parse_cap(receiver.wait_accepted(2)[1].body)
        assert cancel["msgType"] == "Cancel" and alert["identifier"] in cancel["references"]
    finally:
        receiver.close()


def test_message_committed_before_a_crash_is_delivered_after_restart(db_url, live_server_factory):
    w = build_world(db_url)
    receiver = Receiver()
    try:
        assert (
            onemap(db_url, "subscriptions", "add", receiver.url, "--secret", SECRET).returncode == 0
        )
        key, _ = create_key(db_url, "值班", "operator")
        # This server commits warnings but would not push for an hour: it dies first.
        doomed = live_server_factory(
            {"ONEMAP_DATABASE_URL": db_url, **FAST, "ONEMAP_PUSH_POLL_S": "3600"}
        )
        r = httpx.post(
            doomed.base_url + "/warnings",
            json={"run_id": w.run_id, "level_min": "red"},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        doomed.proc.kill()
        doomed.proc.wait(10)
        assert receiver.posts == []
        with psycopg.connect(db_url) as conn:
            pending = conn.execute(
                "SELECT count(*) FROM push_outbox WHERE delivered_at IS NULL"
            ).fetchone()
        assert pending == (1,)
        live_server_factory({"ONEMAP_DATABASE_URL": db_url, **FAST})
        (got,) = receiver.wait_accepted(1)
        assert_signed(got)
        assert parse_cap(got.body)["severity"] == "Extreme"
        time.sleep(0.5)
        assert len(receiver.posts) == 1  # delivered once, not again
    finally:
        receiver.close()
