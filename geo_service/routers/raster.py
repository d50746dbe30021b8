"""Routes of the raster module."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
