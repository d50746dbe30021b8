"""The four warning levels of China's early-warning signals and their risk-cell numbers."""

from __future__ import annotations

from emergency.errors import InvalidLevel
from layers.catalog import LEVEL_NAMES, WARNING_LEVELS

#: Warning level name → ``risk_cells.level`` (0 = no risk, 1 blue … 4 red).
LEVEL_NUMBER: dict[str, int] = {name: i + 1 for i, name in enumerate(WARNING_LEVELS)}
LEVEL_NAME: dict[int, str] = dict(enumerate(LEVEL_NAMES))


def parse_level(value: object) -> int:
    """The cell level of a warning level name (``"yellow"`` → 2), also accepting 1–4.

    >>> parse_level("orange"), parse_level(4)
    (3, 4)
    """
    if isinstance(value, str) and value.strip().lower() in LEVEL_NUMBER:
        return LEVEL_NUMBER[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in LEVEL_NUMBER.values():
        return value
    if isinstance(value, str) and value.strip() in {"1", "2", "3", "4"}:
        return int(value.strip())
    raise InvalidLevel(f"level must be one of {', '.join(WARNING_LEVELS)} (or 1-4), got {value!r}")
