"""``make run | python -m scripts.read_metrics``: the stack's EMF lines, as a person reads them."""

from __future__ import annotations

import json

from chalicelib.observability.metric_catalogue import DELIVERY_LATENCY, NOTIFICATIONS_DELIVERED
from chalicelib.observability.metrics import MetricsBatch, record_request
from scripts.read_metrics import read


def emf_line(batch: MetricsBatch) -> str:
    """The line the metrics writer prints for ``batch``."""
    return json.dumps(batch.emf("TelehealthApi", "telehealth-api-dev", 1796052676340), separators=(",", ":"))


def test_each_emf_line_of_the_stack_becomes_one_short_line_and_the_rest_is_dropped() -> None:
    # GIVEN the stack's output: honcho's prefixes, a log line, a request's and a delivery's EMF lines
    request = MetricsBatch({})
    record_request(request, "/patients/{id}", 200, 12.5)
    delivery = MetricsBatch({})
    delivery.add(NOTIFICATIONS_DELIVERED)
    delivery.add(DELIVERY_LATENCY, 581.27)
    output = [
        '15:31:16 api.1    | {"message": "request", "logger": "telehealth.access", "status": 200}\n',
        f"15:31:16 api.1    | {emf_line(request)}\n",
        "15:31:16 worker.1 | -------------- celery@host v5.7.0\n",
        f"15:31:17 worker.1 | {emf_line(delivery)}\n",
    ]

    # WHEN it is read
    shown = list(read(output))

    # THEN one line per EMF line: the process, the dimensions but the common Service, values with units
    assert shown == [
        "15:31:16 api.1      Route=/patients/{id} StatusClass=2xx  Requests=1  Latency=12.5 ms",
        "15:31:17 worker.1   NotificationsDelivered=1  DeliveryLatency=581.27 ms",
    ]
    # and with --all the other lines pass through unchanged
    assert len(list(read(output, everything=True))) == len(output)


def test_a_bare_emf_line_as_lambda_prints_it_is_read_too() -> None:
    # GIVEN an EMF line without honcho's prefix
    batch = MetricsBatch({})
    batch.add(NOTIFICATIONS_DELIVERED)

    # WHEN read THEN shown without a process name
    assert list(read([emf_line(batch)])) == ["NotificationsDelivered=1"]
