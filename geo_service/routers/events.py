"""``GET /events``: Server-Sent Events for the big screen and other live clients.

Frames are ``id: <int>\\nevent: <type>\\ndata: <json>\\n\\n``; types ``warning_issued``,
``warning_lifted``, ``warning_expired``, ``run_finished``, ``incident_reported``,
``readings_received``, ``layer_changed`` (``{"layer","version"}``).  A comment line
(``: heartbeat``) every 15 s keeps proxies from closing the stream.  A client resuming with
``Last-Event-ID`` (header, or ``?last_event_id=`` for a first connection) first gets every
stored event after that id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from geo_service.deps import PoolDep
from geo_service.errors import ApiError, BadRequest
from geo_service.event_hub import CLOSE, Event, replay
from geo_service.state import app_state

router = APIRouter(tags=["events"])

#: Milliseconds a browser waits before reconnecting (the SSE ``retry:`` field).
RETRY_MS = 3000


def _last_id(header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw in (None, ""):
        return None
    assert raw is not None
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(
            f"Last-Event-ID must be an event id (integer), got {raw!r}", "invalid_last_event_id"
        ) from None
    if value < 0:
        raise BadRequest("Last-Event-ID must not be negative", "invalid_last_event_id")
    return value


@router.get(
    "/events",
    summary="Live events (Server-Sent Events): warnings, runs, incidents, layer changes",
    response_class=StreamingResponse,
    # An endless stream: left out of the OpenAPI document (generic clients and fuzzers
    # would wait on it forever); the README documents it.
    include_in_schema=False,
)
async def events(
    request: Request,
    pool: PoolDep,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    last_event_id_q: str | None = Query(
        None, alias="last_event_id", description="Resume after this event id"
    ),
    types: str | None = Query(None, description="Only these event types (comma-separated)"),
) -> StreamingResponse:
    hub = app_state(request).event_hub
    if hub is None:
        raise ApiError(503, "not_started", "the event stream is not running")
    after = _last_id(last_event_id, last_event_id_q)
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    queue = hub.subscribe()  # before the replay, so nothing falls between the two
    try:
        backlog: list[Event] = []
        if after is not None:
            async with pool.acquire() as conn:
                backlog = await replay(conn, after)
    except BaseException:
        hub.unsubscribe(queue)
        raise

    async def stream() -> AsyncIterator[bytes]:
        sent: set[int] = set()
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
            for ev in backlog:
                assert ev.id is not None
                sent.add(ev.id)
                if wanted is None or ev.type in wanted:
                    yield ev.sse()
            while not hub.closing.is_set():
                try:
                    ev = await asyncio.wait_for(queue.get(), hub.heartbeat_s)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                if ev is CLOSE:
                    break
                if ev.id is not None and ev.id in sent:
                    continue
                if wanted is None or ev.type in wanted:
                    yield ev.sse()
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
