"""docs/deploy.md's configuration table matches collector/settings.py."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from collector import PROJECT_ROOT
from collector.settings import Settings


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
