"""``HEAD`` on every ``GET`` route: answered as the ``GET`` would be, without the body.

HTTP/1.1 (RFC 9110 §9.3.2) and OGC API – Common (/req/core/http) want HEAD wherever GET is
served, with the same status and headers (``Content-Length``, ``ETag``, ``Link``, …); FastAPI
routes only the methods a route names, so HEAD requests are routed as GET here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD request runs the GET route; its body is dropped.

    Once the response has been sent, later body messages (a stream) are dropped and the
    application is told the client went away, so a streaming GET ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def head_send(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        async def head_receive() -> Message:
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, head_receive, head_send)
