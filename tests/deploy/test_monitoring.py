"""Alarms, their SNS topic and the dashboard in ``make package``'s SAM template and Terraform
configuration: built from the metric catalogue the code emits through, so an alarm cannot watch a
metric nobody writes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.config.metrics import load_metric_settings
from chalicelib.http.schedules import rate_every
from chalicelib.observability.metric_catalogue import METRICS
from deploy.monitoring import LAMBDA_NAMESPACE, THRESHOLDS, schedule_seconds
from deploy.worker_service import CONTAINER_INSIGHTS, Names

WORKER = Names("telehealth-api-prod")

DECLARED = {metric.name: metric for metric in METRICS}
SAM_ALARM = "AWS::CloudWatch::Alarm"


def sam_alarms(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm name -> its properties."""
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in sam["Resources"].values()
        if r["Type"] == SAM_ALARM
    }


def sam_function_names(sam: dict[str, Any]) -> dict[str, str]:
    """Function name -> handler."""
    return {
        r["Properties"]["FunctionName"]: r["Properties"]["Handler"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }


def sam_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """(namespace, metric name, dimensions, stat) of each metric an alarm reads."""
    return [
        (
            query["MetricStat"]["Metric"]["Namespace"],
            query["MetricStat"]["Metric"]["MetricName"],
            {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]},
            query["MetricStat"]["Stat"],
        )
        for query in alarm["Metrics"]
        if "MetricStat" in query
    ]


def terraform_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    return [
        (q["metric"]["namespace"], q["metric"]["metric_name"], q["metric"]["dimensions"], q["metric"]["stat"])
        for q in alarm["metric_query"]
        if "metric" in q
    ]


def assert_emitted(
    namespace: str, name: str, dimensions: dict[str, str], service: str, functions: Any
) -> None:
    if namespace == CONTAINER_INSIGHTS:  # the worker's service, by the names the templates give it
        assert dimensions == {"ClusterName": WORKER.cluster, "ServiceName": WORKER.service}, dimensions
        assert name == "RunningTaskCount"
        return
    if namespace == LAMBDA_NAMESPACE:
        assert set(dimensions) == {"FunctionName"} and dimensions["FunctionName"] in functions, (
            name,
            dimensions,
        )
        return
    # One of ours: declared, read under a dimension set it is emitted with, for this deployment's Service
    assert namespace == "TelehealthApi"
    assert name in DECLARED, name
    assert tuple(sorted(dimensions)) in {tuple(sorted(s)) for s in DECLARED[name].dimension_sets}, name
    assert dimensions["Service"] == service


