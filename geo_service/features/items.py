"""``/collections/{id}/items``: one query description → SQL for features, counts and CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from geo_service.db import Deadline
from geo_service.features.cql import MAX_FILTER_VERTICES, Translator
from geo_service.features.params import STORAGE_CRS, BBox, Crs
from geo_service.features.sqlbits import column_text, feature_json, geometry_sql
from layers.catalog import Layer, Property
from layers.sql import Params, ident

#: Matches are counted exactly up to this many; beyond, numberMatched is the planner's estimate.
COUNT_EXACT_MAX = 100_000


@dataclass
class ItemsQuery:
    """What to select from one layer.  Property names are already checked against the catalog.

    Attributes:
        layer: the collection.
        visible: names of the properties the caller's role may see (filterable, sortable).
        props: properties to output.
        bbox: filter box (any supported SRID; transformed to EPSG:4326 in SQL).
        start, end: inclusive bounds on ``layer.time_field`` (UTC), None when open.
        filters: CQL2 JSON ASTs, ANDed (property equalities, the ``filter`` parameter).
        sortby: (property, descending) pairs; ties broken by the row id for stable paging.
        limit, offset: paging.
        max_filter_vertices: most vertices of a geometry in ``filters``.
        crs: the CRS of output geometries (OGC API – Features Part 2).
        filter_crs: the CRS of the geometries in ``filters`` (``filter-crs``).
    """

    layer: Layer
    visible: set[str]
    props: list[Property]
    bbox: BBox | None = None
    start: datetime | None = None
    end: datetime | None = None
    filters: list[Any] = field(default_factory=list)
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    limit: int = 10
    offset: int = 0
    fid: str | None = None
    max_filter_vertices: int = MAX_FILTER_VERTICES
    crs: Crs = STORAGE_CRS
    filter_crs: Crs = STORAGE_CRS

    def _geom(self) -> str:
        return geometry_sql("t", self.crs.srid, self.crs.lat_first)

    def where(self, params: Params) -> str:
        """The WHERE clause (``TRUE`` when unfiltered), binding values into ``params``."""
        conds: list[str] = []
        if self.fid is not None:
            conds.append(f"t.{ident(self.layer.key)} = {params.add(self.fid, 'text')}")
        if self.bbox is not None:
            b = self.bbox
            env = (
                f"ST_MakeEnvelope({params.add(b.minx, 'float8')}, {params.add(b.miny, 'float8')}, "
                f"{params.add(b.maxx, 'float8')}, {params.add(b.maxy, 'float8')}, {int(b.srid)})"
            )
            if b.srid != 4326:
                env = f"ST_Transform({env}, 4326)"
            conds.append(f"ST_Intersects(t.geom, {env})")
        if self.layer.time_field and (self.start or self.end):
            col = f"t.{ident(self.layer.time_field)}"
            if self.start is not None:
                conds.append(f"{col} >= {params.add(self.start, 'timestamptz')}")
            if self.end is not None:
                conds.append(f"{col} <= {params.add(self.end, 'timestamptz')}")
        fc = self.filter_crs
        tr = Translator(
            self.layer,
            self.visible,
            params,
            max_vertices=self.max_filter_vertices,
            srid=fc.srid,
            lat_first=fc.lat_first,
        )
        for f in self.filters:
            conds.append(tr.where(f))
        return " AND ".join(conds) if conds else "TRUE"

    def order_by(self) -> str:
        keys = [f"t.{ident(n)} {'DESC' if d else 'ASC'} NULLS LAST" for n, d in self.sortby]
        return ", ".join([*keys, "t.id ASC"])

    def features_sql(self) -> tuple[str, list[Any]]:
        """One row per feature: its GeoJSON Feature as text, in page order."""
        params = Params()
        where = self.where(params)
        lim, off = params.add(int(self.limit), "int8"), params.add(int(self.offset), "int8")
        feat = feature_json(self.layer, self.props, geom=self._geom(), decimals=self.crs.decimals)
        sql = (
            f"SELECT {feat}::text "  # noqa: S608 (catalog identifiers, bound values)
            f"FROM {ident(self.layer.table)} t WHERE {where} "
            f"ORDER BY {self.order_by()} LIMIT {lim} OFFSET {off}"
        )
        return sql, params.values

    def csv_sql(self) -> tuple[str, list[Any]]:
        """Rows for CSV: the properties, then lon/lat (x/y in a projected CRS) for point layers
        or WKT (in the CRS's axis order) otherwise."""
        params = Params()
        where = self.where(params)
        cols = [f"{column_text(p)} AS {ident(p.name)}" for p in self.props]
        d = int(self.crs.decimals)
        if self.layer.geometry_type == "Point":
            g = geometry_sql("t", self.crs.srid)
            x, y = ("x", "y") if self.crs.srid == 3857 else ("lon", "lat")
            cols += [
                f"round(ST_X({g})::numeric, {d}) AS {x}",
                f"round(ST_Y({g})::numeric, {d}) AS {y}",
            ]
        else:
            cols.append(f"ST_AsText({self._geom()}, {d}) AS wkt")
        lim, off = params.add(int(self.limit), "int8"), params.add(int(self.offset), "int8")
        sql = (
            f"SELECT {', '.join(cols)} FROM {ident(self.layer.table)} t WHERE {where} "  # noqa: S608 (catalog identifiers, bound values)
            f"ORDER BY {self.order_by()} LIMIT {lim} OFFSET {off}"
        )
        return sql, params.values

    def count_sql(self, cap: int) -> tuple[str, list[Any]]:
        """Count matches, stopping at ``cap + 1`` so the count stays cheap."""
        params = Params()
        where = self.where(params)
        lim = params.add(int(cap) + 1, "int8")
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM {ident(self.layer.table)} t "  # noqa: S608 (catalog identifiers, bound values)
            f"WHERE {where} LIMIT {lim}) s"
        )
        return sql, params.values

    def estimate_sql(self) -> tuple[str, list[Any]]:
        params = Params()
        where = self.where(params)
        return (
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {ident(self.layer.table)} t WHERE {where}",  # noqa: S608 (catalog identifiers, bound values)
            params.values,
        )


