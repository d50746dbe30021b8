"""How a risk run's cells are stored: only what carries information, one partition per run.

A run covers a **cell set**: the H3 cells of its static table inside the district, stored
once per distinct set (``risk_cell_sets`` / ``risk_set_cells``, keyed by a digest of the cells
and their static scores) with, per coarser resolution, how many cells each parent holds
(``risk_set_parents``). A province refreshed every 10 minutes reuses the same set for months.

A run then stores (``risk_cells``) only its **informative** cells: level above none, or a
level that changed since the previous finished run of the same model on the same cell set
(a cell that went back to none is stored at level 0, so a reader of two runs sees it
lifted). Every other cell of the set was none in both runs, so reading a run **resolves an
absent cell as level none** without looking at any other run; its score is the static
susceptibility for landslide runs (the score of a landslide cell) and null for flood and
rainstorm runs (depth or rain below the first threshold is not kept). SQL readers use
``risk_run_cells(run_id)``, which returns every cell of a run that way, and
``risk_run_res(run_id)`` / ``risk_run_holds(run_id, h3)``, which read only the run's
partition (a statement naming ``risk_cells`` with a run id it does not know as a constant
plans every partition, and a province keeps thousands).

Each run's rows live in a partition of their own (``risk_cells_parts.run_<id>``): the rows
are copied (binary COPY) into a new plain table, indexed, then attached, so pruning a run is
``DROP TABLE`` of its partition instead of a large DELETE. Runs with no cell set (written
before, or by hand) hold all their cells and read as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import numpy as np

from layers.h3cells import parents_array
from layers.schema import RISK_PARTITION_SCHEMA

PARTS = RISK_PARTITION_SCHEMA
#: Binary COPY header: signature, flags, header extension length (PostgreSQL docs, COPY).
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
#: Version byte of jsonb's binary input format.
_JSONB_V1 = b"\x01"


def partition_name(run_id: int) -> str:
    """The partition (in :data:`PARTS`) holding the cells of run ``run_id``."""
    return f"run_{int(run_id)}"


# --- binary COPY -----------------------------------------------------------------------------


def copy_fixed(columns: Sequence[tuple[np.ndarray, str]]) -> bytes:
    """Binary COPY data of fixed-width, non-null columns given as ``(values, dtype)`` with a
    big-endian NumPy dtype (``>i8`` bigint, ``>i4`` integer, ``>i2`` smallint, ``>f4`` real),
    built without a Python loop over rows."""
    n = len(columns[0][0])
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (_, dtype) in enumerate(columns):
        fields += [(f"l{i}", ">i4"), (f"v{i}", dtype)]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["n"] = len(columns)
    for i, (values, dtype) in enumerate(columns):
        rows[f"l{i}"] = np.dtype(dtype).itemsize
        rows[f"v{i}"] = values
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def copy_run_rows(
    run_id: int,
    res: int,
    h3: np.ndarray,
    level: np.ndarray,
    score: np.ndarray,
    factors: Sequence[str] | None,
) -> bytes:
    """Binary COPY rows (no header or trailer) of ``risk_cells`` (run_id, h3, res, level,
    score, factors): the fixed part of every row from one NumPy record array, then per row
    the score (NULL when NaN) and the explanation as jsonb (version byte + UTF-8 JSON)."""
    n = len(h3)
    fixed = np.empty(
        n,
        dtype=np.dtype(
            [
                ("n", ">i2"),
                ("l0", ">i4"),
                ("run", ">i8"),
                ("l1", ">i4"),
                ("h3", ">i8"),
                ("l2", ">i4"),
                ("res", ">i2"),
                ("l3", ">i4"),
                ("level", ">i2"),
            ]
        ),
    )
    fixed["n"], fixed["l0"], fixed["run"], fixed["l1"], fixed["h3"] = 6, 8, run_id, 8, h3
    fixed["l2"], fixed["res"], fixed["l3"], fixed["level"] = 2, res, 2, level
    head = fixed.tobytes()
    width = fixed.dtype.itemsize
    sc = np.asarray(score, dtype="float64")
    finite = ~np.isnan(sc)
    score_bytes = np.empty(n, dtype=[("l", ">i4"), ("v", ">f4")])
    score_bytes["l"], score_bytes["v"] = 4, np.where(finite, sc, 0.0)
    sb = score_bytes.tobytes()
    null = struct.pack("!i", -1)
    out = []
    for i in range(n):
        out.append(head[i * width : (i + 1) * width])
        out.append(sb[i * 8 : i * 8 + 8] if finite[i] else null)
        if factors is None:
            out.append(null)
        else:
            doc = factors[i].encode()
            out.append(struct.pack("!i", len(doc) + 1) + _JSONB_V1 + doc)
    return b"".join(out)


def parse_copy_bigint(data: bytes) -> np.ndarray:
    """The single bigint column of binary COPY output (no NULLs) as int64."""
    body = data[len(_COPY_HEADER) : len(data) - len(_COPY_TRAILER)]
    rows = np.frombuffer(body, dtype=[("n", ">i2"), ("l", ">i4"), ("v", ">i8")])
    return rows["v"].astype("int64")


# --- cell sets --------------------------------------------------------------------------------


def cell_set_digest(h3: np.ndarray, score: np.ndarray, res: int) -> str:
    """Digest of a cell set: its sorted cells, their static scores (as float32) and res."""
    h = hashlib.sha256(f"cells-v1:{res}:".encode())
    h.update(np.ascontiguousarray(h3, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(score, dtype="<f4").tobytes())
    return h.hexdigest()


def set_parents(
    h3: np.ndarray, score: np.ndarray, res: int
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per coarser resolution 0…res−1: (res, parents, cells per parent, highest score)."""
    out: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    sc = np.where(np.isnan(score), -np.inf, score)
    for r in range(res):
        parents = parents_array(h3, r)
        uniq, inverse, counts = np.unique(parents, return_inverse=True, return_counts=True)
        best = np.full(uniq.size, -np.inf)
        np.maximum.at(best, inverse, sc)
        out.append((r, uniq, counts, best))
    return out


