"""The Celery worker's settings: a prod worker serves no request, so it needs no token and reads none."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chalicelib.config.environment import WORKER_HANDLER
from chalicelib.config.settings import PROJECT_ROOT, load_settings

PROD_WORKER = {
    "APP_STAGE": "prod",
    "DATABASE_URL": "postgresql://worker@db.internal:5432/telehealth",
    "REDIS_URL": "rediss://:token@redis.internal:6379/0",
}


def test_a_prod_worker_needs_no_token_and_no_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.config import secrets

    def no_aws(reference: str, name: str) -> str:
        raise AssertionError(f"read {reference}")

    monkeypatch.setattr(secrets, "read_reference", no_aws)

    # API_TOKENS_SECRET_ID as the stage gives every function: the worker must not read it.
    env = {**PROD_WORKER, "API_TOKENS_SECRET_ID": "telehealth-api/prod/api-token-sha256"}
    settings = load_settings({**env, "_HANDLER": WORKER_HANDLER})

    assert (settings.serves_requests, settings.auth.token_digests, settings.auth.token_secret) == (
        False,
        (),
        None,
    )
    assert settings.redis_url == PROD_WORKER["REDIS_URL"]
    # The same environment read as the API's function's is refused: that one needs a token.
    with pytest.raises(Exception, match="API_TOKENS"):
        load_settings(PROD_WORKER)


def test_the_worker_app_starts_in_prod_without_a_token() -> None:
    # GIVEN the environment the ECS task gives the worker (no token, no idempotency key)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **PROD_WORKER}
    code = (
        "import local_worker; from chalicelib import bootstrap; s = bootstrap.settings();"
        " print(s.stage, s.serves_requests, s.auth.token_digests)"
    )

    # WHEN the worker's Celery app is imported, as `celery -A local_worker worker` does first
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )

    # THEN it reads its settings as the worker's
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["prod", "False", "()"]
