"""Request hardening: body-size limit, per-caller rate limits, CORS allow-list.

Pure ASGI middleware (no per-request task or buffering of responses), so it costs a
few microseconds per request and never holds a body in memory.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class RateLimit:
    """Token bucket per API key, per worker process (anonymous callers are not limited
    here: they share proxies' addresses; put a limit for them in the reverse proxy).

    ``per_minute`` requests on average with bursts up to ``burst``; over it → 429 with
    ``Retry-After``.  Per worker by design: no shared state between workers, so the
    effective limit is ``per_minute × workers`` (documented in the README).
    """

    def __init__(self, app: ASGIApp, per_minute: int, burst: int, max_callers: int = 50_000):
        self.app = app
        self.rate_s = per_minute / 60.0
        self.burst = float(burst)
        self.max_callers = max_callers
        self.buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def _who(self, scope: Scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name in (b"authorization", b"x-api-key"):
                return value[-80:]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate_s <= 0:
            await self.app(scope, receive, send)
            return
        who = self._who(scope)
        if who is None:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        tokens, last = self.buckets.pop(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_s)
        if tokens < 1.0:
            self.buckets[who] = (tokens, now)
            retry = max(1, int((1.0 - tokens) / self.rate_s + 0.999))
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
