"""Parameters of a risk pipeline run, checked once from a plain dict (JSON body, CLI, notebook).

Every key is optional; an unknown key or a value out of range raises
:class:`~risk_models.errors.ModelInputError` naming the key, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from risk_models.calibration import RainModel
from risk_models.errors import ModelInputError, UnknownModel
from risk_models.landslide import DEFAULT_LEVEL_MATRIX, DEFAULT_RATIO_CUTS

#: Models a pipeline can run: landslide warning, flood depth warning, CMA rainstorm signal.
MODELS: tuple[str, ...] = ("landslide", "flood", "rainstorm")
#: H3 resolutions the pipeline accepts (res 7 ≈ 5.2 km² … res 10 ≈ 0.015 km² per cell).
MIN_RES, MAX_RES = 7, 10
#: Runoff depths (mm) at which the waterlogging depth of every cell is tabulated once.
RUNOFF_LADDER_MM: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)


#: Rain classes 1..3: P(N ≥ k incidents in the territory that day | rain) ≥ 0.25 for
#: k = 3, 10, 50, logistic curves on ln(1 + R24), the day before R_prev and Re2 (Σ 0.8ⁱ·Rᵢ
#: over the nine days before that), fitted on the Hong Kong record 1984–2001 (6,575 days,
#: 5,632 incidents of all types; HKO HQ daily rain; slopes ≥ 0; :mod:`risk_models.calibration`).
#: This two-day form was chosen over the one-day form (R24 and Re only) and the R48 forms on
#: an inner split (fit 1984–1995, log loss on 1996–2001). Class-2 threshold on R24 after a dry
#: fortnight: 180 mm; after a 100 mm day: 69 mm. Tested on 2002–2007: 10 of the 16 days with
#: ≥ 10 incidents reach class 2, with 2.2 false-alarm days a year. Refit with ``onemap risk
#: calibrate-rain --incidents … --rain … --fit-to 2001`` and pass its ``rain_model`` in
#: ``--params`` (a model without ``form`` is the one-day form).
DEFAULT_RAIN_MODEL: dict[str, Any] = {
    "form": "r24_prev_re2",
    "classes": [
        {
            "k": 3,
            "p": 0.25,
            "intercept": -6.1424,
            "coef_ln_r24": 1.0087,
            "coef_re_per_100mm": 1.6908,
            "coef_prev_per_100mm": 2.0337,
        },
        {
            "k": 10,
            "p": 0.25,
            "intercept": -12.4588,
            "coef_ln_r24": 2.186,
            "coef_re_per_100mm": 1.0418,
            "coef_prev_per_100mm": 2.0742,
        },
        {
            "k": 50,
            "p": 0.25,
            "intercept": -22.2753,
            "coef_ln_r24": 3.8858,
            "coef_re_per_100mm": 0.0,
            "coef_prev_per_100mm": 2.1459,
        },
    ],
    # where the antecedent rain is unknown (NaN): R24 alone, fitted on the same days. Class
    # 2 from 93 mm in a day (a dry fortnight read as known would need 180 mm); on 2002–2007
    # 11 of the 16 landslide days, 2.5 false-alarm days a year (read as dry: 4 of 16).
    "classes_no_antecedent": [
        {"k": 3, "p": 0.25, "intercept": -5.0567, "coef_ln_r24": 1.0806},
        {"k": 10, "p": 0.25, "intercept": -10.6066, "coef_ln_r24": 2.0913},
        {"k": 50, "p": 0.25, "intercept": -18.4175, "coef_ln_r24": 3.3686},
    ],
}


def check_model(model: str) -> str:
    """``model`` if it is one of :data:`MODELS`, else :class:`UnknownModel`."""
    if model not in MODELS:
        raise UnknownModel(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    return model


def check_res(res: int) -> int:
    """``res`` if it is an H3 resolution the pipeline accepts (7–10)."""
    if not isinstance(res, int) or isinstance(res, bool) or not MIN_RES <= res <= MAX_RES:
        raise ModelInputError(f"res must be an H3 resolution {MIN_RES}..{MAX_RES}, got {res!r}")
    return res


@dataclass(frozen=True)
class PipelineParams:
    """Knobs of the static build and the nowcast (units in the names).

    Static (cached per DEM): ``nodata`` (extra DEM no-data value, e.g. 0 for a sea stored as
    0), ``stream_area_km2``, ``relief_window_m``, ``density_bandwidth_m`` (kernel of the
    hazard-site density), ``method`` (``"ensemble"`` of frequency ratio + logistic
    regression, or ``"fr"`` alone), ``n_bins``, ``alpha`` (Laplace smoothing),
    ``calibration_folds`` (held-out folds of the inventory for the density-ratio
    calibration), ``ratio_cuts`` (density ratios at which moderate/high/very high start),
    ``high_land_share_max`` (the land budget of classes high and very high: their score cut is
    raised, at fit time, until they cover at most this share of the fitted area; None: no
    budget),
    ``slope_floor_deg`` (cells flatter than this get no landslide level), ``area_shares``
    (None; set it for classes by area quantiles instead of ratios), ``bbox`` (W, S, E, N
    degrees EPSG:4326: only this part of the DEM), ``window_rows`` (raster window height for
    H3 assignment).

    Nowcast: ``matrix`` (4×4 susceptibility × rain class → level 0–4), ``rain_model`` (the
    calibrated rain classes: ``form`` and three class curves, :data:`DEFAULT_RAIN_MODEL`),
    ``antecedent_k``, ``fs`` (infinite
    slope parameters), flood: ``curve_number``, ``ia_ratio``, ``stage_m`` (given river stage
    above the bank, else from a Manning rating curve of the main river: ``channel_width_m``,
    ``bed_slope``, ``manning_n``, ``bankfull_rain_mm_h``, ``runoff_coefficient``),
    ``depth_thresholds_m``.
    """

    stream_area_km2: float = 1.0
    relief_window_m: float = 300.0
    # kernel of the known-site density: 400 m hindcast Hong Kong storms 1992–2005 better
    # than 150 m or 700 m (docs/warnings.md)
    density_bandwidth_m: float = 400.0
    method: str = "ensemble"
    n_bins: int = 5
    alpha: float = 1.0
    calibration_folds: int = 5
    ratio_cuts: tuple[float, ...] = DEFAULT_RATIO_CUTS
    # With the level matrix, yellow needs class high: this budget keeps a storm that reaches
    # rain class 2 everywhere within 20 % of the land at ≥ yellow (a fit on the whole Hong Kong
    # record 1984–2007 put 21 % of the land at ≥ high by the ratio cut alone).
    high_land_share_max: float | None = 0.20
    # Landslides are rare on gentle ground (landslide density on Lantau rises from almost
    # nothing on gentle slopes, Dai & Lee 2002, Geomorphology 42). Measured: 22.4 % of Hong
    # Kong's res-9 land cells have a mean slope < 5° on the 70 m DTM and hold 6.3 % of the
    # 6,750 incidents 1984–2007 (6.0 % of the natural-hillside ones).
    slope_floor_deg: float = 5.0
    area_shares: tuple[float, ...] | None = None
    nodata: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    window_rows: int = 512
    matrix: tuple[tuple[int, ...], ...] = DEFAULT_LEVEL_MATRIX
    rain_model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RAIN_MODEL))
    antecedent_k: float = 0.8
    fs: dict[str, float] = field(default_factory=dict)
    # deeper closed depressions are DEM artefacts, not waterlogging spots (flood.py)
    pond_max_depth_m: float = 3.0
    # a cell's flood level is the depth reached on at least this share of its area
    flood_cell_share: float = 0.25
    curve_number: float = 85.0
    ia_ratio: float = 0.05
    stage_m: float | None = None
    channel_width_m: float = 80.0
    bed_slope: float = 0.001
    manning_n: float = 0.035
    bankfull_rain_mm_h: float = 10.0
    runoff_coefficient: float = 0.5
    depth_thresholds_m: tuple[float, ...] = (0.15, 0.3, 0.5, 1.0)

    #: keys that change the cached static table
    STATIC_KEYS = (
        "stream_area_km2",
        "relief_window_m",
        "density_bandwidth_m",
        "method",
        "n_bins",
        "alpha",
        "area_shares",
        "calibration_folds",
        "ratio_cuts",
        "high_land_share_max",
        "slope_floor_deg",
        "nodata",
        "bbox",
        "window_rows",
        "curve_number",
        "ia_ratio",
        "pond_max_depth_m",
        "flood_cell_share",
    )

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | None) -> PipelineParams:
        """Check and convert a dict of parameters (unknown keys are refused)."""
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ModelInputError(
                f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kw: dict[str, Any] = {}
        for name, value in params.items():
            kw[name] = _convert(name, value)
        out = cls(**kw)
        out._check()
        return out

    def _check(self) -> None:
        positive = (
            "stream_area_km2",
            "relief_window_m",
            "density_bandwidth_m",
            "alpha",
            "channel_width_m",
            "bed_slope",
            "manning_n",
            "pond_max_depth_m",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ModelInputError(f"{name} must be > 0")
        if self.method not in ("ensemble", "fr"):
            raise ModelInputError("method must be 'ensemble' or 'fr'")
        if not 2 <= self.n_bins <= 50:
            raise ModelInputError("n_bins must be 2..50")
        if self.window_rows < 16:
            raise ModelInputError("window_rows must be ≥ 16")
        shares = self.area_shares
        if shares is not None and (
            len(shares) != 4 or min(shares) <= 0 or not math.isclose(sum(shares), 1.0)
        ):
            raise ModelInputError("area_shares must be 4 positive numbers summing to 1")
        rc = self.ratio_cuts
        if len(rc) != 3 or rc[0] <= 0 or any(b <= a for a, b in zip(rc, rc[1:], strict=False)):
            raise ModelInputError("ratio_cuts must be 3 ascending numbers > 0")
        budget = self.high_land_share_max
        if budget is not None and not 0 < budget <= 1:
            raise ModelInputError("high_land_share_max must be in (0, 1] or null")
        if not 0 <= self.slope_floor_deg < 90:
            raise ModelInputError("slope_floor_deg must be in [0, 90)")
        if not 0 < self.flood_cell_share < 1:
            raise ModelInputError("flood_cell_share must be in (0, 1)")
        if not 0 <= self.calibration_folds <= 20:
            raise ModelInputError("calibration_folds must be 0..20")
        m = self.matrix
        if len(m) != 4 or any(len(r) != 4 for r in m) or any(not 0 <= v <= 4 for r in m for v in r):
            raise ModelInputError("matrix must be 4×4 with levels 0..4")
        if not 0 < self.antecedent_k <= 1:
            raise ModelInputError("antecedent_k must be in (0, 1]")
        if not 0 < self.curve_number <= 100:
            raise ModelInputError("curve_number must be in (0, 100]")
        if not 0 <= self.ia_ratio <= 1 or not 0 < self.runoff_coefficient <= 1:
            raise ModelInputError("ia_ratio must be in [0, 1] and runoff_coefficient in (0, 1]")
        if self.stage_m is not None and self.stage_m < 0:
            raise ModelInputError("stage_m must be ≥ 0")
        if self.bankfull_rain_mm_h < 0:
            raise ModelInputError("bankfull_rain_mm_h must be ≥ 0")
        t = self.depth_thresholds_m
        if len(t) != 4 or any(b <= a for a, b in zip(t, t[1:], strict=False)) or t[0] <= 0:
            raise ModelInputError("depth_thresholds_m must be 4 ascending depths > 0")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
                raise ModelInputError("bbox must be [west, south, east, north] in degrees")
        self.rain()  # checks the rain model
        unknown_fs = set(self.fs) - {
            "cohesion_kpa",
            "friction_deg",
            "unit_weight_kn_m3",
            "depth_m",
            "water_unit_weight_kn_m3",
        }
        if unknown_fs:
            raise ModelInputError(f"unknown fs parameter(s): {', '.join(sorted(unknown_fs))}")

    def rain(self) -> RainModel:
        """The calibrated rain-class model of these parameters."""
        return RainModel.from_params(self.rain_model)

    def static_part(self) -> dict[str, Any]:
        """The parameters that shape the static table (for cache keys)."""
        d = asdict(self)
        return {k: d[k] for k in self.STATIC_KEYS}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples as lists)."""
        return asdict(self)


