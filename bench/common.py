"""Shared machinery of the benchmarks: database, servers, the load generator, the result rows.

A benchmark module ``bench/bench_<name>.py`` defines ``run(ctx: BenchContext) -> list[dict]``
and returns rows built with :func:`row`.  ``python -m bench`` gives every module the same
context: one PostGIS database holding the demo city (loaded once), and helpers that start
OneMap or a peer server on a free port and drive them with ``wrk``.

Environment:
    ONEMAP_BENCH_DATABASE_URL: use this PostGIS database (the demo city is loaded only when it
        is empty) instead of a throw-away cluster.
    ONEMAP_BENCH_SCALE: demo city size factor (default 10: 250,000 addresses, 112,000
        buildings; loads in about 30 s).
    ONEMAP_BENCH_DURATION_S: seconds of each measured wrk run (default 10).
    ONEMAP_BENCH_ROUNDS: measured runs per server, interleaved with the peer's (default 2);
        the best run is reported, because the machine is shared and slow runs are noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PROJECT_BIN = Path(sys.executable).parent

#: The peer for OGC API Features, pinned to one minor release so runs stay comparable.
TIPG_SPEC = "tipg==1.6.*"
TIPG_VENV = BENCH_DIR / ".venv-tipg"

#: Columns of the result table: row key → heading.
COLUMNS: dict[str, str] = {
    "benchmark": "benchmark",
    "peer": "peer",
    "onemap": "OneMap",
    "peer_value": "peer value",
    "ratio": "OneMap/peer",
    "unit": "unit",
    "notes": "notes",
}

WRK_MARKER = "ONEMAP_WRK "

#: wrk script: cycles through the request paths listed in the file given after ``--``; each
#: thread starts at its own offset.  ``done`` prints one JSON line (see :func:`parse_wrk`).
WRK_LUA = r"""
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local paths = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  i = (tid or 0) * 7919 % #paths
end

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'ONEMAP_WRK {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
    .. '"p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class BenchError(RuntimeError):
    """A benchmark could not be set up or run (a server did not start, wrk failed, …)."""


# --------------------------------------------------------------------------- result rows
def row(
    benchmark: str,
    onemap: float | None,
    unit: str,
    *,
    peer: str = "",
    peer_value: float | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """One result row; ``ratio`` is OneMap / peer (for latencies, below 1 is better)."""
    ratio = None
    if onemap is not None and peer_value:
        ratio = onemap / peer_value
    return {
        "benchmark": benchmark,
        "peer": peer,
        "onemap": onemap,
        "peer_value": peer_value,
        "ratio": ratio,
        "unit": unit,
        "notes": notes,
    }


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (Linux ``/proc``), e.g. a server's workers."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids = task / "children"
        if kids.exists():
            out += [int(p) for p in kids.read_text().split()]
    return out


def run_child(module: str, *args: str, timeout_s: float = 1800) -> dict[str, Any]:
    """Run ``python -m bench.<module> --child ARGS`` (a measurement alone in its process, so
    its peak memory is its own) and return the JSON object it printed last."""
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--child", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise BenchError(f"bench.{module} {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _cell(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if key == "ratio":
            text = f"{value:.2f}×"
        elif abs(value) >= 100:
            text = f"{value:,.0f}"
        elif abs(value) >= 10:
            text = f"{value:.1f}"
        else:
            text = f"{value:.2f}"
    else:
        text = str(value)
    # A pipe would end the cell; a newline would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a GitHub Markdown table with the :data:`COLUMNS` headings.

    Missing keys give empty cells; keys outside :data:`COLUMNS` are appended to the notes.

    >>> print(markdown_table([row("x", 2.0, "req/s", peer="p", peer_value=1.0)]))
    | benchmark | peer | OneMap | peer value | OneMap/peer | unit | notes |
    |---|---|---|---|---|---|---|
    | x | p | 2.00 | 1.00 | 2.00× | req/s |  |
    """
    lines = [
        "| " + " | ".join(COLUMNS.values()) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        extra = [f"{k}={v}" for k, v in r.items() if k not in COLUMNS]
        cells = []
        for key in COLUMNS:
            value = r.get(key)
            if key == "notes" and extra:
                value = "; ".join(([str(value)] if value else []) + extra)
            cells.append(_cell(value, key))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- wrk
@dataclass
class WrkResult:
    """One wrk run: throughput and latency percentiles (milliseconds)."""

    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    p90_ms: float | None = None
    bytes_per_s: float | None = None


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's output: the JSON line of :data:`WRK_LUA`'s ``done``, or else the plain
    ``--latency`` report (``Requests/sec:``, ``Latency Distribution``, error lines).

    Errors are socket errors, timeouts and non-2xx/3xx responses.

    Raises:
        ValueError: neither form is present (wrk failed; its output is in the message).
    """
    for line in output.splitlines():
        if line.startswith(WRK_MARKER):
            d = json.loads(line[len(WRK_MARKER) :])
            duration_s = d["duration_us"] / 1e6
            error_keys = ("connect_errors", "read_errors", "write_errors", "status_errors")
            errors = sum(d[k] for k in error_keys) + d["timeouts"]
            return WrkResult(
                requests=d["requests"],
                duration_s=duration_s,
                requests_per_s=d["requests"] / duration_s if duration_s else 0.0,
                p50_ms=d["p50_us"] / 1000,
                p90_ms=d["p90_us"] / 1000,
                p99_ms=d["p99_us"] / 1000,
                errors=errors,
                bytes_per_s=d["bytes"] / duration_s if duration_s else 0.0,
            )
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", output, re.M)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", output, re.M))
    if not (rps and total and "50" in pct and "99" in pct):
        raise ValueError("wrk output has neither a result line nor a latency report:\n" + output)
    errors = 0
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2)) / 1000,
        requests_per_s=float(rps.group(1)),
        p50_ms=_ms(pct["50"]),
        p90_ms=_ms(pct["90"]) if "90" in pct else None,
        p99_ms=_ms(pct["99"]),
        errors=errors,
    )


