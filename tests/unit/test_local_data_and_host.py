"""Local data for the developer only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_server.private_data import keep_private


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
