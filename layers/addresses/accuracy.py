"""Component accuracy of the parser on hand-annotated real addresses.

The annotations (``tests/fixtures/addresses_cpca_annotated.csv``, written for this project;
see the guide beside it) hold, for rows of the cpca test set of real company addresses,
the row number, a checksum of the address text and the value each component should have.
The addresses themselves are read in place from the shared data folder.

Two measures per component, each over the addresses where the annotation *or* the parser
has a value for it (an address with neither does not count, so a component the parser
invents counts against it as much as one it misses):

* **exact** — the parser's value equals the annotated one (``3栋`` = ``3栋``);
* **normalised** — equal once the level's suffix is set aside (``杭州`` = ``杭州市``,
  ``3幢`` = ``3栋``, ``12号`` = ``12``).

Examples:
    >>> suffix_free("district", "柯桥区"), suffix_free("building", "3幢")
    ('柯桥', '3')
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from layers.addresses.gazetteer import CITY, DISTRICT, PROVINCE, short_form
from layers.addresses.parse import COMPONENTS

#: The source addresses, relative to the shared data folder.
SOURCE = Path("addresses") / "cpca_tests_addr.csv"

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "street": ("街道办事处", "街道", "镇", "乡"),
    "community": ("社区居委会", "村民委员会", "居委会", "村委会", "社区", "村"),
    "house_number": ("号院", "号"),
    "building": ("号楼", "栋", "幢", "座", "楼", "#"),
    "unit": ("单元",),
    "floor": ("层", "楼", "F"),
    "room": ("室", "房", "号"),
}
_ADMIN_LEVEL = {"province": PROVINCE, "city": CITY, "district": DISTRICT}


class AnnotationMismatch(ValueError):
    """An annotated row's address is not the one the checksum was taken of."""


def shared_data_dir() -> Path:
    """``$ONEMAP_SHARED_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("ONEMAP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def suffix_free(component: str, value: str | None) -> str:
    """``value`` without the suffix of its level (the *normalised* comparison)."""
    if not value:
        return ""
    if component in _ADMIN_LEVEL:
        return short_form(value, _ADMIN_LEVEL[component]) or value
    for suf in _SUFFIXES.get(component, ()):
        if value.endswith(suf) and len(value) > len(suf):
            return value[: -len(suf)]
    return value


def text_checksum(text: str) -> str:
    """The first ten hex digits of the SHA-1 of the stripped address."""
    return hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:10]


def load_annotated(
    fixture: Path, source: Path | None = None
) -> list[tuple[int, str, dict[str, str | None]]]:
    """``(row, address, annotated components)`` for every annotated row.

    Args:
        fixture: the annotations (``row``, ``sha1`` and one column per component).
        source: the cpca CSV (``$ONEMAP_SHARED_DATA/addresses/cpca_tests_addr.csv``).

    Raises:
        AnnotationMismatch: a row's text does not match its checksum (another CSV).
    """
    src = source if source is not None else shared_data_dir() / SOURCE
    with src.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        col = next(c for c in reader.fieldnames or [] if c.lstrip("#") == "原始地址")
        texts = [(r[col] or "").strip() for r in reader]
    out: list[tuple[int, str, dict[str, str | None]]] = []
    with fixture.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            n = int(r["row"])
            text = texts[n - 1]
            if text_checksum(text) != r["sha1"]:
                raise AnnotationMismatch(f"row {n} of {src} is not the annotated address")
            out.append((n, text, {c: (r[c] or None) for c in COMPONENTS}))
    return out


@dataclass
class ComponentScore:
    """Counts for one component: addresses counted, exactly and normalised right."""

    counted: int = 0
    exact: int = 0
    normalised: int = 0

    @property
    def exact_share(self) -> float:
        return self.exact / self.counted if self.counted else 1.0

    @property
    def normalised_share(self) -> float:
        return self.normalised / self.counted if self.counted else 1.0


@dataclass
class AccuracyReport:
    """Per-component scores and their pooled total (every counted component once)."""

    components: dict[str, ComponentScore] = field(
        default_factory=lambda: {c: ComponentScore() for c in COMPONENTS}
    )
    addresses: int = 0

    @property
    def total(self) -> ComponentScore:
        t = ComponentScore()
        for s in self.components.values():
            t.counted += s.counted
            t.exact += s.exact
            t.normalised += s.normalised
        return t

    def table(self) -> str:
        """A plain-text table: component, counted, exact share, normalised share."""
        lines = [f"{'component':<13}{'n':>5}{'exact':>8}{'normalised':>12}"]
        for name, s in [*self.components.items(), ("all", self.total)]:
            lines.append(
                f"{name:<13}{s.counted:>5}{s.exact_share:>8.3f}{s.normalised_share:>12.3f}"
            )
        return "\n".join(lines)


def score(
    pairs: Iterable[tuple[Mapping[str, str | None], Mapping[str, str | None]]],
) -> AccuracyReport:
    """Score ``(annotated, parsed)`` component mappings."""
    report = AccuracyReport()
    for gold, got in pairs:
        report.addresses += 1
        for c, s in report.components.items():
            g, p = gold.get(c) or None, got.get(c) or None
            if g is None and p is None:
                continue
            s.counted += 1
            s.exact += g == p
            s.normalised += suffix_free(c, g) == suffix_free(c, p)
    return report


def evaluate(
    parse: Callable[[str], Mapping[str, str | None]], fixture: Path, source: Path | None = None
) -> dict[str, AccuracyReport]:
    """Score ``parse`` (text → components) on the annotated real addresses of ``fixture``.

    Returns reports for ``all`` rows, the ``dev`` rows (even positions of the file, the ones
    looked at while fixing the parser) and the ``held_out`` rows (odd positions)."""
    rows = load_annotated(fixture, source)
    pairs = [(gold, parse(text)) for _, text, gold in rows]
    return {
        "all": score(pairs),
        "dev": score(pairs[0::2]),
        "held_out": score(pairs[1::2]),
    }