async def ensure_cell_set(
    conn: asyncpg.Connection, h3: np.ndarray, score: np.ndarray, res: int
) -> int:
    """The id of the cell set of ``h3`` (int64, any order) with static ``score`` (NaN: none),
    created (cells and parent counts, binary COPY) when it is new."""
    cells = np.asarray(h3, dtype="int64")
    sc = np.asarray(score, dtype="float32")
    if cells.size > 1 and not (cells[1:] > cells[:-1]).all():
        order = np.argsort(cells, kind="stable")
        cells, sc = cells[order], sc[order]
    digest = cell_set_digest(cells, sc, res)
    found = await conn.fetchval("SELECT id FROM risk_cell_sets WHERE digest = $1", digest)
    if found is not None:
        return int(found)
    async with conn.transaction():
        set_id = await conn.fetchval(
            "INSERT INTO risk_cell_sets (digest, res, cells) VALUES ($1, $2, $3) "
            "ON CONFLICT (digest) DO NOTHING RETURNING id",
            digest,
            int(res),
            int(cells.size),
        )
        if set_id is None:  # written meanwhile by another worker
            return int(
                await conn.fetchval("SELECT id FROM risk_cell_sets WHERE digest = $1", digest)
            )
        ids = np.full(cells.size, set_id, dtype="int64")
        await conn.copy_to_table(
            "risk_set_cells",
            source=io.BytesIO(copy_fixed([(ids, ">i8"), (cells, ">i8"), (sc, ">f4")])),
            columns=["set_id", "h3", "score"],
            format="binary",
        )
        if np.isnan(sc).any():  # no susceptibility: NULL, not NaN (which sorts above all)
            await conn.execute(
                "UPDATE risk_set_cells SET score = NULL WHERE set_id = $1 AND score = 'NaN'",
                set_id,
            )
        for r, parents, counts, best in set_parents(cells, sc.astype("float64"), res):
            await conn.copy_to_table(
                "risk_set_parents",
                source=io.BytesIO(
                    copy_fixed(
                        [
                            (np.full(parents.size, set_id, "int64"), ">i8"),
                            (np.full(parents.size, r, "int16"), ">i2"),
                            (parents, ">i8"),
                            (counts.astype("int32"), ">i4"),
                            (np.where(np.isfinite(best), best, np.nan).astype("float32"), ">f4"),
                        ]
                    )
                ),
                columns=["set_id", "res", "h3", "cells", "score_max"],
                format="binary",
            )
        if np.isnan(sc).any():
            await conn.execute(
                "UPDATE risk_set_parents SET score_max = NULL WHERE set_id = $1 "
                "AND score_max = 'NaN'",
                set_id,
            )
    return int(set_id)


