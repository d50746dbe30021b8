"""OGC API – Features (Part 1 core + GeoJSON, Part 3 filtering): generated from the catalog.

Masking: a property flagged ``sensitive`` in the catalog is *omitted* (not set to null) from
features, CSV columns and queryables when the caller's role is below the layer's
``sensitive_role``; filtering, sorting or selecting on it is a 400 ``property_not_visible``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from geo_service.auth import CallerDep, RoleDep
from geo_service.db import Deadline
from geo_service.deps import CatalogDep, PoolDep, SettingsDep
from geo_service.errors import BadRequest, NotFound
from geo_service.features import documents as docs
from geo_service.features.cql import (
    LEGACY_FILTER_LANGS,
    MAX_ANONYMOUS_FILTER_VERTICES,
    MAX_FILTER_VERTICES,
    parse_filter,
)
from geo_service.features.formats import choose_format
from geo_service.features.items import ItemsQuery, count_matched, fetch_csv, fetch_features
from geo_service.features.params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    check_visible,
    coerce_value,
    parse_bbox,
    parse_crs,
    parse_datetime,
    parse_int,
    parse_limit,
    parse_properties,
    parse_sortby,
)
from geo_service.routers.common import (
    CSV,
    GEOJSON,
    GEOJSON_200,
    JSON,
    SCHEMA_JSON,
    base_url,
    feature_collection_text,
    geojson_text,
    readable_layer,
    request_url,
)
from geo_service.state import app_state
from layers import edits
from layers.catalog import Layer

router = APIRouter(tags=["OGC API Features"])

#: Query parameters of /items that are not property-equality filters.
ITEMS_PARAMS = frozenset(
    {
        "f",
        "bbox",
        "bbox-crs",
        "limit",
        "offset",
        "filter",
        "filter-lang",
        "filter-crs",
        "sortby",
        "properties",
        "datetime",
        "crs",
    }
)
FORMAT_DOC = "Output format: `json` (default) or `csv` (items only)."


async def layer_extents(
    request: Request, pool: asyncpg.Pool, layers: list[Layer]
) -> dict[str, dict[str, Any]]:
    """Extents of ``layers``, memoised per worker by layer version (an extent only changes
    when its layer's rows do; the version moves then, through LISTEN/NOTIFY)."""
    state = app_state(request)
    lv = state.listening_versions()
    if lv is None:
        async with pool.acquire() as conn:
            return await docs.extents(conn, layers)
    memo = state.collection_extents
    # Keys are taken before the query: a write during it leaves the result under the old key.
    keys = {lyr.id: (lyr.id, lv.version(lyr.table)) for lyr in layers}
    missing = [lyr for lyr in layers if keys[lyr.id] not in memo]
    if missing:
        async with pool.acquire() as conn:
            found = await docs.extents(conn, missing)
        if len(memo) > 1024:
            memo.clear()
        for lyr in missing:
            memo[keys[lyr.id]] = found.get(lyr.id)
    out = {lyr.id: memo.get(keys[lyr.id]) for lyr in layers}
    return {k: v for k, v in out.items() if v is not None}


def json_format(f: str | None) -> None:
    if f not in (None, "", "json", "geojson"):
        raise BadRequest(f"unsupported format f={f!r}; use json", code="invalid_format")


@router.get("/", summary="Landing page")
async def landing_page(
    request: Request, f: str | None = Query(None, description=FORMAT_DOC)
) -> JSONResponse:
    json_format(f)
    return JSONResponse(docs.landing(base_url(request)))


@router.get(
    "/api",
    summary="The OpenAPI 3.0 definition of this service (the landing page's service-desc)",
    response_class=Response,
    responses={200: {"content": {docs.OPENAPI: {}}}},
)
async def api_definition(request: Request) -> Response:
    """The document of ``/openapi.json``, served with the OpenAPI 3.0 media type that
    OGC API clients ask for."""
    spec = request.app.openapi()
    return Response(json.dumps(spec, ensure_ascii=False).encode(), media_type=docs.OPENAPI)


@router.get("/conformance", summary="Conformance classes")
async def conformance(f: str | None = Query(None, description=FORMAT_DOC)) -> JSONResponse:
    json_format(f)
    return JSONResponse({"conformsTo": docs.CONFORMANCE})


@router.get("/functions", summary="Functions a CQL2 filter may call")
async def functions(
    request: Request, f: str | None = Query(None, description=FORMAT_DOC)
) -> JSONResponse:
    json_format(f)
    return JSONResponse(docs.functions(base_url(request)))


@router.get("/collections", summary="All collections (layers) of the catalog")
async def collections(
    request: Request,
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    f: str | None = Query(None, description=FORMAT_DOC),
) -> JSONResponse:
    json_format(f)
    base = base_url(request)
    layers = list(catalog.readable_by(role))
    ext = await layer_extents(request, pool, layers)
    return JSONResponse(
        {
            "links": [docs.link(f"{base}/collections", "self", JSON, "Collections")],
            "collections": [docs.collection(base, lyr, ext.get(lyr.id)) for lyr in layers],
        }
    )


@router.get("/collections/{collectionId}", summary="One collection")
async def collection(
    collectionId: str,
    request: Request,
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    f: str | None = Query(None, description=FORMAT_DOC),
) -> JSONResponse:
    json_format(f)
    layer = readable_layer(catalog, collectionId, role)
    ext = await layer_extents(request, pool, [layer])
    return JSONResponse(docs.collection(base_url(request), layer, ext.get(layer.id)))


@router.get(
    "/collections/{collectionId}/queryables",
    summary="Queryable properties (JSON Schema 2020-12)",
    response_class=JSONResponse,
    responses={200: {"content": {SCHEMA_JSON: {}}}},
)
async def queryables(
    collectionId: str,
    request: Request,
    catalog: CatalogDep,
    role: RoleDep,
    f: str | None = Query(None, description=FORMAT_DOC),
) -> JSONResponse:
    json_format(f)
    layer = readable_layer(catalog, collectionId, role)
    doc = docs.queryables(base_url(request), layer, list(layer.visible_properties(role)))
    return JSONResponse(doc, media_type=SCHEMA_JSON)


def _page_url(request: Request, offset: int) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    if offset:
        items.append(("offset", str(offset)))
    return request_url(request, urlencode(items))


@dataclass(frozen=True)
class ItemsRequest:
    """A checked /items request: the layer, the query and the output format."""

    layer: Layer
    query: ItemsQuery
    csv: bool


def items_request(
    collectionId: str,
    request: Request,
    catalog: CatalogDep,
    role: RoleDep,
    caller: CallerDep,
    bbox: str | None = Query(
        None, description="minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)"
    ),
    bbox_crs: str | None = Query(
        None, alias="bbox-crs", description="CRS of bbox (URI; default CRS84)"
    ),
    crs: str | None = Query(None, description="CRS of the returned geometries (URI)"),
    limit: str | None = Query(
        None,
        description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}); more is clamped to "
        f"{MAX_LIMIT}",
    ),
    offset: str | None = Query(None, description="Features to skip"),
    filter_: str | None = Query(None, alias="filter", description="CQL2 filter"),
    filter_lang: str | None = Query(
        None, alias="filter-lang", description="cql2-text (default) or cql2-json"
    ),
    filter_crs: str | None = Query(
        None, alias="filter-crs", description="CRS of filter geometries (URI; default CRS84)"
    ),
    sortby: str | None = Query(None, description="+prop,-prop,…"),
    properties: str | None = Query(None, description="Comma-separated properties to return"),
    datetime_: str | None = Query(
        None, alias="datetime", description="Instant or interval a/b (open end ..)"
    ),
    f: str | None = Query(
        None, description="json (GeoJSON, default) or csv; without it the Accept header chooses"
    ),
) -> ItemsRequest:
    """Dependency: every query parameter of /items checked and turned into an
    :class:`ItemsQuery`. Other parameters named like a property filter by equality."""
    layer = readable_layer(catalog, collectionId, role)
    fmt = choose_format(f, request.headers.get("accept"), ("json", "csv"))
    visible = {p.name for p in layer.visible_properties(role)}
    q = ItemsQuery(
        layer=layer,
        visible=visible,
        props=parse_properties(properties, layer, visible),
        bbox=parse_bbox(bbox, bbox_crs),
        limit=parse_limit(limit),
        offset=parse_int("offset", offset, 0, 0, 2**62),
        sortby=parse_sortby(sortby, layer, visible),
        # Without a key a caller is anyone: complex filter geometries only with a key.
        max_filter_vertices=(
            MAX_ANONYMOUS_FILTER_VERTICES if caller.key_prefix is None else MAX_FILTER_VERTICES
        ),
        crs=parse_crs(crs),
    )
    q.start, q.end = parse_datetime(datetime_, layer)
    q.filter_crs = parse_crs(filter_crs, "filter-crs")
    for name, raw in request.query_params.multi_items():
        if name in ITEMS_PARAMS:
            continue
        prop = check_visible(layer, name, visible)  # 400 naming it if unknown/hidden
        q.filters.append({"op": "=", "args": [{"property": name}, coerce_value(prop, raw)]})
    if filter_ is not None and filter_.strip():
        q.filters.append(parse_filter(filter_, filter_lang))
    elif filter_lang and filter_lang not in ("cql2-text", "cql2-json", *LEGACY_FILTER_LANGS):
        raise BadRequest(f"unsupported filter-lang {filter_lang!r}; use cql2-text or cql2-json")
    return ItemsRequest(layer, q, fmt == "csv")


