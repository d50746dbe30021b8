"""A bytes-bounded in-process LRU cache of tiles, and the ETag helpers.

Keys carry the versions of the layers a tile was made from, so a stale entry can never be
served; :meth:`TileCache.invalidate` additionally frees the entries of a changed table
at once (the server subscribes it to the LISTEN/NOTIFY layer versions of its worker).

Examples:
    >>> c = TileCache(max_bytes=10)
    >>> c.put(("a",), b"12345", tables=("grids",)); c.put(("b",), b"123456", tables=())
    >>> c.get(("a",)) is None, c.get(("b",))   # "a" was evicted to stay within 10 bytes
    (True, b'123456')
    >>> etag_matches('W/"x", "y"', '"y"')
    True
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Iterable

#: Default bound of the cache (ONEMAP_TILES_CACHE_MB).
DEFAULT_CACHE_MB = 64.0


class TileCache:
    """Least-recently-used tiles, at most ``max_bytes`` of tile data in total.

    Not thread-safe: the server uses it from its event loop only.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[Hashable, tuple[bytes, tuple[str, ...]]] = OrderedDict()
        self._by_table: dict[str, set[Hashable]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: Hashable, data: bytes, tables: Iterable[str] = ()) -> None:
        """Store ``data`` under ``key``; ``tables`` are the layer tables it was made from."""
        if len(data) > self.max_bytes:
            return
        self._drop(key)
        tabs = tuple(tables)
        self._entries[key] = (data, tabs)
        self.bytes += len(data)
        for t in tabs:
            self._by_table.setdefault(t, set()).add(key)
        while self.bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def invalidate(self, table: str) -> int:
        """Drop every tile made from ``table``; returns how many were dropped."""
        keys = self._by_table.pop(table, set())
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> None:
        self._entries.clear()
        self._by_table.clear()
        self.bytes = 0

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= len(entry[0])
        for t in entry[1]:
            keys = self._by_table.get(t)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_table[t]


def make_etag(*parts: object) -> str:
    """A strong ETag (quoted) from the parts that determine a response."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header value matches ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        c = candidate.strip()
        if c == "*" or c.removeprefix("W/") == etag:
            return True
    return False
