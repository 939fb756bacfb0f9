"""Ways in for people, not the collector: the connection strings `binome dsn` prints
and `binome psql` opens (issue 24).

On the embedded PostgreSQL no URL carries a password: the passwords sit in a libpq
password file, `<data dir>/pgpass` (mode 0600, beside the embedded server's own
`password` file), which the DSN names (`?passfile=`), so psql, asyncpg, psycopg,
DBeaver ... read them from there. The server listens on 127.0.0.1 only and
requires the password there (collector/embedded.py).

Roles (docs/deploy.md, "Roles"): `owner` is the embedded cluster's superuser, which owns the
schema; `analyst` is binome_analyst, which reads the grouped views of schema `rum`;
`analyst_rows` is binome_analyst_rows, which reads the views with one row per
page view too (docs/privacy.md). Migrations create the two analyst roles without
LOGIN; here, on the embedded cluster only, they get LOGIN and a generated password,
as deploy/roles.sql gives them on a deployed server.

With BINOME_DATABASE_URL set the logins are the administrator's (deploy/roles.sql):
the owner's way in is that URL, the analyst's BINOME_DASHBOARD_DATABASE_URL (a
binome_analyst login), each printed without its password.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from collector.embedded import DATABASE, SUPERUSER, EmbeddedPostgres

ROLES = {"owner": SUPERUSER, "analyst": "binome_analyst",
         "analyst_rows": "binome_analyst_rows"}
PASSFILE = "pgpass"
HOST = "127.0.0.1"  # the embedded server's only address


class LoginError(RuntimeError):
    """No way in for that role with this configuration."""


def passfile_path(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / PASSFILE


def _read_passwords(path: Path) -> dict[str, str]:
    """user -> password of the lines of a password file we wrote
    (host:port:database:user:password; our passwords hold no `:` nor `\\`)."""
    passwords: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return passwords
    for line in text.splitlines():
        parts = line.split(":", 4)
        if len(parts) == 5 and parts[2] == DATABASE:
            passwords[parts[3]] = parts[4]
    return passwords


def _write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """Whole or absent, and 0600 from its first byte (libpq ignores a password file
    others can read)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# binome dsn / binome psql (collector/logins.py): the embedded "
                     "PostgreSQL's logins\n")
        for user, password in sorted(passwords.items()):
            handle.write(f"{HOST}:*:{DATABASE}:{user}:{password}\n")
    os.replace(staging, path)


async def _allow_login(owner_url: str, role: str, password: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
            raise LoginError(f"role {role} does not exist: run `binome migrate`")
        # format(%I, %L) quotes; ALTER ROLE takes no bind parameters.
        await conn.execute(await conn.fetchval(
            "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            role, password))
    finally:
        await conn.close()


async def embedded_dsn(embedded: EmbeddedPostgres, role: str) -> str:
    """A passwordless libpq URL for `role` (a key of ROLES) on the running embedded
    server; a role other than the owner gets LOGIN and its password first."""
    user = ROLES[role]
    path = passfile_path(embedded.data_dir)
    passwords = _read_passwords(path)
    passwords[SUPERUSER] = embedded.password_file.read_text().strip()
    if user != SUPERUSER:
        # Kept across runs, so that a DSN given out keeps working; set again at
        # each call, so that a cluster made afresh gets it too.
        passwords.setdefault(user, secrets.token_urlsafe(24))
        await _allow_login(embedded.url, user, passwords[user])
    _write_passwords(path, passwords)
    return (f"postgresql://{user}@{HOST}:{embedded.port}/{DATABASE}"
            f"?passfile={quote(str(path), safe='/')}")


def without_password(url: str) -> tuple[str, str | None]:
    """A libpq URL without its password, and the password (None when it had none):
    the password travels to psql in PGPASSWORD, never on a command line or a screen."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), unquote(parts.password)


def configured_url(role: str, database_url: str, dashboard_url: str | None) -> str:
    """The way in for `role` on a server of BINOME_DATABASE_URL (with its password)."""
    if role == "owner":
        return database_url
    if role == "analyst" and dashboard_url:
        return dashboard_url
    raise LoginError(
        f"no {ROLES[role]} login is configured: on a deployed server the administrator "
        "gives it one (deploy/roles.sql); `binome dsn --analyst` uses "
        "BINOME_DASHBOARD_DATABASE_URL, a binome_analyst login, when it is set")