ItemsRequestDep = Annotated[ItemsRequest, Depends(items_request)]


def _format_url(request: Request, fmt: str) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    items.append(("f", fmt))
    return request_url(request, urlencode(items))


def page_links(
    request: Request, layer: Layer, q: ItemsQuery, media: str, *, returned: int, more: bool
) -> list[dict[str, Any]]:
    """``self``, ``alternate`` (the page in the other format), ``collection``, the
    queryables (Features Part 3, /req/queryables/get-queryables-uris) and, where there are
    such pages, ``next`` and ``prev``."""
    csv = media == CSV
    links = [
        docs.link(request_url(request), "self", media, "This page"),
        docs.link(
            _format_url(request, "json" if csv else "csv"),
            "alternate",
            GEOJSON if csv else CSV,
            "This page as GeoJSON" if csv else "This page as CSV",
        ),
        docs.link(f"{base_url(request)}/collections/{layer.id}", "collection", JSON),
        docs.link(
            f"{base_url(request)}/collections/{layer.id}/queryables",
            docs.QUERYABLES_REL,
            SCHEMA_JSON,
            "What a filter may use",
        ),
    ]
    if more and returned > 0:
        links.append(docs.link(_page_url(request, q.offset + q.limit), "next", media, "Next page"))
    if q.offset > 0:
        prev = _page_url(request, max(0, q.offset - q.limit))
        links.append(docs.link(prev, "prev", media, "Previous page"))
    return links


