"""CQL2 (OGC API – Features Part 3) → SQL with bound parameters.

Text and JSON filters are parsed and validated by the ``cql2`` library; its JSON AST
(``Expr.to_json()``) is then translated here, because ``cql2``'s own ``to_sql`` inlines
literals.  Property names are looked up in the catalog (only the properties the caller's role
may see are queryable) and every literal becomes a ``$n`` parameter whose type is checked
against the property it is compared with, so the database never sees a type error.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import cql2
import shapely
import shapely.geometry

from geo_service.errors import BadRequest
from layers.catalog import Layer
from layers.sql import Params, ident

#: Names a filter may use for the feature geometry.
GEOMETRY_NAMES = ("geometry", "geom")

_COMPARE = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_crosses": "ST_Crosses",
    "s_overlaps": "ST_Overlaps",
}
_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/"}
_NUMERIC = ("integer", "number")


class InvalidFilter(BadRequest):
    def __init__(self, detail: str, code: str = "invalid_filter"):
        super().__init__(detail, code=code)


#: Longest filter accepted, in characters (a 1,000-vertex WKT polygon is about 25,000;
#: URLs longer than 64 KiB are refused by most HTTP clients anyway).
MAX_FILTER_CHARS = 32_768
#: Deepest nesting accepted: parentheses, NOT and arithmetic operators chained above the
#: innermost predicate (cql2-text), or operators nested in operators (cql2-json, one more
#: for the predicate itself).  The ``cql2`` parser and validator recurse once per level on a
#: native stack and their cost grows with the depth; a hand-written filter rarely nests 8.
MAX_FILTER_DEPTH = 20
#: JSON containers (objects and arrays) nested in a cql2-json filter, checked on the raw text
#: before ``json.loads``: two per operator (the object and its ``args``) plus a geometry's
#: coordinate arrays.
MAX_JSON_NESTING = 2 * (MAX_FILTER_DEPTH + 1) + 8

_GEOMETRY_WORDS = frozenset(
    {
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "bbox",
        "envelope",
    }
)
_CHAIN_WORDS = frozenset({"not", "div"})
_LOGIC_WORDS = frozenset({"and", "or"})


def _too_deep(depth: int) -> InvalidFilter:
    return InvalidFilter(
        f"the filter nests more than {MAX_FILTER_DEPTH} levels deep (parentheses, NOT, "
        f"arithmetic) at least {depth}; simplify it",
        code="filter_too_deep",
    )


def text_depth(text: str) -> int:
    """An upper bound of the nesting of a cql2-text filter, found without parsing it.

    One scan over the characters, skipping string literals and quoted names: each open
    parenthesis is a level, and so is each ``NOT``, arithmetic operator (``+ - * / % ^ div``)
    or sign in the current group, since those chain (``NOT NOT …``, ``a+1+1+…`` nest one
    level each); ``AND``/``OR`` restart the chain (they are flat lists) and count once.
    Inside geometry literals (``POLYGON((…))``, ``BBOX(…)``) only parentheses count, and a
    sign right after ``(`` or ``,`` (``IN (-1, -2)``) is part of its number.

    >>> text_depth("NOT NOT code = 'x'"), text_depth("((a = 1))"), text_depth("a-1-1 > 0")
    (2, 2, 2)
    """
    # Per open group: [chained operators, 1 once AND/OR was seen, inside a geometry literal]
    groups: list[list[int]] = [[0, 0, 0]]
    deepest = 0
    prev = ""  # the last significant character
    word = ""  # the last word, to see a geometry literal's opening parenthesis
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n:  # '' (or "") inside the literal is an escaped quote
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i, prev, word = j + 1, c, ""
            continue
        if c.isspace():
            i += 1
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_:."):
                j += 1
            word = text[i:j].lower()
            g = groups[-1]
            if not g[2]:
                if word in _CHAIN_WORDS:
                    g[0] += 1
                elif word in _LOGIC_WORDS:
                    g[0], g[1] = 0, 1
            i, prev = j, "a"
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "."):
                # an exponent's sign belongs to the number: 1e-5
                j += 2 if text[j] in "eE" and j + 1 < n and text[j + 1] in "+-" else 1
            i, prev, word = j, "0", ""
            continue
        g = groups[-1]
        if c == "(":
            groups.append([0, 0, 1 if g[2] or word in _GEOMETRY_WORDS else 0])
        elif c == ")":
            if len(groups) > 1:
                groups.pop()
        elif c in "+-*/%^" and not g[2]:
            sign_of_number = c in "+-" and prev in ("", "(", ",") and text[i + 1 : i + 2].isdigit()
            if not sign_of_number:
                g[0] += 1
        i, prev, word = i + 1, c, ""
        depth = len(groups) - 1 + sum(gr[0] + gr[1] for gr in groups)
        deepest = max(deepest, depth)
    return max(deepest, len(groups) - 1 + sum(gr[0] + gr[1] for gr in groups))


def json_nesting(text: str) -> int:
    """How deeply JSON objects and arrays nest in ``text``, without parsing it (strings,
    with their escapes, are skipped)."""
    deepest = depth = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def op_depth(node: Any) -> int:
    """Operators nested in operators in a CQL2 JSON AST (``a = 1`` is 1); iterative."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(node, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            if "op" in item:
                depth += 1
                deepest = max(deepest, depth)
            todo.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, depth) for v in item)
    return deepest


