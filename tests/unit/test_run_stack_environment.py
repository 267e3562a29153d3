"""`make run`'s environment: the seed's delivery drill is on there, and only there, unless the shell says."""

from __future__ import annotations

from scripts.run_stack import stack_environment


def test_make_run_turns_the_seeds_failure_drill_on() -> None:
    assert stack_environment({})["NOTIFY_FAILURE_RATE"] == "0.25"


def test_the_shell_may_turn_it_off() -> None:
    assert stack_environment({"NOTIFY_FAILURE_RATE": "0"})["NOTIFY_FAILURE_RATE"] == "0"
