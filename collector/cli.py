"""The `binome` command: serve, migrate, site add, maintain, report, objective, dsn, psql."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence

from pydantic import ValidationError

from collector import db
from collector.beacon import CURRENCY_PATTERN, SITE_NAME_PATTERN
from collector.logs import configure_logging
from collector.proxies import is_loopback
from collector.settings import Settings, describe_errors, get_settings, unknown_variables
from collector.sites import normalize_origin

log = logging.getLogger("binome")


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured PostgreSQL, or the embedded one, started for the duration."""
    if settings.database_url:
        yield settings.database_url
        return
    from collector.embedded import EmbeddedPostgres

    with EmbeddedPostgres(settings.data_dir, pg_bin=settings.pg_bin) as embedded:
        yield embedded.url


async def _migrate(url: str, settings: Settings) -> list[str]:
    return await db.migrate_at(url, settings.sql_dir, settings.retention_months)


async def _add_site(url: str, site: str, origins: list[str],
                    currency: str | None = None) -> None:
    conn = await db.connect(url)
    try:
        await db.add_site(conn, site, origins, currency)
    finally:
        await conn.close()


def owner_url(url: str, settings: Settings) -> str:
    """The URL for migrations and `site add`: BINOME_MIGRATION_DATABASE_URL (the
    schema's owner) when set, so that BINOME_DATABASE_URL can be a least-privileged
    role such as binome_writer."""
    return settings.migration_database_url or url


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as url:
        applied = asyncio.run(_migrate(owner_url(url, settings), settings))
    print(f"applied: {', '.join(applied)}" if applied else "nothing to apply; views refreshed")
    return 0


def cmd_site_add(args: argparse.Namespace, settings: Settings) -> int:
    if not re.fullmatch(SITE_NAME_PATTERN, args.name):
        print(f"binome: invalid site name {args.name!r}: use [a-z0-9][a-z0-9_-]{{0,62}}",
              file=sys.stderr)
        return 2
    try:
        origins = [normalize_origin(o) for o in args.origin]
    except ValueError as exc:
        print(f"binome: {exc}", file=sys.stderr)
        return 2
    currency = args.currency.upper() if args.currency else None
    if currency is not None and not re.fullmatch(CURRENCY_PATTERN, currency):
        print(f"binome: invalid currency {args.currency!r}: use an ISO 4217 code such as EUR",
              file=sys.stderr)
        return 2
    with database(settings) as url:
        asyncio.run(_migrate(owner_url(url, settings), settings))
        asyncio.run(_add_site(owner_url(url, settings), args.name, origins, currency))
    allowed = ", ".join(origins) if origins else "any origin (until one is added)"
    print(f"site {args.name}: accepts beacons from {allowed}"
          + (f"; revenue in {currency}" if currency else ""))
    return 0


async def _remove_site(url: str, site: str, confirmed: bool) -> int:
    from collector.sites import remove_site, site_data

    conn = await db.connect(url)
    try:
        data = await site_data(conn, site)
        if data is None:
            print(f"binome: unknown site {site!r}: nothing removed", file=sys.stderr)
            return 2
        if data.tables and not confirmed:
            held = (f"{data.page_views:,} page views ({data.first_day} to {data.last_day})"
                    if data.page_views else "data")
            print(f"binome: site {site} has {held} and {data.objectives} objectives, in "
                  f"{', '.join(data.tables)}: nothing removed; `binome site remove {site} "
                  "--yes` deletes them all, for good", file=sys.stderr)
            return 2
        deleted = await remove_site(conn, site)
    finally:
        await conn.close()
    rows = ", ".join(f"{n:,} {table}" for table, n in deleted.items() if n and table != "sites")
    print(f"site {site} removed" + (f", with its rows: {rows}" if rows else ""))
    return 0


def cmd_site_remove(args: argparse.Namespace, settings: Settings) -> int:
    if not re.fullmatch(SITE_NAME_PATTERN, args.name):
        print(f"binome: invalid site name {args.name!r}", file=sys.stderr)
        return 2
    with database(settings) as url:
        asyncio.run(_migrate(owner_url(url, settings), settings))
        return asyncio.run(_remove_site(owner_url(url, settings), args.name, args.yes))


