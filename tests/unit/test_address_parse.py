"""The address parser and normaliser (pure Python, no database) + the real-data run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from layers.addresses import normalise_text, parse
from layers.addresses.normalise import chinese_to_int


@pytest.mark.parametrize(
    ("text", "value"),
    [("十二", 12), ("二十三", 23), ("五零二", 502), ("一百零五", 105), ("十", 10)],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert chinese_to_int(text) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("中山路１２号", "中山路12号"),  # full width
        ("中山路十二号三栋", "中山路12号3栋"),  # numerals before markers
        ("中山路12号（翠景花园对面）", "中山路12号"),  # brackets
        ("中山路12号 13812345678", "中山路12号"),  # phone
        ("中山路12号附近", "中山路12号"),  # noise word
        ("1#704室", "1栋704室"),
        ("20F", "20层"),
        ("第三栋", "3栋"),
    ],
)
def test_normalise_rules(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_full_standard_address() -> None:
    p = parse("广东省中山市石岐区悦来街道大兴社区新岭街8号桂湾花城6栋1单元602室")
    assert (p.province, p.city, p.district) == ("广东省", "中山市", "石岐区")
    assert (p.street, p.community, p.road, p.house_number) == (
        "悦来街道",
        "大兴社区",
        "新岭街",
        "8号",
    )
    assert (p.estate, p.building, p.unit, p.floor, p.room) == (
        "桂湾花城",
        "6栋",
        "1单元",
        "6层",
        "602室",
    )
    assert p.normalised == "广东省中山市石岐区悦来街道大兴社区新岭街8号桂湾花城6栋1单元602室"


def test_aliases_infer_upper_levels() -> None:
    p = parse("广东中山石岐区中山路十二号翠景花园三栋2单元502")
    assert (p.province, p.city, p.district) == ("广东省", "中山市", "石岐区")
    assert (p.road, p.house_number, p.building, p.unit, p.room) == (
        "中山路",
        "12号",
        "3栋",
        "2单元",
        "502室",
    )
    assert parse("深圳市南山区科技园").province == "广东省"
    assert parse("上海浦东杨高南路759号").district == "浦东新区"


def test_road_alias_is_not_a_city() -> None:
    p = parse("中山路12号")
    assert p.city is None and p.road == "中山路" and p.house_number == "12号"


def test_compact_forms() -> None:
    p = parse("翠景花园47-6-746")
    assert (p.building, p.unit, p.room) == ("47栋", "6单元", "746室")
    p = parse("翠景花园3栋2-502")
    assert (p.building, p.unit, p.room) == ("3栋", "2单元", "502室")


def test_building_words_and_towers() -> None:
    assert parse("景业工业区4号楼202室").building == "4栋"
    p = parse("北京市海淀区北西环西路66号中国技术交易大厦B座1728")
    assert (p.estate, p.building, p.room) == ("中国技术交易大厦", "B座", "1728室")
    p = parse("上海市沪松公路1136弄1号楼10楼")
    assert (p.road, p.house_number, p.building, p.floor) == ("沪松公路", "1136弄", "1栋", "10层")


def test_street_town_and_village() -> None:
    p = parse("河南省孟州市南庄镇田寺工业园")
    assert (p.province, p.district, p.street) == ("河南省", "孟州市", "南庄镇")
    p = parse("广东省中山市石岐区古鹤镇禾丰村大岸一巷10号")
    assert (p.street, p.community, p.road) == ("古鹤镇", "禾丰村", "大岸一巷")


def test_reordered_road_after_estate() -> None:
    p = parse("翠景花园3栋2单元502室，中山路12号")
    assert (p.road, p.house_number, p.estate, p.room) == ("中山路", "12号", "翠景花园", "502室")


@pytest.mark.parametrize(
    "text", ["", " ", "hello world", "😀😀", "'; DROP TABLE addresses;--", "\udcff", "1" * 2000]
)
def test_odd_input_never_raises(text: str) -> None:
    p = parse(text)
    assert p.room is None


@pytest.mark.realdata
def test_cpca_real_addresses(shared_data: Path) -> None:
    """Every line of the cpca test set parses; district lines resolve 省/市/区."""
    path = shared_data / "addresses" / "cpca_tests_addr.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        col = "#原始地址" if "#原始地址" in (reader.fieldnames or []) else "原始地址"
        lines = [row[col] or "" for row in reader]
    assert len(lines) == 18_367
    parsed = [parse(line) for line in lines]
    named = [p for p in parsed if p.district]
    resolved = [p for p in named if p.province and p.city]
    share = len(resolved) / len(named)
    print(f"cpca: {len(named)} lines name a district, {share:.3%} resolved")
    assert len(named) > 8000
    assert share >= 0.95