def ensure_wrk() -> str:
    """Path of ``wrk``, installing the Debian package when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed; run: sudo apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        proc = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
            env=env,
            capture_output=True,
            text=True,
        )
    found = shutil.which("wrk")
    if not found:
        raise BenchError(f"could not install wrk: {proc.stderr.strip()[-500:]}")
    return found


def run_wrk(
    base_url: str,
    paths: Sequence[str],
    *,
    duration_s: float,
    connections: int = 32,
    threads: int = 2,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Drive ``base_url`` with wrk, cycling through ``paths`` (path + query strings).

    Args:
        base_url: ``http://host:port`` of the server.
        paths: request targets, e.g. ``/collections/buildings/items?bbox=…``.
        duration_s: seconds of load.
        connections: open HTTP connections (kept alive).
        threads: wrk threads.
        timeout_s: a request slower than this counts as a timeout error.
    """
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="onemap-wrk-") as tmp:
        script = Path(tmp) / "cycle.lua"
        script.write_text(WRK_LUA)
        url_file = Path(tmp) / "paths.txt"
        url_file.write_text("\n".join(paths) + "\n")
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "--latency",
            "-s",
            str(script),
            base_url,
            "--",
            str(url_file),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
    return parse_wrk(proc.stdout)


# --------------------------------------------------------------------------- servers
def http_get(url: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (local http)
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """A server process on ``127.0.0.1:port``; its output goes to ``log_path``."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_ready(self, path: str, timeout_s: float = 90.0) -> None:
        """Wait until ``GET path`` answers 200 (the workers have finished their start-up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http_get(self.base_url + path, timeout_s=5)[0] == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise BenchError(
            f"{self.name} did not answer {path} in {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _spawn(name: str, cmd: list[str], env: dict[str, str], port: int, cwd: Path) -> Server:
    log_path = Path(tempfile.mkstemp(prefix=f"onemap-bench-{name}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, proc, port, log_path)


def ensure_peer_venv(venv: Path, specs: Sequence[str], probe: str) -> Path:
    """A virtual environment of a peer (created on first use, kept apart from OneMap's
    own); ``probe`` is Python code that succeeds once it is installed.  Returns its bin/."""
    bin_dir = venv / "bin"
    check = [str(bin_dir / "python"), "-c", probe]
    if (bin_dir / "python").exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return bin_dir
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", *specs],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BenchError(f"pip install {' '.join(specs)} failed: {proc.stderr.strip()[-1000:]}")
    return bin_dir


def ensure_tipg_venv() -> Path:
    """``bench/.venv-tipg`` with tipg and uvicorn (created on first use); returns its bin/."""
    return ensure_peer_venv(TIPG_VENV, [TIPG_SPEC, "uvicorn"], "import tipg, uvicorn")


def tipg_version() -> str:
    bin_dir = ensure_tipg_venv()
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", "import tipg; print(tipg.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------- the context
@dataclass
class BenchContext:
    """What every benchmark module gets: settings, the database, server starters.

    The database is set up on first use of :attr:`database_url`; :meth:`close` stops every
    server and the throw-away cluster.
    """

    scale: float = 10.0
    duration_s: float = 10.0
    rounds: int = 2
    connections: int = 32
    threads: int = 2
    external_url: str | None = None
    notes: list[str] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @classmethod
    def from_env(cls) -> BenchContext:
        env = os.environ
        return cls(
            scale=float(env.get("ONEMAP_BENCH_SCALE", "10")),
            duration_s=float(env.get("ONEMAP_BENCH_DURATION_S", "10")),
            rounds=max(1, int(env.get("ONEMAP_BENCH_ROUNDS", "2"))),
            external_url=env.get("ONEMAP_BENCH_DATABASE_URL") or None,
        )

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> BenchContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def data_dir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="onemap-bench-data-"))
        self._stack.callback(shutil.rmtree, path, ignore_errors=True)
        return path

    @cached_property
    def database_url(self) -> str:
        """A migrated database holding the demo city (loaded once per run)."""
        from layers.migrate import upgrade
        from layers.seed import load_demo

        if self.external_url:
            url = self.external_url
        else:
            from tests.support.pg import destroy_cluster, throwaway_cluster

            cluster = throwaway_cluster("onemap-bench-", tcp=True)
            self._stack.callback(destroy_cluster, cluster)
            cluster.ensure_database("onemap")
            url = cluster.url("onemap")
        upgrade(url)
        t0 = time.monotonic()
        result = load_demo(url, self.data_dir, scale=self.scale, if_empty=bool(self.external_url))
        if result.skipped:
            self.notes.append("demo city: the external database already held data (not reloaded)")
        else:
            n_addr = result.counts.get("addresses", 0)
            n_bldg = result.counts.get("buildings", 0)
            self.notes.append(
                f"demo city scale {self.scale:g}: {n_addr:,} addresses, {n_bldg:,} buildings, "
                f"loaded in {time.monotonic() - t0:.0f} s"
            )
        self._vacuum_analyze(url)
        return url

    @staticmethod
    def _vacuum_analyze(url: str) -> None:
        # Fresh tables have no statistics and no visibility map: plans and index-only scans
        # would differ from a database that has been running for a while.
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    @cached_property
    def district_bbox(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in degrees (EPSG:4326) of the demo district."""
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            box = conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) e FROM admin_areas WHERE level = 'district') s"
            ).fetchone()
        if box is None or box[0] is None:
            raise BenchError("the database has no district in admin_areas")
        return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))

    def sample_points(self, table: str, n: int, seed: str = "onemap") -> list[tuple[float, float]]:
        """``n`` (lon, lat) points (degrees) on pseudo-random rows of ``table``, the same
        rows every run (ordered by a hash of the row id and ``seed``)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM {} "
                    "ORDER BY md5(id::text || %s) LIMIT %s) s"
                ).format(sql.Identifier(table)),
                (seed, n),
            ).fetchall()
        if not rows:
            raise BenchError(f"table {table} is empty")
        return [(float(x), float(y)) for x, y in rows]

    def _free_port(self) -> int:
        from tests.support.pg import free_port

        return free_port()

    def start_onemap(self, workers: int = 2) -> Server:
        """``onemap serve`` with ``workers`` processes on the bench database."""
        port = self._free_port()
        env = {
            **os.environ,
            "ONEMAP_DATABASE_URL": self.database_url,
            "ONEMAP_DATA_DIR": str(self.data_dir),
        }
        cmd = [
            str(PROJECT_BIN / "onemap"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        server = _spawn("onemap", cmd, env, port, REPO)
        self._stack.callback(server.log_path.unlink, missing_ok=True)
        self._stack.callback(server.stop)
        server.wait_ready("/collections/buildings/items?limit=1")
        return server

    def start_tipg(self, workers: int = 2, tables: Sequence[str] = ()) -> Server:
        """tipg (``tipg.main:app`` under uvicorn) with ``workers`` processes on the bench
        database, publishing ``tables`` (``public.<name>``; all spatial tables when empty)."""
        bin_dir = ensure_tipg_venv()
        port = self._free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "ONEMAP_"))} | {
            "DATABASE_URL": self.database_url,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_MAX_CONN_SIZE": "10",  # the same pool size as OneMap's per worker
        }
        if tables:
            env["TIPG_DB_TABLES"] = json.dumps([f"public.{t}" for t in tables])
        cmd = [
            str(bin_dir / "uvicorn"),
            "tipg.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        # cwd: an empty directory, so tipg reads no stray .env file.
        cwd = Path(tempfile.mkdtemp(prefix="onemap-bench-tipg-"))
        self._stack.callback(shutil.rmtree, cwd, ignore_errors=True)
        server = _spawn("tipg", cmd, env, port, cwd)
        self._stack.callback(server.log_path.unlink, missing_ok=True)
        self._stack.callback(server.stop)
        probe = f"/collections/public.{tables[0]}/items?limit=1" if tables else "/collections"
        server.wait_ready(probe)
        return server

    def wrk(
        self, server: Server, paths: Sequence[str], duration_s: float | None = None
    ) -> WrkResult:
        """wrk against ``server`` with the run's connections/threads/duration."""
        return run_wrk(
            server.base_url,
            paths,
            duration_s=self.duration_s if duration_s is None else duration_s,
            connections=self.connections,
            threads=self.threads,
        )


def load_average() -> str:
    """The 1-minute load average (other people's work shows up here)."""
    with contextlib.suppress(OSError):
        return f"{os.getloadavg()[0]:.2f}"
    return "?"
