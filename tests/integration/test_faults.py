"""Faults with real processes: the database stops under load and comes back."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from layers.seed import load_demo
from tests.support.pg import destroy_cluster, throwaway_cluster

URLS = [
    "/collections/venues/items?limit=20&bbox=113.3,22.4,113.5,22.6",
    "/geo/locate?lon=113.4&lat=22.5",
    "/collections/grids/items?limit=5",
    "/health",
]


@pytest.mark.slow
def test_database_stops_under_load_and_service_recovers(live_server_factory, tmp_path) -> None:
    cluster = throwaway_cluster("onemap-fault-")
    try:
        cluster.ensure_database("onemap")
        url = cluster.url("onemap")
        from layers.migrate import upgrade

        upgrade(url)
        load_demo(url, tmp_path, scale=0.2, seed=3)
        server = live_server_factory({"ONEMAP_DATABASE_URL": url, "ONEMAP_LOG_LEVEL": "ERROR"})
        results: list[tuple[float, float, int]] = []  # (start, seconds, status)
        stop = threading.Event()

        def hammer(offset: int) -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as c:
                i = offset
                while not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        status = c.get(URLS[i % len(URLS)]).status_code
                    except httpx.HTTPError:
                        status = -1
                    results.append((t0, time.monotonic() - t0, status))
                    i += 1

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        down_at = time.monotonic()
        cluster.stop("fast")
        time.sleep(3.0)
        cluster.start()
        up_at = time.monotonic()
        time.sleep(6.0)
        stop.set()
        for t in threads:
            t.join(30)

        statuses = {s for _, _, s in results}
        assert statuses <= {200, 503}, statuses  # never a 500, never a dropped connection
        slowest = max(d for _, d, _ in results)
        assert slowest < 5.0, f"a request took {slowest:.1f}s"
        during = [s for t0, _, s in results if down_at + 0.5 < t0 < up_at]
        assert during and 503 in during
        healthy_again = [t0 for t0, _, s in results if t0 > up_at and s == 200]
        assert healthy_again, "no successful request after the database returned"
        assert healthy_again[0] - up_at < 5.0
        # After recovery every request succeeds.
        late = [s for t0, _, s in results if t0 > up_at + 5.0]
        assert late and set(late) == {200}, set(late)
        assert server.proc.poll() is None
    finally:
        destroy_cluster(cluster)
