"""Which command started this process: plain ``chalice local`` wires the local server from app.py."""

from __future__ import annotations

import pytest

from chalicelib.http.startup import chalice_command_in, started_as_chalice_local


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/clone/.venv/bin/chalice", "local", "--port", "8742"], "local"),
        (["chalice", "--project-dir", "/clone", "--debug", "local"], "local"),
        (["chalice", "package", "--stage", "prod", "out"], "package"),
        (["/clone/local_server/keep_alive.py", "--port", "8742"], None),  # python -m scripts.local_api
        (["/var/runtime/bootstrap.py"], None),
        ([], None),
    ],
)
def test_the_chalice_command_is_read_from_the_command_line(argv: list[str], command: str | None) -> None:
    assert chalice_command_in(argv) == command


def test_only_chalice_s_cli_mode_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN chalice local's command line; the autoreload child has it too, in every thread
    monkeypatch.setattr("sys.argv", ["/clone/.venv/bin/chalice", "local"])

    monkeypatch.delenv("AWS_CHALICE_CLI_MODE", raising=False)
    assert not started_as_chalice_local()
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    assert started_as_chalice_local()


def test_the_test_client_gets_the_gateway_emulation_and_nothing_else_of_the_local_server() -> None:
    import threading

    from chalice import local
    from chalice.test import Client

    from app import app

    # WHEN the suite's in-process client serves the app (tests/conftest.py installed the emulation)
    with Client(app, stage_name="dev") as client:
        refused = client.http.get("/patients")

    # THEN the gateway answers as ours, but no schedule timer runs and chalice's handler is its own
    assert refused.status_code == 401 and refused.json_body["code"] == "unauthorized"
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("schedule-")]
    assert "log_message" not in vars(local.ChaliceRequestHandler)
