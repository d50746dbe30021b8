"""Who is calling: the one place the caller's role is resolved.

Until the API-key security layer exists every caller is a ``viewer``.  Routers take the
role through :data:`RoleDep` (never by calling :func:`current_role` themselves), so the
security layer replaces this single function (or overrides it with
``app.dependency_overrides[current_role]``) and every endpoint follows.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from layers.catalog import Role


def current_role() -> Role:
    """The role of the caller of this request (for now always ``"viewer"``)."""
    return "viewer"


RoleDep = Annotated[str, Depends(current_role)]
