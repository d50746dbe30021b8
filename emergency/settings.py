"""What the workflow needs to know of the service's settings (a structural type, so
``geo_service.settings.Settings`` or any object with these attributes will do)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Protocol

#: The repository (its ``data/scenarios`` holds the bundled rain scenarios).
REPO_ROOT = Path(__file__).resolve().parent.parent

try:
    CODE_VERSION = metadata.version("onemap")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    CODE_VERSION = "0+unknown"


class RunSettings(Protocol):
    """Settings a risk run reads: where data lives, how many runs may be active and how many
    one key may start an hour."""

    @property
    def data_dir(self) -> Path | str: ...

    @property
    def risk_max_active_runs(self) -> int: ...

    @property
    def risk_runs_per_key_per_hour(self) -> int: ...
