"""OGC API – Features Part 4 (create, replace, update, delete) on the layers, for operators.

``POST /collections/{collectionId}/items`` creates a feature (201, ``Location``, ``ETag``);
``PUT`` replaces and ``PATCH`` (JSON merge patch) updates one, ``DELETE`` removes it (204 with
the new ``ETag``).  ``If-Match`` with the ``ETag`` of the item read makes the edit optimistic:
412 when someone changed the feature since.  Checks, audit and events are those of
:mod:`layers.edits`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response

from geo_service.auth import OperatorDep
from geo_service.deps import PoolDep
from geo_service.errors import BadRequest
from geo_service.routers.common import actor_of, base_url
from layers import edits

router = APIRouter(tags=["features"])

CollectionId = Annotated[str, Path(description="A layer id (see /collections)")]
FeatureId = Annotated[str, Path(description="The feature's code")]
IfMatch = Annotated[
    str | None,
    Header(
        description="The ETag of the feature as read: the edit is refused (412) if it changed since"
    ),  # fmt: skip
]
_FEATURE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "object", "description": "A GeoJSON Feature (CRS84)"}}
            for media in ("application/geo+json", "application/json")
        },
    }
}
_PATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "object", "description": "Properties and/or geometry"}}
            for media in ("application/merge-patch+json", "application/json")
        },
    }
}
_EDIT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a valid feature of the collection (the import checks)"},
    401: {"description": "No API key"},
    403: {"description": "The key is not an operator's"},
    404: {"description": "No such collection or feature"},
    405: {"description": "The collection is not edited feature by feature"},
    409: {"description": "A feature with this code exists"},
    412: {"description": "If-Match names a version that is no longer current"},
}


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON", "invalid_json") from None


@router.post(
    "/collections/{collectionId}/items",
    status_code=201,
    summary="Create a feature (operator)",
    response_class=Response,
    responses={201: {"description": "Created; Location and ETag name it"}, **_EDIT_ERRORS},
    openapi_extra=_FEATURE_BODY,
)
async def create_item(
    collection_id: Annotated[str, Path(alias="collectionId")],
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
) -> Response:
    feature = await _body(request)
    async with pool.acquire() as conn:
        code, tag = await edits.create(conn, collection_id, feature, actor_of(request, caller))
    location = f"{base_url(request)}/collections/{collection_id}/items/{code}"
    return Response(status_code=201, headers={"Location": location, "ETag": tag})


@router.put(
    "/collections/{collectionId}/items/{featureId}",
    status_code=204,
    summary="Replace a feature (operator)",
    response_class=Response,
    responses={204: {"description": "Replaced; ETag is the new version"}, **_EDIT_ERRORS},
    openapi_extra=_FEATURE_BODY,
)
async def replace_item(
    collection_id: Annotated[str, Path(alias="collectionId")],
    feature_id: Annotated[str, Path(alias="featureId")],
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    if_match: IfMatch = None,
) -> Response:
    feature = await _body(request)
    async with pool.acquire() as conn:
        tag = await edits.replace(
            conn, collection_id, feature_id, feature, actor_of(request, caller), if_match
        )
    return Response(status_code=204, headers={"ETag": tag})


@router.patch(
    "/collections/{collectionId}/items/{featureId}",
    status_code=204,
    summary="Update some properties or the geometry of a feature (operator, merge patch)",
    response_class=Response,
    responses={204: {"description": "Updated; ETag is the new version"}, **_EDIT_ERRORS},
    openapi_extra=_PATCH_BODY,
)
async def update_item(
    collection_id: Annotated[str, Path(alias="collectionId")],
    feature_id: Annotated[str, Path(alias="featureId")],
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    if_match: IfMatch = None,
) -> Response:
    patch = await _body(request)
    async with pool.acquire() as conn:
        tag = await edits.update(
            conn, collection_id, feature_id, patch, actor_of(request, caller), if_match
        )
    return Response(status_code=204, headers={"ETag": tag})


@router.delete(
    "/collections/{collectionId}/items/{featureId}",
    status_code=204,
    summary="Delete a feature (operator)",
    response_class=Response,
    responses={204: {"description": "Deleted"}, **_EDIT_ERRORS},
)
async def delete_item(
    collection_id: Annotated[str, Path(alias="collectionId")],
    feature_id: Annotated[str, Path(alias="featureId")],
    request: Request,
    pool: PoolDep,
    caller: OperatorDep,
    if_match: IfMatch = None,
) -> Response:
    async with pool.acquire() as conn:
        await edits.delete(conn, collection_id, feature_id, actor_of(request, caller), if_match)
    return Response(status_code=204)
