"""The client's HTTP plumbing: connection pool, API key, errors, per-layer column dtypes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

import httpx

from geo_service.client.errors import ServerError, error_for
from geo_service.client.frames import dtypes_from_queryables

DEFAULT_URL = "http://127.0.0.1:8000"
#: Warning levels (China's four-colour scale) and their numbers in risk cells (0 = none).
LEVELS = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}


def _level_number(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    try:
        return LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown level {level!r}; use 0–4 or one of {list(LEVELS)}") from None


def _level_name(level: int | str) -> str:
    if isinstance(level, str):
        return level
    names = {v: k for k, v in LEVELS.items()}
    if level not in names:
        raise ValueError(f"warning level must be 1–4 or one of {list(LEVELS)}")
    return names[level]


def _run_id(run: int | Mapping[str, Any]) -> int:
    return int(run["id"]) if isinstance(run, Mapping) else int(run)


class ClientBase:
    """HTTP plumbing of the client: one httpx connection pool, errors, cached dtypes.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000`` (default: ``$ONEMAP_URL`` or that).
        api_key: sent as ``Authorization: Bearer``; without one the server's anonymous role
            applies (sensitive fields omitted; no issuing of warnings or runs).
        timeout_s: timeout of each HTTP request, seconds.
        concurrency: pages fetched at the same time by :meth:`read`.
        progress: show progress bars on long reads (``None``: only when more than one page).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        concurrency: int = 4,
        progress: bool | None = None,
    ):
        self.base_url = (base_url or os.environ.get("ONEMAP_URL") or DEFAULT_URL).rstrip("/")
        headers = {"Accept-Encoding": "gzip"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=max(4, concurrency * 2))
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, limits=limits
        )
        self.concurrency = max(1, int(concurrency))
        self.progress = progress
        self._dtypes: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request; an error answer raises :class:`OneMapError` (server's code/detail)."""
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(
                0, "unreachable", f"{self.base_url}: {exc}", url=self.base_url + path
            ) from exc
        if resp.status_code >= 400:
            try:
                body: Any = resp.json()
            except ValueError:
                body = resp.text
            raise error_for(resp.status_code, body, str(resp.url))
        return resp

    def get_json(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params`` (None values dropped) → decoded JSON."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post_json(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body).json()

    def health(self) -> dict[str, Any]:
        """``/health``: ``{"status": "ok", "database": "ok", …}`` (raises on 503)."""
        return self.get_json("/health")  # type: ignore[no-any-return]

    def queryables(self, layer: str) -> dict[str, Any]:
        """JSON Schema of ``layer``'s properties (those the caller may see)."""
        return self.get_json(f"/collections/{layer}/queryables")  # type: ignore[no-any-return]

    def dtypes(self, layer: str) -> dict[str, str]:
        """pandas dtype of each property of ``layer`` (cached per client)."""
        if layer not in self._dtypes:
            self._dtypes[layer] = dtypes_from_queryables(self.queryables(layer))
        return self._dtypes[layer]