def serve_without_owner(args: argparse.Namespace) -> None:
    """Replace this process by `binome serve` without BINOME_MIGRATION_DATABASE_URL:
    the serving process never holds the owner's credentials (issue 20), not even
    in /proc/<pid>/environ, which keeps the environment the process was started
    with whatever os.environ drops. Same pid, so an orchestrator sees no change."""
    env = {k: v for k, v in os.environ.items() if k != "BINOME_MIGRATION_DATABASE_URL"}
    argv = [sys.executable, "-m", "collector.cli", "serve", "--host", args.host,
            "--port", str(args.port), "--workers", str(args.workers),
            *(["--demo"] if args.demo else [])]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _seed_demo(url: str, settings: Settings) -> None:
    """The `demo` site with 30 days of a shop's traffic, unless it has data already."""
    from collector.demo import seed_demo

    seeded = asyncio.run(seed_demo(url, settings))
    if seeded is not None:
        print(f"binome: demo site seeded with {seeded.page_views:,} page views from "
              f"{seeded.first_day} to {seeded.last_day} ({seeded.seconds:.1f} s)",
              file=sys.stderr)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collector.proxies import untrusted_hops_problem

    problem = untrusted_hops_problem(settings.trusted_proxy_header, settings.trusted_proxies,
                                     args.host)
    if problem:
        print(f"binome: {problem}", file=sys.stderr)
        return 2
    if not settings.database_url and not is_loopback(args.host):
        # Issue 24: a server others reach keeps its data in a real PostgreSQL, never in
        # a checkout's .binome/ because a variable was mistyped or forgotten.
        print(f"binome: serving on {args.host}, which is not a loopback address, needs a "
              "PostgreSQL server: set BINOME_DATABASE_URL (the embedded PostgreSQL is for "
              "trying Binome on 127.0.0.1)", file=sys.stderr)
        return 2
    with database(settings) as url:
        os.environ.pop(db.MIGRATION_DEFERRED_ENV, None)
        try:
            asyncio.run(_migrate(owner_url(url, settings), settings))
            if args.demo:
                _seed_demo(owner_url(url, settings), settings)
        except Exception as exc:
            if not db.unreachable(exc):
                raise
            # Serve anyway (issue 20): beacons for the sites last read are spooled,
            # and the workers migrate when PostgreSQL answers, before they write
            # (with the owner's URL, kept for that until then).
            print(f"binome: PostgreSQL unreachable ({type(exc).__name__}: {exc}); serving "
                  "anyway: migrations wait for it, beacons for known sites are spooled",
                  file=sys.stderr)
            os.environ[db.MIGRATION_DEFERRED_ENV] = "1"
        else:
            if settings.migration_database_url and settings.database_url:
                serve_without_owner(args)  # migrated: serve as BINOME_DATABASE_URL's role
        # Workers are separate processes: they read the URL from the environment.
        os.environ["BINOME_DATABASE_URL"] = url
        get_settings.cache_clear()
        if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="binome-metrics-")
        # The one line `binome serve` prints before it serves (issue 24: quiet start).
        where = ("" if settings.database_url
                 else f" (embedded PostgreSQL, data in {settings.data_dir})")
        print(f"binome: serving on http://{args.host}:{args.port}{where}", file=sys.stderr)
        # The app's workers judge the dashboard's access by the address bound (access.py).
        os.environ["BINOME_HOST"] = args.host
        from collector.access import bind_refusal

        refusal = bind_refusal(settings.model_copy(update={"host": args.host}))
        if refusal:
            log.warning(refusal)
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal
        # under the handler it found. A no-op handler here lets the process go on to
        # stop the embedded PostgreSQL and exit 0, as an orchestrator expects.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)
        uvicorn.run(
            "collector.app:create_demo_app" if args.demo else "collector.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # Limits for slow and greedy clients (SECURITY.md); the reverse proxy in
            # front (deploy/Caddyfile) bounds the time and size of headers.
            log_level="warning",
            access_log=False,  # an access log would write every client's address
            server_header=False,
            proxy_headers=False,  # the client address: BINOME_TRUSTED_PROXY_* (proxies.py)
            timeout_keep_alive=5,
            # A second line behind CollectorApp's JSON 503 at max_connections requests
            # at once: uvicorn counts idle keep-alive connections too, and answers a
            # bare 503 beyond this.
            limit_concurrency=2 * settings.max_connections,
            backlog=2048,
            timeout_graceful_shutdown=10,
        )
    return 0


