"""Metric settings (METRICS, METRICS_NAMESPACE, METRICS_SERVICE), read apart from ``Settings``.

Apart, like the log settings: the authorizer's function never loads ``Settings``, a cold start
that fails on its settings has nothing to count, and the deployment templates read the same
defaults to name the metrics their alarms watch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.logs import get_log_settings
from chalicelib.config.process_cache import process_cache

# "emf": one CloudWatch Embedded Metric Format line per invocation on stdout; "off": none.
METRIC_MODES = ("emf", "off")
DEFAULT_NAMESPACE = "TelehealthApi"
APP_NAME = "telehealth-api"


# A NamedTuple, not a dataclass: every cold start builds this class, and a frozen dataclass costs ~10x more.
class MetricSettings(NamedTuple):
    mode: str = "emf"
    namespace: str = DEFAULT_NAMESPACE
    # The Service dimension of every metric: the API's functions and the worker of one stage share it.
    service: str = APP_NAME
    # Log lines are JSON objects, so a request's metrics can ride on its access line.
    json_log_lines: bool = True

    @property
    def enabled(self) -> bool:
        return self.mode == "emf"


def default_service(stage: str | None) -> str:
    """``telehealth-api-<stage>``: what the functions and the worker of a stage report as Service."""
    return f"{APP_NAME}-{stage}" if stage else APP_NAME


def load_metric_settings(env: Mapping[str, str], *, console_logs: bool = False) -> MetricSettings:
    """METRICS defaults to ``emf``, and to ``off`` with console logs (a person at a terminal reads the
    access and delivery lines, which say the same). Raises ConfigurationError."""
    mode = (env.get("METRICS") or ("off" if console_logs else "emf")).strip().lower()
    if mode not in METRIC_MODES:
        raise ConfigurationError(f"METRICS must be one of {', '.join(METRIC_MODES)}")
    namespace = (env.get("METRICS_NAMESPACE") or DEFAULT_NAMESPACE).strip()
    service = (env.get("METRICS_SERVICE") or default_service(env.get("APP_STAGE"))).strip()
    for name, value in (("METRICS_NAMESPACE", namespace), ("METRICS_SERVICE", service)):
        # CloudWatch's limits on a namespace and a dimension value; printable ASCII only.
        if not (0 < len(value) <= 255 and value.isascii() and value.isprintable()) or value.startswith(":"):
            raise ConfigurationError(f"{name} must be 1-255 printable ASCII characters")
    return MetricSettings(mode=mode, namespace=namespace, service=service, json_log_lines=not console_logs)


@process_cache()
def get_metric_settings() -> MetricSettings:
    """The process's metric settings, read once."""
    return load_metric_settings(os.environ, console_logs=get_log_settings().console)
