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

from risk_models.errors import ModelInputError, UnknownModel
from risk_models.landslide import DEFAULT_AREA_SHARES, DEFAULT_LEVEL_MATRIX
from risk_models.rainfall import IDThreshold

#: Models a pipeline can run: landslide warning, flood depth warning, CMA rainstorm signal.
MODELS: tuple[str, ...] = ("landslide", "flood", "rainstorm")
#: H3 resolutions the pipeline accepts (res 7 ≈ 5.2 km² … res 10 ≈ 0.015 km² per cell).
MIN_RES, MAX_RES = 7, 10
#: Runoff depths (mm) at which the waterlogging depth of every cell is tabulated once.
RUNOFF_LADDER_MM: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)


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

    Static (cached per DEM): ``stream_area_km2``, ``relief_window_m``,
    ``density_bandwidth_m`` (kernel of the hazard-site density), ``method`` (``"ensemble"`` of
    frequency ratio + logistic regression, or ``"fr"`` alone), ``n_bins``, ``alpha`` (Laplace
    smoothing), ``area_shares`` (susceptibility classes by area), ``bbox`` (W, S, E, N degrees
    EPSG:4326: only this part of the DEM), ``window_rows`` (raster window height for H3
    assignment).

    Nowcast: ``matrix`` (4×4 susceptibility × rain class → level 0–4), ``threshold``
    (I–D curve ``{"a_mm_h", "b", "multiples"}``, default Caine 1980), ``antecedent_k``,
    ``antecedent_wet_mm`` (Re at which a non-zero rain class goes up by one), ``fs`` (infinite
    slope parameters), flood: ``curve_number``, ``ia_ratio``, ``stage_m`` (given river stage
    above the bank, else from a Manning rating curve of the main river: ``channel_width_m``,
    ``bed_slope``, ``manning_n``, ``bankfull_rain_mm_h``, ``runoff_coefficient``),
    ``depth_thresholds_m``.
    """

    stream_area_km2: float = 1.0
    relief_window_m: float = 300.0
    density_bandwidth_m: float = 150.0
    method: str = "ensemble"
    n_bins: int = 5
    alpha: float = 1.0
    area_shares: tuple[float, ...] = DEFAULT_AREA_SHARES
    bbox: tuple[float, float, float, float] | None = None
    window_rows: int = 512
    matrix: tuple[tuple[int, ...], ...] = DEFAULT_LEVEL_MATRIX
    threshold: dict[str, Any] = field(default_factory=dict)
    antecedent_k: float = 0.8
    antecedent_wet_mm: float = 100.0
    fs: dict[str, float] = field(default_factory=dict)
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
        "bbox",
        "window_rows",
        "curve_number",
        "ia_ratio",
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
        if len(shares) != 4 or min(shares) <= 0 or not math.isclose(sum(shares), 1.0):
            raise ModelInputError("area_shares must be 4 positive numbers summing to 1")
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
        self.id_threshold()  # checks the threshold dict
        unknown_fs = set(self.fs) - {
            "cohesion_kpa",
            "friction_deg",
            "unit_weight_kn_m3",
            "depth_m",
            "water_unit_weight_kn_m3",
        }
        if unknown_fs:
            raise ModelInputError(f"unknown fs parameter(s): {', '.join(sorted(unknown_fs))}")

    def id_threshold(self) -> IDThreshold:
        """The rainfall intensity–duration threshold of these parameters."""
        t = dict(self.threshold)
        bad = set(t) - {"a_mm_h", "b", "multiples"}
        if bad:
            raise ModelInputError(f"unknown threshold key(s): {', '.join(sorted(bad))}")
        try:
            a = float(t.get("a_mm_h", 14.82))
            b = float(t.get("b", 0.39))
            mult = tuple(float(v) for v in t.get("multiples", (1.0, 2.0, 3.0)))
        except (TypeError, ValueError) as exc:
            raise ModelInputError(f"threshold: {exc}") from None
        if a <= 0 or len(mult) != 3 or any(y <= x for x, y in zip(mult, mult[1:], strict=False)):
            raise ModelInputError("threshold needs a_mm_h > 0 and 3 ascending multiples")
        return IDThreshold(a_mm_h=a, b=b, multiples=(mult[0], mult[1], mult[2]))

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
        if name in ("n_bins", "window_rows"):
            if isinstance(value, bool) or int(value) != value:
                raise ValueError("an integer is needed")
            return int(value)
        if name == "threshold":
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
        if name in ("area_shares", "depth_thresholds_m"):
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
