"""Exceptions of the ``risk_models`` package (mapped to HTTP only in ``geo_service``)."""

from __future__ import annotations


class RiskModelError(Exception):
    """Base class of every error raised by ``risk_models``."""


class DemError(RiskModelError):
    """A DEM cannot be used: no CRS, all no-data, or heights outside a plausible range."""


class RasterError(RiskModelError):
    """A raster or array argument has the wrong shape, CRS or content."""


class ScenarioError(RiskModelError):
    """A rainfall scenario file or series is malformed."""


class ModelInputError(RiskModelError):
    """Model inputs are inconsistent (shapes, empty training set, bad parameters)."""


class UnknownModel(ModelInputError):
    """A model name that the pipeline does not know."""


class EmptyAreaError(ModelInputError):
    """The requested area holds no valid DEM pixel or no H3 cell."""


class SchedulerUnavailable(RiskModelError):
    """The Dask scheduler cannot be reached."""


class DistributedRunFailed(RiskModelError):
    """A run on Dask could not finish: no worker answered in time, or data it needs is gone
    and could not be sent again."""
