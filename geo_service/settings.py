"""Service settings, read from ``ONEMAP_*`` environment variables.

Grouped by concern through the field-name prefix (``database_…``, ``pg…``,
``tiles_…``, ``risk_…``), so ``ONEMAP_DATABASE_URL`` sets ``database_url``.
Nothing here is built at import time: call :func:`get_settings` (or build
``Settings(...)`` explicitly, as the tests do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """The configuration is not usable (e.g. a default secret in production)."""


class Settings(BaseSettings):
    """Every knob of OneMap; the README's configuration table lists them all."""

    model_config = SettingsConfigDict(env_prefix="ONEMAP_", extra="ignore")

    # --- general -------------------------------------------------------------
    env: Literal["development", "test", "production"] = Field(
        "development", description="Deployment mode; production refuses unsafe defaults."
    )
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_json: bool = Field(True, description="Log one JSON object per line (else plain text).")
    data_dir: Path = Field(
        REPO_ROOT / "data",
        description="Where generated demo data, COGs and scenarios live.",
    )

    # --- security ------------------------------------------------------------
    anonymous_role: Literal["anonymous", "viewer"] = Field(
        "viewer",
        description="Role of callers without an API key (never one that may write).",
    )

    max_body_mb: float = Field(16.0, description="Refuse request bodies larger than this (413).")
    rate_limit_per_min: int = Field(
        6000, description="Requests per minute per API key and worker (0 = off)."
    )
    rate_limit_burst: int = Field(600, description="Requests a caller may burst above the rate.")
    rate_limit_anonymous_per_min: int = Field(
        0,
        ge=0,
        description="Requests per minute per client address of callers without a key, per "
        "worker (0 = off; the burst is ONEMAP_RATE_LIMIT_BURST).",
    )
    public_url: str | None = Field(
        None,
        description="The service's public address (https://map.example.cn/onemap): every "
        "absolute URL the service writes starts with it, whatever the Host header says.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Host header values accepted (JSON list; '*.example.cn' wildcards); other "
        "hosts get 400. The default '*' accepts any, for local use.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='Addresses or networks (JSON list, e.g. ["10.0.0.0/8"]) of reverse proxies '
        "whose X-Forwarded-For is believed; from anyone else the peer address is the client.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (JSON list); '*' refused "
        "in production.",
    )

    # --- tiles -------------------------------------------------------------------
    tiles_cache_mb: float = Field(
        64.0, ge=0, description="Bound of each worker's in-process tile cache, MB (0 = off)."
    )

    # --- risk models -------------------------------------------------------------
    risk_max_active_runs: int = Field(
        4,
        ge=1,
        description="Risk runs that may be pending or running at once (more → 429).",
    )
    risk_runs_per_key_per_hour: int = Field(
        60,
        ge=0,
        description="Risk runs one API key (below admin) may start per hour; more → 429 "
        "(0 = no quota).",
    )
    risk_runs_keep_days: float = Field(
        30.0,
        ge=0,
        description="Finished risk runs older than this are pruned with their cells (runs a "
        "warning was issued from and the latest run of each model are kept; 0 = keep all).",
    )
    events_keep_days: float = Field(
        7.0, ge=0, description="Live events older than this are pruned (0 = keep all)."
    )

    # --- field work ---------------------------------------------------------------
    incident_max_photos: int = Field(
        3, ge=0, le=20, description="Photos one incident report may carry."
    )
    photo_max_mb: float = Field(
        5.0, gt=0, description="Largest photo accepted (MB); the body limit still applies."
    )

    # --- CAP messages and their push ------------------------------------------
    cap_sender_code: str = Field(
        "44200000000000",
        pattern=r"^\d{14}$",
        description="Issuing-unit code of CAP identifiers (GB/T 35965.1): 6-digit GB/T 2260 "
        "region + 3-digit GB/T 4657 agency + 3-digit unit + 2-digit extension.",
    )
    cap_sender: str = Field(
        "onemap@442000.emergency",
        pattern=r"^[^\s,<&]+$",
        description="CAP <sender>: globally unique, no spaces or commas.",
    )
    cap_sender_name: str = Field("OneMap 应急指挥中心", description="CAP <senderName>.")
    push_enabled: bool = Field(
        True, description="Deliver CAP messages to subscriptions from each server worker."
    )
    push_poll_s: float = Field(1.0, gt=0, description="Seconds between outbox polls.")
    push_backoff_s: float = Field(
        5.0, gt=0, description="First retry delay of a failed push; doubles per attempt."
    )
    push_max_backoff_s: float = Field(3600.0, gt=0, description="Longest retry delay.")
    push_lease_s: float = Field(
        60.0, gt=0, description="A claimed push not finished in this time is tried again."
    )
    push_timeout_s: float = Field(10.0, gt=0, description="Timeout of one push POST.")

    # --- database ------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="Use this PostGIS (postgresql://user:pass@host:port/db) instead of "
        "the project-local cluster.",
    )
    pgdata: Path = Field(
        Path("/var/tmp/onemap-pg"), description="Data directory of the project-local cluster."
    )
    pghost: str = Field("127.0.0.1", description="Address the project-local cluster listens on.")
    pgport: int = Field(54329, description="Port of the project-local cluster.")
    pgdatabase: str = Field("onemap", description="Database name in the project-local cluster.")
    database_pool_max: int = Field(10, description="Maximum connections per server worker.")
    database_connect_timeout_s: float = Field(
        2.0, description="Give up connecting to the database after this many seconds."
    )
    database_statement_timeout_s: float = Field(
        30.0, description="Cancel a query that runs longer than this many seconds."
    )
    items_deadline_s: float = Field(
        20.0,
        gt=0,
        description="All statements of one /items request together (page and count) are "
        "cancelled after this many seconds (503 query_timeout).",
    )
    health_timeout_s: float = Field(
        1.5, description="/health reports the database down when it does not answer in time."
    )

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production" and self.database_url is None:
            # The local cluster trusts every local connection: fine on a laptop, not in production.
            raise SettingsError(
                "ONEMAP_ENV=production needs ONEMAP_DATABASE_URL (the project-local cluster "
                "uses trust authentication and is for development only)"
            )
        if self.public_url is not None:
            url = self.public_url.strip().rstrip("/")
            if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
                raise SettingsError(
                    f"ONEMAP_PUBLIC_URL must be an http(s) URL without query, got {url!r}"
                )
            self.public_url = url or None
        import ipaddress

        for spec in self.trusted_proxies:
            try:
                ipaddress.ip_network(spec.strip(), strict=False)
            except ValueError:
                raise SettingsError(
                    f"ONEMAP_TRUSTED_PROXIES: {spec!r} is not an address or network"
                ) from None
        if self.env == "production" and "*" in self.cors_origins:
            raise SettingsError("ONEMAP_ENV=production refuses ONEMAP_CORS_ORIGINS='*'")
        return self

    @property
    def effective_database_url(self) -> str:
        """The PostgreSQL URL every part of OneMap connects to."""
        if self.database_url:
            return self.database_url
        return f"postgresql://postgres@{self.pghost}:{self.pgport}/{self.pgdatabase}"

    @property
    def uses_local_cluster(self) -> bool:
        return self.database_url is None


def get_settings() -> Settings:
    """Settings from the environment (a new object each call; cheap)."""
    return Settings()
