"""Text normalisation before parsing: width, numerals, noise, compact forms.

Every rule is a precompiled regex applied once per address, so the whole step costs
a few microseconds.  :func:`normalise_tracked` also says, for every character of the
result, which characters of the input it came from, so the parser can hand back the
original span of each component next to its normalised value.

Examples:
    >>> normalise_text("中山路十二号（翠景花园对面） 三栋２单元５０２ 电话13812345678")
    '中山路12号3栋2单元502'
    >>> chinese_to_int("二十三"), chinese_to_int("五零二"), chinese_to_int("一百零五")
    (23, 502, 105)
    >>> t = normalise_tracked("翠景花园三栋")
    >>> t.text, t.original(4, 6)
    ('翠景花园3栋', '三栋')
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

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
#: Control characters and lone surrogates: never part of an address (and no database text
#: can hold a NUL).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_PUNCT = re.compile(r"[\s,，、。.;；:：·'\"“”‘’!！?？~`|/\\_＿]+")
_DASH = re.compile(r"[—–－‐‑~]+")
_HASH = re.compile(r"(?<=[0-9A-Z])#(?!楼)|(?<=[0-9A-Z])#楼")
_FLOOR_F = re.compile(r"(?<=\d)F(?![A-Z])")
#: Characters typed for 栋 by pinyin input (dòng): 懂 冻 动 … right after a building number.
_DONG_TYPO = re.compile(r"(?<=[0-9A-Z])(?:[懂冻崠]|[动動](?=\d|单元|层|楼|室|$))")


def _cn_sub(m: re.Match[str]) -> str:
    return str(chinese_to_int(m.group(1)))


def _cn_sub2(m: re.Match[str]) -> str:
    return str(chinese_to_int(m.group(1) or m.group(2)))


Repl = str | Callable[[re.Match[str]], str]


class Tracked:
    """Text being normalised, with the input range ``src[i]`` of every character ``i``."""

    __slots__ = ("source", "src", "text")

    def __init__(self, source: str):
        self.source = source
        whole = unicodedata.normalize("NFKC", source).upper()
        if len(whole) == len(source):  # one character for one (full width, CJK): fast path
            keep = [i for i, ch in enumerate(whole) if not ch.isspace()]
            self.text = "".join([whole[i] for i in keep])
            self.src = [(i, i + 1) for i in keep]
            return
        chars: list[str] = []
        src: list[tuple[int, int]] = []
        for i, ch in enumerate(source):
            if ch.isspace():
                continue
            out = unicodedata.normalize("NFKC", ch).upper()
            chars.append(out)
            src.extend([(i, i + 1)] * len(out))
        self.text = "".join(chars)
        self.src = src

    def sub(self, pattern: re.Pattern[str], repl: Repl) -> None:
        """``pattern.sub(repl, text)``; a replacement comes from the whole match."""
        text = self.text
        if pattern.search(text) is None:
            return
        out: list[str] = []
        src: list[tuple[int, int]] = []
        last = 0
        for m in pattern.finditer(text):
            a, b = m.span()
            out.append(text[last:a])
            src.extend(self.src[last:a])
            r = repl(m) if callable(repl) else m.expand(repl)
            if r:
                if a < b:
                    rng = (self.src[a][0], self.src[b - 1][1])
                else:
                    at = self.src[a][0] if a < len(self.src) else len(self.source)
                    rng = (at, at)
                out.append(r)
                src.extend([rng] * len(r))
            last = b
        out.append(text[last:])
        src.extend(self.src[last:])
        self.text = "".join(out)
        self.src = src

    def strip(self, chars: str) -> None:
        a, b = 0, len(self.text)
        while a < b and self.text[a] in chars:
            a += 1
        while b > a and self.text[b - 1] in chars:
            b -= 1
        self.text, self.src = self.text[a:b], self.src[a:b]

    def original(self, start: int, end: int) -> str:
        """The input text behind ``text[start:end]``."""
        if start >= end:
            return ""
        return self.source[self.src[start][0] : self.src[end - 1][1]].strip()


#: The rules in the order they apply (one list for both normalisers).
_RULES: tuple[tuple[re.Pattern[str], Repl], ...] = (
    (CONTROL, ""),
    (_BRACKETS, ""),
    (_PHONE, ""),
    (_DASH, "-"),
    (_PUNCT, ""),
    (_NOISE, ""),
    (_CN_NUMBER, _cn_sub),
    (_CN_AFTER, _cn_sub2),
    (_ORDINAL, r"\1"),
    (_HASH, "栋"),
    (_FLOOR_F, "层"),
    (_DONG_TYPO, "栋"),
)
_SPACE = re.compile(r"\s+")


def normalise_tracked(text: str) -> Tracked:
    """:func:`normalise_text` keeping where every character of the result came from."""
    t = Tracked(text)
    for pattern, repl in _RULES:
        t.sub(pattern, repl)
    t.strip("-")
    return t


def normalise_text(text: str) -> str:
    """Full-width → half-width, noise removed, Chinese numerals before markers → digits.

    Brackets and their content, phone numbers, 附近/旁边/对面 and punctuation go;
    ``1#`` becomes ``1栋``, ``20F`` becomes ``20层`` and ``B懂`` (a typo) ``B栋``.
    The same text as :func:`normalise_tracked` gives, without the positions.
    """
    whole = unicodedata.normalize("NFKC", text).upper()
    if len(whole) == len(text):
        s = _SPACE.sub("", whole)
    else:  # as Tracked does: character by character
        s = "".join(unicodedata.normalize("NFKC", ch).upper() for ch in text if not ch.isspace())
    for pattern, repl in _RULES:
        s = pattern.sub(repl, s)
    return s.strip("-")
