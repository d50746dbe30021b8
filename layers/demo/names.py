"""Hand-written Chinese name pools for the demo city (no downloads).

Every generator takes a :class:`numpy.random.Generator` and is deterministic.
Place names are Pearl-River-Delta flavoured (涌, 坑, 岐, 滘 …); personal
names follow common Cantonese surnames.  Phone numbers are random and fake.
"""

from __future__ import annotations

import itertools

import numpy as np

PROVINCE = "广东省"
CITY = "中山市"
DISTRICT = "石岐区"
DISTRICT_CODE = "442000001"

#: Two-character place names (communities, roads, estates, schools …).
PLACES = (
    "悦来 孙文 民族 凤鸣 西山 湖滨 莲峰 员峰 太平 仁厚 岐江 张溪 南下 库充 长洲 沙涌 翠景 濠头 "
    "槎桥 宏基 紫马 竹苑 白沙 亨尾 厚兴 起湾 松苑 银通 康华 富华 兴中 博爱 东明 莲塘 青溪 龙凤 "
    "雍陌 永厚 安栏 大岭 长江 兴文 华柏 月山 金钟 龙塘 马岭 石鼓 桂南 南桥 城桂 槟榔 平顶 北台 "
    "五桂 翠山 石莹 东林 南朗 横门 左步 崖口 茶东 冲口 濠涌 泮沙 西江 白石 涌口 旗山 岐关 大涌 "
    "岚田 兰溪 叠石 石门 卓旗 石岗 沙岗 东岸 西岸 南溪 北溪 榄边 麻子 茶园 石莲 田心 水塘 竹秀 "
    "古鹤 隆都 象角 圣狮 申明 豪吐 云汉 涌头 新围 大兴 岗背 龙头 沙溪 乌石 桥头 福涌 渡头 蓬莱 "
    "安堂 横栏 六坊 白企 板芙 深湾 里溪 禾丰 金钩 四围 大石 荔枝 榕树 花果 青岗 南蓢 环城 石厦"
).split()
_PLACE_A = "东西南北上下新旧大小龙凤金银石沙竹松桂莲荔榕梅兰岐涌岗塘坑湾洲围田溪山".replace(
    "", " "
).split()
_PLACE_B = "头尾边口岗塘坑湾洲围田溪山岭岭湖桥村园坊冲滘涌岐林岸坪埔基墩".replace("", " ").split()

SURNAMES = (
    "陈 李 黄 梁 林 何 张 吴 刘 郑 杨 冯 罗 谭 麦 叶 周 邓 余 曾 蔡 彭 郭 许 卢 苏 钟 萧 潘 朱 "
    "王 胡 欧阳 司徒 区 甘 关 古 简 容 莫 伍 严 方 孙 马 高 谢 韩 杜 袁 温 阮 岑 植 缪 龚"
).split()
_SURNAME_W = np.array([10, 8, 8, 7, 6, 5, 5, 5, 5, 4, 4, 3, 3, 3, 3] + [1.5] * 15 + [1.0] * 27)
GIVEN = (
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玲 燕 辉 婷 健 俊 "
    "志 文 浩 嘉 欣 颖 诗 淑 慧 锦 荣 昌 添 炳 棠 耀 坤 展 翠 凤 兰 卓 宇 晓 思 雅 琪 宏 德 永 "
    "国 建 家 梓 子 晴 泽 铭 梅 海 林 峰 斌 彬 振 达 少 冠 颂 润 焕 容 佩 碧 婉 咏 穗 粤 岐 乐"
).split()
_PHONE_PREFIX = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "177 180 181 182 183 186 187 188 189 199"
).split()

RIVER_NAMES = (
    "石岐河 横河 岐江 长江河 沙溪涌 濠头涌 张溪涌 莲塘涌 大涌 白石涌 库充涌 员峰涌 槎桥涌 "
    "麻子涌 狮滘河 田心涌 亨尾涌 西河 东河 逸仙河 五桂溪 龙塘坑 石门坑 长坑 大坑水 马岭坑"
).split()
URBAN_STREETS = (
    "石岐街道 东区街道 西区街道 南区街道 北区街道 岐江街道 悦来街道 湖滨街道 莲峰街道 兴中街道 "
    "康华街道 孙文街道"
).split()
RURAL_TOWNS = (
    "五桂山镇 沙溪镇 大涌镇 南朗镇 三乡镇 港口镇 横门镇 翠亨镇 板芙镇 神湾镇 坦洲镇 古鹤镇".split()
)
ESTATE_PREFIX = (
    "翠景 锦绣 富华 金域 碧水 雅居 名都 星汇 御景 君悦 华府 海伦 时代 香榭 怡景 康乐 嘉华 丽都 "
    "盈悦 逸翠 凯茵 汇景 泰安 荔景 兰亭 水岸 榕园 桂园 玉兰 紫荆 锦华 华庭 明珠 金桂 东方 丽景 "
    "天悦 御峰 宏达 聚豪 岐江 湖滨 翠湖 金湾 怡华 福临 瑞景 万豪 华观 悦港 博雅 颐和 半山 山水"
).split()
ESTATE_SUFFIX = "花园 华庭 苑 名苑 新村 雅苑 豪庭 公馆 小区 家园 府 花城".split()
TOWER_SUFFIX = "大厦 广场 商务中心 大楼 商厦".split()
BRANDS = (
    "好运 佳宜 福满 永安 金利 百合 利民 顺心 鸿运 旺角 新意 合兴 德信 安心 美佳 华润 友谊 "
    "恒通 和记 大发 万家 乐活 品味 惠民 同福 泰和 兴隆 长青 阿强 老陈 发记 成记 荣记 添记"
).split()


