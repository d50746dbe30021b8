"""One LISTEN connection per server worker, fanned out to every ``GET /events`` client.

Events are rows of ``events`` announced on ``onemap_events`` (see :mod:`layers.events`);
PostgreSQL delivers each notification to every listening worker, so every worker's clients
get every event.  A notification without an ``id`` (sent with a bare ``pg_notify``) is
passed on without one (finished risk runs are stored by a trigger on ``risk_runs``, so they
always have one).  If the connection drops, it is re-opened and the events stored meanwhile
are replayed from the table.  Slow clients whose queue fills are dropped (their browser
reconnects with ``Last-Event-ID`` and resumes from the table).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg

from geo_service.pg_listen import listen_forever
from layers.events import CHANNEL

log = logging.getLogger("onemap.events")

#: Most events one client may have waiting before it is dropped.
QUEUE_SIZE = 2000
#: Most events replayed to a client resuming with Last-Event-ID.
REPLAY_LIMIT = 5000


@dataclass(frozen=True)
class Event:
    """One event: ``id`` (None for bare notifications), ``type``, ``data`` (JSON object)."""

    id: int | None
    type: str
    data: dict[str, Any]

    def sse(self) -> bytes:
        """The event in ``text/event-stream`` framing."""
        head = f"id: {self.id}\n" if self.id is not None else ""
        body = json.dumps(self.data, ensure_ascii=False, default=str)
        return f"{head}event: {self.type}\ndata: {body}\n\n".encode()


CLOSE = Event(None, "__close__", {})


class EventHub:
    """Listens on ``onemap_events`` and fans events out to subscriber queues."""

    def __init__(self, dsn: str, reconnect_s: float = 1.0, heartbeat_s: float = 15.0):
        self.dsn = dsn
        self.reconnect_s = reconnect_s
        self.heartbeat_s = heartbeat_s
        self.connected = asyncio.Event()
        self.closing = asyncio.Event()
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task[None] | None = None
        self._last_id = 0
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._restore_signals: list[tuple[int, Any]] = []

    # ------------------------------------------------------------------ subscribers
    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """Give ``event`` to every subscriber (drop the ones that cannot keep up)."""
        if event.id is not None:
            if event.id in self._seen:
                return
            self._seen[event.id] = None
            if len(self._seen) > 10_000:
                self._seen.popitem(last=False)
            self._last_id = max(self._last_id, event.id)
        for q in list(self._subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("dropping a slow event-stream client")
                self._subscribers.discard(q)
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                q.put_nowait(CLOSE)

    def close_streams(self) -> None:
        """End every open stream (server shutdown): they must not hold the server up."""
        self.closing.set()
        for q in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(CLOSE)

    # ------------------------------------------------------------------ listening
    async def _on_payload(self, conn: asyncpg.Connection, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            log.warning("ignoring a non-JSON notification on %s", CHANNEL)
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return
        if "id" not in msg:
            bare = {k: v for k, v in msg.items() if k != "type"}
            self.publish(Event(None, msg["type"], bare))
            return
        data: Any = msg.get("payload")
        if data is None:  # too large for a notification: read it
            text = await conn.fetchval(
                "SELECT payload::text FROM events WHERE id = $1", int(msg["id"])
            )
            data = json.loads(text) if text else {}
        self.publish(Event(int(msg["id"]), msg["type"], data))

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        if self._last_id == 0:
            self._last_id = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
            return
        rows = await conn.fetch(
            "SELECT id, type, payload::text AS payload FROM events WHERE id > $1 ORDER BY id "
            "LIMIT $2",
            self._last_id,
            REPLAY_LIMIT,
        )
        for r in rows:
            self.publish(Event(int(r["id"]), r["type"], json.loads(r["payload"])))

    async def _run(self) -> None:
        async def on_payloads(conn: asyncpg.Connection, burst: list[str]) -> None:
            for payload in burst:
                await self._on_payload(conn, payload)

        await listen_forever(
            self.dsn,
            CHANNEL,
            on_connect=self._catch_up,
            on_payloads=on_payloads,
            connected=self.connected,
            reconnect_s=self.reconnect_s,
            stopping=self.closing,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="onemap-event-listener")
        self._hook_signals()

    async def stop(self) -> None:
        self.close_streams()
        self._unhook_signals()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ shutdown
    def _hook_signals(self) -> None:
        """End the streams as soon as the server is asked to stop.

        The HTTP server waits for open responses before it shuts the application down, and
        an event stream never ends by itself; so the stop signal (SIGINT/SIGTERM) is chained
        to :meth:`close_streams` before the server's own handler runs.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.close_streams)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._restore_signals.append((sig, previous))

    def _unhook_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._restore_signals:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._restore_signals.clear()


async def replay(conn: asyncpg.Connection, after_id: int, limit: int = REPLAY_LIMIT) -> list[Event]:
    """Stored events with an id above ``after_id``, oldest first."""
    rows = await conn.fetch(
        "SELECT id, type, payload::text AS payload FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    return [Event(int(r["id"]), r["type"], json.loads(r["payload"])) for r in rows]