# --- what a run stores ------------------------------------------------------------------------


async def previous_warned(
    conn: asyncpg.Connection, model: str, cell_set_id: int, run_id: int
) -> tuple[int | None, np.ndarray]:
    """The previous finished run of ``model`` on the same cell set (None if none) and its
    cells above level none (int64), read with a binary COPY."""
    prev = await conn.fetchval(
        "SELECT id FROM risk_runs WHERE model = $1 AND cell_set_id = $2 AND status = 'done' "
        "AND id <> $3 ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1",
        model,
        cell_set_id,
        run_id,
    )
    if prev is None:
        return None, np.empty(0, dtype="int64")
    buf = io.BytesIO()
    await conn.copy_from_query(
        "SELECT h3 FROM risk_cells WHERE run_id = $1 AND level > 0",
        int(prev),
        output=buf,
        format="binary",
    )
    return int(prev), parse_copy_bigint(buf.getvalue())


def informative(h3: np.ndarray, level: np.ndarray, previous_warned: np.ndarray) -> np.ndarray:
    """Mask of the cells a run stores: level above none, or above none in the previous run
    (so now changed to none). Every other cell is none now and was none before.

    >>> informative(np.array([1, 2, 3]), np.array([0, 2, 0]), np.array([3])).tolist()
    [False, True, True]
    """
    return (np.asarray(level) > 0) | np.isin(h3, previous_warned)


#: Rows per chunk of a run's COPY: explaining the next chunk (Python, in a worker thread)
#: overlaps with PostgreSQL ingesting the previous one.
COPY_CHUNK = 16_384


async def write_run_cells(
    conn: asyncpg.Connection,
    run_id: int,
    res: int,
    h3: np.ndarray,
    level: np.ndarray,
    score: np.ndarray,
    factors: Callable[[np.ndarray], Sequence[str]] | None,
) -> int:
    """Store a run's cells in a partition of their own (inside the caller's transaction):
    binary COPY into a new table, primary key, then ``ATTACH PARTITION`` (the CHECK on
    ``run_id`` spares the attach its validation scan). ``factors`` gives the stored
    explanations (JSON) of the rows at the given positions; it runs in a worker thread, one
    chunk at a time, while the previous chunk is sent. Returns the rows written."""
    if len(h3) == 0:
        return 0
    name = partition_name(run_id)
    rid = int(run_id)
    await conn.execute(
        f"CREATE TABLE {PARTS}.{name} (LIKE risk_cells INCLUDING DEFAULTS INCLUDING "
        f"CONSTRAINTS, CONSTRAINT ck_{name}_run CHECK (run_id = {rid}))"
    )

    def chunk(pos: np.ndarray) -> bytes:
        docs = None if factors is None else factors(pos)
        return copy_run_rows(rid, res, h3[pos], level[pos], score[pos], docs)

    async def data() -> AsyncIterator[bytes]:
        yield _COPY_HEADER
        for start in range(0, len(h3), COPY_CHUNK):
            pos = np.arange(start, min(start + COPY_CHUNK, len(h3)))
            yield await asyncio.to_thread(chunk, pos)
        yield _COPY_TRAILER

    await conn.copy_to_table(
        name,
        schema_name=PARTS,
        source=data(),
        columns=["run_id", "h3", "res", "level", "score", "factors"],
        format="binary",
    )
    await conn.execute(f"ALTER TABLE {PARTS}.{name} ADD PRIMARY KEY (run_id, h3)")
    await conn.execute(
        f"ALTER TABLE risk_cells ATTACH PARTITION {PARTS}.{name} FOR VALUES IN ({rid})"
    )
    return len(h3)


async def drop_run_cells(conn: asyncpg.Connection, run_ids: Sequence[int]) -> None:
    """Drop the partitions of ``run_ids`` (rows of theirs in the default partition go with
    the runs, by the foreign key)."""
    names = [partition_name(r) for r in run_ids]
    existing = await conn.fetch(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE i.inhparent = 'risk_cells'::regclass AND n.nspname = $1 "
        "AND c.relname = ANY($2::text[])",
        PARTS,
        names,
    )
    for row in existing:
        await conn.execute(f"DROP TABLE {PARTS}.{row['relname']}")


def dumps(doc: dict[str, Any]) -> str:
    """An explanation as stored (JSON, non-ASCII kept)."""
    return json.dumps(doc, ensure_ascii=False)
