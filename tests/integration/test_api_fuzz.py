"""Schemathesis against /openapi.json on a live server: no 5xx, and every response's status,
content type and body are the ones the document gives for its operation."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.servers import demo_server

#: Examples per operation: bounded so the whole run stays well under a minute.
BUDGET = int(os.environ.get("ONEMAP_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzz_server(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A live server on a small demo city, and an operator key for the write operations."""
    from layers.keys import create_key

    data_dir = tmp_path_factory.mktemp("fuzz-data")
    with demo_server(pg_admin_url, template_db, "fuzz_module", data_dir, 0.2, 7) as (url, server):
        key, _ = create_key(url, "fuzz-operator", "operator")
        yield server.base_url, key


def test_openapi_fuzz(fuzz_server: tuple[str, str], tmp_path) -> None:
    """Every operation in the OpenAPI document, fuzzed anonymously; any 5xx or schema break
    fails."""
    _schemathesis(fuzz_server[0], tmp_path, "schemathesis.txt", [])


def test_openapi_fuzz_writes_as_operator(fuzz_server: tuple[str, str], tmp_path) -> None:
    """Every write operation fuzzed again with an operator key, so bodies reach the handlers
    instead of stopping at 401."""
    base_url, key = fuzz_server
    extra = ["-H", f"Authorization: Bearer {key}", "--include-method", "POST"]
    _schemathesis(base_url, tmp_path, "schemathesis-writes.txt", extra)


def _schemathesis(base_url: str, tmp_path, artifact: str, extra: list[str]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st),
            "run",
            base_url + "/openapi.json",
            *extra,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            str(BUDGET),
            "--seed",
            "20261123",
            "--request-timeout",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    (Path(__file__).parents[1] / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parents[1] / "artifacts" / artifact).write_text(result.stdout)
    assert result.returncode == 0, report
    assert "passed" in result.stdout.lower() or "no issues found" in result.stdout.lower(), report
