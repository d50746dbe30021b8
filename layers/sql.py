"""The one place SQL text is assembled from names: quoted catalog identifiers, bound
placeholders, the asyncpg → psycopg placeholder rewrite and the extent query.

Identifiers only ever come from the layer catalog (:func:`ident`); every value goes through
:class:`Params` as a ``$n`` placeholder (asyncpg) or :func:`to_psycopg` (psycopg).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def ident(name: str) -> str:
    """``name`` quoted as an SQL identifier (like ``quote_ident``); only catalog names."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Params:
    """Values bound as ``$1, $2, …`` in the order they were added."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any, cast: str | None = None) -> str:
        """Bind ``value``; returns its placeholder (with an explicit ``::cast`` if given)."""
        self.values.append(value)
        ph = f"${len(self.values)}"
        return f"{ph}::{cast}" if cast else ph


def to_psycopg(query: str, params: Sequence[object]) -> tuple[str, dict[str, object]]:
    """Rewrite asyncpg ``$n`` placeholders as psycopg ``%(pn)s`` with a parameter dict."""
    return re.sub(r"\$(\d+)", r"%(p\1)s", query), {f"p{i + 1}": v for i, v in enumerate(params)}


def extent_sql(tables: Sequence[str], *, estimated: bool = False) -> str:
    """SQL of one row ``(west, south, east, north)`` in degrees: the extent of the ``geom``
    of catalog ``tables`` (NULLs when all are empty). ``estimated`` reads the planner's
    statistics (``ST_EstimatedExtent``, cheap on big tables) instead of scanning rows."""
    if not tables:
        raise ValueError("extent of no table")
    if estimated:
        parts = [
            f"SELECT ST_EstimatedExtent('public', '{t.replace(chr(39), chr(39) * 2)}', 'geom')"
            "::geometry AS e"
            for t in tables
        ]
    else:
        parts = [f"SELECT ST_Extent(geom)::geometry AS e FROM public.{ident(t)}" for t in tables]  # noqa: S608
    union = " UNION ALL ".join(parts)
    return (
        "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) "  # noqa: S608 (catalog names)
        f"FROM (SELECT ST_Extent(e) AS x FROM ({union}) AS u) AS s"
    )