def cmd_maintain(args: argparse.Namespace, settings: Settings) -> int:
    from collector.maintenance import maintain_once

    with database(settings) as url:
        asyncio.run(_migrate(owner_url(url, settings), settings))
        report = asyncio.run(maintain_once(url, settings))
    if report is None:
        print("binome: another maintenance run is in progress; nothing done", file=sys.stderr)
        return 0
    print(f"maintenance: {report.summary()}")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from collector.report import ReportError, print_report

    if args.days < 1:
        print(f"binome: --days must be 1 or more (got {args.days})", file=sys.stderr)
        return 2
    with database(settings) as url:
        asyncio.run(_migrate(owner_url(url, settings), settings))
        try:
            asyncio.run(print_report(url, site=args.site, days=args.days))
        except ReportError as exc:
            print(f"binome: {exc}", file=sys.stderr)
            return 2
    return 0


async def _objective(url: str, action: str, args: argparse.Namespace, settings: Settings) -> int:
    from collector import objectives

    conn = await db.connect(url)
    try:
        if action == "add":
            added = await objectives.add(conn, args.site, args.metric, args.target, args.name,
                                         args.where)
            print(f"objective {added.name}: {added.metric} "
                  f"{objectives.format_target(added.metric, added.target)} on {added.site}, "
                  f"{objectives.format_scope(added.scope)}, over the last "
                  f"{objectives.WINDOW_DAYS} days")
            # Its first check, stored by add: the figures the scorecard shows now.
            for row in await objectives.fetch_stored(conn, added.site):
                if row["name"] == added.name:
                    print(objectives.describe(row))
            return 0
        if action == "remove":
            await objectives.remove(conn, args.name)
            print(f"objective {args.name} removed")
            return 0
        if action == "list":
            # The figures of each objective's last check, as the scorecard
            # shows them: instant at any traffic, where computing them reads
            # 28 days of page views (`binome objective check` does, and stores them).
            rows = await objectives.fetch_stored(conn)
            if not rows:
                print("no objectives yet: add one with `binome objective add SITE METRIC TARGET`")
                return 0
            for row in rows:
                print(objectives.describe(row))
            return 0
        webhook = settings.alert_webhook_url
        report = await objectives.check(conn, webhook.get_secret_value() if webhook else None)
    finally:
        await conn.close()
    for row in report.objectives:
        print(objectives.describe(row))
    for name, previous, status in report.posted:
        print(f"alert posted: {name} {previous or 'new'} -> {status}")
    for name, previous, status in report.undelivered:
        print(f"binome: alert for {name} ({previous or 'new'} -> {status}) not delivered; "
              "the next check posts it", file=sys.stderr)
    if webhook is None and report.objectives:
        print("(BINOME_ALERT_WEBHOOK_URL is unset: no alerts posted)", file=sys.stderr)
    return 1 if report.missed else 0


def cmd_objective(args: argparse.Namespace, settings: Settings) -> int:
    from collector.objectives import ObjectiveError

    with database(settings) as url:
        asyncio.run(_migrate(owner_url(url, settings), settings))
        # Objectives are configuration: written as the schema's owner, as sites
        # are; the check runs as `binome maintain` does (its role may record
        # what it delivered: sql/migrations/0005_objectives.sql).
        target = (owner_url(url, settings) if args.objective_command in ("add", "remove")
                  else settings.maintenance_database_url or url)
        try:
            return asyncio.run(_objective(target, args.objective_command, args, settings))
        except ObjectiveError as exc:
            print(f"binome: {exc}", file=sys.stderr)
            return 2


def _role(args: argparse.Namespace) -> str:
    return "analyst_rows" if args.analyst_rows else "analyst" if args.analyst else "owner"


@contextlib.contextmanager
def login(settings: Settings, role: str) -> Iterator[str]:
    """A libpq URL for `role` (collector/logins.py), valid for the duration: on the
    embedded PostgreSQL passwordless (it names the password file); else the
    configured URL, password included, for the caller to take out."""
    from collector import logins

    if settings.database_url:
        yield logins.configured_url(role, owner_url(settings.database_url, settings),
                                    settings.dashboard_database_url)
        return
    from collector.embedded import EmbeddedPostgres

    with EmbeddedPostgres(settings.data_dir, pg_bin=settings.pg_bin) as embedded:
        asyncio.run(_migrate(embedded.url, settings))  # the analyst roles exist after it
        yield asyncio.run(logins.embedded_dsn(embedded, role))


