"""Unit tests run without a database: asking for one is an error, not a silent cluster start."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    raise pytest.UsageError("unit tests have no database; move the test to tests/integration")
