"""OneMap's Python client for planners: layers as GeoDataFrames, risk runs, warnings, maps.

>>> from geo_service.client import OneMap   # doctest: +SKIP
>>> om = OneMap("http://127.0.0.1:8000")     # doctest: +SKIP
>>> om.read("buildings", bbox=(113.39, 22.46, 113.41, 22.48))  # doctest: +SKIP
"""

from geo_service.client.api import LEVELS, MAX_PAGE, OneMap
from geo_service.client.errors import (
    AuthError,
    BadRequestError,
    NotFoundError,
    OneMapError,
    RateLimitedError,
    RunFailedError,
    ServerError,
)

__all__ = [
    "LEVELS",
    "MAX_PAGE",
    "AuthError",
    "BadRequestError",
    "NotFoundError",
    "OneMap",
    "OneMapError",
    "RateLimitedError",
    "RunFailedError",
    "ServerError",
]
