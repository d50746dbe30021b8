"""H3 indexes stored as BIGINT: parents by bit operations, in Python and in SQL.

``risk_cells`` stores H3 indexes as BIGINT (h3-pg is not packaged), so the parent of a cell
at a coarser resolution is computed with bit operations on the index (H3 layout: resolution
in bits 52–55, one 3-bit digit per resolution below; a parent has its resolution field set
and the finer digits all ``7``).

Examples:
    >>> import h3
    >>> cell = h3.latlng_to_cell(22.5, 113.4, 9)
    >>> parent_int(h3.str_to_int(cell), 7) == h3.str_to_int(h3.cell_to_parent(cell, 7))
    True
"""

from __future__ import annotations


def parent_bits(res: int) -> tuple[int, int]:
    """``(and_mask, or_bits)`` with ``parent = (h & and_mask) | or_bits`` at ``res`` (int64)."""
    unused = (1 << (3 * (15 - res))) - 1
    and_mask = ~((15 << 52) | unused)  # negative: a two's-complement int64 mask
    return and_mask, (res << 52) | unused


def parent_int(h: int, res: int) -> int:
    """The parent of the H3 index ``h`` (an int) at resolution ``res`` (pure bit operations)."""
    and_mask, or_bits = parent_bits(res)
    return (h & and_mask) | or_bits
