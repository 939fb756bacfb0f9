"""Every setting of the collector, read from BINOME_* environment variables.

The README's configuration table is checked against this class by
tests/test_settings.py, so a setting added here must be documented there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector import PROJECT_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINOME_", extra="ignore")

    database_url: str | None = Field(
        None, description="libpq URL of PostgreSQL; unset starts the embedded PostgreSQL."
    )
    data_dir: Path = Field(
        PROJECT_ROOT / ".binome",
        description="Where the embedded PostgreSQL (and later the spool) keeps its files.",
    )
    host: str = Field("127.0.0.1", description="Address `binome serve` listens on.")
    port: int = Field(8000, description="Port `binome serve` listens on.")
    dashboard_token: str | None = Field(
        None, description="Token /dashboard requires; unset means loopback clients only."
    )
    rate_limit_per_minute: int = Field(
        600, ge=0, description="Beacons a minute accepted from one client before 429; 0 = off."
    )
    max_body_bytes: int = Field(
        64 * 1024, gt=0, description="Largest beacon body accepted; larger gets 413 unread."
    )
    batch_max_rows: int = Field(
        500, gt=0, description="The writer flushes a batch when it holds this many beacons..."
    )
    batch_max_ms: int = Field(
        200, gt=0, description="...or when its oldest beacon has waited this long (ms)."
    )
    queue_max: int = Field(
        20_000, gt=0, description="Beacons held in memory awaiting a write; beyond it 503."
    )
    sites_refresh_seconds: float = Field(
        10.0, gt=0, description="How often registered sites and origins are re-read."
    )
    country_headers: str = Field(
        "cf-ipcountry,cloudfront-viewer-country,x-country-code",
        description="Request headers a CDN sets with the visitor's country (ISO 3166 alpha-2), "
        "first present wins; empty turns country off.",
    )
    retention_months: int = Field(
        25, ge=1, description="Months of raw beacons, page views and rollups kept; "
        "`binome maintain` drops older days."
    )
    rollup_lag_days: int = Field(
        1, ge=0, description="Whole days after a UTC day before it is rolled up (until then the "
        "views compute it live); later changes make it computed live until rolled up again."
    )
    maintenance_minutes: float = Field(
        5, ge=0, description="How often `binome serve` runs `binome maintain` (partitions, "
        "rollups, retention); 0 turns it off."
    )
    sql_dir: Path = Field(PROJECT_ROOT / "sql", description="Migrations and views.")
    snippet_path: Path = Field(
        PROJECT_ROOT / "js-snippet" / "dist" / "binome.js", description="The built snippet."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    pg_bin: Path | None = Field(
        None, description="Directory of PostgreSQL binaries for the embedded mode."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