def cmd_dsn(args: argparse.Namespace, settings: Settings) -> int:
    from collector.logins import without_password

    with login(settings, _role(args)) as url:
        dsn, password = without_password(url)
    print(dsn)
    if password is not None:
        print("binome: the password is not printed: give it in ~/.pgpass or PGPASSWORD",
              file=sys.stderr)
    elif not settings.database_url:
        from collector.embedded import EmbeddedPostgres

        if not EmbeddedPostgres(settings.data_dir).is_running():
            print("binome: the embedded PostgreSQL runs while `binome serve` (or `binome psql`) "
                  "does; this URL works then", file=sys.stderr)
    return 0


def _psql_binary(settings: Settings) -> str | None:
    """The machine's psql, else the one beside the embedded server's binaries."""
    found = shutil.which("psql")
    if found or settings.database_url:
        return found
    from collector.embedded import EmbeddedPostgresError, find_pg_bin

    try:
        bundled = (settings.pg_bin or find_pg_bin()) / "psql"
    except EmbeddedPostgresError:
        return None
    return str(bundled) if os.access(bundled, os.X_OK) else None


def cmd_psql(args: argparse.Namespace, settings: Settings) -> int:
    from collector.logins import without_password

    psql = _psql_binary(settings)
    if psql is None:
        print("binome: psql not found: install PostgreSQL's client (`apt-get install "
              "postgresql-client`, `brew install libpq`), or use `binome dsn` in another "
              "client", file=sys.stderr)
        return 1
    with login(settings, _role(args)) as url:
        dsn, password = without_password(url)
        env = dict(os.environ)
        if password is not None:  # in the environment, not on psql's command line
            env["PGPASSWORD"] = password
        # psql handles Ctrl-C itself (it cancels the running query); a handler here
        # (not SIG_IGN, which psql would inherit) keeps this process from stopping the
        # embedded PostgreSQL under it.
        previous = signal.signal(signal.SIGINT, lambda *_: None)
        try:
            extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
            return subprocess.run([psql, "--dbname", dsn, *extra], env=env).returncode
        finally:
            signal.signal(signal.SIGINT, previous)