def link_header(links: list[dict[str, Any]]) -> str:
    """The ``Link`` header (RFC 8288) of ``links``, with rel and media type.  Commas in the
    targets are percent-encoded, as naive readers split the header on them."""
    return ", ".join(
        f'<{lk["href"].replace(",", "%2C")}>; rel="{lk["rel"]}"; type="{lk["type"]}"'
        for lk in links
    )


def time_stamp() -> str:
    """Now, in UTC, as the ``timeStamp`` of a response (RFC 3339)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.get(
    "/collections/{collectionId}/items",
    summary="Features of a collection (GeoJSON or CSV)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}, CSV: {}}}},
)
async def items(
    request: Request, pool: PoolDep, settings: SettingsDep, req: ItemsRequestDep
) -> Response:
    """Other query parameters named like a property filter by equality (``?category=school``).

    The page and its count run in one read-only snapshot and share one time budget,
    ``ONEMAP_ITEMS_DEADLINE_S`` (503 ``query_timeout`` when it runs out)."""
    q, layer = req.query, req.layer
    deadline = Deadline(settings.items_deadline_s)
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        if req.csv:
            body = await fetch_csv(conn, q, deadline)
            returned = body.count(b"\n") - 1
        else:
            features = await fetch_features(conn, q, deadline)
            returned = len(features)
        matched, estimated = await count_matched(conn, q, deadline=deadline)
    stamp = time_stamp()
    more = returned == q.limit if estimated else q.offset + returned < matched
    links = page_links(request, layer, q, CSV if req.csv else GEOJSON, returned=returned, more=more)
    crs_header = {"Content-Crs": f"<{q.crs.uri}>"}
    if req.csv:
        headers = {
            "Content-Disposition": f'attachment; filename="{layer.id}.csv"',
            "OGC-NumberMatched": str(matched),
            "OGC-NumberReturned": str(returned),
            "OGC-TimeStamp": stamp,
            "Link": link_header(links),
            **crs_header,
        }
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    head: dict[str, Any] = {
        "timeStamp": stamp,
        "numberMatched": matched,
        "numberReturned": returned,
    }
    if estimated:
        head["numberMatchedEstimated"] = True
    head["links"] = links
    headers = {"Link": link_header(links), **crs_header}
    return geojson_text(feature_collection_text(head, features), headers=headers)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature by its id (the `code` property)",
    response_class=Response,
    responses=GEOJSON_200,
)
async def item(
    collectionId: str,
    featureId: str,
    request: Request,
    pool: PoolDep,
    catalog: CatalogDep,
    role: RoleDep,
    properties: str | None = Query(None, description="Comma-separated properties to return"),
    crs: str | None = Query(None, description="CRS of the returned geometry (URI)"),
    f: str | None = Query(None, description=FORMAT_DOC),
) -> Response:
    json_format(f)
    feature_id = featureId
    layer = readable_layer(catalog, collectionId, role)
    visible = {p.name for p in layer.visible_properties(role)}
    q = ItemsQuery(
        layer,
        visible,
        parse_properties(properties, layer, visible),
        fid=feature_id,
        limit=1,
        crs=parse_crs(crs),
    )
    async with pool.acquire() as conn:
        rows = await fetch_features(conn, q)
        tag = await edits.etag(conn, layer.id, feature_id) if rows else None
    if not rows:
        raise NotFound(
            f"collection {layer.id!r} has no feature {feature_id!r}", code="unknown_feature"
        )
    base = base_url(request)
    links = [
        docs.link(request_url(request), "self", GEOJSON, "This feature"),
        docs.link(f"{base}/collections/{layer.id}", "collection", JSON),
    ]
    # the ETag an edit's If-Match names (layers.edits: the MD5 of the whole row)
    return geojson_text(
        rows[0][:-1] + ', "links": ' + json.dumps(links) + "}",
        headers={"Content-Crs": f"<{q.crs.uri}>", **({"ETag": tag} if tag else {})},
    )
