"""Residents (实有人口): ID numbers masked and hashed, tags checked against the dictionary.

A full ID number (居民身份证号码, GB 11643: 17 digits and a check character) never reaches
the database: :func:`protect_ids` turns it into the masked form ``440***********1234``
(first 3 and last 4 characters kept) and a salted SHA-256 ``salt$hex`` that can confirm a
number later (:func:`id_matches`) without storing it.

Examples:
    >>> mask_id("44200019800101123X")
    '442***********123X'
    >>> check_char("44200019800101123")
    '8'
    >>> normalise_tags("高龄、独居老人")
    '独居老人,高龄'
"""

from __future__ import annotations

import hashlib
import re
import secrets

import numpy as np
import pandas as pd

from layers.catalog import RESIDENT_TAGS
from layers.errors import ImportFailed

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
FULL_ID = re.compile(r"^\d{17}[\dX]$")
MASKED_ID = re.compile(r"^\d{3}\*{11}[\dX]{4}$")
_TAG_SPLIT = re.compile(r"[,，、;；|/\s]+")
_TAG_ORDER = {t: i for i, t in enumerate(RESIDENT_TAGS)}


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def is_valid_id(number: str) -> bool:
    """True for an 18-character ID number with a correct check character."""
    return bool(FULL_ID.match(number)) and check_char(number[:17]) == number[17]


def mask_id(number: str) -> str:
    """The stored form: first 3 and last 4 characters, 11 asterisks between."""
    return number[:3] + "*" * 11 + number[-4:]


def hash_id(number: str, salt: str | None = None) -> str:
    """``salt$sha256(salt + number)`` with a random 16-hex-digit salt unless one is given."""
    salt = salt if salt is not None else secrets.token_hex(8)
    return salt + "$" + hashlib.sha256((salt + number).encode()).hexdigest()


def id_matches(stored_hash: str, number: str) -> bool:
    """True when ``number`` is the ID number ``stored_hash`` was made from."""
    salt, _, _ = stored_hash.partition("$")
    return secrets.compare_digest(hash_id(number.strip().upper(), salt), stored_hash)


def normalise_tags(value: object) -> str | None:
    """Tags as the stored comma-separated string in dictionary order (None when empty).

    Raises:
        ValueError: a tag that is not in :data:`layers.catalog.RESIDENT_TAGS`.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, list | tuple | set):
        parts = [str(v).strip() for v in value]
    else:
        parts = _TAG_SPLIT.split(str(value).strip())
    tags = {p for p in parts if p}
    unknown = sorted(tags - set(RESIDENT_TAGS))
    if unknown:
        allowed = ", ".join(RESIDENT_TAGS)
        raise ValueError(f"unknown tag(s) {', '.join(unknown)}; allowed: {allowed}")
    return ",".join(sorted(tags, key=_TAG_ORDER.__getitem__)) or None


def split_tags(stored: str | None) -> list[str]:
    """The stored tag string as a list (empty for None)."""
    return [t for t in (stored or "").split(",") if t]


def protect_ids(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """A copy of an imported residents table with ``id_number`` masked and ``id_hash`` set,
    and ``tags`` normalised.

    A full, valid ID number is masked and hashed (any ``id_hash`` given is replaced); an
    already masked number keeps the ``id_hash`` given with it, which is then required.

    Raises:
        ImportFailed: naming the row of a malformed ID number, a wrong check character, a
            masked number without its hash, or an unknown tag.
    """
    out = frame.copy()
    if "id_number" not in out.columns:
        return out  # the catalog check reports the missing required field
    ids = out["id_number"].astype(object).where(out["id_number"].notna(), None)
    text = ids.map(lambda v: None if v is None else str(v).strip().upper())
    hashes = (
        out["id_hash"].astype(object).where(out["id_hash"].notna(), None)
        if "id_hash" in out.columns
        else pd.Series([None] * len(out), index=out.index, dtype=object)
    )
    present = text.notna().to_numpy()
    masked = present & text.fillna("").str.match(MASKED_ID).to_numpy()
    full = present & ~masked
    new_ids = text.to_numpy(dtype=object).copy()
    new_hashes = hashes.to_numpy(dtype=object).copy()
    for i in np.flatnonzero(full):
        number = new_ids[i]
        if not FULL_ID.match(number):
            raise ImportFailed(
                source, "id_number is neither an 18-character ID number nor masked", row=int(i) + 1
            )
        if check_char(number[:17]) != number[17]:
            raise ImportFailed(source, "id_number has a wrong check character", row=int(i) + 1)
        new_hashes[i] = hash_id(number)
        new_ids[i] = mask_id(number)
    no_hash = masked & pd.isna(pd.Series(new_hashes)).to_numpy()
    if no_hash.any():
        raise ImportFailed(
            source,
            "a masked id_number needs its id_hash (give the full number instead)",
            row=int(np.flatnonzero(no_hash)[0]) + 1,
        )
    out["id_number"] = new_ids
    out["id_hash"] = new_hashes
    if "tags" in out.columns:
        tags = out["tags"].astype(object).where(out["tags"].notna(), None)
        seen: dict[object, str | None] = {}
        for v in pd.unique(tags.to_numpy(dtype=object)):  # few distinct tag strings
            try:
                seen[v] = normalise_tags(v)
            except ValueError as exc:
                row = int(np.flatnonzero((tags == v).to_numpy())[0]) + 1
                raise ImportFailed(source, f"tags: {exc}", row=row) from None
        out["tags"] = tags.map(lambda v: seen[v]).to_numpy(dtype=object)
    return out
