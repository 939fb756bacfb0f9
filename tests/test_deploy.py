"""Dockerfile and docker-compose.yml, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from collector import PROJECT_ROOT
from collector.proxies import untrusted_hops_problem
from collector.settings import Settings


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_copies_what_exists_and_runs_binome_unprivileged() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM" and "python:3.1" in instructions[0][1]
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _dest = shlex.split(rest)
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), f"COPY {source}: not in the repo"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = next(rest for keyword, rest in reversed(instructions) if keyword == "CMD")
    assert cmd.startswith('["binome", "serve"')
    expose = [rest for keyword, rest in instructions if keyword == "EXPOSE"]
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert expose == ["8000"] and "BINOME_PORT=8000" in env and "BINOME_HOST=0.0.0.0" in env
    known = {f"BINOME_{name.upper()}" for name in Settings.model_fields}
    assert set(re.findall(r"BINOME_[A-Z_]+", env)) <= known


def test_compose_runs_postgres_16_and_the_collector_once_healthy() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres, collector = services["postgres"], services["collector"]
    assert postgres["image"].startswith("postgres:16")
    volume = postgres["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert collector["build"] == "."
    assert collector["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = collector["environment"]["BINOME_DATABASE_URL"]
    assert "@postgres:5432/" in url
    database = postgres["environment"]["POSTGRES_DB"]
    assert url.startswith("postgresql://binome_writer:") and url.endswith(f"/{database}")
    known = {f"BINOME_{name.upper()}" for name in Settings.model_fields}
    assert set(collector["environment"]) <= known


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(
        (PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_compose_has_no_default_password_and_least_privileged_services() -> None:
    """Issue 20: the owner migrates in a one-shot service; the collector serves as
    binome_writer once it is done, retention runs as binome_maintainer, the dashboard
    and Grafana read as binome_analyst; every secret is required, none defaulted."""
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    services = compose_services()
    secrets_ = ("POSTGRES_PASSWORD", "BINOME_WRITER_PASSWORD", "BINOME_MAINTAINER_PASSWORD",
                "BINOME_ANALYST_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
    for name in secrets_:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(use == f":?set {name}" for use in uses), (name, uses)
    # Any variable naming a password, secret or token has no default.
    for name, rest in re.findall(r"\$\{([A-Z_]*(?:PASSWORD|SECRET)[A-Z_]*)([^}]*)\}", text):
        assert rest.startswith(":?"), name
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert all(re.search(rf"^{name}=$", example, re.MULTILINE) for name in secrets_)

    migrate, roles = services["migrate"], services["roles"]
    assert migrate["command"] == ["binome", "migrate"] and migrate["build"] == "."
    assert migrate["environment"]["BINOME_DATABASE_URL"].startswith("postgresql://binome:")
    assert migrate["restart"] == "no" and roles["restart"] == "no"
    assert roles["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/roles.sql" in roles["command"]
    roles_sql = (PROJECT_ROOT / "deploy" / "roles.sql").read_text()
    for role in ("writer", "maintainer", "analyst"):
        assert f"ALTER ROLE binome_{role} LOGIN PASSWORD :'{role}_password'" in roles_sql
        assert f"\\getenv {role}_password BINOME_{role.upper()}_PASSWORD" in roles_sql
        assert f"BINOME_{role.upper()}_PASSWORD" in roles["environment"]

    collector = services["collector"]
    env = collector["environment"]
    assert "BINOME_MIGRATION_DATABASE_URL" not in env
    assert "postgresql://binome:" not in str(env)
    users = {key: urlsplit(re.sub(r"\$\{[^}]*\}", "secret", env[key])).username
             for key in ("BINOME_DATABASE_URL", "BINOME_MAINTENANCE_DATABASE_URL",
                         "BINOME_DASHBOARD_DATABASE_URL")}
    assert users == {"BINOME_DATABASE_URL": "binome_writer",
                     "BINOME_MAINTENANCE_DATABASE_URL": "binome_maintainer",
                     "BINOME_DASHBOARD_DATABASE_URL": "binome_analyst"}
    for step in ("migrate", "roles"):
        assert collector["depends_on"][step]["condition"] == "service_completed_successfully"
    grafana = services["grafana"]
    assert grafana["depends_on"]["roles"]["condition"] == "service_completed_successfully"
    datasources = yaml.safe_load(
        (PROJECT_ROOT / "grafana" / "provisioning" / "datasources" / "binome.yml").read_text())
    postgres_source = next(d for d in datasources["datasources"] if d["uid"] == "binome-postgres")
    assert postgres_source["user"] == "binome_analyst"
    variable = postgres_source["secureJsonData"]["password"].lstrip("$")
    assert variable in grafana["environment"]


def caddyfile_directives() -> list[list[str]]:
    """Each line of deploy/Caddyfile as words, comments dropped."""
    text = (PROJECT_ROOT / "deploy" / "Caddyfile").read_text()
    return [line.split("#", 1)[0].split() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def test_compose_puts_the_proxy_in_front_and_the_collector_out_of_reach() -> None:
    services = compose_services()
    proxy, collector = services["proxy"], services["collector"]
    assert proxy["image"].startswith("caddy:2")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "443:443" in proxy["ports"]
    assert proxy["depends_on"]["collector"]["condition"] == "service_healthy"
    assert "ports" not in collector, "the collector is reached only through the proxy"
    # The collector keys its rate limit on the address the proxy forwards.
    env = collector["environment"]
    assert env["BINOME_TRUSTED_PROXY_HEADER"].lower() == "x-forwarded-for"
    # ... believed from the proxy's fixed address only: binome serve refuses a
    # forwarded header from any peer on a non-loopback bind (issue 20).
    proxy_address = proxy["networks"]["default"]["ipv4_address"]
    assert env["BINOME_TRUSTED_PROXIES"] == f"{proxy_address}/32"
    assert untrusted_hops_problem(env["BINOME_TRUSTED_PROXY_HEADER"],
                                  env["BINOME_TRUSTED_PROXIES"], "0.0.0.0") is None


def test_prometheus_scrapes_metrics_with_the_collectors_token() -> None:
    services = compose_services()
    env = services["collector"]["environment"]
    assert env["BINOME_METRICS_TOKEN"].startswith("${BINOME_METRICS_TOKEN:?")
    assert env["BINOME_DASHBOARD_TOKEN"].startswith("${BINOME_DASHBOARD_TOKEN:?")
    assert "binome_metrics_token" in services["prometheus"]["secrets"]
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    assert compose["secrets"]["binome_metrics_token"] == {"environment": "BINOME_METRICS_TOKEN"}
    scrape = yaml.safe_load((PROJECT_ROOT / "prometheus" / "prometheus.yml").read_text())
    credentials = scrape["scrape_configs"][0]["authorization"]["credentials_file"]
    assert credentials == "/run/secrets/binome_metrics_token"


def test_the_proxy_bounds_slow_and_greedy_clients() -> None:
    """The collector leaves header time and size to the proxy (SECURITY.md)."""
    lines = caddyfile_directives()
    options = {words[0]: words[1] for words in lines if len(words) == 2}
    for timeout in ("read_header", "read_body"):
        assert re.fullmatch(r"\d+s", options[timeout]) and int(options[timeout][:-1]) <= 10
    assert options["max_header_size"] == "32KiB"
    assert "max_size" in options
    assert ["reverse_proxy", "collector:8000"] in lines
    # Caddy sets X-Forwarded-For itself; a header_up rewriting it would let clients
    # choose the address the rate limit sees.
    assert not any(words[0] == "header_up" for words in lines)


def test_caddy_accepts_the_caddyfile(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        if os.environ.get("CI"):
            pytest.fail("caddy is not installed (.ci/run installs it)")
        pytest.skip("caddy is not installed (apt-get install caddy)")
    # Caddy writes its local CA under HOME while it checks the site's TLS.
    result = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile",
         "--config", str(PROJECT_ROOT / "deploy" / "Caddyfile")],
        env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
             "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_compose_gives_postgres_room_for_parallel_queries() -> None:
    """Docker's default /dev/shm (64 MB) is smaller than what one parallel hash
    join may take at the work_mem the README gives analysts (64 MB per worker)."""
    postgres = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())[
        "services"]["postgres"]
    size = re.fullmatch(r"(\d+)([kmg])b?", str(postgres.get("shm_size", "")).lower())
    assert size, "the postgres service sets no shm_size"
    assert int(size[1]) * {"k": 2**10, "m": 2**20, "g": 2**30}[size[2]] >= 256 * 2**20


def test_ci_script_is_executable() -> None:
    ci = PROJECT_ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111
    text = ci.read_text()
    assert "make test" in text and "BINOME_DATABASE_URL" in text and "chromium" in text


def test_makefile_has_the_two_commands() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert Path(PROJECT_ROOT / "README.md").read_text().count("make run") >= 1


def locked_versions() -> dict[str, str]:
    """requirements.lock's pins: canonical name -> version, each pin with its hashes."""
    from packaging.utils import canonicalize_name

    text = re.sub(r"\\\n", " ", (PROJECT_ROOT / "requirements.lock").read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)",
                                 line)
            assert match, f"requirements.lock: not a pin with hashes: {line[:80]}"
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_the_image_installs_pinned_dependencies_covering_pyproject() -> None:
    """Pin what is deployed (issue 20): every runtime dependency of pyproject.toml (and
    its extras) is in requirements.lock at a version it allows, and the Dockerfile
    installs from the lock with --require-hashes, the project itself with --no-deps."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = locked_versions()
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
    assert {"uvloop", "httptools", "ua-parser-rs"} <= set(pins)  # the extras' packages
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert "pip install --require-hashes --no-deps -r requirements.lock" in runs
    assert "pip install -e ." not in runs and "pip install --no-deps -e ." in runs


def test_the_ci_audit_fails_on_advisories_and_on_unaudited_dependencies() -> None:
    """.ci/run's audit step (scripts/audit_verdict.py on pip-audit's JSON report): an
    advisory fails it, so does a dependency left unaudited; only an advisory source
    out of reach for every dependency is a loud 'NOT RUN' (issue 20)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "audit_verdict", PROJECT_ROOT / "scripts" / "audit_verdict.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    clean = {"name": "orjson", "version": "3.10.0", "vulns": []}
    vulnerable = {"name": "starlette", "version": "0.1", "vulns": [{"id": "PYSEC-1"}]}
    skipped = {"name": "asyncpg", "skip_reason": "Dependency not found on PyPI"}
    assert module.verdict({"dependencies": [clean]}, 0)[0] == 0
    code, message = module.verdict({"dependencies": [clean, vulnerable]}, 1)
    assert code == 1 and "PYSEC-1" in message
    assert module.verdict({"dependencies": [clean, skipped]}, 0)[0] == 1
    assert module.verdict({"dependencies": []}, 0)[0] == 1
    code, message = module.verdict({"dependencies": [skipped]}, 0)
    assert code == 0 and "NOT RUN" in message
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "pip-audit" in ci and "-r requirements.lock" in ci
    assert "scripts/audit_verdict.py" in ci and "BINOME_AUDIT_REQUIRED" in ci


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out of the build context (its patterns
    here: a name at the root, or **/name anywhere)."""
    parts = Path(path).parts
    return any(fnmatch.fnmatch(parts[0], pattern) if not pattern.startswith("**/")
               else any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
               for pattern in patterns)


def test_the_image_ships_no_demo_and_no_local_state() -> None:
    """Issue 24: the demo shop is for `make run`; an image has none (without it,
    `binome serve` serves nothing at `/`). The embedded PostgreSQL's data never
    enters the build context."""
    patterns = [line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = [source for keyword, rest in dockerfile_instructions() if keyword == "COPY"
               for source in shlex.split(rest)[:-1] if not source.startswith("--")]
    assert sources
    for source in sources:
        assert source not in (".", "./") and not source.startswith("demo"), source
        assert not _docker_ignored(source, patterns), f"COPY {source}: .dockerignore leaves it out"
    for left_out in ("demo", "demo/index.html", ".binome", ".venv", "dashboard/node_modules"):
        assert _docker_ignored(left_out, patterns), left_out
