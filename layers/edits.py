"""Edits of single features (OGC API – Features Part 4): create, replace, update, delete.

Every edit is checked exactly like an import (:func:`layers.load.prepare_frame`: geometry
type, validity, CRS, required fields, types, enums), written with its audit row in one
transaction, and announced by the layer's own trigger (``layer_changed``), which also moves
the layer's version so tiles are redrawn.

Optimistic locking: a feature's entity tag is the MD5 of its whole row (so any change,
whoever made it, changes the tag).  An edit carrying ``If-Match`` is refused with
:class:`PreconditionFailed` when the tag no longer matches — a stale edit never overwrites a
newer one.  Feature ids are the layers' ``code``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import asyncpg
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely.geometry

from layers.audit import Actor, record_async
from layers.catalog import CATALOG, Layer
from layers.errors import ImportFailed, LayersError
from layers.load import prepare_frame
from layers.sql import ident

#: Layers with a workflow of their own (warnings, incidents) or personal data imported as a
#: whole (residents) are not edited feature by feature.
NOT_EDITABLE = frozenset({"warnings", "incidents", "residents"})


class NotEditable(LayersError):
    """A collection that cannot be edited feature by feature (405)."""


class FeatureNotFound(LayersError, LookupError):
    """No feature with this id (404)."""


class FeatureExists(LayersError):
    """A feature with this id already exists (409)."""


class PreconditionFailed(LayersError):
    """``If-Match`` names a version that is no longer current (412)."""


def editable(layer_id: str) -> Layer:
    layer = CATALOG[layer_id]  # UnknownLayer (404) when not in the catalog
    if layer.id in NOT_EDITABLE:
        raise NotEditable(f"collection {layer.id!r} cannot be edited feature by feature")
    return layer


def etag_sql(alias: str = "t") -> str:
    """SQL of a row's entity tag (a quoted MD5 of the whole row)."""
    return f"'\"' || md5({alias}::text) || '\"'"


def _source(code: str | None) -> str:
    return f"feature {code!r}" if code else "the feature"


def _frame(layer: Layer, feature: Mapping[str, Any]) -> pd.DataFrame:
    """One checked row (import rules) from a GeoJSON Feature in CRS84."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise ImportFailed("the body", "a GeoJSON Feature is expected")
    props = feature.get("properties") or {}
    if not isinstance(props, Mapping):
        raise ImportFailed("the body", "properties must be an object")
    unknown = sorted(set(props) - {p.name for p in layer.properties})
    if unknown:
        raise ImportFailed("the body", f"{layer.id} has no field {', '.join(map(repr, unknown))}")
    try:
        geom = shapely.geometry.shape(feature.get("geometry") or {})
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ImportFailed("the body", f"invalid geometry: {exc}") from None
    frame = gpd.GeoDataFrame(
        {k: [v] for k, v in props.items()}, geometry=[geom], crs="OGC:CRS84"
    ).to_crs(4326)
    return prepare_frame(layer, frame, source=_source(props.get("code")))


def _value(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _columns(layer: Layer, row: pd.Series) -> tuple[list[str], list[Any]]:
    names = [p.name for p in layer.properties]
    values = [_value(row[n]) for n in names]
    for i, v in enumerate(values):
        if isinstance(v, dt.datetime) and v.tzinfo is None:
            values[i] = v.replace(tzinfo=dt.UTC)
    return names, values


async def _lock(conn: asyncpg.Connection, layer: Layer, code: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT id, {etag_sql()} AS etag FROM {ident(layer.table)} t "  # noqa: S608
        "WHERE code = $1 FOR UPDATE",
        code,
    )
    if row is None:
        raise FeatureNotFound(f"{layer.id} has no feature {code!r}")
    return row


def _check_match(row: asyncpg.Record, if_match: str | None, code: str) -> None:
    if if_match is None:
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in tags and row["etag"] not in tags:
        raise PreconditionFailed(
            f"feature {code!r} changed since {if_match} was read (now {row['etag']}): "
            "read it again and re-apply the edit"
        )


async def _etag(conn: asyncpg.Connection, layer: Layer, code: str) -> str:
    tag = await conn.fetchval(
        f"SELECT {etag_sql()} FROM {ident(layer.table)} t WHERE code = $1",  # noqa: S608
        code,
    )
    return str(tag)


async def _write_errors(coro: Any, layer: Layer, code: str) -> Any:
    try:
        return await coro
    except asyncpg.UniqueViolationError:
        raise FeatureExists(f"{layer.id} already has a feature {code!r}") from None
    except asyncpg.ForeignKeyViolationError as exc:
        raise ImportFailed(_source(code), f"refers to something that does not exist: "
                           f"{exc.detail or exc}") from None  # fmt: skip
    except (asyncpg.CheckViolationError, asyncpg.NotNullViolationError) as exc:
        raise ImportFailed(_source(code), str(exc)) from None


async def create(
    conn: asyncpg.Connection, layer_id: str, feature: Mapping[str, Any], actor: Actor
) -> tuple[str, str]:
    """Insert a new feature; returns (code, entity tag)."""
    layer = editable(layer_id)
    feature = _with_code(feature, None)
    row = _frame(layer, feature).iloc[0]
    names, values = _columns(layer, row)
    code = str(row["code"])
    cols = ", ".join(ident(n) for n in names)
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    sql = (
        f"INSERT INTO {ident(layer.table)} ({cols}, geom) "  # noqa: S608
        f"VALUES ({marks}, ST_GeomFromEWKB(decode(${len(names) + 1}, 'hex')))"
    )
    async with conn.transaction():
        await _write_errors(conn.execute(sql, *values, row["geom"]), layer, code)
        await record_async(conn, actor, "feature.create", f"{layer.id}/{code}", {})
        return code, await _etag(conn, layer, code)


def _with_code(feature: Mapping[str, Any], code: str | None) -> dict[str, Any]:
    """The feature with ``properties.code`` filled from the path or the feature's ``id``."""
    if not isinstance(feature, Mapping):
        raise ImportFailed("the body", "a GeoJSON Feature is expected")
    raw = feature.get("properties")
    if raw is not None and not isinstance(raw, Mapping):
        raise ImportFailed("the body", "properties must be an object")
    props = dict(raw or {})
    given = props.get("code", feature.get("id"))
    if code is not None and given is not None and str(given) != code:
        raise ImportFailed("the body", f"the feature's code {given!r} is not {code!r}")
    if code is not None or given is not None:
        props["code"] = code if code is not None else str(given)
    return {**feature, "properties": props}