def _convert(name: str, value: Any) -> Any:
    """Coerce one JSON value to the field's type, with a clear error."""
    try:
        if name in ("method",):
            return str(value)
        if name in ("n_bins", "window_rows", "calibration_folds"):
            if isinstance(value, bool) or int(value) != value:
                raise ValueError("an integer is needed")
            return int(value)
        if name == "rain_model":
            if not isinstance(value, Mapping):
                raise ValueError("an object is needed")
            return {str(k): v for k, v in value.items()}
        if name == "fs":
            if not isinstance(value, Mapping):
                raise ValueError("an object is needed")
            out_fs = {str(k): float(v) for k, v in value.items()}
            if not all(math.isfinite(v) and v > 0 for v in out_fs.values()):
                raise ValueError("fs values must be positive numbers")
            return out_fs
        if name == "matrix":
            return tuple(tuple(int(v) for v in row) for row in value)
        if name in ("area_shares", "nodata", "high_land_share_max") and value is None:
            return None
        if name in ("area_shares", "depth_thresholds_m", "ratio_cuts"):
            return tuple(float(v) for v in value)
        if name == "bbox":
            if value is None:
                return None
            vals = tuple(float(v) for v in value)
            if len(vals) != 4:
                raise ValueError("4 numbers are needed")
            return vals
        if name == "stage_m" and value is None:
            return None
        out = float(value)
        if not math.isfinite(out):
            raise ValueError("a finite number is needed")
        return out
    except (TypeError, ValueError) as exc:
        raise ModelInputError(f"parameter {name}: {exc}") from None
