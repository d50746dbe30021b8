"""`onemap geocode IN.csv --column COL OUT.csv` end to end on a small demo city."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg

from layers.seed import load_demo

ONEMAP = str(Path(sys.executable).parent / "onemap")


def test_geocode_csv(db_url: str, tmp_path: Path) -> None:
    load_demo(db_url, tmp_path / "data", scale=0.1, seed=5)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT code, full_address FROM addresses WHERE room IS NOT NULL ORDER BY code LIMIT 20"
        ).fetchall()
    assert len(rows) == 20
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(22), "地址": [r[1] for r in rows] + ["", "这不是一个地址"]}).to_csv(
        src, index=False
    )
    dst = tmp_path / "out.csv"
    r = subprocess.run(
        [ONEMAP, "geocode", str(src), "--column", "地址", str(dst)],
        env={**os.environ, "ONEMAP_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(dst, dtype=str)
    assert len(out) == 22 and list(out["id"]) == [str(i) for i in range(22)]
    code_col = next(c for c in out.columns if c.startswith("geo_") and "code" in c)
    level_col = next(c for c in out.columns if c.startswith("geo_") and "level" in c)
    assert list(out[code_col][:20]) == [r[0] for r in rows]
    assert set(out[level_col][:20]) == {"room"}
    assert out[level_col][20] in ("none", None) or pd.isna(out[level_col][20])
    assert out[level_col][21] != "room"
    bad = subprocess.run(
        [ONEMAP, "geocode", str(src), "--column", "nope", str(tmp_path / "x.csv")],
        env={**os.environ, "ONEMAP_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "nope" in bad.stderr
    assert not (tmp_path / "x.csv").exists()
