"""A small hand-built world around one H3 cell for the emergency-workflow tests.

Grids are H3 hexagons (so area shares are known by construction), points are placed with
pyproj's geodesic ``fwd`` (independent of PostGIS), and a risk run's cells are inserted
directly.  Every expectation in the tests is derived from these facts, not from the code
under test.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import h3
import psycopg
import shapely
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
LAT, LON = 22.5, 113.4
RES = 9


def offset(lon: float, lat: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    """The point ``dist_m`` metres from (lon, lat) towards ``bearing_deg`` (from north)."""
    x, y, _ = GEOD.fwd(lon, lat, bearing_deg, dist_m)
    return float(x), float(y)


def hexagon(cell: str) -> shapely.Polygon:
    return shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def centre(cell: str) -> tuple[float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    return lng, lat


def _wkt_multi(geom: shapely.Geometry) -> str:
    if isinstance(geom, shapely.Polygon):
        geom = shapely.MultiPolygon([geom])
    return geom.wkt


@dataclass
class World:
    """Cells: c0 (red) and c2 (orange) are in an orange warning; c1 (yellow) and c4 (blue)
    are not.  Grids: G1 = hex(c0), G2 = hex(c1), G3 = hex(c2) ∪ hex(c3)."""

    c0: str
    c1: str
    c2: str
    c3: str
    c4: str
    pop: dict[str, int] = field(default_factory=dict)
    addresses: dict[str, tuple[float, float]] = field(default_factory=dict)
    run_id: int = 0

    def cell_of(self, lon: float, lat: float) -> str:
        return h3.latlng_to_cell(lat, lon, RES)


def build_world(url: str, n_addresses: int = 300, seed: int = 1) -> World:
    c0 = h3.latlng_to_cell(LAT, LON, RES)
    ring1 = sorted(h3.grid_ring(c0, 1))
    c1 = ring1[0]
    ring2 = sorted(h3.grid_ring(c0, 2))
    c2 = next(c for c in ring2 if not h3.are_neighbor_cells(c, c1))
    c3 = next(c for c in ring2 if h3.are_neighbor_cells(c, c2) and c != c1)
    c4 = sorted(h3.grid_ring(c0, 4))[0]
    w = World(c0, c1, c2, c3, c4, pop={"G1": 1000, "G2": 600, "G3": 800})
    all_cells = h3.grid_disk(c0, 6)
    box = shapely.unary_union([hexagon(c) for c in all_cells]).envelope.buffer(0.002).envelope
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO admin_areas (code, name, level, parent_code, geom) VALUES "
            "('D1', '测试区', 'district', NULL, ST_GeomFromText(%s, 4326)), "
            "('S1', '测试街道', 'street', 'D1', ST_GeomFromText(%s, 4326)), "
            "('C1', '测试社区', 'community', 'S1', ST_GeomFromText(%s, 4326))",
            (_wkt_multi(box), _wkt_multi(box), _wkt_multi(box)),
        )
        grids = {
            "G1": hexagon(c0),
            "G2": hexagon(c1),
            "G3": shapely.unary_union([hexagon(c2), hexagon(c3)]),
        }
        for code, geom in grids.items():
            conn.execute(
                "INSERT INTO grids (code, name, community_code, worker_name, worker_phone, "
                "households, population, geom) VALUES (%s, %s, 'C1', %s, %s, %s, %s, "
                "ST_GeomFromText(%s, 4326))",
                (
                    code,
                    f"网格{code}",
                    f"网格员{code}",
                    f"1380000{code[-1]}000",
                    w.pop[code] // 3,
                    w.pop[code],
                    _wkt_multi(geom),
                ),
            )
        cell_grid = {c0: "G1", c1: "G2", c2: "G3", c3: "G3"}
        rng = random.Random(seed)
        rows = []
        disk = list(h3.grid_disk(c0, 4))
        for i in range(n_addresses):
            cell = rng.choice(disk)
            poly = hexagon(cell)
            minx, miny, maxx, maxy = poly.bounds
            while True:
                lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
                if poly.contains(shapely.Point(lon, lat)):
                    break
            code = f"A{i:04d}"
            w.addresses[code] = (lon, lat)
            actual = h3.latlng_to_cell(lat, lon, RES)
            rows.append((code, f"测试路{i}号", cell_grid.get(actual), f"POINT({lon} {lat})"))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO addresses (code, full_address, community, grid_code, geom) "
                "VALUES (%s, %s, '测试社区', %s, ST_GeomFromText(%s, 4326))",
                rows,
            )
        w.run_id = insert_run(
            conn, "flood", {c0: 4, c1: 2, c2: 3, c4: 1}, summary={"note": "hand-made"}
        )
    return w


def insert_run(
    conn: psycopg.Connection,
    model: str,
    levels: dict[str, int],
    status: str = "done",
    summary: dict | None = None,
) -> int:
    """A risk run row with the given cells (H3 string → level 0–4); returns its id."""
    row = conn.execute(
        "INSERT INTO risk_runs (model, status, summary, finished_at) "
        "VALUES (%s, %s, %s, now()) RETURNING id",
        (model, status, json.dumps(summary or {})),
    ).fetchone()
    assert row is not None
    run_id = int(row[0])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO risk_cells (run_id, h3, res, level, score, factors) "
            "VALUES (%s, %s, %s, %s, %s, '{}')",
            [
                (run_id, h3.str_to_int(c), h3.get_resolution(c), lvl, lvl / 4)
                for c, lvl in levels.items()
            ],
        )
    return run_id


def add_point(
    conn: psycopg.Connection, table: str, columns: dict[str, object], lon: float, lat: float
) -> None:
    """Insert one point feature (test tables only: ``table`` is a literal from the test)."""
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    conn.execute(
        f"INSERT INTO {table} ({names}, geom) VALUES ({marks}, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",  # noqa: E501
        (*columns.values(), lon, lat),
    )


#: Tags given to the world's residents, in turn (None = not vulnerable).
RESIDENT_TAG_CYCLE = (None, "独居老人,高龄", None, "婴幼儿", None, None, "行动不便", None)


@dataclass
class Resident:
    code: str
    address_code: str
    grid_code: str | None
    tags: str | None
    cadre_code: str | None
    lon: float
    lat: float


def id_number(i: int) -> str:
    """A valid 18-character ID number (check character by GB 11643, computed here)."""
    first17 = f"44200019{50 + i % 50:02d}0101{i % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def add_residents(url: str, w: World, per_address: int = 2) -> list[Resident]:
    """Residents at every address of the world: ``per_address`` each, tags from
    :data:`RESIDENT_TAG_CYCLE`, one of two cadres of the address's grid (none outside
    the grids).  Names, phones and ID numbers are unique per resident."""
    import hashlib

    out: list[Resident] = []
    rows = []
    grid_of = _address_grids(url)
    for n, (acode, (lon, lat)) in enumerate(sorted(w.addresses.items())):
        grid = grid_of[acode]
        for m in range(per_address):
            i = n * per_address + m
            tags = RESIDENT_TAG_CYCLE[i % len(RESIDENT_TAG_CYCLE)]
            cadre = f"BB{grid}-{n % 2 + 1}" if grid else None
            number = id_number(i)
            salt = f"{i:016x}"
            digest = salt + "$" + hashlib.sha256((salt + number).encode()).hexdigest()
            r = Resident(f"R{i:05d}", acode, grid, tags, cadre, lon, lat)
            out.append(r)
            rows.append(
                (
                    r.code,
                    f"居民{i}",
                    number[:3] + "*" * 11 + number[-4:],
                    digest,
                    f"1390000{i:04d}",
                    1950 + i % 60,
                    f"HH{acode}",
                    "自住",
                    tags,
                    acode,
                    grid,
                    cadre,
                    f"干部{cadre}" if cadre else None,
                    f"13700{n % 2 + 1}0000{grid[-1]}" if grid else None,
                    f"POINT({lon} {lat})",
                )
            )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO residents (code, name, id_number, id_hash, phone, birth_year, "
            "household_code, residence_type, tags, address_code, grid_code, cadre_code, "
            "cadre_name, cadre_phone, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, ST_GeomFromText(%s, 4326))",
            rows,
        )
    return out


def _address_grids(url: str) -> dict[str, str | None]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT code, grid_code FROM addresses").fetchall())
