"""The packages' dependency rule: geo_service → emergency, tiles → layers, risk_models."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: package → top-level modules it must never import
FORBIDDEN = {
    "emergency": {"fastapi", "starlette", "geo_service", "tiles"},
    "layers": {"fastapi", "starlette", "geo_service", "emergency", "tiles"},
    "risk_models": {"fastapi", "starlette", "geo_service", "emergency", "tiles"},
    "tiles": {"fastapi", "starlette", "geo_service", "emergency"},
}


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_imported_roots_sees_both_import_forms(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import fastapi.routing\nfrom geo_service.app import x\nfrom . import y\n")
    assert imported_roots(f) == {"fastapi", "geo_service"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_the_dependency_rule(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no module in {package}/"
    bad = {str(f.relative_to(REPO)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_old_homes_are_gone() -> None:
    assert not (REPO / "layers" / "emergency").exists()
    assert not (REPO / "geo_service" / "risk_runs.py").exists()
    assert (REPO / "geo_service" / "cli" / "__init__.py").exists()