async def _arm(conn: asyncpg.Connection, deadline: Deadline | None) -> None:
    if deadline is not None:
        await deadline.arm(conn)


async def fetch_features(
    conn: asyncpg.Connection, q: ItemsQuery, deadline: Deadline | None = None
) -> list[str]:
    """The page of features, each a GeoJSON Feature serialised by PostGIS.

    With a ``deadline`` (and ``conn`` in a transaction) the statement gets only the time left.
    """
    sql, values = q.features_sql()
    await _arm(conn, deadline)
    rows = await conn.fetch(sql, *values)
    return [r[0] for r in rows]


async def count_matched(
    conn: asyncpg.Connection,
    q: ItemsQuery,
    cap: int = COUNT_EXACT_MAX,
    deadline: Deadline | None = None,
) -> tuple[int, bool]:
    """(numberMatched, estimated): exact up to ``cap`` matches, else the planner's estimate."""
    sql, values = q.count_sql(cap)
    await _arm(conn, deadline)
    n = int(await conn.fetchval(sql, *values))
    if n <= cap:
        return n, False
    sql, values = q.estimate_sql()
    await _arm(conn, deadline)
    plan = await conn.fetchval(sql, *values)
    if isinstance(plan, str):  # without the JSON codec
        import json

        plan = json.loads(plan)
    rows = int(plan[0]["Plan"]["Plan Rows"])
    return max(rows, cap + 1), True


async def fetch_csv(
    conn: asyncpg.Connection, q: ItemsQuery, deadline: Deadline | None = None
) -> bytes:
    """The page as CSV (UTF-8, header row) written by PostgreSQL's COPY."""
    sql, values = q.csv_sql()
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await _arm(conn, deadline)
    await conn.copy_from_query(sql, *values, output=sink, format="csv", header=True)
    return b"".join(chunks)
