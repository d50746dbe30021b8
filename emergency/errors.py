"""Exceptions of the emergency workflow (mapped to HTTP in geo_service/errors.py)."""

from __future__ import annotations

from typing import Any

from layers.errors import LayersError


class EmergencyError(LayersError):
    """Base class of the workflow's errors."""


class InvalidInput(EmergencyError):
    """A request that is malformed for the workflow (400)."""


class InvalidLevel(InvalidInput):
    """A warning level that is not blue/yellow/orange/red."""


class InvalidReadings(EmergencyError):
    """A batch of readings with at least one bad reading; nothing was stored (422).

    Attributes:
        errors: one ``{"index", "sensor_code", "reason"}`` per refused reading.
    """

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        first = errors[0] if errors else {}
        super().__init__(
            f"{len(errors)} reading(s) refused, nothing stored; first: reading "
            f"{first.get('index')} ({first.get('sensor_code')}): {first.get('reason')}"
        )


class RunNotFound(EmergencyError, LookupError):
    """A risk run id that does not exist (404)."""


class CellNotFound(EmergencyError, LookupError):
    """An H3 cell that is not in the run asked for (404)."""


class TooManyRuns(EmergencyError):
    """More risk runs are pending or running than ``ONEMAP_RISK_MAX_ACTIVE_RUNS`` allows (429)."""


class RunNotReady(EmergencyError):
    """A risk run that has not finished successfully (409)."""


class NothingToVerify(EmergencyError):
    """No reported incident of the run's hazard in its time window (409)."""


class NothingToWarn(EmergencyError):
    """A run with no cell at or above the requested level (409)."""


class WarningNotFound(EmergencyError):
    """A warning code that does not exist (404)."""


class WarningNotActive(EmergencyError):
    """Lifting a warning that is already lifted or expired (409)."""


class IncidentNotFound(EmergencyError):
    """An incident code that does not exist (404)."""


class GridNotFound(EmergencyError):
    """A grid code that does not exist (404)."""


class RecipientNotFound(WarningNotFound):
    """A cadre or grid-worker code the warning was not sent to (404)."""


class ResidentNotInWarning(WarningNotFound):
    """A resident code that is not a vulnerable resident inside the warning (404)."""


class SubscriptionNotFound(EmergencyError, LookupError):
    """A push subscription id that does not exist (404)."""


class StepRefused(EmergencyError):
    """A step of an incident its stage does not allow, or a role that may not take it (409)."""


class DepartmentNotFound(EmergencyError, LookupError):
    """A department code that does not exist (404)."""


class PhotoNotFound(EmergencyError, LookupError):
    """An incident photo number that does not exist (404)."""


class PhotoRejected(InvalidInput):
    """A photo that is not a whole JPEG, PNG or HEIC image (400)."""


class PhotoTooLarge(InvalidInput):
    """A photo over the size limit, or more photos than allowed (413)."""