async def replace(
    conn: asyncpg.Connection,
    layer_id: str,
    code: str,
    feature: Mapping[str, Any],
    actor: Actor,
    if_match: str | None = None,
) -> str:
    """Replace a feature's properties and geometry (absent properties become null);
    returns the new entity tag."""
    layer = editable(layer_id)
    row = _frame(layer, _with_code(feature, code)).iloc[0]
    async with conn.transaction():
        locked = await _lock(conn, layer, code)
        _check_match(locked, if_match, code)
        return await _write(conn, layer, code, locked, row, actor, "feature.replace", None)


async def update(
    conn: asyncpg.Connection,
    layer_id: str,
    code: str,
    patch: Mapping[str, Any],
    actor: Actor,
    if_match: str | None = None,
) -> str:
    """Merge-patch a feature (RFC 7396 on ``properties``: a null value makes the field
    null; a ``geometry`` replaces the old one); returns the new entity tag."""
    layer = editable(layer_id)
    if not isinstance(patch, Mapping):
        raise ImportFailed("the body", "a JSON object is expected")
    changes = patch.get("properties") or {}
    if not isinstance(changes, Mapping):
        raise ImportFailed("the body", "properties must be an object")
    async with conn.transaction():
        locked = await _lock(conn, layer, code)
        _check_match(locked, if_match, code)
        current = await conn.fetchrow(
            f"SELECT to_jsonb(t)::text AS props, ST_AsGeoJSON(geom) AS geometry "  # noqa: S608
            f"FROM {ident(layer.table)} t WHERE id = $1",
            locked["id"],
        )
        assert current is not None
        names = {p.name for p in layer.properties}
        props = {k: v for k, v in json.loads(current["props"]).items() if k in names}
        props.update(changes)
        geometry = patch.get("geometry") or json.loads(current["geometry"])
        merged = {"type": "Feature", "properties": props, "geometry": geometry}
        row = _frame(layer, _with_code(merged, code)).iloc[0]
        return await _write(conn, layer, code, locked, row, actor, "feature.update",
                            sorted(changes))  # fmt: skip


async def _write(
    conn: asyncpg.Connection,
    layer: Layer,
    code: str,
    locked: asyncpg.Record,
    row: pd.Series,
    actor: Actor,
    action: str,
    fields: list[str] | None,
) -> str:
    names, values = _columns(layer, row)
    sets = ", ".join(f"{ident(n)} = ${i}" for i, n in enumerate(names, start=2))
    sql = (
        f"UPDATE {ident(layer.table)} SET {sets}, "  # noqa: S608
        f"geom = ST_GeomFromEWKB(decode(${len(names) + 2}, 'hex')) WHERE id = $1"
    )
    await _write_errors(conn.execute(sql, locked["id"], *values, row["geom"]), layer, code)
    detail = {"from": locked["etag"], "fields": fields}
    await record_async(conn, actor, action, f"{layer.id}/{code}", detail)
    return await _etag(conn, layer, code)


async def delete(
    conn: asyncpg.Connection,
    layer_id: str,
    code: str,
    actor: Actor,
    if_match: str | None = None,
) -> None:
    """Delete a feature."""
    layer = editable(layer_id)
    async with conn.transaction():
        locked = await _lock(conn, layer, code)
        _check_match(locked, if_match, code)
        await _write_errors(
            conn.execute(f"DELETE FROM {ident(layer.table)} WHERE id = $1", locked["id"]),  # noqa: S608
            layer,
            code,
        )
        await record_async(conn, actor, "feature.delete", f"{layer.id}/{code}",
                           {"from": locked["etag"]})  # fmt: skip


async def etag(conn: asyncpg.Connection, layer_id: str, code: str) -> str | None:
    """A feature's current entity tag (None when there is no such feature)."""
    layer = CATALOG[layer_id]
    tag = await conn.fetchval(
        f"SELECT {etag_sql()} FROM {ident(layer.table)} t WHERE code = $1",  # noqa: S608
        code,
    )
    return str(tag) if tag is not None else None
