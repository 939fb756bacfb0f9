"""PostgreSQL: connections, migrations, and the functions and views over them.

Migrations are plain numbered files in sql/migrations/ (tables, indexes, roles:
what holds data), applied in order, each in its own transaction and recorded in
binome.schema_migrations; a released one is never edited (docs/architecture.md, "Schema
changes"). Functions with their triggers (sql/functions/) and then views
(sql/views/) are re-created on every migrate, so their files are always their
current definitions. A session-level advisory lock lets several processes
(`binome serve --workers N`, two collectors) migrate at once: one applies, the
others wait and then find nothing left to do. `binome maintain` and the
snapshots hold the same lock shared (schema_steady), so that a migrate never
re-creates the functions and views they are using.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x62696E6F6D65  # "binome"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS binome;
CREATE TABLE IF NOT EXISTS binome.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(sql_dir: Path) -> list[Migration]:
    migrations = []
    for path in sorted((sql_dir / "migrations").glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_snake_case.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{sql_dir / 'migrations'}: two migrations share a number")
    return migrations


def load_code(sql_dir: Path, kind: str) -> list[tuple[str, str]]:
    """sql/functions/ or sql/views/ files in name order (their numeric prefixes
    order dependencies)."""
    return [(p.name, p.read_text()) for p in sorted((sql_dir / kind).glob("*.sql"))]


class SchemaMismatchError(RuntimeError):
    """The database records migrations this version does not have."""


def check_recorded(recorded: dict[int, str], migrations: list[Migration]) -> None:
    """Refuse a database whose recorded migrations are not this checkout's: it
    was migrated by the chain squashed into the baseline before the first
    release (issue 19), and applying the baseline over it would half-migrate it."""
    names = {m.version: m.name for m in migrations}
    unknown = sorted(name for version, name in recorded.items() if names.get(version) != name)
    if unknown:
        raise SchemaMismatchError(
            f"this database records migrations this version does not have ({', '.join(unknown)}):"
            " it predates the squashed pre-release schema; recreate it (drop and create the"
            " database, then `binome migrate`)")


async def _recorded(conn: asyncpg.Connection) -> dict[int, str]:
    return {r["version"]: r["name"]
            for r in await conn.fetch("SELECT version, name FROM binome.schema_migrations")}


async def migrate(conn: asyncpg.Connection, sql_dir: Path) -> list[str]:
    """Apply pending migrations, then re-create every function and view, in one
    transaction (a trigger's function before the trigger, views over both).
    Returns the migrations applied."""
    migrations = load_migrations(sql_dir)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_BOOTSTRAP)
        done = await _recorded(conn)
        check_recorded(done, migrations)
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO binome.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )
                await conn.execute(migration.sql)
            log.info("migration applied", extra={"migration": migration.name})
            applied.append(migration.name)
        async with conn.transaction():
            for kind in ("functions", "views"):
                for name, sql in load_code(sql_dir, kind):
                    try:
                        await conn.execute(sql)
                    except asyncpg.PostgresError as exc:
                        raise RuntimeError(f"sql/{kind}/{name}: {exc}") from exc
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


@contextlib.asynccontextmanager
async def schema_steady(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """For the block, no migrate re-creates the functions, triggers and views:
    MIGRATION_LOCK held shared, so a migrate waits for the block to end and the
    block for a migrate to end. A migrate run during `binome maintain` once
    deadlocked with it in sql/functions/45_rollup_sums.sql (re-creating triggers
    on the rollup tables a rollup was writing)."""
    await conn.execute("SELECT pg_advisory_lock_shared($1)", MIGRATION_LOCK)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock_shared($1)", MIGRATION_LOCK)


async def migrate_or_check(conn: asyncpg.Connection, sql_dir: Path) -> list[str]:
    """migrate() as the schema's owner; as another role (binome_writer), check
    that nothing is pending instead, since it may not create or alter anything."""
    owner = await conn.fetchval(
        "SELECT n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        " OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
        " FROM pg_namespace n WHERE n.nspname = 'binome'")
    if owner is None or owner:
        return await migrate(conn, sql_dir)
    migrations = load_migrations(sql_dir)
    done = await _recorded(conn)
    check_recorded(done, migrations)
    pending = [m.name for m in migrations if m.version not in done]
    if pending:
        role = await conn.fetchval("SELECT current_user")
        raise PermissionError(
            f"migrations {', '.join(pending)} are pending and role {role} does not own "
            "schema binome: run `binome migrate` as its owner first")
    log.info("schema up to date; not its owner, so functions and views left as they are")
    return []


# Set by `binome serve` for its workers when PostgreSQL was unreachable at start:
# they migrate when it answers, before their first write.
MIGRATION_DEFERRED_ENV = "BINOME_MIGRATION_DEFERRED"


async def migrate_at(database_url: str, sql_dir: Path, retention_months: int) -> list[str]:
    """migrate_or_check() on a connection of its own, then the retention period
    binome.apply_retention is held to: the owner's to set
    (sql/migrations/0003_maintainer.sql); other roles leave it."""
    conn = await connect(database_url)
    try:
        applied = await migrate_or_check(conn, sql_dir)
        if await conn.fetchval(
                "SELECT has_table_privilege('binome.retention_policy', 'UPDATE')"):
            await conn.execute("UPDATE binome.retention_policy SET months = $1",
                               retention_months)
        return applied
    finally:
        await conn.close()


def unreachable(exc: BaseException) -> bool:
    """PostgreSQL down, starting, stopping or out of reach: worth waiting for, unlike
    a refusal (a wrong password, a missing grant)."""
    return (isinstance(exc, OSError | TimeoutError | asyncpg.CannotConnectNowError)
            and not isinstance(exc, PermissionError))


# No JIT: the views' cost estimates (a month of page views, a day's sort by
# group) pass jit_above_cost, and compiling takes seconds where the query takes
# a fraction of one (sql/migrations/0001_baseline.sql sets it for the database too).
SESSION_SETTINGS = {"application_name": "binome", "jit": "off"}


async def connect(database_url: str, application_name: str = "binome") -> asyncpg.Connection:
    """application_name tells the collector's connections apart in pg_stat_activity."""
    return await asyncpg.connect(database_url, server_settings={
        **SESSION_SETTINGS, "application_name": application_name})


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        # A statement that hangs must not hold a beacon batch forever.
        server_settings={**SESSION_SETTINGS, "statement_timeout": "30s"},
    )


async def add_site(conn: asyncpg.Connection, site: str, origins: list[str],
                   currency: str | None = None) -> None:
    """Register `site` or add origins to it; `currency` (ISO 4217) sets the one its
    revenue is in, else a new site's is EUR and a known site's stays."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO binome.sites (site, currency) VALUES ($1, coalesce($2::text, 'EUR'))"
            " ON CONFLICT (site) DO UPDATE SET currency = $2::text WHERE $2::text IS NOT NULL",
            site, currency,
        )
        await conn.executemany(
            "INSERT INTO binome.site_origins (site, origin) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(site, origin) for origin in origins],
        )


async def load_sites(conn: asyncpg.Connection) -> dict[str, frozenset[str]]:
    """Registered sites and their allowed origins (empty: any origin)."""
    rows = await conn.fetch(
        "SELECT s.site, coalesce(array_agg(o.origin) FILTER (WHERE o.origin IS NOT NULL), '{}')"
        " AS origins FROM binome.sites s LEFT JOIN binome.site_origins o USING (site)"
        " GROUP BY s.site"
    )
    return {r["site"]: frozenset(r["origins"]) for r in rows}
