"""Side-by-side benchmarks: each compares OneMap with a peer in one run and reports ratios.

``python -m bench`` runs every module ``bench/bench_<name>.py`` that defines
``run(ctx: bench.common.BenchContext) -> list[dict]``; ``python -m bench features tiles`` runs
only those.  All rows go into one Markdown table, printed and written to
``bench/results/latest.md``.  A module without ``run``, or one that fails to import or
raises, gives a row saying so; the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    REPO,
    RESULTS_DIR,
    BenchContext,
    load_average,
    markdown_table,
    row,
)

PREFIX = "bench_"


def discover(names: Sequence[str] = ()) -> list[str]:
    """Module names (``bench_<name>``) in ``bench/``, sorted; only ``names`` when given.

    Raises:
        SystemExit: a requested name has no module.
    """
    found = sorted(
        m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if m.name.startswith(PREFIX)
    )
    if not names:
        return found
    wanted = [n if n.startswith(PREFIX) else PREFIX + n for n in names]
    missing = [w for w in wanted if w not in found]
    if missing:
        raise SystemExit(f"no such benchmark: {', '.join(missing)} (have: {', '.join(found)})")
    return wanted


def run_module(
    name: str, ctx: Any, load: Callable[[str], Any] = importlib.import_module
) -> list[dict[str, Any]]:
    """Rows of one benchmark module; a missing ``run`` or a failure becomes a note row."""
    short = name.removeprefix(PREFIX)
    try:
        module = load(f"bench.{name}")
    except Exception as exc:  # report it and go on with the other modules
        return [row(short, None, "", notes=f"ERROR: import failed: {type(exc).__name__}: {exc}")]
    run = getattr(module, "run", None)
    if not callable(run):
        return [row(short, None, "", notes="skipped: the module defines no run(ctx)")]
    t0 = time.monotonic()
    try:
        rows = list(run(ctx))
    except Exception as exc:
        traceback.print_exc()
        return [row(short, None, "", notes=f"ERROR: {type(exc).__name__}: {exc}"[:500])]
    print(f"[bench] {short}: {len(rows)} rows in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return rows


def _commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return proc.stdout.strip() or "?"


def report(
    rows: Sequence[dict[str, Any]], ctx: BenchContext, started: dt.datetime, loads: tuple[str, str]
) -> str:
    """The Markdown document of a run: conditions, then the table."""
    head = [
        "# OneMap benchmarks",
        "",
        f"- run: {started:%Y-%m-%d %H:%M} UTC, commit {_commit()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"- machine: {os.cpu_count()} CPUs, shared with other work "
        f"(1-min load average {loads[0]} at start, {loads[1]} at end)",
        f"- wrk: {ctx.connections} connections, {ctx.threads} threads, "
        f"{ctx.duration_s:g} s per run, best of {ctx.rounds} alternating runs",
        *[f"- {n}" for n in ctx.notes],
        "- ratio = OneMap / peer: above 1 is better for req/s, below 1 for latencies",
        "",
        "",
    ]
    return "\n".join(head) + markdown_table(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (e.g. features); default all")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.md", help="Markdown file")
    args = parser.parse_args(argv)

    names = discover(args.names)
    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    rows: list[dict[str, Any]] = []
    with BenchContext.from_env() as ctx:
        for name in names:
            print(f"[bench] {name.removeprefix(PREFIX)} …", file=sys.stderr)
            rows += run_module(name, ctx)
        text = report(rows, ctx, started, (load_start, load_average()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 1 if any(str(r.get("notes", "")).startswith("ERROR") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
