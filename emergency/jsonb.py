"""JSON in and out of ``jsonb`` columns over asyncpg."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """JSON text for a ``$n::text::jsonb`` parameter (datetimes as ISO strings)."""
    return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)


def loads(value: Any) -> Any:
    """A JSON column as Python, whether or not the connection has a JSON codec."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value
