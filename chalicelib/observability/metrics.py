"""Metrics as CloudWatch Embedded Metric Format (EMF) lines on stdout: no network call, ever.

In Lambda, stdout goes to the function's log stream and CloudWatch turns each EMF line into
metrics; elsewhere (the worker's container, ``make run``) the line is there to read, and a log
shipper that speaks EMF (see docs/deployment.md) does the same. One line per invocation: a
request, a delivery attempt, a relay or purge run (``metrics_batch``); code inside it adds to
its batch with ``record``. Only metrics of ``metric_catalogue.METRICS`` can be written, and
dimension values are the batch's own (route template, status class) and Service.

Our own writer rather than a library's: Powertools' Metrics adds ~9 ms to a cold start of the
API's function (import and first flush, measured after the app's own imports) and
aws-embedded-metrics ~135 ms (it imports aiohttp); this module costs well under one. A line is
also a JSON log line (``logger``: ``telehealth.metrics``), so log readers can tell it apart; a
request's metrics ride on its access line instead (``telehealth.access``, ``take_for_json_line``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from chalicelib.config.metrics import MetricSettings, get_metric_settings
from chalicelib.observability.metric_catalogue import (
    AUDIT_UNAVAILABLE,
    AUTHORIZER_REFUSALS,
    DELIVERY_LATENCY,
    FORBIDDEN,
    IDEMPOTENCY_KEYS_PURGED,
    LATENCY,
    NOTIFICATIONS_DEAD_LETTERED,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATIONS_RETRIED,
    OLDEST_PENDING_AGE,
    OLDEST_QUEUED_AGE,
    QUEUE_LENGTH,
    RATE_LIMITED,
    RELAY_HANDED_OFF,
    REQUESTS,
    ROUTE,
    SERVER_ERRORS,
    SERVICE,
    STATUS_CLASS,
    Metric,
)

METRICS_LOGGER = "telehealth.metrics"
# EMF allows at most 100 values per metric in one line.
MAX_VALUES_PER_METRIC = 100
NO_VALUE = "none"

_current_batch: ContextVar[MetricsBatch | None] = ContextVar("metrics_batch", default=None)


class MetricsBatch:
    """The metrics of one invocation, written as one EMF line by ``flush``."""

    def __init__(self, dimensions: Mapping[str, str]) -> None:
        self.dimensions = dict(dimensions)
        self.values: dict[Metric, list[float]] = {}

    def add(self, metric: Metric, value: float = 1) -> None:
        values = self.values.setdefault(metric, [])
        if len(values) < MAX_VALUES_PER_METRIC:
            values.append(value)

    def emf(self, namespace: str, service: str, timestamp_ms: int) -> dict[str, Any]:
        """The EMF object: one directive per distinct dimension sets, then every member it names."""
        directives, named = _directives(namespace, tuple(self.values))
        line: dict[str, Any] = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}}
        for name in named:
            line[name] = service if name == SERVICE else self.dimensions.get(name, NO_VALUE)
        for metric, values in self.values.items():
            line[metric.name] = values[0] if len(values) == 1 else values
        return line

    def take_for_json_line(self) -> dict[str, Any]:
        """The batch as members of another JSON log line, emptied so that ``flush`` writes nothing.

        EMF needs only ``_aws`` and the members it names at the top of a JSON log line, so a
        request's access line carries its metrics: one line, one write, where two cost ~6% of a
        warm read. Nothing (``{}``) when metrics are off or log lines are not JSON (console).
        """
        settings = get_metric_settings()
        return self._take(settings) if settings.json_log_lines else {}

    def flush(self) -> None:
        """Write the batch as one line on stdout (nothing when it is empty or metrics are off)."""
        members = self._take(get_metric_settings())
        if not members:
            return
        line = {**members, "message": "metrics", "logger": METRICS_LOGGER}
        stream = sys.stdout
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()

    def _take(self, settings: MetricSettings) -> dict[str, Any]:
        """The batch's EMF members, and the batch emptied; ``{}`` when it is empty or metrics are off."""
        if not self.values or not settings.enabled:
            return {}
        members = self.emf(settings.namespace, settings.service, int(time.time() * 1000))
        self.values = {}
        return members


