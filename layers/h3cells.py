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

import numpy as np


def parent_bits(res: int) -> tuple[int, int]:
    """``(and_mask, or_bits)`` with ``parent = (h & and_mask) | or_bits`` at ``res`` (int64)."""
    unused = (1 << (3 * (15 - res))) - 1
    and_mask = ~((15 << 52) | unused)  # negative: a two's-complement int64 mask
    return and_mask, (res << 52) | unused


def parent_int(h: int, res: int) -> int:
    """The parent of the H3 index ``h`` (an int) at resolution ``res`` (pure bit operations)."""
    and_mask, or_bits = parent_bits(res)
    return (h & and_mask) | or_bits


def parents_array(cells: np.ndarray, res: int) -> np.ndarray:
    """Parents at ``res`` of H3 indexes given as an int64 array (vectorised :func:`parent_int`).

    >>> import h3
    >>> c = h3.str_to_int(h3.latlng_to_cell(22.5, 113.4, 9))
    >>> int(parents_array(np.array([c]), 6)[0]) == parent_int(c, 6)
    True
    """
    and_mask, or_bits = parent_bits(res)
    return (np.asarray(cells, dtype="int64") & np.int64(and_mask)) | np.int64(or_bits)


def children_range(h: int, child_res: int) -> tuple[int, int]:
    """``(lo, hi)``: every descendant at ``child_res`` of the H3 index ``h`` lies in
    ``lo ≤ index ≤ hi``, and every index of that resolution in the range descends from ``h``
    (the digits below ``h``'s resolution are the least significant bits), so a B-tree range
    scan lists a parent's cells.

    >>> import h3
    >>> p = h3.str_to_int(h3.latlng_to_cell(22.5, 113.4, 7))
    >>> lo, hi = children_range(p, 9)
    >>> kids = [h3.str_to_int(c) for c in h3.cell_to_children(h3.int_to_str(p), 9)]
    >>> all(lo <= k <= hi for k in kids)
    True
    """
    res = (h >> 52) & 15
    below = (1 << (3 * (15 - res))) - 1
    base = (h & ~((15 << 52) | below)) | (child_res << 52)
    return base | ((1 << (3 * (15 - child_res))) - 1), base | below
