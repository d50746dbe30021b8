"""Risk cells stored by change: a run keeps only its informative cells in a partition of its
own, and every reader (every cell's level, rolled-up tile shares, prune, the migration)
answers as if it held them all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import h3
import numpy as np
import psycopg
import pytest
from alembic import command

from emergency import cellstore
from emergency.runs import prune
from layers.h3cells import parent_bits
from layers.migrate import alembic_config, upgrade
from tiles import risk

RES = 9


@pytest.fixture
async def asyncpg_conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


def _cells() -> np.ndarray:
    poly = h3.LatLngPoly([(22.44, 113.33), (22.44, 113.40), (22.50, 113.40), (22.50, 113.33)])
    return np.array(sorted(h3.str_to_int(c) for c in h3.polygon_to_cells(poly, RES)), "int64")


def _levels(cells: np.ndarray, seed: int) -> np.ndarray:
    """Levels 0–4, mostly none, warned in patches (by parent cell) as a storm would."""
    rng = np.random.default_rng(seed)
    parents = (cells & np.int64(parent_bits(7)[0])) | np.int64(parent_bits(7)[1])
    uniq, inv = np.unique(parents, return_inverse=True)
    patch = rng.choice([0, 0, 1, 2, 3], size=uniq.size)
    return np.clip(patch[inv] + rng.integers(-1, 2, cells.size), 0, 4).astype("int16")


def _static_score(cells: np.ndarray) -> np.ndarray:
    return np.random.default_rng(5).uniform(0, 1, cells.size)


async def _new_run(conn, model: str = "landslide", age_days: float = 0.0) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO risk_runs (model, status, created_at) VALUES "
            "($1, 'running', now() - make_interval(secs => $2::float8 * 86400)) RETURNING id",
            model,
            age_days,
        )
    )


async def _store(conn, run_id: int, cells, levels, score, age_days: float = 0.0) -> int:
    """What :func:`emergency.runs.store` does with a computed run (no explanations)."""
    set_id = await cellstore.ensure_cell_set(conn, cells, score, RES)
    async with conn.transaction():
        _, warned = await cellstore.previous_warned(conn, "landslide", set_id, run_id)
        mask = cellstore.informative(cells, levels, warned)
        n = await cellstore.write_run_cells(
            conn, run_id, RES, cells[mask], levels[mask], score[mask], None
        )
        await conn.execute(
            "UPDATE risk_runs SET status = 'done', cell_set_id = $2, "
            "finished_at = now() - make_interval(secs => $3::float8 * 86400) WHERE id = $1",
            run_id,
            set_id,
            age_days,
        )
    return n


async def _full_run(conn, cells, levels, score) -> int:
    """The same levels stored whole, as before (no cell set, default partition)."""
    run_id = await _new_run(conn)
    await conn.copy_records_to_table(
        "risk_cells",
        records=[
            (run_id, int(c), RES, int(lv), float(s))
            for c, lv, s in zip(cells, levels, score, strict=True)
        ],
        columns=["run_id", "h3", "res", "level", "score"],
    )
    await conn.execute(
        "UPDATE risk_runs SET status = 'done', finished_at = now() WHERE id = $1", run_id
    )
    return run_id


async def _resolved(conn, run_id: int) -> dict[int, int]:
    rows = await conn.fetch("SELECT h3, level FROM risk_run_cells($1)", run_id)
    return {int(r["h3"]): int(r["level"]) for r in rows}


async def test_a_run_stores_only_informative_cells_and_reads_whole(asyncpg_conn) -> None:
    conn = asyncpg_conn
    cells, score = _cells(), _static_score(_cells())
    runs = [_levels(cells, seed) for seed in (1, 2, 2, 3)]
    runs.append(np.zeros(cells.size, "int16"))  # the storm is over
    prev = np.zeros(cells.size, "int16")
    for levels in runs:
        run_id = await _new_run(conn)
        n = await _store(conn, run_id, cells, levels, score)
        assert n == int(((levels > 0) | (prev > 0)).sum())  # above none, or changed from above
        stored = await conn.fetch("SELECT h3, level FROM risk_cells WHERE run_id = $1", run_id)
        assert len(stored) == n and all(
            r["level"] > 0 or prev[np.searchsorted(cells, r["h3"])] > 0 for r in stored
        )
        assert await _resolved(conn, run_id) == dict(
            zip(cells.tolist(), levels.tolist(), strict=True)
        )
        # the partition holds the run's rows; the default partition holds none
        part = (
            await conn.fetchval(
                "SELECT count(*) FROM risk_cells_parts." + cellstore.partition_name(run_id)
            )
            if n
            else 0
        )
        assert part == n
        prev = levels
    assert await conn.fetchval("SELECT count(*) FROM risk_cells_parts.cells_default") == 0
    assert await conn.fetchval("SELECT count(*) FROM risk_cell_sets") == 1  # one set, reused
    # an absent cell's score is the static susceptibility of landslide runs
    row = await conn.fetchrow(
        "SELECT h3, level, score FROM risk_run_cells($1) WHERE NOT stored LIMIT 1", run_id
    )
    assert row is not None and row["level"] == 0
    assert abs(row["score"] - score[np.searchsorted(cells, row["h3"])]) < 1e-6


async def test_tile_shares_over_absent_cells_match_the_full_run(asyncpg_conn, db_url) -> None:
    conn = asyncpg_conn
    cells = _cells()
    score = _static_score(cells)
    levels = _levels(cells, 7)
    await _store(conn, await _new_run(conn), cells, _levels(cells, 6), score)
    sparse = await _new_run(conn)
    await _store(conn, sparse, cells, levels, score)
    full = await _full_run(conn, cells, levels, score)
    assert await conn.fetchval("SELECT count(*) FROM risk_cells WHERE run_id = $1", sparse) < len(
        cells
    )
    # the plans a cached prepared statement gets (generic) must answer the same
    generic = await asyncpg.connect(
        db_url, server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    try:
        for res in (5, 6, 7, 8, 9):
            await _compare_tiles(conn, generic, cells, res, sparse, full)
    finally:
        await generic.close()
    # the run's resolution comes from its set even when nothing is stored
    quiet = await _new_run(conn)
    await _store(conn, quiet, cells, np.zeros(cells.size, "int16"), score)
    await _store(conn, await _new_run(conn), cells, np.zeros(cells.size, "int16"), score)
    last = int(await conn.fetchval("SELECT max(id) FROM risk_runs"))
    assert await conn.fetchval("SELECT count(*) FROM risk_cells WHERE run_id = $1", last) == 0
    assert (await conn.fetchrow(risk.RUN_SQL, last))[2] == RES


async def _compare_tiles(conn, generic, cells, res: int, sparse: int, full: int) -> None:
    and_mask, or_bits = parent_bits(res)
    parents = sorted({(int(c) & and_mask) | or_bits for c in cells})
    for cover in (None, parents[: max(1, len(parents) // 2)]):
        for c in (conn, generic):
            got = [
                await c.fetch(risk.CELLS_SQL, run, and_mask, or_bits, res, cover)
                for run in (sparse, full)
            ]
            a, b = ([tuple(r) for r in sorted(rows, key=lambda r: r[0])] for rows in got)
            assert a and len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                assert x[:3] == y[:3] and x[4] == y[4]  # parent, level, level_max, cells
                assert abs(x[3] - y[3]) < 1e-6  # score
                assert all(abs(x[k] - y[k]) < 1e-6 for k in range(5, 9))  # shares
            if res == RES:
                assert all(r[4] == 1 for r in a)


async def test_prune_drops_a_run_partition_and_keeps_the_others(asyncpg_conn) -> None:
    conn = asyncpg_conn
    cells, score = _cells(), _static_score(_cells())
    old = await _new_run(conn, age_days=40)
    await _store(conn, old, cells, _levels(cells, 1), score, age_days=40)
    recent = await _new_run(conn, age_days=1)
    levels = _levels(cells, 2)
    await _store(conn, recent, cells, levels, score, age_days=1)
    # a run on other cells (another district): its set goes with it
    other = await _new_run(conn, age_days=40)
    few = cells[:300]
    await _store(conn, other, few, _levels(few, 4), score[:300], age_days=40)
    other_set = await conn.fetchval("SELECT cell_set_id FROM risk_runs WHERE id = $1", other)
    await conn.execute(
        "UPDATE risk_cell_sets SET created_at = now() - interval '40 days' WHERE id = $1",
        other_set,
    )
    n_old = await conn.fetchval(
        "SELECT count(*) FROM risk_cells WHERE run_id = ANY($1::bigint[])", [old, other]
    )
    out = await prune(conn, runs_keep_days=30, events_keep_days=0, dry_run=False)
    assert out["runs"] == 2 and out["cells"] == n_old > 0
    for table in ("risk_cell_sets", "risk_set_cells", "risk_set_parents"):
        key = "id" if table == "risk_cell_sets" else "set_id"
        n = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = $1", other_set)  # noqa: S608
        assert n == 0, table
    names = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'risk_cells'::regclass"
        )
    }
    assert cellstore.partition_name(old) not in names
    assert cellstore.partition_name(recent) in names and "cells_default" in names
    assert await conn.fetchval("SELECT to_regclass($1)", f"risk_cells_parts.run_{old}") is None
    assert await _resolved(conn, recent) == dict(zip(cells.tolist(), levels.tolist(), strict=True))
    assert await conn.fetchval("SELECT count(*) FROM risk_cell_sets") == 1  # still used


def test_migration_keeps_the_cells_of_existing_runs(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0007")
    with psycopg.connect(db_url) as conn:
        ids = []
        for model in ("landslide", "flood"):
            row = conn.execute(
                "INSERT INTO risk_runs (model, status, finished_at) VALUES (%s, 'done', now()) "
                "RETURNING id",
                (model,),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        cells = _cells()[:50].tolist()
        for run_id in ids:
            for i, c in enumerate(cells):
                conn.execute(
                    "INSERT INTO risk_cells (run_id, h3, res, level, score, factors) "
                    'VALUES (%s, %s, 9, %s, 0.5, \'{"rule": "x"}\')',
                    (run_id, c, i % 5),
                )
    upgrade(db_url)
    with psycopg.connect(db_url) as conn:
        for run_id in ids:
            rows = conn.execute(
                "SELECT h3, level, score, factors FROM risk_cells WHERE run_id = %s ORDER BY h3",
                (run_id,),
            ).fetchall()
            assert [(r[0], r[1]) for r in rows] == [(c, i % 5) for i, c in enumerate(cells)]
            assert all(r[2] == 0.5 and r[3] == {"rule": "x"} for r in rows)
            n = conn.execute(
                f"SELECT count(*) FROM risk_cells_parts.run_{run_id}"  # noqa: S608
            ).fetchone()
            assert n == (len(cells),)  # moved into the run's own partition
            resolved = conn.execute("SELECT count(*) FROM risk_run_cells(%s)", (run_id,)).fetchone()
            assert resolved == (len(cells),)


def _partitions_in_plan(plan: object) -> set[str]:
    """Relation names of ``risk_cells`` partitions anywhere in an EXPLAIN (FORMAT JSON) plan."""
    found: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("Relation Name")
            if isinstance(name, str) and (name.startswith("run_") or name == "cells_default"):
                found.add(name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


async def test_readers_plan_only_the_run_partition(asyncpg_conn) -> None:
    """A reader of one run never plans the other runs' partitions (a province keeps
    thousands of them: planning them all cost seconds)."""
    conn = asyncpg_conn
    cells, score = _cells(), _static_score(_cells())
    ids = []
    for seed in range(1, 6):
        run_id = await _new_run(conn)
        await _store(conn, run_id, cells, _levels(cells, seed), score)
        ids.append(run_id)
    run_id = ids[2]
    and_mask, or_bits = parent_bits(7)
    parent = (int(cells[0]) & and_mask) | or_bits
    for sql, args in (
        (risk.RUN_SQL, (run_id,)),
        (risk.LATEST_RUN_SQL, ()),
        (risk.CELLS_SQL, (run_id, and_mask, or_bits, 7, None)),
        (risk.CELLS_SQL, (run_id, and_mask, or_bits, 7, [parent])),
        ("SELECT * FROM risk_run_cells($1)", (run_id,)),
        ("SELECT count(*) FROM risk_cells WHERE run_id = ANY($1::bigint[])", ([run_id],)),
    ):
        plan = json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args))
        assert _partitions_in_plan(plan) <= {cellstore.partition_name(run_id)}, sql
