"""The address parser and normaliser (pure Python, no database) + the real-data run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from layers.addresses import normalise_text, parse
from layers.addresses.accuracy import AnnotationMismatch, evaluate, load_annotated, score
from layers.addresses.gazetteer import CITY, DISTRICT, PROVINCE, STREET, default_gazetteer
from layers.addresses.gazetteer_data import data_dir
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
        None,
        "602室",
    )
    assert p.normalised == "广东省中山市石岐区悦来街道大兴社区新岭街8号桂湾花城6栋1单元602室"


def test_aliases_infer_upper_levels() -> None:
    p = parse("广东中山石岐区中山路十二号翠景花园三栋2单元502")
    # 中山 has no districts: its 石岐区 is the township 石岐街道 (a database that has a
    # district 石岐区 adds it to the gazetteer, which is read first)
    assert (p.province, p.city, p.district, p.street) == ("广东省", "中山市", None, "石岐街道")
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


# -- the national gazetteer ------------------------------------------------------------


def test_gazetteer_has_every_level_with_codes() -> None:
    """Every province, prefecture, county and township of the installed package."""
    g = default_gazetteer()
    codes: dict[int, set[str]] = {PROVINCE: set(), CITY: set(), DISTRICT: set(), STREET: set()}
    for entries in g.names.values():
        for e in entries:
            if e.code and e.level in codes:
                codes[e.level].add(e.code)
    cities = {e.name for es in g.names.values() for e in es if e.level == CITY}
    with (data_dir() / "areas.csv").open(encoding="utf-8") as f:
        counties = {
            row["code"]
            for row in csv.DictReader(f)
            if row["name"] not in cities and not "71" <= row["code"][4:6] <= "79"
        }
    assert len(codes[PROVINCE]) == 34  # 31 + Hong Kong, Macao, Taiwan
    assert len(codes[CITY]) >= 330
    assert len(codes[STREET]) >= 38_000
    # every county is a district or (ruled by its province, 仙桃市) a city, unless it is
    # its prefecture itself (东莞市, 嘉峪关市) or a development zone (codes 71–79)
    missing = counties - codes[DISTRICT] - codes[CITY]
    assert not missing, sorted(missing)[:10]


@pytest.mark.parametrize(
    ("name", "full", "city", "code"),
    [
        ("义乌", "义乌市", "金华市", "330782"),
        ("越城区", "越城区", "绍兴市", "330602"),
        ("柯桥", "柯桥区", "绍兴市", "330603"),
        ("黔东南", "黔东南苗族侗族自治州", None, "5226"),
        ("白沙", "白沙黎族自治县", None, "469025"),
    ],
)
def test_gazetteer_short_forms(name: str, full: str, city: str | None, code: str) -> None:
    (e,) = default_gazetteer().lookup(name)
    assert (e.name, e.city, e.code) == (full, city, code)


# -- the five causes of wrong components on real addresses -------------------------------


def test_districts_of_every_city() -> None:
    p = parse("浙江省义乌市稠城街道工人北路1号")
    assert (p.province, p.city, p.district, p.street) == ("浙江省", "金华市", "义乌市", "稠城街道")
    p = parse("绍兴越城区中兴中路18号")
    assert (p.city, p.district, p.road) == ("绍兴市", "越城区", "中兴中路")
    p = parse("柯桥华舍街道蜀风村")
    assert (p.province, p.city, p.district, p.street) == ("浙江省", "绍兴市", "柯桥区", "华舍街道")


def test_market_is_not_a_city() -> None:
    p = parse("杭州丝绸市场西健康路")
    assert (p.city, p.district, p.road, p.estate) == ("杭州市", None, "西健康路", "丝绸市场")
    p = parse("浙江省杭州市四季青服装市场")
    assert p.district is None and p.estate == "四季青服装市场"


def test_leading_county_level_city_is_kept() -> None:
    p = parse("平湖市经济开发区新兴二路1199号")
    assert (p.province, p.city, p.district) == ("浙江省", "嘉兴市", "平湖市")
    assert (p.road, p.house_number) == ("新兴二路", "1199号")


def test_town_rule_keeps_the_text_before_it() -> None:
    p = parse("嵊州崇仁镇崇仁路5号")
    assert (p.city, p.district, p.street, p.road) == ("绍兴市", "嵊州市", "崇仁镇", "崇仁路")
    p = parse("浙江省桃源桃源街道")  # 宁海县's 桃源街道, not a town named 桃源桃源
    assert (p.street, p.city) == ("桃源街道", "宁波市")


@pytest.mark.parametrize(
    ("text", "building", "unit", "floor", "room"),
    [
        ("科技园A90楼", "A90栋", None, None, None),
        ("科技园A90楼1205", "A90栋", None, None, "1205室"),
        ("幸福小区13-11-1413", "13栋", "11单元", None, "1413室"),
        ("幸福小区B懂302", "B栋", None, None, "302室"),
        ("幸福小区6栋602室", "6栋", None, None, "602室"),  # no floor from the room number
        ("幸福小区6栋10楼1002", "6栋", None, "10层", "1002室"),  # a written floor stays
    ],
)
def test_building_floor_room_forms(
    text: str, building: str, unit: str | None, floor: str | None, room: str | None
) -> None:
    p = parse(text)
    assert (p.estate, p.building, p.unit, p.floor, p.room) == (
        "幸福小区" if text.startswith("幸福") else "科技园", building, unit, floor, room
    )  # fmt: skip


def test_ambiguity_resolved_by_the_hierarchy() -> None:
    assert parse("吉林省长春市朝阳区").city == "长春市"
    assert parse("北京朝阳区").city == "北京市"
    p = parse("南昌西湖区")
    assert (p.province, p.city, p.district) == ("江西省", "南昌市", "西湖区")
    p = parse("朝阳区建国路88号")  # Beijing's or Changchun's: not guessed
    assert (p.district, p.city) == ("朝阳区", None)


def test_original_span_next_to_normalised_value() -> None:
    p = parse("广东中山石岐区中山路十二号翠景花园三栋２单元502")
    assert (p.province, p.spans["province"]) == ("广东省", "广东")
    assert (p.city, p.spans["city"]) == ("中山市", "中山")
    assert (p.house_number, p.spans["house_number"]) == ("12号", "十二号")
    assert (p.building, p.spans["building"]) == ("3栋", "三栋")
    assert (p.unit, p.spans["unit"]) == ("2单元", "２单元")
    assert (p.room, p.spans["room"]) == ("502室", "502")
    assert "district" not in parse("杭州市").spans  # filled from the hierarchy, not read
    assert parse("北京市海淀区").normalised == "北京市海淀区"


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


# -- accuracy on our own annotated real addresses ----------------------------------------

ANNOTATED = Path(__file__).resolve().parents[1] / "fixtures" / "addresses_cpca_annotated.csv"


def test_annotations_are_checked_against_the_source(tmp_path: Path) -> None:
    """A CSV whose rows are not the annotated addresses is refused, not scored."""
    with ANNOTATED.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 500
    fake = tmp_path / "cpca.csv"
    n = max(int(r["row"]) for r in rows)
    fake.write_text("原始地址\n" + "".join(f"某某路{i}号\n" for i in range(n)), encoding="utf-8")
    with pytest.raises(AnnotationMismatch):
        load_annotated(ANNOTATED, fake)


def test_scoring_counts_misses_and_inventions() -> None:
    gold = {"city": "杭州市", "road": "文三路", "floor": None}
    got = {"city": "杭州", "road": None, "floor": "12层"}
    report = score([(gold, got)])
    city, road, floor = (report.components[c] for c in ("city", "road", "floor"))
    assert (city.counted, city.exact, city.normalised) == (1, 0, 1)
    assert (road.counted, road.exact) == (1, 0)
    assert (floor.counted, floor.exact) == (1, 0)  # an invented floor is wrong
    assert report.components["room"].counted == 0


@pytest.mark.realdata
def test_component_accuracy_on_annotated_real_addresses(shared_data: Path) -> None:
    """≥ 0.90 of components right after normalising suffixes, ≥ 0.80 exactly, also on
    the rows not looked at while fixing the parser."""
    reports = evaluate(
        lambda t: parse(t).as_dict(), ANNOTATED, shared_data / "addresses" / "cpca_tests_addr.csv"
    )
    for name, report in reports.items():
        print(f"\n{name} ({report.addresses} addresses)\n{report.table()}")
    total = reports["all"].total
    assert reports["all"].addresses >= 500
    assert total.normalised_share >= 0.90
    assert total.exact_share >= 0.80
    assert reports["held_out"].total.normalised_share >= 0.90
    assert reports["held_out"].total.exact_share >= 0.80


def test_misspelt_estate_found_among_many() -> None:
    """Fuzzy names are scored among those sharing pieces with the query: in a vocabulary far
    above the prefilter's threshold the misspelt estate is still the one found."""
    from layers.addresses.index import PREFILTER_ABOVE, AddressIndex

    def han(n: int) -> str:
        return chr(0x4E00 + n % 6000)

    names = [
        han(i) + han(i * 7 + 1) + han(i * 13 + 2) + han(i * 29 + 3) + "花园" for i in range(900)
    ]
    assert len(names) > PREFILTER_ABOVE
    vocabulary = {
        "names": [(n, None, None, None) for n in names],
        "estate_roads": [], "admin": [], "top": [], "admin_areas": [],
    }  # fmt: skip
    index = AddressIndex(vocabulary)
    target = names[len(names) // 2]
    typo = target[0] + chr(0x9F00) + target[2:]  # a character in no name
    p = parse(f"{typo}1栋", index.gazetteer)
    found = index._resolve(p.estate, index.known_estates, index.estates_in, p)
    assert [name for name, _ in found] == [target]


def test_estate_names_compared_as_the_parser_writes_them() -> None:
    """A stored estate with a phase in Chinese numerals (莲埔府十期) is the one a query
    naming that phase finds, not the phase-less estate it starts with."""
    from layers.addresses.index import AddressIndex

    vocabulary = {
        "names": [("莲埔府", "坑冲道", None, None), ("莲埔府十期", "桂湾巷", None, None)],
        "estate_roads": [], "admin": [], "top": [], "admin_areas": [],
    }  # fmt: skip
    index = AddressIndex(vocabulary)
    for text in ("莲埔府十期4栋", "莲埔府10期4栋", "莲埔府第十期4栋"):
        p = parse(text, index.gazetteer)
        found = index._resolve(p.estate, index.known_estates, index.estates_in, p,
                               index.stored_estate)  # fmt: skip
        assert found == [("莲埔府十期", 1.0)], text


def test_control_characters_are_dropped() -> None:
    """NUL, other control characters and lone surrogates never reach a component (a
    database text cannot even hold a NUL)."""
    assert normalise_text("翠景\x00花园\x1f3栋\x7f\udc80") == "翠景花园3栋"
    assert parse("中山路\x0012号").as_dict()["road"] == "中山路"


@pytest.mark.parametrize(
    ("text", "number", "building"),
    [
        ("华景路12A号", "12A号", None),
        ("深南大道88b号3栋", "88B号", "3栋"),
        ("幸福路3A号楼", None, "3A栋"),
    ],
)
def test_house_number_with_a_letter(text: str, number: str | None, building: str | None) -> None:
    p = parse(text)
    assert (p.house_number, p.building, p.estate) == (number, building, None)
