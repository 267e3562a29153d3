"""The EMF writer: every declared metric has a way to be written, each line is valid EMF, and
the settings fail closed."""

from __future__ import annotations

import pytest

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.metrics import load_metric_settings
from chalicelib.observability import metrics
from chalicelib.observability.metric_catalogue import METRICS, SERVICE
from tests.helpers.metrics import emf_lines, emf_problems, emitted_metrics


def test_every_declared_metric_is_written_by_a_record_function(
    metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN each recording function runs, as the middleware, authorizer, worker and schedules call them
    for status in (200, 403, 429, 503):
        with metrics.metrics_batch() as batch:
            if status == 503:
                metrics.record_audit_unavailable()
            metrics.record_request(batch, "/patients/{patient_id}", status, 1.5)
    metrics.record_authorizer_refusal()
    with metrics.metrics_batch():
        metrics.record_delivered(12.5)
    metrics.record_delivery_failure(final=False)
    metrics.record_delivery_failure(final=True)
    metrics.record_relay_run(3, None, oldest_queued_age_seconds=12.5, queue_length=4)
    metrics.record_purge_run(7)

    # THEN every line is valid EMF, and together they write each metric of the catalogue
    lines = emf_lines(capsys.readouterr().out)
    assert len(lines) == 10
    assert [problem for line in lines for problem in emf_problems(line)] == []
    assert set(emitted_metrics(lines)) == {metric.name for metric in METRICS}
    assert {line[SERVICE] for line in lines} == {"telehealth-api-dev"}


def test_a_batch_is_one_line_with_a_directive_per_dimension_sets(
    metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with metrics.metrics_batch() as batch:
        metrics.record_request(batch, "/patients", 500, 3.0)
        metrics.record_request(batch, "/patients", 500, 4.0)  # a second value: an array, as EMF allows

    (line,) = emf_lines(capsys.readouterr().out)
    assert emf_problems(line) == []
    assert line["Requests"] == [1, 1] and line["Latency"] == [3.0, 4.0]
    dimension_sets = sorted(str(d["Dimensions"]) for d in line["_aws"]["CloudWatchMetrics"])
    assert dimension_sets == sorted(
        str(sets)
        for sets in (
            [["Service"]],
            [["Service"], ["Service", "Route"]],
            [["Service"], ["Service", "Route", "StatusClass"]],
        )
    )
    assert isinstance(line["_aws"]["Timestamp"], int)


def test_nothing_recorded_writes_nothing(metrics_on: None, capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.metrics_batch():
        pass

    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("env", "console", "expected"),
    [
        ({"APP_STAGE": "prod"}, False, ("emf", "TelehealthApi", "telehealth-api-prod")),
        ({"APP_STAGE": "dev"}, True, ("off", "TelehealthApi", "telehealth-api-dev")),
        ({"METRICS": "emf", "METRICS_SERVICE": "clinic-a"}, True, ("emf", "TelehealthApi", "clinic-a")),
        (
            {"METRICS": "OFF", "METRICS_NAMESPACE": "Clinic/Api"},
            False,
            ("off", "Clinic/Api", "telehealth-api"),
        ),
    ],
)
def test_settings_default_to_emf_except_on_a_console(
    env: dict[str, str], console: bool, expected: tuple[str, str, str]
) -> None:
    settings = load_metric_settings(env, console_logs=console)

    assert (settings.mode, settings.namespace, settings.service) == expected


@pytest.mark.parametrize(
    "env", [{"METRICS": "statsd"}, {"METRICS_SERVICE": "a\nb"}, {"METRICS_NAMESPACE": " "}]
)
def test_bad_metric_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        load_metric_settings(env)


VALID_DIRECTIVE = {
    "Namespace": "TelehealthApi",
    "Dimensions": [["Service", "Route"]],
    "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}],
}
VALID_EMF = {
    "_aws": {"Timestamp": 1796052676340, "CloudWatchMetrics": [VALID_DIRECTIVE]},
    "Service": "telehealth-api-dev",
    "Route": "/patients",
    "Requests": 1,
    "Latency": [1.5, 2.5],
}


def directive_with(**changes: object) -> dict[str, object]:
    return {**VALID_DIRECTIVE, **changes}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"_aws": {"CloudWatchMetrics": []}}, "'Timestamp' is a required property"),
        ({"_aws": {"Timestamp": "now", "CloudWatchMetrics": []}}, "'now' is not of type 'integer'"),
        (
            {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive_with(Namespace="")]}},
            "should be non-empty",
        ),
        (
            {
                "_aws": {
                    "Timestamp": 1,
                    "CloudWatchMetrics": [directive_with(Metrics=[{"Name": "Requests", "Unit": "ms"}])],
                }
            },
            "'ms' is not one of",
        ),
        ({"Route": 7}, "dimension Route is not a top-level string member"),
        ({"Requests": "1"}, "metric Requests is not a top-level number or list of numbers"),
        ({"Requests": True}, "metric Requests is not a top-level number or list of numbers"),
        ({"Latency": list(range(101))}, "metric Latency is not a top-level number or list of numbers"),
    ],
)
def test_the_emf_check_the_suite_relies_on_refuses_what_the_specification_does(
    change: dict[str, object], problem: str
) -> None:
    # The tests above and the API's, worker's and schedules' metrics tests pass when emf_problems
    # finds nothing: it must find these. A valid line has no problem.
    assert emf_problems(VALID_EMF) == []
    problems = emf_problems({**VALID_EMF, **change})
    assert any(problem in found for found in problems), problems
