"""Settings: every variable documented, production refuses the trust-auth local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_service.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"ONEMAP_{n.upper()}" for n in Settings.model_fields if f"`ONEMAP_{n.upper()}`" not in text
    ]
    assert not missing, f"README configuration table lacks {missing}"


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEMAP_PGPORT", "6000")
    monkeypatch.delenv("ONEMAP_DATABASE_URL", raising=False)
    s = Settings()
    assert s.pgport == 6000
    assert s.effective_database_url.endswith(":6000/onemap")


def test_production_refuses_local_trust_cluster() -> None:
    with pytest.raises(ValueError, match="ONEMAP_DATABASE_URL"):
        Settings(env="production", database_url=None)
    assert Settings(env="production", database_url="postgresql://u:p@db/x").env == "production"
