"""A messy-address benchmark: variants of known standard addresses with their codes.

Each variant applies a few of the distortions people make when they type an address:
dropped admin levels, abbreviations (广东 for 广东省), Chinese numerals, other building
words (幢/座/号楼/#), compact forms (3-2-502), full-width digits, noise (phone numbers,
brackets, 附近), one misspelt character in the estate or road, and re-ordering.

Examples:
    >>> import numpy as np
    >>> row = {"code": "A1", "province": "广东省", "city": "中山市", "district": "石岐区",
    ...        "street": "悦来街道", "community": "大兴社区", "road": "新岭街",
    ...        "house_number": "8号", "estate": "桂湾花城", "building": "6栋",
    ...        "unit": "1单元", "room": "602室"}
    >>> text, code, kinds = make_variant(row, np.random.default_rng(1))
    >>> code
    'A1'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_CN = "零一二三四五六七八九"
_TYPO_POOL = "东西南北金银华景悦翠湖山水苑园城新龙凤安康富贵泰和兴盛嘉美雅怡丽"
_NOISE_AFTER = ("附近", "旁边", "（近公交站）", "(对面)", "【快递放门口】", " 电话13812345678",
                "，联系人陈生 13912345678", "  ")  # fmt: skip
KINDS = (
    "drop_admin", "abbrev", "numerals", "building_word", "compact", "fullwidth",
    "noise", "typo", "reorder", "spaces",
)  # fmt: skip


def _cn_positional(n: int) -> str:
    if n < 10:
        return _CN[n]
    if n < 100:
        t, o = divmod(n, 10)
        return ("" if t == 1 else _CN[t]) + "十" + ("" if o == 0 else _CN[o])
    return "".join(_CN[int(d)] for d in str(n))


def _num(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


def make_variant(
    row: Mapping[str, Any], rng: np.random.Generator, n_kinds: int | None = None
) -> tuple[str, str, list[str]]:
    """One messy spelling of ``row``; returns ``(text, expected code, distortions)``."""
    kinds = list(rng.choice(KINDS, size=n_kinds or int(rng.integers(1, 4)), replace=False))
    admin = [row.get(k) or "" for k in ("province", "city", "district", "street", "community")]
    road, number = row.get("road") or "", row.get("house_number") or ""
    estate, building = row.get("estate") or "", row.get("building") or ""
    unit, room = row.get("unit") or "", row.get("room") or ""
    if "drop_admin" in kinds:
        keep = rng.random(5) < 0.4
        admin = [a if k else "" for a, k in zip(admin, keep, strict=True)]
    if "abbrev" in kinds:
        admin[0] = admin[0].removesuffix("省")
        admin[1] = admin[1].removesuffix("市")
        if rng.random() < 0.5:
            admin[2] = admin[2].removesuffix("区")
    if "typo" in kinds:
        if estate and len(estate) >= 4 and rng.random() < 0.6:
            i = int(rng.integers(0, 2))
            estate = estate[:i] + str(rng.choice(list(_TYPO_POOL))) + estate[i + 1 :]
        elif len(road) >= 3:
            road = road[0] + str(rng.choice(list(_TYPO_POOL))) + road[2:]
    if "numerals" in kinds:
        if number and rng.random() < 0.7:
            number = _cn_positional(int(_num(number))) + number[len(_num(number)) :]
        if building[:-1].isdigit():
            building = _cn_positional(int(building[:-1])) + building[-1]
        if unit:
            unit = _cn_positional(int(_num(unit))) + "单元"
        if room and rng.random() < 0.5:
            room = "".join(_CN[int(d)] for d in _num(room)) + "室"
    if "building_word" in kinds and building.endswith("栋"):
        building = building[:-1] + str(rng.choice(["幢", "座", "号楼", "#"]))
    if "compact" in kinds and room and building:
        b, r = building.rstrip("栋幢座号楼#"), _num(row.get("room"))
        u = _num(row.get("unit")) if unit else ""
        building, unit, room = (f"{b}-{u}-{r}" if u else f"{b}-{r}"), "", ""
    elif room and rng.random() < 0.3:
        room = room.removesuffix("室")  # a bare room number
    tail = estate + building + unit + room
    head = "".join(admin)
    text = head + road + number + tail
    if "reorder" in kinds and tail and road:
        text = head + tail + "，" + road + number
    if "spaces" in kinds:
        text = " ".join([head, road + number, estate, building + unit + room]).strip()
    if "noise" in kinds:
        text = text + str(rng.choice(_NOISE_AFTER))
    if "fullwidth" in kinds:
        text = text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789-#"})
    return text, str(row["code"]), kinds


def make_variants(
    rows: Sequence[Mapping[str, Any]], n: int = 5000, seed: int = 7
) -> list[tuple[str, str, list[str]]]:
    """``n`` messy variants of randomly chosen ``rows`` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), n)
    return [make_variant(rows[int(i)], rng) for i in picks]
