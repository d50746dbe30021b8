"""Standard addresses: parser accuracy on our annotated real addresses, side by side with cpca,
and parser / batch-geocoder throughput on one core.

Accuracy: the 519 hand-annotated rows of ``tests/fixtures/addresses_cpca_annotated.csv``
(real company addresses of the shared data's cpca test set), scored per component by
:mod:`layers.addresses.accuracy`; the peer is the ``cpca`` package (province/city/district
only, the levels it reads), scored by the same code on the same rows.

Usage: ``python -m bench.bench_addresses DATABASE_URL`` (a database with the demo city; in
process only), or
``python -m bench.bench_addresses --accuracy`` for the accuracy table alone (no database).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import REPO, BenchError, child_pids, row
from layers.addresses import parse
from layers.addresses.accuracy import AccuracyReport, evaluate, load_annotated, score
from layers.addresses.gazetteer import default_gazetteer
from layers.addresses.index import AddressIndex
from layers.addresses.variants import make_variants

ANNOTATED = REPO / "tests" / "fixtures" / "addresses_cpca_annotated.csv"
ADMIN = ("province", "city", "district")


#: A spread sample of the table the messy variants are made from (by hash: every part of
#: the city, the same rows every run).
SAMPLE_SQL = "SELECT * FROM addresses ORDER BY md5(code) LIMIT 50000"
CHUNK = 1000


def _rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process now, MB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _variants(conn: Any, n: int = 20_000, seed: int = 3) -> tuple[list[str], list[str]]:
    """``n`` messy variants of sampled addresses and the codes they stand for."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SAMPLE_SQL).fetchall()
    found = make_variants(rows, n, seed=seed)
    return [t for t, _, _ in found], [c for _, c, _ in found]


def _texts(conn: Any, n: int = 20_000, seed: int = 3) -> list[str]:
    return _variants(conn, n, seed)[0]


def _p99(samples: list[float]) -> float:
    samples = sorted(samples)
    return samples[int(len(samples) * 0.99)] * 1000


def measure(url: str) -> dict[str, float]:
    """In process, one Python core plus PostgreSQL: parser and batch-geocoder throughput
    (addresses/s), the index's load time (s) and memory (MB), the p99 of single geocodes
    (ms) and the table's size."""
    with psycopg.connect(url, autocommit=True) as conn:
        n = conn.execute("SELECT count(*) FROM addresses").fetchone()[0]  # type: ignore[index]
        texts, codes = _variants(conn)
        g = default_gazetteer()
        rss0, t = _rss_mb(), time.perf_counter()
        index = AddressIndex.load(conn, g)
        build_s, index_mb = time.perf_counter() - t, _rss_mb() - rss0
        g = index.gazetteer
        t = time.perf_counter()
        for s in texts:
            parse(s, g)
        parse_rate = len(texts) / (time.perf_counter() - t)
        warm = _texts(conn, 10_000, seed=5)  # the representatives' and pieces' caches
        for k in range(0, len(warm), CHUNK):
            index.geocode_many(conn, warm[k : k + CHUNK])
        t = time.perf_counter()
        found = []
        for k in range(0, len(texts), CHUNK):
            found += index.geocode_many(conn, texts[k : k + CHUNK])
        geo_rate = len(texts) / (time.perf_counter() - t)
        top1 = sum(r.code == c for r, c in zip(found, codes, strict=True)) / len(codes)
        lat = []
        for q in texts[:3000]:
            t = time.perf_counter()
            index.geocode(conn, q)
            lat.append(time.perf_counter() - t)
    return {
        "parse_rate": parse_rate,
        "geo_rate": geo_rate,
        "build_s": build_s,
        "index_mb": index_mb,
        "names": index.names,
        "p99_ms": _p99(lat),
        "top1": top1,
        "addresses": n,
    }


def measure_server(ctx: Any, workers: int = 2) -> dict[str, float]:
    """Through HTTP on a warm ``onemap serve --workers 2``: batch throughput with two
    clients per worker posting 1,000 addresses at a time, the p99 of single ``GET
    /geo/geocode`` one after another, and each worker's resident memory."""
    import concurrent.futures

    import httpx

    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        texts, timed = _texts(conn, 10_000), _texts(conn, 20_000, seed=5)
    server = ctx.start_onemap(workers=workers)
    base = server.base_url + "/geo/geocode"
    chunks = [timed[k : k + CHUNK] for k in range(0, len(timed), CHUNK)]

    def post_all(part: list[list[str]]) -> None:
        with httpx.Client(timeout=300) as c:
            for chunk in part:
                r = c.post(base, json={"addresses": chunk})
                if r.status_code != 200:
                    raise BenchError(f"POST /geo/geocode → {r.status_code}: {r.text[:200]}")

    clients = 2 * workers  # so that no worker waits for its next request
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        # warm: every worker's representatives and fuzzy pieces of the scopes (different
        # addresses from those timed)
        warm = [texts[k : k + CHUNK] for k in range(0, len(texts), CHUNK)]
        list(pool.map(post_all, [warm[i::clients] for i in range(clients)]))
        t = time.perf_counter()
        list(pool.map(post_all, [chunks[i::clients] for i in range(clients)]))
        batch_rate = len(timed) / (time.perf_counter() - t)
    lat = []
    with httpx.Client(timeout=30) as c:
        for q in timed[:3000]:
            t = time.perf_counter()
            r = c.get(base, params={"q": q})
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise BenchError(f"GET /geo/geocode → {r.status_code}")
    rss = [_rss_mb(pid) for pid in child_pids(server.proc.pid)]
    server.stop()
    return {"batch_rate": batch_rate, "p99_ms": _p99(lat), "worker_mb": max(rss, default=0.0)}


