"""``make run AWS=emulated``: the local stack against moto_server, with the production AWS paths on.

The API token's digest comes from Secrets Manager, DATABASE_URL and REDIS_URL
from SSM parameters, and a patient's notification leaves through SES and SNS:
moto's own API (``/moto-api/data.json``) lists what was "sent".
"""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from scripts.api_process import HOST, free_port
from scripts.process_tree import is_alive
from scripts.run_stack import startup_problem
from tests.helpers.patients import DISTINCTIVE_PATIENT
from tests.helpers.stack import Stack
from tests.helpers.waiting import wait_until

MOTO_DATA = re.compile(r"(http://127\.0\.0\.1:\d+)/moto-api/data\.json")


def sent(moto_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The emails SES and the text messages SNS recorded, from moto's own API."""
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json", timeout=10) as response:  # noqa: S310
        data = json.loads(response.read())
    return data["ses"]["Message"], data["sns"]["SMS"]


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    """``scripts.run_stack`` with AWS=emulated (NOT_ON_A_LAPTOP left out: it supplies them itself)."""
    return start_stack(workers=1, AWS="emulated")


def test_a_created_patient_is_notified_through_emulated_ses_and_sns(stack: Stack, tmp_path: Path) -> None:
    token_file = tmp_path / "data" / "emulated-aws-token"

    # GIVEN the stack started with AWS=emulated: it prints where moto shows what was sent
    def started() -> str | None:
        assert stack.process.poll() is None, stack.log_path.read_text(errors="replace")
        found = MOTO_DATA.search(stack.log_path.read_text(errors="replace"))
        return found.group(1) if found and token_file.exists() else None

    moto_url = wait_until(started, timeout=60, interval=0.2)
    token = token_file.read_text().strip()
    assert token_file.stat().st_mode & 0o077 == 0
    # (and where `make flower` finds the stack's Redis)
    assert (tmp_path / "data" / "redis-url").read_text().startswith("redis://")

    wait_until(lambda: stack.serving(token), timeout=60, interval=0.2)

    # WHEN a patient is created with the token whose digest is in Secrets Manager
    status, created = stack.call("POST", "/patients", DISTINCTIVE_PATIENT, token=token)

    # THEN the request is served (the database and Redis URLs came from SSM)
    assert status == 201, created
    # and the development token is refused: the digests are the secret's
    assert stack.call("GET", "/patients", token=DEVELOPMENT_TOKEN)[0] == 401
    # and the worker delivered through SES and SNS: moto lists the email and the text message
    reference = created["notification_id"]

    def delivered() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        emails, texts = sent(moto_url)
        return (emails, texts) if emails and texts else None

    emails, texts = wait_until(delivered, timeout=60, interval=0.3)
    (email,) = emails
    assert email["destinations"]["ToAddresses"] == [DISTINCTIVE_PATIENT["email"]]
    assert email["source"] == "notifications@example.com"
    assert reference in email["body"]
    (text,) = texts
    assert text["phone_number"] == "+14155550199"
    assert reference in text["message"]
    # and the notification is recorded as delivered
    wait_until(
        lambda: stack.call("GET", f"/notifications/{reference}", token=token)[1]["status"] == "delivered"
    )

    # WHEN the stack is told to stop
    started_pids = stack.processes()
    stack.process.send_signal(signal.SIGTERM)

    # THEN every process it started exits, moto_server stops answering and the token file is gone
    assert stack.process.wait(timeout=60) == 0
    wait_until(lambda: not any(is_alive(pid) for pid in started_pids), timeout=30)
    with pytest.raises(OSError):
        sent(moto_url)
    assert not token_file.exists() and not (tmp_path / "data" / "redis-url").exists()


def test_an_unknown_aws_mode_is_refused_in_one_line() -> None:
    # GIVEN AWS set to something other than "emulated"
    env = {"API_HOST": HOST, "API_PORT": str(free_port()), "AWS": "real"}

    # WHEN the stack checks what it was asked for
    problem = startup_problem(env)

    # THEN it refuses before starting anything, naming the one mode there is
    assert problem is not None and "AWS=emulated" in problem
