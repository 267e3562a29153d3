"""Local data for the developer only, and no local server on the network with the published token."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_server.exposure import chalice_local_host, exposure_problem, is_loopback_host
from local_server.private_data import keep_private
from scripts.run_stack import exposure_of
from tests.helpers.environment import configure_environment, load_dev_settings

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - the host these tests expect refused


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def restored_umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_a_fresh_data_dir_is_created_owner_only_and_so_is_what_is_written_in_it(
    tmp_path: Path, restored_umask: None
) -> None:
    data_dir = tmp_path / "fresh" / "data"

    keep_private(data_dir)
    (data_dir / "telehealth.db").write_text("")

    assert mode(data_dir) == 0o700
    assert mode(data_dir / "telehealth.db") == 0o600


def test_an_existing_data_dir_gets_its_modes_fixed(tmp_path: Path, restored_umask: None) -> None:
    # GIVEN a data dir made under the usual umask: readable by every user of the machine
    data_dir = tmp_path / "data"
    (data_dir / "old").mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    for name in ("telehealth.db", "telehealth.db-wal", "telehealth.db-shm", "old/notes"):
        (data_dir / name).write_text("")
        (data_dir / name).chmod(0o644)

    # WHEN a local server or the stack starts on it
    keep_private(data_dir)

    # THEN the directories are 0700 and every file 0600
    assert [mode(data_dir), mode(data_dir / "old")] == [0o700, 0o700]
    assert {mode(path) for path in data_dir.rglob("*") if path.is_file()} == {0o600}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", [EVERY_ADDRESS, "", "::", "192.168.1.20", "example.com", "localhost.example"]
)
def test_hosts_beyond_this_machine(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("argv", "host"),
    [
        (["chalice", "local"], "127.0.0.1"),
        (["chalice", "local", "--host", EVERY_ADDRESS, "--port", "8000"], EVERY_ADDRESS),
        (["chalice", "--project-dir", ".", "local", f"--host={EVERY_ADDRESS}"], EVERY_ADDRESS),
    ],
)
def test_the_host_of_a_chalice_local_command_line(argv: list[str], host: str) -> None:
    assert chalice_local_host(argv) == host


def test_a_host_beyond_this_machine_is_refused_while_the_development_token_is_accepted() -> None:
    development = load_dev_settings({}).auth

    problem = exposure_problem(EVERY_ADDRESS, development)

    assert problem is not None and "\n" not in problem
    assert "API_HOST" in problem and "API_TOKENS" in problem
    assert exposure_problem("127.0.0.1", development) is None


def test_a_host_beyond_this_machine_is_served_with_tokens_of_ones_own() -> None:
    own = load_dev_settings({"API_TOKENS": "clinic:a-token-of-our-own"}).auth

    assert exposure_problem(EVERY_ADDRESS, own) is None


def test_make_run_refuses_api_host_with_the_development_token(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_environment(monkeypatch)
    problem = exposure_of({"API_HOST": EVERY_ADDRESS})
    assert problem is not None and "API_HOST" in problem and "API_TOKENS" in problem

    configure_environment(monkeypatch, API_TOKENS="clinic:a-token-of-our-own")
    assert exposure_of({"API_HOST": EVERY_ADDRESS}) is None
    # AWS=emulated: the API accepts only the emulated secret's token
    configure_environment(monkeypatch)
    assert exposure_of({"API_HOST": EVERY_ADDRESS, "AWS": "emulated"}) is None
