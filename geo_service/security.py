"""Request hardening: body-size limit, per-caller rate limits, allowed hosts, the client
address behind trusted proxies.

Pure ASGI middleware (no per-request task or buffering of responses), so it costs a
few microseconds per request and never holds a body in memory.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import OrderedDict
from collections.abc import Sequence

from starlette._utils import parse_host_header
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


async def _reject(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before reading them.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    counted as it streams and cut off when it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await _reject(send, 413, "payload_too_large", self._detail())
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reject(send, 413, "payload_too_large", self._detail())

    def _detail(self) -> str:
        return f"request body over {self.max_bytes // (1024 * 1024)} MB"


class AllowedHosts(TrustedHostMiddleware):
    """Starlette's :class:`TrustedHostMiddleware` (the same patterns: ``map.example.cn``,
    ``*.example.cn``, ``*``), refusing another ``Host`` with OneMap's JSON error body."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]):
        super().__init__(app, allowed_hosts=allowed_hosts, www_redirect=False)

    def allows(self, host: str) -> bool:
        return any(
            host == p or (p.startswith("*") and host.endswith(p[1:])) for p in self.allowed_hosts
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        parsed = parse_host_header(Headers(scope=scope).get("host"))
        if parsed is not None and self.allows(parsed.host.lower()):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _reject(send, 400, "invalid_host", "this Host is not served here")


def parse_networks(specs: Sequence[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in specs if s.strip())


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class ClientAddress:
    """Set the request's client address (``scope["client"]``), believing ``X-Forwarded-For``
    only from a trusted proxy.

    From a direct peer that is not in ``trusted``, the peer is the client and its
    ``X-Forwarded-For`` is ignored.  From a trusted proxy, the client is the right-most
    address of ``X-Forwarded-For`` that is not itself a trusted proxy (the entries further
    left were written by whoever called the first proxy, and may be forged).
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[str]):
        self.app = app
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            if client and _in(client[0], self.trusted):
                forwarded = self.forwarded_client(scope)
                if forwarded is not None:
                    scope = {**scope, "client": (forwarded, 0)}
        await self.app(scope, receive, send)

    def forwarded_client(self, scope: Scope) -> str | None:
        hops: list[str] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops += [h.strip() for h in value.decode("latin-1").split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            if not _in(hop, self.trusted):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return None  # garbage from the proxy's caller: keep the proxy's address
        return None


class RateLimit:
    """Token bucket per API key, and optionally per client address for callers without a
    key, per worker process.

    ``per_minute`` requests on average with bursts up to ``burst``; over it → 429 with
    ``Retry-After``.  Callers without a key are limited only when ``anonymous_per_minute``
    is set (off by default: many may share a proxy's address; the address is the one
    :class:`ClientAddress` found).  Health checks are never limited.  Per worker by design:
    no shared state between workers, so the effective limit is ``per_minute × workers``.
    """

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        burst: int,
        max_callers: int = 50_000,
        anonymous_per_minute: int = 0,
    ):
        self.app = app
        self.rate_s = per_minute / 60.0
        self.anonymous_rate_s = anonymous_per_minute / 60.0
        self.burst = float(burst)
        self.max_callers = max_callers
        self.buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def _who(self, scope: Scope) -> tuple[bytes, float] | None:
        for name, value in scope["headers"]:
            if name in (b"authorization", b"x-api-key"):
                return b"k:" + value[-80:], self.rate_s
        if self.anonymous_rate_s > 0:
            client = scope.get("client")
            return b"a:" + (client[0] if client else "").encode(), self.anonymous_rate_s
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health"):
            await self.app(scope, receive, send)
            return
        found = self._who(scope)
        if found is None or found[1] <= 0:
            await self.app(scope, receive, send)
            return
        who, rate_s = found
        now = time.monotonic()
        tokens, last = self.buckets.pop(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * rate_s)
        if tokens < 1.0:
            self.buckets[who] = (tokens, now)
            retry = max(1, int((1.0 - tokens) / rate_s + 0.999))
            body = json.dumps(
                {"code": "rate_limited", "detail": f"too many requests; retry in {retry} s"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(retry).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.buckets[who] = (tokens - 1.0, now)
        if len(self.buckets) > self.max_callers:
            self.buckets.popitem(last=False)
        await self.app(scope, receive, send)