def accuracy() -> dict[str, AccuracyReport]:
    """OneMap's reports (all / dev / held out) on the annotated real addresses."""
    g = default_gazetteer()
    return evaluate(lambda text: parse(text, g).as_dict(), ANNOTATED)


def _admin_only(report: AccuracyReport) -> tuple[int, int, int]:
    s = [report.components[c] for c in ADMIN]
    return sum(x.counted for x in s), sum(x.exact for x in s), sum(x.normalised for x in s)


def peer_admin(texts: list[str]) -> tuple[list[dict[str, str | None]], float]:
    """cpca's province/city/district of ``texts`` (市辖区 read as the municipality) and
    its throughput in addresses/s."""
    import cpca

    t = time.perf_counter()
    df = cpca.transform(texts)
    rate = len(texts) / (time.perf_counter() - t)
    out: list[dict[str, str | None]] = []
    for prov, city, dist in zip(df["省"], df["市"], df["区"], strict=True):
        prov = prov if isinstance(prov, str) else None
        city = city if isinstance(city, str) else None
        if city in ("市辖区", "县"):
            city = prov
        out.append(
            {"province": prov, "city": city, "district": dist if isinstance(dist, str) else None}
        )
    return out, rate


def accuracy_rows() -> list[dict[str, Any]]:
    reports = accuracy()
    rows = load_annotated(ANNOTATED)
    texts = [t for _, t, _ in rows]
    golds = [{c: g[c] for c in ADMIN} for _, _, g in rows]
    g = default_gazetteer()
    t = time.perf_counter()
    for x in texts:
        parse(x, g)
    our_rate = len(texts) / (time.perf_counter() - t)
    theirs, peer_rate = peer_admin(texts)
    peer_report = score(zip(golds, theirs, strict=True))
    n, exact, _ = _admin_only(reports["all"])
    pn, pexact, _ = _admin_only(peer_report)
    out = [
        row(
            "address components right, normalised (519 real addresses)",
            round(reports["all"].total.normalised_share, 3),
            "share",
            notes=(
                f"exact {reports['all'].total.exact_share:.3f}; held-out half "
                f"{reports['held_out'].total.normalised_share:.3f}; goal ≥ 0.90 / ≥ 0.80 exact"
            ),
        ),
        row(
            "province/city/district right (519 real addresses)",
            round(exact / n, 3),
            "share",
            peer="cpca 0.5",
            peer_value=round(pexact / pn, 3),
            notes="same rows, same scorer; cpca reads only these three levels",
        ),
        row(
            "admin parse of the 519 addresses",
            round(our_rate),
            "addresses/s",
            peer="cpca 0.5",
            peer_value=round(peer_rate),
            notes="OneMap parses every component; cpca.transform on the whole list",
        ),
    ]
    for name, s in reports["all"].components.items():
        out.append(
            row(
                f"  {name}",
                round(s.normalised_share, 3),
                "share",
                notes=f"exact {s.exact_share:.3f}, n = {s.counted}",
            )
        )
    return out


def run(ctx: Any) -> list[dict[str, Any]]:
    """Harness entry (``make bench``): accuracy, then throughput (goals 20,000 and 3,000/s)."""
    out = accuracy_rows()
    m = measure(ctx.database_url)
    h = measure_server(ctx)
    n = f"{m['addresses']:,.0f} addresses"
    out += [
        row(
            "address parser",
            round(m["parse_rate"]),
            "addresses/s",
            notes="20,000 messy demo-address variants, one core; goal ≥ 20,000",
        ),
        row(
            "batch geocoder (HTTP, 2 workers)",
            round(h["batch_rate"]),
            "addresses/s",
            notes=f"POST /geo/geocode, 1,000 a request, 4 clients, {n}; goal ≥ 3,000",
        ),
        row(
            "batch geocoder (in process)",
            round(m["geo_rate"]),
            "addresses/s",
            notes=f"same variants, one Python core + PostgreSQL, {n}",
        ),
        row(
            "messy variants geocoded to their address",
            round(m["top1"], 3),
            "share",
            notes=f"top-1 on the 20,000 variants (dropped levels, typos, numerals …), {n}",
        ),
        row(
            "single geocode p99 (HTTP, warm)",
            round(h["p99_ms"], 2),
            "ms",
            notes=f"3,000 GET /geo/geocode one by one, {n}; goal ≤ 50 ms",
        ),
        row(
            "single geocode p99 (in process)",
            round(m["p99_ms"], 2),
            "ms",
            notes=f"3,000 variants one by one, {n}",
        ),
        row(
            "address index load",
            round(m["build_s"], 1),
            "s",
            notes=(
                f"{n}: the {m['names']:,.0f} estate and road names held per worker, "
                f"{m['index_mb']:,.0f} MB; rows stay in PostgreSQL"
            ),
        ),
        row(
            "server worker memory",
            round(h["worker_mb"]),
            "MB",
            notes=f"largest worker's resident memory after the geocoding above, {n}",
        ),
    ]
    return out


def main(argv: list[str]) -> None:
    reports = accuracy()
    for name, report in reports.items():
        print(f"{name} ({report.addresses} addresses)\n{report.table()}\n")
    if argv and argv[0] != "--accuracy":
        for k, v in measure(argv[0]).items():
            print(f"{k:<12} {v:,.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
