"""Text normalisation before parsing: width, numerals, noise, compact forms.

Every rule is a precompiled regex applied once per address, so the whole step costs
a few microseconds.

Examples:
    >>> normalise_text("中山路十二号（翠景花园对面） 三栋２单元５０２ 电话13812345678")
    '中山路12号3栋2单元502'
    >>> chinese_to_int("二十三"), chinese_to_int("五零二"), chinese_to_int("一百零五")
    (23, 502, 105)
"""

from __future__ import annotations

import re
import unicodedata

_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
           "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇○一二两三四五六七八九十百千"


def chinese_to_int(text: str) -> int:
    """A Chinese numeral (positional 二十三 or digit-by-digit 五零二) as an int."""
    if not any(ch in _UNITS for ch in text):
        return int("".join(str(_DIGITS[ch]) for ch in text))
    total, digit = 0, 0
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        else:
            total += (digit or 1) * _UNITS[ch]
            digit = 0
    return total + digit


#: Markers after which a number is an address number (号, 栋, 单元 …).
_MARKERS = "号楼|号院|号|栋|幢|座|单元|层|楼|室|房|户|期|弄|区|-"
_CN_NUMBER = re.compile(rf"第?([{_CN_NUM}]+)(?={_MARKERS})")
#: A number after 单元 or a dash, or a 3–4 digit room number read out at the end.
_CN_AFTER = re.compile(rf"(?:(?<=单元)|(?<=-))([{_CN_NUM}]+)|([零〇○一二三四五六七八九]{{3,4}})$")
_ORDINAL = re.compile(rf"第(\d+)(?={_MARKERS})")
_BRACKETS = re.compile(r"[(\[{【〔<《][^)\]}】〕>》]*[)\]}】〕>》]")
_PHONE = re.compile(
    r"(?:电话|手机|联系电话|tel|TEL|Tel)?[:]?"
    r"(?:(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d))"
)
_NOISE = re.compile(
    r"附近|旁边|斜对面|对面|隔壁|周边|一带|门口|楼下|左侧|右侧|东侧|西侧|南侧|北侧|"
    r"往[东南西北]\d*米|[东南西北]\d+米|^(?:收货|详细|联系)?地址[:]?|中国(?=[\u4e00-\u9fff]{2,3}[省市])"
)
_PUNCT = re.compile(r"[\s,，、。.;；:：·'\"“”‘’!！?？~`|/\\_＿]+")
_DASH = re.compile(r"[—–－‐‑~]+")
_HASH = re.compile(r"(?<=[0-9A-Z])#(?!楼)|(?<=[0-9A-Z])#楼")
_FLOOR_F = re.compile(r"(?<=\d)F(?![A-Z])")
_SPACE = re.compile(r"\s+")


def _cn_sub(m: re.Match[str]) -> str:
    return str(chinese_to_int(m.group(1)))


def _cn_sub2(m: re.Match[str]) -> str:
    return str(chinese_to_int(m.group(1) or m.group(2)))


def normalise_text(text: str) -> str:
    """Full-width → half-width, noise removed, Chinese numerals before markers → digits.

    Brackets and their content, phone numbers, 附近/旁边/对面 and punctuation go;
    ``1#`` becomes ``1栋`` and ``20F`` becomes ``20层``.
    """
    s = unicodedata.normalize("NFKC", text).upper()
    s = _SPACE.sub("", s)
    s = _BRACKETS.sub("", s)
    s = _PHONE.sub("", s)
    s = _DASH.sub("-", s)
    s = _PUNCT.sub("", s)
    s = _NOISE.sub("", s)
    s = _CN_NUMBER.sub(_cn_sub, s)
    s = _CN_AFTER.sub(_cn_sub2, s)
    s = _ORDINAL.sub(r"\1", s)
    s = _HASH.sub("栋", s)
    s = _FLOOR_F.sub("层", s)
    return s.strip("-")
