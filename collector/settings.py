"""Every setting of the collector, read from BINOME_* environment variables.

docs/deploy.md's configuration table is checked against this class by
tests/test_settings.py, so a setting added here must be documented there.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector import PROJECT_ROOT

# A token guessed online must take longer than anyone tries (issue 20): 32
# characters, e.g. `openssl rand -hex 32`.
MIN_TOKEN_CHARS = 32

LOG_LEVELS = ("debug", "info", "warning", "error")
PREFIX = "BINOME_"
# BINOME_* names that other parts of the project read from the same environment,
# none of them the collector's: docker-compose's `roles` step (deploy/roles.sql),
# the Caddyfile, .ci/run, the benchmark, the snippet's and the suite's test helpers.
# A shell that exports .env for compose also exports them to `binome`.
COMPANION_VARIABLES = frozenset({
    "BINOME_WRITER_PASSWORD", "BINOME_MAINTAINER_PASSWORD", "BINOME_ANALYST_PASSWORD",
    "BINOME_DOMAIN", "BINOME_AUDIT_REQUIRED", "BINOME_BENCH_SERVER_URL", "BINOME_PYTHON",
    "BINOME_CHROMIUM",
})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    database_url: str | None = Field(
        None, description="libpq URL of PostgreSQL; unset starts the embedded PostgreSQL."
    )
    migration_database_url: str | None = Field(
        None, description="libpq URL migrations and `site add` use (the schema's owner); "
        "unset: BINOME_DATABASE_URL, which may then be a least-privileged role."
    )
    maintenance_database_url: str | None = Field(
        None, description="libpq URL `binome maintain` and `binome serve`'s periodic "
        "maintenance use: a binome_maintainer login, the only role besides the owner that "
        "may apply retention; unset: BINOME_DATABASE_URL (retention skipped if that role "
        "may not run it)."
    )
    dashboard_database_url: str | None = Field(
        None, description="libpq URL /dashboard/data reads the `rum` views with: a "
        "binome_analyst login when BINOME_DATABASE_URL is binome_writer, which may not read "
        "them; unset: BINOME_DATABASE_URL (the embedded single-user mode)."
    )
    data_dir: Path = Field(
        PROJECT_ROOT / ".binome",
        description="Where the embedded PostgreSQL and, by default, the spool keep their files.",
    )
    host: str = Field("127.0.0.1", description="Address `binome serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `binome serve` listens on.")
    dashboard_token: str | None = Field(
        None, description="Token /dashboard requires (32 characters or more); unset: only "
        "loopback clients with a loopback Host, and nobody when `binome serve` listens on "
        "another address."
    )
    metrics_token: str | None = Field(
        None, description="Token /metrics requires as `Authorization: Bearer` (32 characters "
        "or more); unset: /metrics answers anyone who reaches the port."
    )
    rate_limit_per_minute: int = Field(
        600, ge=0, description="Beacons a minute accepted from one client before 429; 0 = off."
    )
    max_body_bytes: int = Field(
        64 * 1024, gt=0, description="Largest beacon body accepted; larger gets 413 unread."
    )
    # Abuse controls and server limits (SECURITY.md).
    trusted_proxy_header: str = Field(
        "", description="Header a trusted reverse proxy sets with the client address "
        "(X-Forwarded-For, X-Real-IP, Forwarded ...), read only to key the rate limit; "
        "empty (the default) uses the TCP peer's address."
    )
    trusted_proxy_hops: int = Field(
        1, ge=1, description="How many trusted proxies append to that header: the client is "
        "the address this many entries from its right end. Believes any peer: `binome serve` "
        "refuses it on a non-loopback bind without BINOME_TRUSTED_PROXIES."
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated networks of trusted proxies (CIDR); when set, the "
        "header is read only from a peer in them and the client is its right-most address "
        "outside them (instead of counting hops)."
    )
    store_automated: bool = Field(
        False, description="Store beacons from bots, crawlers, headless browsers and clients "
        "without User-Agent (e.g. for synthetic monitoring); false counts them as rejected "
        "and answers 204 without storing them."
    )
    max_beacons_per_page_view: int = Field(
        100, ge=0, description="Beacons one page view may send (per process, in memory); "
        "beyond it 429; 0 = no cap."
    )
    max_beacons_per_session: int = Field(
        2000, ge=0, description="Beacons one session may send (per process, in memory); "
        "beyond it 429; 0 = no cap."
    )
    session_id_per_day: bool = Field(
        True, description="Store `sid` as a per-day pseudonym, so sessions cannot be linked "
        "across days; false stores it as sent."
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a client has to send a beacon's whole body; "
        "beyond it 408."
    )
    max_connections: int = Field(
        1000, gt=0, description="Requests one worker answers at once; beyond it a JSON 503 "
        "with Retry-After. `binome serve` also refuses connections beyond twice this many, "
        "idle ones included (uvicorn's limit_concurrency)."
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
    spool_dir: Path | None = Field(
        None,
        description="Where batches PostgreSQL cannot take wait on disk; unset: <data_dir>/spool. "
        "One directory per database, shared by the workers of one collector.",
    )
    spool_max_bytes: int = Field(
        1024**3, gt=0,
        description="Disk the spool may use; when it is full too, POST /beacon answers 503.",
    )
    durable: bool = Field(
        False, description="true: POST /beacon answers 204 only once the beacon is in an "
        "fsynced log in the spool directory (group commit), so a crash loses nothing "
        "answered 204; false: accepted beacons wait in memory until written (a crash loses "
        "the last moments). README, \"What a 204 promises\"."
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
    alert_webhook_url: SecretStr | None = Field(
        None, description="URL `binome objective check` (and `binome serve`'s periodic check) "
        "POSTs a JSON document to when an objective's status changes: a Slack or Teams incoming "
        "webhook reads its `text`. A secret (the URL is the credential): never logged. Unset: "
        "no alerts."
    )
    objective_check_minutes: float = Field(
        60, ge=0, description="How often `binome serve` runs `binome objective check` (alerts "
        "need no cron; the scorecard's Objectives band shows the figures it stores); 0 turns it "
        "off. Each check reads 28 days of page views: hourly keeps that a small share of the "
        "database's time at any traffic, and a 28-day figure moves little within an hour."
    )
    deferred_fold: bool = Field(
        True, description="Fold stored beacons into page views (what the analyst views read) "
        "right behind the writes, on a connection of their own, instead of inside each write: "
        "ingest is not paced by the fold; the views lag the beacons by the fold's time "
        "(binome_fold_lag_seconds)."
    )
    fold_max_lag_seconds: float = Field(
        60, ge=0, description="With the deferred fold, how far the views may fall behind the "
        "beacons during a burst: until then, while beacons keep coming, the folder folds at most "
        "a quarter of the time, leaving PostgreSQL to the writes; further behind, or once the "
        "writes stop, it folds without pause. 0: it never pauses."
    )
    live_snapshot_seconds: float = Field(
        300, ge=0, description="How often `binome serve` snapshots busy live days (today, and "
        "yesterday until it is rolled up) so that the views read them without recomputing "
        "them; their figures are then up to this old. 0 turns snapshots off."
    )
    live_snapshot_page_views: int = Field(
        25_000, gt=0, description="Page views (all sites together) from which a live day is "
        "read from its snapshot; a quieter day is computed live, to the last beacon."
    )
    sql_dir: Path = Field(PROJECT_ROOT / "sql", description="Migrations and views.")
    snippet_path: Path = Field(
        PROJECT_ROOT / "js-snippet" / "dist" / "binome.js", description="The built snippet."
    )
    log_level: str = Field(
        "info", description="Log level of `binome serve`: debug, info, warning, error. The "
        "one-shot commands (report, migrate ...) log warnings and errors only, unless it is set."
    )
    pg_bin: Path | None = Field(
        None, description="Directory of PostgreSQL binaries for the embedded mode."
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"invalid value; it accepts {', '.join(LOG_LEVELS[:-1])} or "
                             f"{LOG_LEVELS[-1]}")
        return level

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():  # empty: compose's unset variable
            return None
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("dashboard_token", "metrics_token")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if not value:  # empty, as compose passes an unset variable: no token
            return None
        if len(value) < MIN_TOKEN_CHARS:
            raise ValueError(f"shorter than {MIN_TOKEN_CHARS} characters; "
                             "make one with `openssl rand -hex 32`")
        return value

    @property
    def spool_path(self) -> Path:
        return self.spool_dir if self.spool_dir is not None else self.data_dir / "spool"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def variable(name: str) -> str:
    """The environment variable of a setting: `rate_limit_per_minute` ->
    BINOME_RATE_LIMIT_PER_MINUTE."""
    return PREFIX + name.upper()


def unknown_variables(environ: Mapping[str, str], also_known: Iterable[str] = ()) -> list[str]:
    """One line per BINOME_* variable that is no setting, naming the closest setting
    (issue 24: `BINOME_DATABSE_URL=... binome serve` silently served from the embedded
    PostgreSQL). pydantic-settings ignores unknown names; we refuse to guess."""
    known = {variable(name) for name in Settings.model_fields}
    # pydantic-settings reads names case-insensitively: so does this check.
    ignored = known | COMPANION_VARIABLES | set(also_known)
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in ignored:
            continue
        # Compared without the prefix, which every name shares.
        close = difflib.get_close_matches(upper.removeprefix(PREFIX),
                                          sorted(n.removeprefix(PREFIX) for n in known),
                                          n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else "no setting is named like it"
        lines.append(f"{name} is not a setting ({hint}); the settings are listed in "
                     "docs/deploy.md, \"Configuration\"")
    return lines


def _accepts(name: str) -> str:
    """What a setting accepts, in words, from its type and bounds."""
    field = Settings.model_fields[name]
    kinds = [kind for kind in (get_args(field.annotation)
                               if get_origin(field.annotation) in (Union, types.UnionType)
                               else (field.annotation,)) if kind is not type(None)]
    kind: Any = kinds[0] if kinds else str
    words = {bool: "true or false", int: "a whole number", float: "a number",
             Path: "a path"}.get(kind, "text")
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            words += f", {bound.ge} or more"
        elif isinstance(bound, annotated_types.Gt):
            words += f", above {bound.gt}"
        elif isinstance(bound, annotated_types.Le):
            words += f", at most {bound.le}"
    return words


def describe_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its variable and what it accepts, instead of
    pydantic's report (which names the field, not the variable, and runs over many
    lines). Values are not repeated: a token or a URL's password may be among them."""
    lines: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if field not in Settings.model_fields or variable(field) in lines:
            continue
        if item["type"] == "value_error":  # our validators say what is wrong, and why
            reason = str(item["msg"]).removeprefix("Value error, ")
        else:
            reason = f"invalid value; it accepts {_accepts(field)}"
        lines[variable(field)] = f"{variable(field)}: {reason}"
    return list(lines.values()) or [str(error).splitlines()[0]]
