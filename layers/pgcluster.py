"""A project-local PostgreSQL + PostGIS cluster, managed with the Debian server binaries.

``initdb`` refuses to run as root, so when we are root every server command runs as
the ``postgres`` system user (``runuser``).  The cluster lives outside the repository
(default ``/var/tmp/onemap-pg``) and is reached either over TCP (``host`` set) or only
over a unix socket in ``socket_dir`` (``host=None``, as the test clusters do).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from layers.errors import ClusterError, PortInUse

PG_MAJOR = 15
SERVER_USER = "postgres"


def pg_bindir() -> Path:
    """Directory of the PostgreSQL server binaries (``initdb``, ``pg_ctl``)."""
    env = os.environ.get("ONEMAP_PG_BINDIR")
    candidates = [Path(env)] if env else []
    candidates += [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    for c in candidates:
        if (c / "pg_ctl").exists():
            return c
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        f"PostgreSQL {PG_MAJOR} server binaries not found; install postgresql-{PG_MAJOR} "
        f"and postgresql-{PG_MAJOR}-postgis-3 (make setup does, as root)"
    )


def port_is_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in ``pgdata`` that this project starts and stops.

    Args:
        pgdata: data directory (created by :meth:`init`).
        port: TCP port, also used in the unix socket's name.
        host: listen address, or ``None`` for unix-socket only.
        socket_dir: directory of the unix socket (default: ``pgdata``).
        fsync: ``False`` for throw-away test clusters (faster, unsafe on power loss).
    """

    pgdata: Path
    port: int = 54329
    host: str | None = "127.0.0.1"
    socket_dir: Path | None = None
    fsync: bool = True

    def __post_init__(self) -> None:
        self.pgdata = Path(self.pgdata)
        if self.socket_dir is None:
            self.socket_dir = self.pgdata

    # -- helpers -----------------------------------------------------------------
    @property
    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise ClusterError(
                f"running as root but there is no {SERVER_USER!r} user to run PostgreSQL as; "
                f"install postgresql-{PG_MAJOR}"
            ) from None
        return ["runuser", "-u", SERVER_USER, "--"]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = self._as_server_user + [str(pg_bindir() / args[0]), *args[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip()
            raise ClusterError(f"{args[0]} failed: {msg}")
        return proc

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    @property
    def log_path(self) -> Path:
        return self.pgdata / "server.log"

    # -- state -------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def url(self, dbname: str = "onemap") -> str:
        """libpq URL of database ``dbname`` in this cluster (user ``postgres``, trust auth)."""
        if self.host:
            return f"postgresql://{SERVER_USER}@{self.host}:{self.port}/{dbname}"
        return (
            f"postgresql://{SERVER_USER}@/{dbname}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )

    # -- actions -----------------------------------------------------------------
    def init(self) -> bool:
        """Create the cluster if it does not exist; True when it was created."""
        if self.initialized():
            return False
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if any(self.pgdata.iterdir()):
            raise ClusterError(f"{self.pgdata} exists, is not empty and is not a cluster")
        self._chown(self.pgdata)
        os.chmod(self.pgdata, 0o700)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        return True

    def start(self, timeout_s: int = 60) -> bool:
        """Initialise if needed and start; True when it was started, False if already running.

        Raises:
            PortInUse: another program listens on the port.
            ClusterError: the server did not start (the log's tail says why).
        """
        if self.running():
            return False
        if self.host and port_is_open(self.host, self.port):
            raise PortInUse(
                f"port {self.port} on {self.host} is taken by another program, not by OneMap's "
                f"cluster in {self.pgdata}; stop it, or set ONEMAP_PGPORT to a free port "
                "(or ONEMAP_DATABASE_URL to use an existing PostGIS)"
            )
        self.init()
        assert self.socket_dir is not None
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.socket_dir)
        opts = [
            f"-c listen_addresses='{self.host or ''}'",
            f"-c port={self.port}",
            f"-c unix_socket_directories='{self.socket_dir}'",
            "-c max_connections=200",
            "-c shared_buffers=256MB",
            "-c work_mem=32MB",
            "-c maintenance_work_mem=256MB",
            "-c max_wal_size=2GB",
        ]
        if not self.fsync:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        proc = self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(timeout_s),
            "-l",
            str(self.log_path),
            "-o",
            " ".join(opts),
            check=False,
        )
        if proc.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-8:])
            raise ClusterError(f"PostgreSQL did not start: {proc.stderr.strip()}\n{tail}")
        return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server; True when it was running."""
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w")
        return True

    def ensure_database(self, dbname: str = "onemap", postgis: bool = True) -> bool:
        """Create ``dbname`` (with the postgis extension) if missing; True when created."""
        return ensure_database(self.url("postgres"), dbname, postgis=postgis)

    def destroy(self) -> None:
        """Stop the server and delete its data directory."""
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        shutil.rmtree(self.pgdata, ignore_errors=True)


def ensure_database(admin_url: str, dbname: str, postgis: bool = True, template: str = "") -> bool:
    """Create database ``dbname`` through ``admin_url`` if it does not exist.

    Args:
        admin_url: URL of a database on the same server (usually ``postgres``).
        dbname: the database to create.
        postgis: also ``CREATE EXTENSION postgis`` in it.
        template: create it from this template database instead of the default.

    Returns:
        True when the database was created.
    """
    import psycopg
    from psycopg import sql

    created = False
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:
            # Just after start-up the server may still refuse connections for a moment.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(stmt)
            created = True
    if postgis:
        db_url = replace_database(admin_url, dbname)
        with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return created


def replace_database(url: str, dbname: str) -> str:
    """``url`` with its database name replaced by ``dbname``.

    >>> replace_database("postgresql://u@h:1/a?host=/x", "b")
    'postgresql://u@h:1/b?host=/x'
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))