def test_every_sam_alarm_reads_a_metric_the_code_emits_or_lambdas_own(sam: dict[str, Any]) -> None:
    functions = sam_function_names(sam)
    (api_env,) = [
        r["Properties"]["Environment"]["Variables"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function" and r["Properties"]["Handler"] == "app.app"
    ]
    service = load_metric_settings(api_env).service

    for name, alarm in sam_alarms(sam).items():
        metrics = sam_metrics(alarm)
        assert metrics, name
        for namespace, metric, dimensions, _stat in metrics:
            assert_emitted(namespace, metric, dimensions, service, functions)
    assert service == "telehealth-api-prod"


def test_terraform_has_the_same_alarms_reading_the_same_metrics(
    sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    sam_side = sam_alarms(sam)
    terraform_side = {
        a["alarm_name"]: a for a in terraform["resource"]["aws_cloudwatch_metric_alarm"].values()
    }

    assert set(terraform_side) == set(sam_side)
    for name, alarm in terraform_side.items():
        assert terraform_metrics(alarm) == sam_metrics(sam_side[name]), name
        assert alarm["comparison_operator"] == sam_side[name]["ComparisonOperator"]
        assert alarm["treat_missing_data"] == sam_side[name]["TreatMissingData"]
        assert alarm["alarm_actions"] == alarm["ok_actions"] == ["${aws_sns_topic.alarms.arn}"]


def test_the_issues_alarms_are_all_there(sam: dict[str, Any]) -> None:
    alarms = sam_alarms(sam)
    functions = sam_function_names(sam)
    watched = {
        (metric, stat): name for name, alarm in alarms.items() for _ns, metric, _d, stat in sam_metrics(alarm)
    }

    # 5xx rate (a ratio of two of our metrics), p99 latency, dead letters, the oldest pending notification
    assert {("Requests", "Sum"), ("ServerErrors", "Sum"), ("Latency", "p99")} <= set(watched)
    assert {("NotificationsDeadLettered", "Sum"), ("OldestPendingAge", "Maximum")} <= set(watched)
    rate = alarms["telehealth-api-prod-server-error-rate"]
    (expression,) = [q for q in rate["Metrics"] if "Expression" in q]
    assert expression["ReturnData"] is True and "errors" in expression["Expression"]
    # Lambda errors and throttles per function; a scheduled function that stops running
    for function, handler in functions.items():
        for metric in ("Errors", "Throttles"):
            assert any(
                m == (LAMBDA_NAMESPACE, metric, {"FunctionName": function}, "Sum")
                for alarm in alarms.values()
                for m in sam_metrics(alarm)
            ), (function, metric)
        not_running = [
            alarm
            for alarm in alarms.values()
            if sam_metrics(alarm) == [(LAMBDA_NAMESPACE, "Invocations", {"FunctionName": function}, "Sum")]
        ]
        scheduled = handler in ("app.relay_notifications", "app.purge_expired_records")
        assert len(not_running) == (1 if scheduled else 0), function
        for alarm in not_running:
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
            assert alarm["TreatMissingData"] == "breaching"  # no invocation at all: no data points
    assert len(functions) == 4


def test_thresholds_are_parameters_with_defaults_and_alarms_notify_one_topic(
    sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    parameters, variables = sam["Parameters"], terraform["variable"]
    for threshold in THRESHOLDS:
        assert parameters[threshold.sam_name]["Default"] == threshold.default
        assert variables[threshold.name]["default"] == threshold.default
    used = {json.dumps(a["Threshold"]) for a in sam_alarms(sam).values()}
    assert {json.dumps({"Ref": t.sam_name}) for t in THRESHOLDS} <= used
    for alarm in sam_alarms(sam).values():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert "docs/deployment.md" in alarm["AlarmDescription"]
    assert sam["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = sam["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and parameters["AlarmEmail"]["Default"] == ""
    assert subscription["Properties"]["Protocol"] == "email"
    resources = terraform["resource"]
    assert (
        resources["aws_sns_topic_subscription"]["alarm_email"]["count"]
        == "${var.alarm_email == null ? 0 : 1}"
    )
    assert variables["alarm_email"]["default"] is None
    assert terraform["output"]["AlarmTopicArn"] == {"value": "${aws_sns_topic.alarms.arn}"}


def dashboard_metric_names(body: str) -> set[str]:
    """The metric names a dashboard body shows: in its metric lines and in its SEARCH expressions."""
    names = set(re.findall(r'MetricName=\\"(\w+)\\"', body))
    for widget in json.loads(body)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], str):
                names.add(line[1])
    return names


def test_the_dashboard_shows_only_metrics_that_exist(sam: dict[str, Any], terraform: dict[str, Any]) -> None:
    sam_body = sam["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    terraform_body = terraform["resource"]["aws_cloudwatch_dashboard"]["monitoring"]["dashboard_body"]

    for body in (sam_body, terraform_body):
        shown = dashboard_metric_names(body)
        assert shown - {"Invocations", "Errors", "Throttles", "RunningTaskCount"} <= set(DECLARED)
        assert {"Requests", "Latency", "NotificationsDeadLettered", "OldestPendingAge"} <= shown
    # In SAM, Fn::Sub fills in only the region and the alarms' ARNs
    assert set(re.findall(r"\$\{([^}]+)\}", sam_body)) == {"AWS::Region"} | {
        f"{name}.Arn" for name, r in sam["Resources"].items() if r["Type"] == SAM_ALARM
    }


@pytest.mark.parametrize("seconds", [60, 300, 3600, 7200, 86400, 172800])
def test_a_schedules_interval_is_read_back_from_the_rate_chalice_writes(seconds: int) -> None:
    assert schedule_seconds(rate_every(seconds).to_string()) == seconds


def test_a_schedule_that_is_not_a_rate_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        schedule_seconds("cron(0 3 * * ? *)")
