"""Who is calling: the one place the caller's role is resolved.

A caller presents an API key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
the key's role applies.  Without a key the caller is anonymous and gets
``ONEMAP_ANONYMOUS_ROLE`` (``viewer`` by default: public layers, sensitive fields masked).
A malformed, unknown or revoked key is a 401, never a silent downgrade.  Routers take the
role through :data:`RoleDep` or require one with :func:`require_role`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from geo_service.errors import ApiError
from geo_service.state import app_state
from layers.catalog import Role, role_allows
from layers.keys import secret_matches, split_key

#: Seconds a verified key is trusted before it is looked up again (revocation delay).
KEY_CACHE_S = 10.0


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: ``name`` of the key (or ``anonymous``) and its role."""

    name: str
    role: Role
    key_prefix: str | None = None


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "invalid_api_key", "Authorization must be 'Bearer <api key>'")
        return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None else None


async def current_caller(request: Request) -> Caller:
    """The caller of this request, from its API key (or anonymous)."""
    key = _presented_key(request)
    if key is None:
        return Caller("anonymous", app_state(request).settings.anonymous_role)
    parts = split_key(key)
    if parts is None:
        raise ApiError(401, "invalid_api_key", "malformed API key")
    prefix, secret = parts
    state = app_state(request)
    cache: dict[str, tuple[float, Caller]] = state.key_cache
    hit = cache.get(key)
    if hit and time.monotonic() - hit[0] < KEY_CACHE_S:
        return hit[1]
    row = await state.open_pool().fetchrow(
        "SELECT name, role, salt, key_hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
        prefix,
    )
    if row is None or not secret_matches(row["salt"], row["key_hash"], secret):
        raise ApiError(401, "invalid_api_key", "unknown or revoked API key")
    caller = Caller(row["name"], row["role"], prefix)
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (time.monotonic(), caller)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


async def current_role(caller: CallerDep) -> Role:
    """The role of the caller of this request."""
    return caller.role


RoleDep = Annotated[str, Depends(current_role)]


def require_role(needed: Role):  # noqa: ANN201 - a FastAPI dependency factory
    """A dependency that refuses callers below ``needed`` (401 anonymous, 403 otherwise)."""

    async def check(caller: CallerDep) -> Caller:
        if not role_allows(caller.role, needed):
            if caller.key_prefix is None:
                raise ApiError(401, "unauthorized", f"this needs an API key with role {needed}")
            raise ApiError(403, "forbidden", f"this needs role {needed}; the key has {caller.role}")
        return caller

    return check


#: Callers allowed to write (readings, incidents, warnings, risk runs): operator or admin.
OperatorDep = Annotated[Caller, Depends(require_role("operator"))]
#: Callers with at least the viewer role.
ViewerDep = Annotated[Caller, Depends(require_role("viewer"))]
