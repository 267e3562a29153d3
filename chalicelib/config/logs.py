"""Log settings, read apart from ``Settings``: a cold start that fails on its settings still logs why."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config.environment import ConfigurationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "console")


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    # The Lambda runtime already has a handler on the root logger, writing to the function's log stream.
    in_lambda: bool = False
    # "json" for machines (files, pipes, honcho, Lambda); "console" is one readable line for a person.
    format: str = "json"

    @property
    def console(self) -> bool:
        return self.format == "console"


def load_log_settings(env: Mapping[str, str], *, stdout_is_terminal: bool = False) -> LogSettings:
    """Read apart from ``Settings``: a cold start that fails on its settings still logs why, as JSON.

    LOG_FORMAT defaults to ``console`` on a terminal and ``json`` anywhere else.
    """
    level = (env.get("LOG_LEVEL") or LogSettings.level).strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    log_format = (env.get("LOG_FORMAT") or ("console" if stdout_is_terminal else "json")).strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    return LogSettings(level=level, in_lambda=bool(env.get("AWS_LAMBDA_FUNCTION_NAME")), format=log_format)


def get_log_settings() -> LogSettings:
    return load_log_settings(os.environ, stdout_is_terminal=sys.stdout.isatty())