@lru_cache(maxsize=64)
def _directives(namespace: str, metrics: tuple[Metric, ...]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The ``CloudWatchMetrics`` directives for these metrics, and the dimension names they use.

    Built once per combination (a request writes one of a handful): serialized, never changed.
    """
    grouped: dict[tuple[tuple[str, ...], ...], list[Metric]] = {}
    for metric in metrics:
        grouped.setdefault(metric.dimension_sets, []).append(metric)
    directives = [
        {
            "Namespace": namespace,
            "Dimensions": [list(names) for names in dimension_sets],
            "Metrics": [{"Name": m.name, "Unit": m.unit} for m in grouped_metrics],
        }
        for dimension_sets, grouped_metrics in grouped.items()
    ]
    named = sorted({name for dimension_sets in grouped for names in dimension_sets for name in names})
    return directives, tuple(named)


@contextmanager
def metrics_batch(**dimensions: str) -> Iterator[MetricsBatch]:
    """Collect what is recorded inside into one batch, written as one line at the end."""
    batch = MetricsBatch(dimensions)
    token = _current_batch.set(batch)
    try:
        yield batch
    finally:
        _current_batch.reset(token)
        batch.flush()


def record(metric: Metric, value: float = 1) -> None:
    """Add to the current invocation's batch; outside one, write a line of its own."""
    batch = _current_batch.get()
    if batch is not None:
        batch.add(metric, value)
        return
    with metrics_batch() as own:
        own.add(metric, value)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else NO_VALUE


def record_request(batch: MetricsBatch, route: str | None, status: int, duration_ms: float) -> None:
    """What every answer of the API's function counts, by its route template and status class."""
    batch.dimensions[ROUTE] = route or NO_VALUE
    batch.dimensions[STATUS_CLASS] = status_class(status)
    batch.add(REQUESTS)
    batch.add(LATENCY, duration_ms)
    if status >= 500:
        batch.add(SERVER_ERRORS)
    elif status == 403:
        batch.add(FORBIDDEN)
    elif status == 429:
        batch.add(RATE_LIMITED)


def record_audit_unavailable() -> None:
    """A 503 instead of an answer whose audit row could not be written (inside the request's batch)."""
    record(AUDIT_UNAVAILABLE)


def record_authorizer_refusal() -> None:
    record(AUTHORIZER_REFUSALS)


def record_delivered(commit_to_delivered_ms: float) -> None:
    record(NOTIFICATIONS_DELIVERED)
    record(DELIVERY_LATENCY, max(0.0, commit_to_delivered_ms))


def record_delivery_failure(*, final: bool) -> None:
    record(NOTIFICATIONS_DEAD_LETTERED if final else NOTIFICATIONS_RETRIED)


def record_relay_run(
    handed_off: int,
    oldest_pending_age_seconds: float | None,
    *,
    oldest_queued_age_seconds: float | None = None,
    queue_length: int | None = None,
) -> None:
    """One line per relay run: how many it handed off, the oldest pending and queued notifications'
    ages (0 when there is none, so the alarms on them always have data) and the worker's queue
    length (none when unknown: a made-up 0 would scale the worker service in)."""
    with metrics_batch() as batch:
        batch.add(RELAY_HANDED_OFF, handed_off)
        batch.add(OLDEST_PENDING_AGE, oldest_pending_age_seconds or 0.0)
        batch.add(OLDEST_QUEUED_AGE, oldest_queued_age_seconds or 0.0)
        if queue_length is not None:
            batch.add(QUEUE_LENGTH, queue_length)


def record_purge_run(idempotency_keys_purged: int) -> None:
    record(IDEMPOTENCY_KEYS_PURGED, idempotency_keys_purged)
