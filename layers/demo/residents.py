"""Residents (实有人口) of the demo city: households at the dwelling addresses.

About 2.5 persons per dwelling address (households of 1–6), ages drawn for a Pearl River
Delta district, vulnerability tags derived from age and household size plus a few random
conditions (about 15 % of residents carry at least one tag), and 2–4 responsible cadres
(包保责任人) per grid, each household assigned to one cadre of its grid.  ID numbers are
generated with a valid check character and stored only masked and hashed, like an import.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from layers.catalog import RESIDENT_TAGS
from layers.demo import names
from layers.residents import check_char, mask_id

#: Year the demo ages are counted from.
REFERENCE_YEAR = 2026
_HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5, 6])
_HOUSEHOLD_P = np.array([0.16, 0.30, 0.26, 0.18, 0.07, 0.03])
#: Residents per standard address the demo aims at (about 700,000 at scale 10).
PERSONS_PER_ADDRESS = 2.7


def make_residents(addr: pd.DataFrame, rng: np.random.Generator) -> dict[str, object]:
    """Residents columns for :func:`layers.demo.assemble.to_layer` plus ``geometry``.

    Args:
        addr: the address table (``code``, ``grid_code``, ``dwelling``, ``geometry`` in
            EPSG:4326, as built by :func:`layers.demo.city.generate_city`).
        rng: random generator.
    """
    homes = addr[addr["dwelling"].astype(bool)].reset_index(drop=True)
    # Village houses (a dwelling without a room) hold the owner's household and tenants
    # (出租屋); a flat holds one household.  Tenants bring the city to ~2.7 persons/address.
    house = homes["room"].isna().to_numpy()
    mean_size = float((_HOUSEHOLD_SIZES * _HOUSEHOLD_P).sum())
    wanted_households = PERSONS_PER_ADDRESS * len(addr) / mean_size
    extra = max(0.0, (wanted_households - len(homes)) / max(1, int(house.sum())))
    per_home = np.where(house, 1 + rng.poisson(extra, len(homes)), 1)
    home_of = np.repeat(np.arange(len(homes)), per_home)
    n_h = home_of.size
    tenant = np.arange(n_h) - np.repeat(np.cumsum(per_home) - per_home, per_home)
    size = rng.choice(_HOUSEHOLD_SIZES, size=n_h, p=_HOUSEHOLD_P)
    hh = np.repeat(np.arange(n_h), size)
    n = hh.size
    first = np.zeros(n, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    first[starts] = True
    alone = size[hh] == 1

    # Ages: an adult head of household, then a mix; lone residents are often elderly.
    age = np.where(
        first,
        rng.integers(22, 80, n),
        np.clip(rng.normal(34, 22, n), 0, 99).astype(np.int64),
    )
    age = np.where(alone & (rng.random(n) < 0.4), rng.integers(65, 95, n), age)
    birth_year = REFERENCE_YEAR - age
    female = rng.random(n) < 0.5

    tags = _tags(rng, age, alone, female)
    ids = _id_numbers(rng, birth_year, female)
    salts = rng.integers(0, 2**62, n)
    salt_hex = [f"{s:016x}" for s in salts]
    id_hash = [
        s + "$" + hashlib.sha256((s + i).encode()).hexdigest()
        for s, i in zip(salt_hex, ids, strict=True)
    ]

    grid = homes["grid_code"].to_numpy(dtype=object)[home_of]
    cadre_code, cadre_name, cadre_phone = _cadres(rng, grid)
    residence = np.where(
        tenant > 0,
        rng.choice(np.array(["租住", "寄住"]), size=n_h, p=[0.9, 0.1]),
        rng.choice(np.array(["自住", "租住", "寄住"]), size=n_h, p=[0.78, 0.18, 0.04]),
    )
    addr_code = homes["code"].to_numpy(dtype=object)[home_of]
    hh_code = np.array([f"HH{c}{t:02d}" for c, t in zip(addr_code, tenant, strict=True)])
    member = np.arange(n) - starts[hh] + 1
    return {
        "code": [f"RK{c[2:]}{m:02d}" for c, m in zip(hh_code[hh], member, strict=True)],
        "name": names.person_names(rng, n),
        "id_number": [mask_id(i) for i in ids],
        "id_hash": id_hash,
        "phone": np.where(age >= 12, names.phones(rng, n), np.array(None, dtype=object)),
        "birth_year": birth_year,
        "household_code": hh_code[hh],
        "residence_type": residence[hh],
        "tags": tags,
        "address_code": addr_code[hh],
        "grid_code": grid[hh],
        "cadre_code": cadre_code[hh],
        "cadre_name": cadre_name[hh],
        "cadre_phone": cadre_phone[hh],
        "geometry": homes["geometry"].to_numpy(dtype=object)[home_of][hh],
    }


def _tags(
    rng: np.random.Generator, age: np.ndarray, alone: np.ndarray, female: np.ndarray
) -> list[str | None]:
    n = age.size
    r = rng.random((n, 6))
    flags = {
        "独居老人": alone & (age >= 65),
        "高龄": age >= 80,
        "残疾人": r[:, 0] < 0.02,
        "低保": r[:, 1] < 0.025,
        "孕产妇": female & (age >= 22) & (age <= 40) & (r[:, 2] < 0.03),
        "婴幼儿": age <= 3,
        "精神障碍": (age >= 16) & (r[:, 3] < 0.004),
        "行动不便": ((age >= 75) & (r[:, 4] < 0.3)) | (r[:, 5] < 0.01),
    }
    assert tuple(flags) == RESIDENT_TAGS
    matrix = np.column_stack(list(flags.values()))
    out: list[str | None] = [None] * n
    for i in np.flatnonzero(matrix.any(axis=1)):
        out[i] = ",".join(t for t, on in zip(RESIDENT_TAGS, matrix[i], strict=True) if on)
    return out


def _id_numbers(rng: np.random.Generator, birth_year: np.ndarray, female: np.ndarray) -> list[str]:
    n = birth_year.size
    region = names.DISTRICT_CODE[:6]
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    seq = rng.integers(0, 500, n) * 2 + np.where(female, 0, 1)  # odd = male, even = female
    out = []
    for y, m, d, s in zip(birth_year, month, day, seq, strict=True):
        first17 = f"{region}{y:04d}{m:02d}{d:02d}{s:03d}"
        out.append(first17 + check_char(first17))
    return out


def _cadres(rng: np.random.Generator, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per household: the code, name and phone of one of its grid's 2–4 cadres."""
    grids = sorted({g for g in grid if g is not None})
    per = rng.integers(2, 5, len(grids))
    codes = [f"BB{g}{k + 1:02d}" for g, m in zip(grids, per, strict=True) for k in range(m)]
    cadre_name = dict(zip(codes, names.person_names(rng, len(codes)), strict=True))
    cadre_phone = dict(zip(codes, names.phones(rng, len(codes)), strict=True))
    offset = dict(zip(grids, np.concatenate([[0], np.cumsum(per)[:-1]]), strict=True))
    count = dict(zip(grids, per, strict=True))
    pick = rng.random(grid.size)
    chosen = np.array(
        [
            codes[int(offset[g] + int(p * count[g]))] if g is not None else None
            for g, p in zip(grid, pick, strict=True)
        ],
        dtype=object,
    )
    return (
        chosen,
        np.array([cadre_name.get(c) for c in chosen], dtype=object),
        np.array([cadre_phone.get(c) for c in chosen], dtype=object),
    )
