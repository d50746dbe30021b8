"""Which representation a request asks for: the ``f`` parameter, else the ``Accept`` header.

OGC API – Features Part 1 lets a server choose by either (/rec/core/http-accept); ``f`` wins
because it is what a link or a browser address bar can carry.
"""

from __future__ import annotations

from geo_service.errors import BadRequest

#: ``f`` values → format name.
F_VALUES = {"json": "json", "geojson": "json", "csv": "csv"}
#: Media types of ``Accept`` → format name (``*/*`` and unknown types mean the default).
ACCEPT_TYPES = {
    "application/geo+json": "json",
    "application/json": "json",
    "text/csv": "csv",
}


def _accepted(accept: str) -> list[tuple[float, int, str]]:
    """``Accept`` entries as (quality, position, media type), best first."""
    out: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            out.append((q, i, media.lower()))
    out.sort(key=lambda e: (-e[0], e[1]))
    return out


def choose_format(f: str | None, accept: str | None, allowed: tuple[str, ...]) -> str:
    """The format of the response: ``f`` when given (400 ``invalid_format`` when not one of
    ``allowed``), else the best ``Accept`` entry among ``allowed``, else ``allowed[0]``.

    >>> choose_format(None, "text/csv;q=0.9, application/geo+json;q=0.5", ("json", "csv"))
    'csv'
    >>> choose_format("json", "text/csv", ("json", "csv"))
    'json'
    """
    if f not in (None, ""):
        fmt = F_VALUES.get(f.lower())
        if fmt not in allowed:
            values = sorted(k for k, v in F_VALUES.items() if v in allowed)
            raise BadRequest(
                f"unsupported format f={f!r}; use {' or '.join(values)}", code="invalid_format"
            )
        return fmt
    for _q, _i, media in _accepted(accept or ""):
        fmt = ACCEPT_TYPES.get(media)
        if fmt in allowed:
            return fmt
    return allowed[0]
