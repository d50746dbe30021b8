"""Standard addresses: parser accuracy on our annotated real addresses, side by side with cpca,
and parser / batch-geocoder throughput on one core.

Accuracy: the 519 hand-annotated rows of ``tests/fixtures/addresses_cpca_annotated.csv``
(real company addresses of the shared data's cpca test set), scored per component by
:mod:`layers.addresses.accuracy`; the peer is the ``cpca`` package (province/city/district
only, the levels it reads), scored by the same code on the same rows.

Usage: ``python -m bench.bench_addresses DATABASE_URL`` (a database with the demo city), or
``python -m bench.bench_addresses --accuracy`` for the accuracy table alone (no database).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from bench.common import REPO, row
from layers.addresses import parse
from layers.addresses.accuracy import AccuracyReport, evaluate, load_annotated, score
from layers.addresses.db import build_index, fetch_rows_sync
from layers.addresses.gazetteer import default_gazetteer
from layers.addresses.variants import make_variants

ANNOTATED = REPO / "tests" / "fixtures" / "addresses_cpca_annotated.csv"
ADMIN = ("province", "city", "district")


def _rss_mb() -> float:
    """Resident memory of this process now, MB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(url: str) -> dict[str, float]:
    """Throughput (addresses/s, one core), the index's build time (s) and memory (MB),
    and the p99 of single geocodes (ms), all in process."""
    rows, admin = fetch_rows_sync(url)
    default_gazetteer()
    rss0, t = _rss_mb(), time.perf_counter()
    index = build_index(rows, admin)
    build_s, index_mb = time.perf_counter() - t, _rss_mb() - rss0
    texts = [t for t, _, _ in make_variants(rows, 20_000, seed=3)]
    g = index.gazetteer
    t = time.perf_counter()
    for s in texts:
        parse(s, g)
    parse_rate = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    index.geocode_many(texts)
    geo_rate = len(texts) / (time.perf_counter() - t)
    lat = []
    for q in texts[:3000]:
        t = time.perf_counter()
        index.geocode(q)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {
        "parse_rate": parse_rate,
        "geo_rate": geo_rate,
        "build_s": build_s,
        "index_mb": index_mb,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "addresses": len(rows),
    }


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
    n = f"{m['addresses']:,.0f} addresses"
    out += [
        row(
            "address parser",
            round(m["parse_rate"]),
            "addresses/s",
            notes="20,000 messy demo-address variants, one core; goal ≥ 20,000",
        ),
        row(
            "batch geocoder (in process)",
            round(m["geo_rate"]),
            "addresses/s",
            notes=f"same variants through the scored cascade, one core, {n}; goal ≥ 3,000",
        ),
        row(
            "single geocode p99 (in process)",
            round(m["p99_ms"], 2),
            "ms",
            notes=f"3,000 variants one by one, {n}; goal ≤ 50 ms",
        ),
        row(
            "address index build",
            round(m["build_s"], 1),
            "s",
            notes=f"{n}, once per worker on its first geocode; {m['index_mb']:,.0f} MB resident",
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