def _shuffled(rng: np.random.Generator, items: list[str]) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def unique_places(rng: np.random.Generator, n: int, taken: set[str] | None = None) -> list[str]:
    """``n`` distinct two-character place names (hand-written first, then combinations)."""
    taken = set() if taken is None else taken
    if n <= 0:
        return []
    combos = [a + b for a, b in itertools.product(_PLACE_A, _PLACE_B) if a != b]
    out: list[str] = []
    for name in itertools.chain(_shuffled(rng, list(PLACES)), _shuffled(rng, combos)):
        if name not in taken:
            taken.add(name)
            out.append(name)
            if len(out) == n:
                return out
    longer = itertools.chain(
        (a + b for a, b in itertools.product(PLACES, _PLACE_B)),  # three characters
        (a + b for a, b in itertools.product(PLACES, combos)),  # four (very large cities)
    )
    for name in longer:
        if name not in taken:
            taken.add(name)
            out.append(name)
            if len(out) == n:
                return out
    raise ValueError(f"cannot make {n} distinct place names")


def river_names(rng: np.random.Generator, n: int) -> list[str]:
    """River names: 石岐河 and 横河 first (the two largest), then pooled ones."""
    fixed = list(RIVER_NAMES[:2])
    rest = _shuffled(rng, list(RIVER_NAMES[2:]))
    taken = set(RIVER_NAMES)
    extra = [p + rng.choice(["涌", "坑", "溪", "河", "水"]) for p in unique_places(rng, n, taken)]
    return (fixed + rest + extra)[:n]


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` personal names (surname + 1–2 given characters)."""
    sur = rng.choice(np.array(SURNAMES), size=n, p=_SURNAME_W / _SURNAME_W.sum())
    g = rng.choice(np.array(GIVEN), size=(n, 2))
    two = rng.random(n) < 0.7
    return np.array(
        [s + a + (b if t else "") for s, a, b, t in zip(sur, g[:, 0], g[:, 1], two, strict=True)]
    )


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` fake mobile numbers formatted ``1xx xxxx xxxx``."""
    pre = rng.choice(np.array(_PHONE_PREFIX), size=n)
    a = rng.integers(0, 10000, n)
    b = rng.integers(0, 10000, n)
    return np.array([f"{p} {x:04d} {y:04d}" for p, x, y in zip(pre, a, b, strict=True)])


def contacts(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` fake contact strings ``"姓名 1xx xxxx xxxx"``."""
    return np.array([f"{a} {b}" for a, b in zip(person_names(rng, n), phones(rng, n), strict=True)])


_ROAD_SUFFIX = {
    "primary": ["大道", "公路", "大道", "路"],
    "secondary": ["路", "大道", "东路", "西路", "南路", "北路"],
    "tertiary": ["路", "道", "街", "路"],
    "residential": ["街", "巷", "里", "横街", "一巷", "二巷", "新街"],
}


def road_names(rng: np.random.Generator, classes: list[str]) -> list[str]:
    """A distinct name per road, suffixed according to its class."""
    fixed = {"primary": ["中山大道", "岐关公路", "兴中道", "博爱路"], "secondary": ["中山路"]}
    places = unique_places(rng, len(classes) + 8)
    taken: set[str] = set()
    out = []
    for i, cls in enumerate(classes):
        if fixed.get(cls):
            name = fixed[cls].pop(0)
        else:
            name = places[i] + str(rng.choice(_ROAD_SUFFIX[cls]))
        while name in taken:
            name = places[int(rng.integers(len(places)))] + str(rng.choice(_ROAD_SUFFIX[cls]))
        taken.add(name)
        out.append(name)
    return out


def estate_names(rng: np.random.Generator, n: int, tower: np.ndarray) -> list[str]:
    """Distinct estate names; ``tower[i]`` selects 大厦/广场 style over 花园/苑 style."""
    prefixes = list(ESTATE_PREFIX) + unique_places(rng, min(n // 4 + 50, 1200), set(ESTATE_PREFIX))
    pools = {
        False: _shuffled(rng, [p + q for p in prefixes for q in ESTATE_SUFFIX]),
        True: _shuffled(rng, [p + q for p in prefixes for q in TOWER_SUFFIX]),
    }
    used = {False: 0, True: 0}
    out = []
    for t in np.asarray(tower, dtype=bool):
        pool, k = pools[bool(t)], used[bool(t)]
        phase = k // len(pool)  # only for huge counts: 二期, 三期 …
        name = pool[k % len(pool)] + (f"{chinese_numeral(phase + 1)}期" if phase else "")
        used[bool(t)] = k + 1
        out.append(name)
    return out


def chinese_numeral(n: int) -> str:
    """Small integers (1..99) as Chinese numerals, e.g. 12 → 十二."""
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + ("" if ones == 0 else digits[ones])
