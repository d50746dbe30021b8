"""Exceptions of the OneMap client: every error answer of the server becomes one of these.

The server answers errors as JSON ``{"code": "...", "detail": "..."}`` with a 4xx/5xx status;
the exception carries the status, the code, the detail and the whole body.
"""

from __future__ import annotations

from typing import Any


class OneMapError(Exception):
    """An error answer of the OneMap server (or a failure to reach it).

    Attributes:
        status: HTTP status (0 when the server could not be reached).
        code: the server's machine-readable error code, e.g. ``unknown_layer``.
        detail: the server's human-readable explanation.
        body: the whole decoded error body (may hold more fields than code and detail).
        url: the request URL.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        body: dict[str, Any] | None = None,
        url: str = "",
    ):
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body or {}
        self.url = url
        super().__init__(f"{status} {code}: {detail}" if status else f"{code}: {detail}")


class BadRequestError(OneMapError):
    """The request was refused as malformed or invalid (400, 413, 422)."""


class AuthError(OneMapError):
    """No, a wrong or an insufficient API key (401, 403)."""


class NotFoundError(OneMapError):
    """An unknown layer, feature, run, warning … (404)."""


class RateLimitedError(OneMapError):
    """Too many requests (429); ``body`` may say when to retry."""


class ServerError(OneMapError):
    """The server failed or is unavailable (5xx), or could not be reached (status 0)."""


class RunFailedError(OneMapError):
    """A risk run finished with status ``failed`` (or did not finish in time)."""


_BY_STATUS: dict[int, type[OneMapError]] = {
    400: BadRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitedError,
}


def error_for(status: int, body: Any, url: str = "") -> OneMapError:
    """The exception for an error answer with ``status`` and decoded JSON ``body``.

    >>> e = error_for(404, {"code": "unknown_layer", "detail": "unknown collection 'x'"})
    >>> type(e).__name__, e.code, e.detail
    ('NotFoundError', 'unknown_layer', "unknown collection 'x'")
    """
    if isinstance(body, dict):
        code = str(body.get("code") or f"http_{status}")
        detail = body.get("detail")
        if not isinstance(detail, str):
            detail = str(detail) if detail is not None else ""
        data = body
    else:
        code, detail, data = f"http_{status}", str(body or "")[:500], {}
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else OneMapError)
    return cls(status, code, detail, data, url)
