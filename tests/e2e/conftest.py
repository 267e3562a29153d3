"""The local stack's fixture, shared by the tests of ``make run`` and ``make run AWS=emulated``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.api_process import free_port
from tests.helpers.stack import RUN_STACK, Stack, stack_env


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``start_stack(command, workers=2, **settings)`` runs the stack on a free port with its data
    under ``tmp_path``; whatever is left of it is killed afterwards."""
    stacks: list[Stack] = []

    def start(command: list[str] = RUN_STACK, workers: int = 2, **settings: str) -> Stack:
        env = stack_env(tmp_path, free_port(), workers, **settings)
        stacks.append(Stack(command, env, tmp_path / "stack.log"))
        return stacks[-1]

    yield start
    for stack in stacks:
        stack.kill()