def check_filter_size(text: str, lang: str) -> None:
    """Refuse a filter that is too long or nests too deeply, before any parser sees it."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidFilter(
            f"the filter has {len(text)} characters; at most {MAX_FILTER_CHARS} are accepted",
            code="filter_too_long",
        )
    if lang == "cql2-text":
        depth = text_depth(text)
        if depth > MAX_FILTER_DEPTH:
            raise _too_deep(depth)
        return
    nesting = json_nesting(text)
    if nesting > MAX_JSON_NESTING:
        raise _too_deep(nesting // 2)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidFilter(f"invalid cql2-json filter: {exc}") from None
    depth = op_depth(doc) - 1
    if depth > MAX_FILTER_DEPTH:
        raise _too_deep(depth)


#: Names of the drafts of Features Part 3, still sent by older clients (GDAL before 3.7
#: writes its ``-where`` as ``filter-lang=cql-text`` when the OpenAPI document offers it).
LEGACY_FILTER_LANGS = {"cql-text": "cql2-text"}


def parse_filter(text: str, lang: str | None) -> dict[str, Any]:
    """Parse a CQL2 filter in ``lang`` (``cql2-text``, the default, or ``cql2-json``).

    The size and nesting are bounded first (:func:`check_filter_size`): the ``cql2``
    library recurses on a native stack, so a deeply nested filter would otherwise crash the
    worker.  Returns the CQL2 JSON AST; raises :class:`InvalidFilter` with the parser's
    message.
    """
    lang = (lang or "cql2-text").lower()
    lang = LEGACY_FILTER_LANGS.get(lang, lang)
    if lang not in ("cql2-text", "cql2-json"):
        raise BadRequest(
            f"unsupported filter-lang {lang!r}; use cql2-text or cql2-json",
            code="invalid_filter_lang",
        )
    check_filter_size(text, lang)
    try:
        expr = cql2.parse_text(text) if lang == "cql2-text" else cql2.parse_json(text)
        expr.validate()
        ast = expr.to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError, TypeError) as exc:
        raise InvalidFilter(f"invalid {lang} filter: {str(exc).strip()}") from None
    if not isinstance(ast, dict | bool):
        raise InvalidFilter(f"invalid {lang} filter: not a boolean expression")
    if op_depth(ast) > MAX_FILTER_DEPTH + 1:  # the text scan is a bound; this is exact
        raise _too_deep(op_depth(ast) - 1)
    return ast  # type: ignore[return-value]


def parse_instant(value: str) -> datetime:
    """An RFC 3339 date-time (or a date, taken as 00:00 UTC) as an aware UTC datetime."""
    v = value.strip()
    try:
        if len(v) == 10:
            return datetime.combine(date.fromisoformat(v), time(0), tzinfo=UTC)
        dt = datetime.fromisoformat(v.replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"invalid date-time {value!r} (expected RFC 3339)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


#: Most vertices in one geometry of a filter (callers with an API key; spatial predicates on
#: a complex polygon cost time in proportion to its vertices times the rows they test).
MAX_FILTER_VERTICES = 100_000
#: Most vertices in one geometry of a filter from a caller without an API key.
MAX_ANONYMOUS_FILTER_VERTICES = 1_000


def in_storage_crs(sql: str, srid: int = 4326, lat_first: bool = False) -> str:
    """A geometry expression given in ``srid`` (latitude first when ``lat_first``) as an
    EPSG:4326 longitude/latitude one, like the stored geometries."""
    srid = int(srid)
    if lat_first:
        sql = f"ST_SetSRID(ST_FlipCoordinates({sql}), {srid})"
    if srid != 4326:
        sql = f"ST_Transform({sql}, 4326)"
    return sql


def geometry_literal(
    params: Params,
    geojson: dict[str, Any],
    max_vertices: int = MAX_FILTER_VERTICES,
    srid: int = 4326,
    lat_first: bool = False,
) -> str:
    """A bound GeoJSON geometry in ``srid`` (``filter-crs``; axis order of that CRS) after
    checking it with shapely, as an EPSG:4326 lon/lat SQL expression."""
    try:
        geom = shapely.geometry.shape(geojson)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise InvalidFilter(f"invalid geometry in filter: {exc}") from None
    n = int(shapely.get_num_coordinates(geom))
    if n > max_vertices:
        raise InvalidFilter(
            f"a geometry in the filter has {n} vertices; at most {max_vertices} are accepted"
            + (" without an API key" if max_vertices < MAX_FILTER_VERTICES else ""),
            code="filter_geometry_too_large",
        )
    wkb = f"ST_GeomFromWKB({params.add(shapely.to_wkb(geom), 'bytea')}, {int(srid)})"
    return in_storage_crs(wkb, srid, lat_first)


class Translator:
    """Translate one CQL2 JSON AST for ``layer`` as seen by a caller who may see ``visible``."""

    def __init__(
        self,
        layer: Layer,
        visible: set[str],
        params: Params,
        alias: str = "t",
        max_vertices: int = MAX_FILTER_VERTICES,
        srid: int = 4326,
        lat_first: bool = False,
    ):
        """``srid``/``lat_first``: the CRS of the filter's geometries (``filter-crs``)."""
        self.layer = layer
        self.visible = visible
        self.params = params
        self.alias = alias
        self.max_vertices = max_vertices
        self.srid = int(srid)
        self.lat_first = lat_first

    # --- entry ---------------------------------------------------------------------
    def where(self, node: Any) -> str:
        sql, typ = self.expr(node)
        if typ not in ("boolean", None):
            raise InvalidFilter("a filter must be a boolean expression")
        return sql

    # --- values --------------------------------------------------------------------
    def prop(self, name: str) -> tuple[str, str]:
        if name in GEOMETRY_NAMES:
            return f"{self.alias}.geom", "geometry"
        p = self.layer.get_property(name)  # UnknownProperty: 400 naming it
        if name not in self.visible:
            raise BadRequest(
                f"property {name!r} of layer {self.layer.id!r} is not available to your role",
                code="property_not_visible",
            )
        return f"{self.alias}.{ident(p.name)}", p.type

    def literal(self, value: Any, hint: str | None) -> tuple[str, str | None]:
        """Bind a literal, checked against ``hint`` (the type it is compared with)."""
        add = self.params.add
        if value is None:
            return "NULL", None
        if isinstance(value, bool):
            self._check(hint, "boolean", value)
            return add(value, "boolean"), "boolean"
        if isinstance(value, int | float):
            self._check(hint, "number", value)
            return add(float(value), "float8"), "number"
        if isinstance(value, str):
            if hint == "datetime":
                return add(parse_instant(value), "timestamptz"), "datetime"
            self._check(hint, "string", value)
            return add(value, "text"), "string"
        if isinstance(value, dict):
            if "timestamp" in value or "date" in value:
                self._check(hint, "datetime", value)
                raw = value.get("timestamp") or value.get("date")
                return add(parse_instant(str(raw)), "timestamptz"), "datetime"
            if "bbox" in value:
                b = [float(x) for x in value["bbox"]]
                if len(b) == 6:
                    b = [b[0], b[1], b[3], b[4]]
                if len(b) != 4:
                    raise InvalidFilter("a BBOX needs 4 or 6 numbers")
                if self.lat_first:
                    b = [b[1], b[0], b[3], b[2]]
                a = ", ".join(add(x, "float8") for x in b)
                return in_storage_crs(f"ST_MakeEnvelope({a}, {self.srid})", self.srid), "geometry"
            if "type" in value:
                lit = geometry_literal(
                    self.params, value, self.max_vertices, self.srid, self.lat_first
                )
                return lit, "geometry"
            if "interval" in value:
                raise InvalidFilter("an INTERVAL may only be used in a temporal operator")
            if "op" in value:
                return self.expr(value)
            if "property" in value:
                return self.prop(str(value["property"]))
        raise InvalidFilter(f"unsupported value in filter: {json.dumps(value)[:200]}")

    @staticmethod
    def _check(hint: str | None, typ: str, value: Any) -> None:
        if hint is None or hint == typ or (hint in _NUMERIC and typ == "number"):
            return
        raise InvalidFilter(f"cannot compare a {hint} value with {json.dumps(value)[:100]}")

    def operand(self, node: Any, hint: str | None = None) -> tuple[str, str | None]:
        if isinstance(node, dict) and "property" in node and "op" not in node:
            return self.prop(str(node["property"]))
        if isinstance(node, dict) and "op" in node:
            return self.expr(node)
        return self.literal(node, hint)

    def _typed_args(self, args: list[Any]) -> list[tuple[str, str | None]]:
        """Translate ``args``, binding literals with the type of the first non-literal."""
        hint: str | None = None
        out: list[tuple[str, str | None] | None] = [None] * len(args)
        for i, a in enumerate(args):
            if isinstance(a, dict) and ("property" in a or "op" in a):
                out[i] = self.operand(a)
                hint = hint or out[i][1]  # type: ignore[index]
        for i, a in enumerate(args):
            if out[i] is None:
                out[i] = self.literal(a, hint)
        return [o for o in out if o is not None]

    # --- expressions ---------------------------------------------------------------
    def expr(self, node: Any) -> tuple[str, str | None]:
        if isinstance(node, bool):
            return ("TRUE" if node else "FALSE"), "boolean"
        if not isinstance(node, dict) or "op" not in node:
            return self.operand(node)
        op = str(node["op"]).lower()
        args = node.get("args") or []
        if op in ("and", "or"):
            parts = [self.where(a) for a in args]
            return "(" + f" {op.upper()} ".join(parts) + ")", "boolean"
        if op == "not":
            return f"(NOT {self.where(args[0])})", "boolean"
        if op in _COMPARE:
            (a, ta), (b, tb) = self._typed_args(args)
            self._compatible(ta, tb)
            return f"({a} {_COMPARE[op]} {b})", "boolean"
        if op == "like":
            (a, ta), (b, tb) = self._typed_args(args)
            if ta not in ("string", None) or tb not in ("string", None):
                raise InvalidFilter("LIKE needs string operands")
            return f"({a} LIKE {b})", "boolean"
        if op == "between":
            (a, ta), (lo, tlo), (hi, thi) = self._typed_args(args)
            self._compatible(ta, tlo)
            self._compatible(ta, thi)
            return f"({a} BETWEEN {lo} AND {hi})", "boolean"
        if op == "in":
            a, ta = self.operand(args[0])
            values = args[1] if isinstance(args[1], list) else [args[1]]
            if not values:
                return "FALSE", "boolean"
            items = []
            for v in values:
                item, tv = self.literal(v, ta)
                self._compatible(ta, tv)
                items.append(item)
            return f"({a} IN ({', '.join(items)}))", "boolean"
        if op == "isnull":
            a, _ = self.operand(args[0])
            return f"({a} IS NULL)", "boolean"
        if op in ("casei", "accenti"):
            a, ta = self.operand(args[0], "string")
            if ta not in ("string", None):
                raise InvalidFilter(f"{op.upper()} needs a string, not a {ta}")
            if op == "accenti":
                raise InvalidFilter("ACCENTI (accent-insensitive comparison) is not supported")
            return f"lower({a})", "string"
        if op in _ARITH:
            (a, ta), (b, tb) = self._typed_args(args)
            if ta not in (*_NUMERIC, None) or tb not in (*_NUMERIC, None):
                raise InvalidFilter(f"arithmetic {op!r} needs numeric operands")
            return f"({a} {_ARITH[op]} {b})", "number"
        if op in _SPATIAL:
            (a, ta), (b, tb) = (self.operand(x) for x in args)
            if ta != "geometry" or tb != "geometry":
                raise InvalidFilter(f"{op.upper()} needs two geometries")
            return f"{_SPATIAL[op]}({a}, {b})", "boolean"
        if op.startswith("t_"):
            return self.temporal(op, args), "boolean"
        raise InvalidFilter(f"unsupported CQL2 operator or function {node['op']!r}")

    @staticmethod
    def _compatible(ta: str | None, tb: str | None) -> None:
        if ta is None or tb is None or ta == tb:
            return
        if ta in _NUMERIC and tb in _NUMERIC:
            return
        raise InvalidFilter(f"cannot compare a {ta} with a {tb}")

    def temporal(self, op: str, args: list[Any]) -> str:
        """Temporal operators on an instant property against an instant or an interval."""
        a, ta = self.operand(args[0])
        if ta != "datetime":
            raise InvalidFilter(f"{op.upper()} needs a date-time property as first argument")
        other = args[1]
        if isinstance(other, dict) and "interval" in other:
            lo_raw, hi_raw = (str(x) for x in other["interval"])
            lo = (
                None
                if lo_raw in ("..", "")
                else self.params.add(parse_instant(lo_raw), "timestamptz")
            )
            hi = (
                None
                if hi_raw in ("..", "")
                else self.params.add(parse_instant(hi_raw), "timestamptz")
            )
        else:
            lo = hi = self.literal(other, "datetime")[0]
        inside = (
            " AND ".join([f"{a} >= {lo}"] * (lo is not None) + [f"{a} <= {hi}"] * (hi is not None))
            or f"{a} IS NOT NULL"
        )
        if op in ("t_intersects", "t_during", "t_equals"):
            return f"({inside})"
        if op == "t_disjoint":
            return f"(NOT ({inside}))"
        if op == "t_before":
            return f"({a} < {lo})" if lo is not None else "FALSE"
        if op == "t_after":
            return f"({a} > {hi})" if hi is not None else "FALSE"
        raise InvalidFilter(f"unsupported temporal operator {op!r}")
