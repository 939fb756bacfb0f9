"""docs/deploy.md's configuration table matches collector/settings.py."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from collector import PROJECT_ROOT
from collector.settings import (
    COMPANION_VARIABLES,
    Settings,
    describe_errors,
    unknown_variables,
)


def test_deploy_guide_documents_every_setting_and_no_other() -> None:
    guide = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(BINOME_[A-Z_]+)` \|", section, re.M))
    defined = {f"BINOME_{name.upper()}" for name in Settings.model_fields}
    assert documented == defined


def test_contract_settings_and_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.rate_limit_per_minute == 600
    assert settings.max_body_bytes == 64 * 1024
    assert settings.dashboard_token is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINOME_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("BINOME_DASHBOARD_TOKEN", "t" * 32)
    settings = Settings()
    assert settings.rate_limit_per_minute == 0 and settings.dashboard_token == "t" * 32


@pytest.mark.parametrize("name", ["dashboard_token", "metrics_token"])
def test_tokens_are_32_characters_or_none(name: str) -> None:
    """Issue 20: a short token is refused; an empty one (compose's unset
    variable) is no token."""
    with pytest.raises(ValidationError, match="shorter than 32 characters"):
        Settings(**{name: "t" * 31})
    assert getattr(Settings(**{name: ""}), name) is None
    assert getattr(Settings(**{name: "t" * 32}), name) == "t" * 32


def test_an_unknown_variable_names_the_closest_setting() -> None:
    """Issue 24: `BINOME_DATABSE_URL=... binome serve` served from the embedded
    PostgreSQL; the typo is now reported with the name meant."""
    [line] = unknown_variables({"BINOME_DATABSE_URL": "postgresql://db.internal/rum",
                                "BINOME_RATE_LIMIT_PER_MINUTE": "10", "PATH": "/bin"})
    assert line.startswith("BINOME_DATABSE_URL is not a setting")
    assert "did you mean BINOME_DATABASE_URL?" in line
    # pydantic-settings reads names case-insensitively, so a lower-case name is a setting.
    assert unknown_variables({"binome_rate_limit_per_minute": "10"}) == []
    [lower] = unknown_variables({"binome_rate_limit_per_minut": "10"})
    assert "did you mean BINOME_RATE_LIMIT_PER_MINUTE?" in lower
    [far] = unknown_variables({"BINOME_XYZZY": "1"})
    assert "no setting is named like it" in far


def test_names_of_the_projects_other_tools_are_not_reported() -> None:
    environ = {name: "x" for name in COMPANION_VARIABLES}
    assert unknown_variables(environ) == []
    assert unknown_variables({"BINOME_INTERNAL": "1"}, also_known=["BINOME_INTERNAL"]) == []


@pytest.mark.parametrize(("name", "value", "accepts"), [
    ("BINOME_RATE_LIMIT_PER_MINUTE", "lots", "it accepts a whole number, 0 or more"),
    ("BINOME_RATE_LIMIT_PER_MINUTE", "-1", "it accepts a whole number, 0 or more"),
    ("BINOME_MAX_BODY_BYTES", "0", "it accepts a whole number, above 0"),
    ("BINOME_STORE_AUTOMATED", "perhaps", "it accepts true or false"),
    ("BINOME_BODY_TIMEOUT_SECONDS", "soon", "it accepts a number, above 0"),
    ("BINOME_DASHBOARD_TOKEN", "t0k3n", "shorter than 32 characters"),
    ("BINOME_LOG_LEVEL", "loud", "it accepts debug, info, warning or error"),
    ("BINOME_PORT", "80000", "it accepts a whole number, 1 or more, at most 65535"),
])
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, accepts: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    [line] = describe_errors(refused.value)
    assert line.startswith(f"{name}: ") and accepts in line, line
    assert "\n" not in line
    if name.endswith("_TOKEN"):
        assert value not in line  # a secret is never repeated
