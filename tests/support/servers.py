"""``onemap serve`` in a real process for tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.pg import BIN, demo_database, free_port


class LiveServer:
    """``onemap serve`` in a real process on a free port."""

    def __init__(self, env: dict[str, str], port: int):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(BIN / "onemap"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(self.base_url + "/openapi.json", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start in 30 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def demo_server(
    admin_url: str,
    template: str,
    name: str,
    data_dir: Path,
    scale: float,
    seed: int,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, LiveServer]]:
    """A demo city (see :func:`demo_database`) behind ``onemap serve``: (database URL,
    server); the server is stopped and the database dropped afterwards."""
    with demo_database(admin_url, template, name, data_dir, scale, seed) as url:
        base_env = {
            "ONEMAP_DATABASE_URL": url,
            "ONEMAP_DATA_DIR": str(data_dir),
            "ONEMAP_LOG_LEVEL": "ERROR",
        }
        server = LiveServer({**base_env, **(env or {})}, free_port())
        try:
            yield url, server
        finally:
            server.stop()