def _add_login_options(parser: argparse.ArgumentParser) -> None:
    roles = parser.add_mutually_exclusive_group()
    roles.add_argument("--analyst", action="store_true",
                       help="as binome_analyst, which reads the grouped views of schema rum "
                       "(default: the database's owner)")
    roles.add_argument("--analyst-rows", action="store_true",
                       help="as binome_analyst_rows, which also reads the views with one "
                       "row per page view or session (docs/privacy.md)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binome",
        description="Real-user monitoring beside marketing context, in PostgreSQL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the collector (applies migrations first)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default: BINOME_HOST, 127.0.0.1); one that "
                       "is not loopback needs BINOME_DATABASE_URL")
    serve.add_argument("--port", type=int, default=None,
                       help="port to listen on (default: BINOME_PORT, 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes, each with its own connections (default: 1)")
    serve.add_argument("--demo", action="store_true",
                       help="serve the demo shop at / and register the `demo` site, seeded "
                       "with 30 days of traffic when it has none")
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    site = commands.add_parser("site", help="manage sites")
    site_commands = site.add_subparsers(dest="site_command", required=True)
    site_add = site_commands.add_parser("add", help="register a site, or add origins to it")
    site_add.add_argument("name", help="the site's name, as the snippet's data-site gives "
                          "it: [a-z0-9][a-z0-9_-]{0,62}")
    site_add.add_argument("--origin", action="append", default=[],
                          help="an origin allowed to send beacons, e.g. https://www.shop.fr "
                          "(repeatable); a site without origins accepts any")
    site_add.add_argument("--currency", default=None, metavar="CODE",
                          help="ISO 4217 code of the site's revenue (default: EUR)")
    site_add.set_defaults(func=cmd_site_add)
    site_remove = site_commands.add_parser(
        "remove", help="remove a site and all its data (beacons, page views, rollups, "
        "objectives, ingest counts)")
    site_remove.add_argument("name", help="the site's name")
    site_remove.add_argument("--yes", action="store_true",
                             help="needed when the site has data: it is deleted for good")
    site_remove.set_defaults(func=cmd_site_remove)

    maintain = commands.add_parser(
        "maintain", help="create tomorrow's partitions, roll up closed days, apply retention")
    maintain.set_defaults(func=cmd_maintain)

    report = commands.add_parser("report", help="print the shared scorecard")
    report.add_argument("--site", default=None, help="one site (default: every site)")
    report.add_argument("--days", type=int, default=28,
                        help="the last N UTC days, today included (default: 28)")
    report.set_defaults(func=cmd_report)

    objective = commands.add_parser(
        "objective", help="shared objectives: a target for a metric over the last 28 days")
    objective_commands = objective.add_subparsers(dest="objective_command", required=True)
    objective_add = objective_commands.add_parser(
        "add", help="add an objective: lcp_p75, inp_p75, cls_p75 at most TARGET; "
        "cwv_good_pct, conversion_rate at least TARGET")
    objective_add.add_argument("site", help="the site the objective is for")
    objective_add.add_argument("metric", help="lcp_p75, inp_p75, cls_p75, cwv_good_pct or "
                               "conversion_rate")
    objective_add.add_argument("target", help="ms for LCP and INP, a score for CLS, a "
                               "percentage (0-100) for the others")
    objective_add.add_argument("--name", default=None,
                               help="default: the site, metric and scope, e.g. shop-lcp_p75")
    objective_add.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="narrow to channel, utm_campaign, device_class, country, page_type, or "
        "landing=true (repeatable; all must hold)")
    objective_commands.add_parser(
        "list", help="the objectives with the value and status of their last check")
    objective_remove = objective_commands.add_parser("remove", help="remove an objective")
    objective_remove.add_argument("name", help="its name, as `binome objective list` "
                                  "shows it")
    objective_commands.add_parser(
        "check", help="recompute every objective and store its figures, post each change of "
        "status to "
        "BINOME_ALERT_WEBHOOK_URL; exit 1 when one is missed")
    objective.set_defaults(func=cmd_objective)

    dsn = commands.add_parser(
        "dsn", help="print a libpq connection string (URL) for psql, notebooks, BI tools; "
        "on the embedded PostgreSQL it names a 0600 password file, never a password")
    _add_login_options(dsn)
    dsn.set_defaults(func=cmd_dsn)

    psql = commands.add_parser(
        "psql", help="run this machine's psql on Binome's database (the embedded one runs "
        "while psql does)")
    _add_login_options(psql)
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="-- PSQL_ARGS",
                      help="arguments for psql after `--`, e.g. -- -c 'TABLE rum.site_daily'")
    psql.set_defaults(func=cmd_psql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Settings that refuse to guess (issue 24): a mistyped name is refused, not
    # ignored, so a default never stands in for what the operator meant.
    unknown = unknown_variables(os.environ, also_known=[db.MIGRATION_DEFERRED_ENV])
    for line in unknown:
        print(f"binome: {line}", file=sys.stderr)
    if unknown:
        return 2
    try:
        settings = get_settings()
    except ValidationError as exc:  # one line per bad setting, not pydantic's report
        for line in describe_errors(exc):
            print(f"binome: {line}", file=sys.stderr)
        return 2
    # One-shot commands answer on stdout and log only what goes wrong (issue 24:
    # every command printed lines about the embedded PostgreSQL and its migrations),
    # unless BINOME_LOG_LEVEL asks for more; `binome serve` logs at BINOME_LOG_LEVEL.
    quiet = args.command != "serve" and "log_level" not in settings.model_fields_set
    configure_logging("warning" if quiet else settings.log_level)
    if getattr(args, "host", None) is None and args.command == "serve":
        args.host = settings.host
    if getattr(args, "port", None) is None and args.command == "serve":
        args.port = settings.port
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error, not a traceback, for known failures
        from collector.embedded import EmbeddedPostgresError

        from collector.logins import LoginError

        if isinstance(exc, EmbeddedPostgresError | OSError | ConnectionError
                           | db.SchemaMismatchError | LoginError):
            print(f"binome: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
