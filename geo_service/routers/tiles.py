"""Routes of the tiles module."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
