"""Settings and the process environment a test runs under."""

from __future__ import annotations

import os

import pytest

from chalicelib.bootstrap import reset_for_tests
from chalicelib.config.settings import Settings, load_settings


def load_dev_settings(env: dict[str, str]) -> Settings:
    """``load_settings`` under the dev stage, unless ``env`` names another: APP_STAGE has no default."""
    return load_settings({"APP_STAGE": "dev", **env})


def configure_environment(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Point the process's settings at ``env`` (APP_STAGE dev unless given); forget cached engines."""
    for key in ("DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in os.environ:
        if key.startswith(("NOTIFY_", "REDIS_")):
            monkeypatch.delenv(key, raising=False)
    for key, value in {"APP_STAGE": "dev", **env}.items():
        monkeypatch.setenv(key, value)
    reset_for_tests()
