"""One PostgreSQL LISTEN connection kept open for as long as the worker runs.

Both the layer versions (``onemap_layers``) and the live events (``onemap_events``) need
the same thing: a dedicated connection that LISTENs on a channel, re-opens itself when the
database restarts, catches up on what it missed, and hands each burst of notifications to
its owner.  :func:`listen_forever` is that loop; its owners only say what to do on
(re)connection and with a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("onemap.listen")

OnConnect = Callable[[asyncpg.Connection], Awaitable[None]]
OnPayloads = Callable[[asyncpg.Connection, list[str]], Awaitable[None]]


async def listen_forever(
    dsn: str,
    channel: str,
    *,
    on_connect: OnConnect,
    on_payloads: OnPayloads,
    connected: asyncio.Event,
    reconnect_s: float = 1.0,
    stopping: asyncio.Event | None = None,
) -> None:
    """LISTEN on ``channel`` until cancelled (or ``stopping`` is set).

    Args:
        dsn: the database URL.
        channel: the NOTIFY channel.
        on_connect: run after each (re)connection, once LISTEN is in place, to catch up
            with what happened while there was no connection.
        on_payloads: run with every burst of payloads, in the order they arrived.
        connected: set while the connection is up (callers may trust their state then).
        reconnect_s: pause between connection attempts, seconds.
        stopping: when set, no new connection is attempted.
    """
    while stopping is None or not stopping.is_set():
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.debug("%s listener cannot connect: %r", channel, exc)
            await asyncio.sleep(reconnect_s)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c, lost=lost: lost.set())
        queue: asyncio.Queue[str] = asyncio.Queue()
        try:
            await conn.add_listener(
                channel, lambda _c, _pid, _ch, payload, q=queue: q.put_nowait(payload)
            )
            await on_connect(conn)
            connected.set()
            while not lost.is_set():
                getter = asyncio.ensure_future(queue.get())
                waiter = asyncio.ensure_future(lost.wait())
                done, pending = await asyncio.wait(
                    {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                for p in pending:
                    p.cancel()
                if getter in done:
                    burst = [getter.result()]
                    while not queue.empty():
                        burst.append(queue.get_nowait())
                    await on_payloads(conn, burst)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("%s listener lost its connection: %r", channel, exc)
        finally:
            connected.clear()
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        await asyncio.sleep(reconnect_s)
