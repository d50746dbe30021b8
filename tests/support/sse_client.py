"""A minimal Server-Sent Events reader for tests: a thread that parses ``GET /events``."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseEvent:
    id: int | None
    type: str
    data: dict[str, Any]
    received: float  # time.monotonic() on arrival


class SseReader:
    """Reads events from ``url`` in a background thread into :attr:`events`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.url = url
        self.headers = headers or {}
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self.comments: list[str] = []
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.status: int | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "the event stream did not open"

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5.0, read=60.0)) as c,
                c.stream("GET", self.url, headers=self.headers) as r,
            ):
                self.status = r.status_code
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line)
                        self.connected.set()
                        continue
                    if line == "":
                        if "event" in fields or "data" in fields:
                            self.events.put(
                                SseEvent(
                                    int(fields["id"]) if "id" in fields else None,
                                    fields.get("event", "message"),
                                    json.loads(fields.get("data", "{}")),
                                    time.monotonic(),
                                )
                            )
                        fields = {}
                        continue
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
                    if self._stop:
                        break
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()
            self.ended.set()

    def next(self, type_: str | None = None, timeout_s: float = 10.0) -> SseEvent:
        """The next event (of ``type_`` when given), skipping others; raises on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {type_ or 'event'} within {timeout_s} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if type_ is None or ev.type == type_:
                return ev

    def close(self) -> None:
        self._stop = True
