"""Risk models: terrain, raster to H3, rainfall metrics, landslide and flood models.

Pure domain code: NumPy/rasterio/pyflwdir/h3 in, arrays, DataFrames and COG files out.
No FastAPI and no ``geo_service`` imports; errors are the classes in :mod:`risk_models.errors`.
"""

from risk_models.errors import (
    DemError,
    EmptyAreaError,
    ModelInputError,
    RasterError,
    RiskModelError,
    ScenarioError,
    UnknownModel,
)

__all__ = [
    "DemError",
    "EmptyAreaError",
    "ModelInputError",
    "RasterError",
    "RiskModelError",
    "ScenarioError",
    "UnknownModel",
]
