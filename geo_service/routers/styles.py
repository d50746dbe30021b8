"""Routes of the styles module."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
