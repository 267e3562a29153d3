"""Alarms, their SNS topic and a dashboard: declared once here, rendered into the SAM template
(``deploy.sam``) and the Terraform configuration (``deploy.terraform_production``) alike.

Our own metrics come from ``chalicelib.observability.metric_catalogue`` (the list the code emits
through), never from a name typed here; the namespace and the Service dimension are those the API
function's environment gives ``chalicelib.config.metrics``. Lambda's own metrics (Errors,
Throttles, Invocations) are watched for every function of the template, and a scheduled function
that stops running (no invocation over twice its interval) alarms too. Each threshold is an
operator's parameter with a default (``THRESHOLDS``); what each alarm means and what to do when it
fires is in docs/deployment.md (§11).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalice.app import Rate

from chalicelib.config.metrics import MetricSettings, load_metric_settings
from chalicelib.config.notifications import NotificationSettings
from chalicelib.config.schedules import ScheduleSettings
from chalicelib.http.schedules import interval_of
from chalicelib.observability import metric_catalogue as catalogue
from chalicelib.observability.metric_catalogue import Metric

LAMBDA_NAMESPACE = "AWS/Lambda"
API_HANDLER = "app.app"
PERIOD = 300
# A 5xx rate over fewer requests than this in a period is not an alarm (2 errors in 3 requests).
MIN_REQUESTS_FOR_RATE = 20
RUNBOOK = "docs/deployment.md section 11"


def camel_case(name: str) -> str:
    """``latency_p99`` or ``latency-p99`` -> ``LatencyP99``: a CloudFormation parameter or resource name."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name))


@dataclass(frozen=True)
class Threshold:
    """An operator's parameter: ``name`` in Terraform, CamelCase in SAM."""

    name: str
    default: float
    description: str

    @property
    def sam_name(self) -> str:
        return camel_case(self.name)


SERVER_ERROR_RATE = Threshold("server_error_rate_percent", 5, "5xx answers, percent of requests in 5 minutes")
LATENCY_P99 = Threshold("latency_p99_milliseconds", 1000, "p99 of the API function's answers, ms, 15 minutes")
DEAD_LETTERS = Threshold(
    "dead_letter_threshold", 0, "dead-letter notifications in 5 minutes above which to alarm"
)
LAMBDA_ERRORS = Threshold(
    "lambda_errors_threshold", 0, "errors of one function in 5 minutes above which to alarm"
)
LAMBDA_THROTTLES = Threshold(
    "lambda_throttles_threshold", 0, "throttled invocations of one function in 5 minutes"
)
OLDEST_PENDING = Threshold(
    "oldest_pending_age_seconds",
    # The relay takes a pending notification after NOTIFY_RELAY_DELAY, runs every NOTIFY_RELAY_INTERVAL:
    # a few runs more.
    NotificationSettings().relay_delay + 3 * ScheduleSettings().relay_interval,
    "age in seconds of the oldest pending notification above which to alarm",
)
THRESHOLDS = (SERVER_ERROR_RATE, LATENCY_P99, DEAD_LETTERS, LAMBDA_ERRORS, LAMBDA_THROTTLES, OLDEST_PENDING)
ALARM_EMAIL = "alarm_email"  # SAM: AlarmEmail; optional email subscription to the alarm topic


@dataclass(frozen=True)
class Function:
    name: str  # the Lambda function's name, as the template sets it
    handler: str
    schedule_seconds: int | None  # a scheduled function's interval


@dataclass(frozen=True)
class Query:
    """One entry of an alarm's metric math: a metric (namespace, name, dimensions, stat) or an expression."""

    id: str
    namespace: str = ""
    metric: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = ""
    expression: str = ""
    returned: bool = False


@dataclass(frozen=True)
class Alarm:
    key: str  # the alarm's name after the app's prefix, and its resource name
    description: str
    queries: tuple[Query, ...]
    threshold: Threshold | None  # None: the constant in ``constant``
    comparison: str = "GreaterThanThreshold"
    constant: float = 0
    period: int = PERIOD
    evaluation_periods: int = 1
    treat_missing_data: str = "notBreaching"


def ours(
    metric: Metric, settings: MetricSettings, stat: str, query_id: str = "m", returned: bool = True
) -> Query:
    """A query of one of our metrics, by Service alone (a dimension set every metric declares)."""
    if (catalogue.SERVICE,) not in metric.dimension_sets:
        raise ValueError(f"{metric.name} is not emitted by Service alone")
    return Query(
        query_id,
        settings.namespace,
        metric.name,
        ((catalogue.SERVICE, settings.service),),
        stat,
        "",
        returned,
    )


def lambda_metric(function: Function, metric: str, stat: str = "Sum") -> Query:
    return Query("m", LAMBDA_NAMESPACE, metric, (("FunctionName", function.name),), stat, returned=True)


def alarms(functions: list[Function], settings: MetricSettings) -> list[Alarm]:
    """Every alarm of the deployment: the API's, the notifications', and each function's."""
    rate = f"IF(requests >= {MIN_REQUESTS_FOR_RATE}, 100 * FILL(errors, 0) / requests, 0)"
    found = [
        Alarm(
            "server-error-rate",
            f"More than the threshold's percent of the API's answers were 5xx (at least "
            f"{MIN_REQUESTS_FOR_RATE} requests in 5 minutes).",
            (
                ours(catalogue.REQUESTS, settings, "Sum", "requests", returned=False),
                ours(catalogue.SERVER_ERRORS, settings, "Sum", "errors", returned=False),
                Query("rate", expression=rate, returned=True),
            ),
            SERVER_ERROR_RATE,
        ),
        Alarm(
            "latency-p99",
            "The API function's p99 answer time stayed above the threshold for 15 minutes.",
            (ours(catalogue.LATENCY, settings, "p99"),),
            LATENCY_P99,
            evaluation_periods=3,
        ),
        Alarm(
            "dead-letter-notifications",
            "A notification failed its last allowed delivery attempt: it will not be sent without a person.",
            (ours(catalogue.NOTIFICATIONS_DEAD_LETTERED, settings, "Sum"),),
            DEAD_LETTERS,
        ),
        Alarm(
            "oldest-pending-notification",
            "A notification has waited for its hand-off to the broker longer than a few relay runs.",
            (ours(catalogue.OLDEST_PENDING_AGE, settings, "Maximum"),),
            OLDEST_PENDING,
        ),
    ]
    prefix = _prefix(functions)
    for function in functions:
        # api, bearer-token, relay-notifications, ...: the function's name after the API function's
        short = (function.name.removeprefix(prefix).strip("-_") or "api").replace("_", "-")
        found += [
            Alarm(
                f"{short}-errors",
                f"The function {function.name} failed (an error or a timeout).",
                (lambda_metric(function, "Errors"),),
                LAMBDA_ERRORS,
            ),
            Alarm(
                f"{short}-throttles",
                f"Invocations of {function.name} were throttled (its reserved concurrency is used up).",
                (lambda_metric(function, "Throttles"),),
                LAMBDA_THROTTLES,
            ),
        ]
        if function.schedule_seconds is not None:
            period = max(PERIOD, 2 * function.schedule_seconds)
            found.append(
                Alarm(
                    f"{short}-not-running",
                    f"The scheduled function {function.name} was not invoked for {period} s (twice its"
                    " interval): its EventBridge rule is disabled, deleted, or failing to invoke it.",
                    (lambda_metric(function, "Invocations"),),
                    None,
                    comparison="LessThanThreshold",
                    constant=1,
                    period=period,
                    treat_missing_data="breaching",
                )
            )
    return found


def metric_settings_of(functions_env: list[Mapping[str, str]]) -> MetricSettings:
    """The namespace and Service the functions report under (the same for every function of a stage)."""
    found = {load_metric_settings(env) for env in functions_env}
    if len(found) != 1:
        raise ValueError("every function must report under one namespace and Service (METRICS_* variables)")
    return found.pop()


def schedule_seconds(expression: str) -> int:
    """Seconds between runs of ``rate(N unit)`` (``Rate.to_string``: ``register_schedule`` writes only
    rates). Raises ValueError for anything else, so that a cron gets a not-running alarm on purpose."""
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if match is None:
        raise ValueError(f"not a rate expression: {expression!r}")
    return interval_of(Rate(int(match.group(1)), f"{match.group(2)}s".upper()))


def dashboard_body(
    settings: MetricSettings, functions: list[Function], region: str, alarm_arns: list[str]
) -> str:
    """The dashboard's JSON; ``region`` and ``alarm_arns`` are the template's own references."""
    namespace, service = settings.namespace, settings.service

    def ours_line(metric: Metric, stat: str, label: str) -> list[Any]:
        return [namespace, metric.name, catalogue.SERVICE, service, {"stat": stat, "label": label}]

    def search(metric: Metric, dimensions: tuple[str, ...], stat: str) -> list[Any]:
        keys = ",".join((namespace, *dimensions))
        query = f'{{{keys}}} MetricName="{metric.name}" {catalogue.SERVICE}="{service}"'
        return [{"expression": f"SEARCH('{query}', '{stat}', {PERIOD})", "id": f"s{len(dimensions)}"}]

    def widget(title: str, lines: list[list[Any]], x: int, y: int, width: int = 12) -> dict[str, Any]:
        properties = {
            "title": title,
            "region": region,
            "metrics": lines,
            "period": PERIOD,
            "view": "timeSeries",
        }
        return {"type": "metric", "x": x, "y": y, "width": width, "height": 6, "properties": properties}

    route_status = (catalogue.SERVICE, catalogue.ROUTE, catalogue.STATUS_CLASS)
    widgets = [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 4,
            "properties": {"title": "Alarms", "alarms": alarm_arns},
        },
        widget("Requests by route and status class", [search(catalogue.REQUESTS, route_status, "Sum")], 0, 4),
        widget(
            "Latency (ms): p50 and p99, p99 by route",
            [
                ours_line(catalogue.LATENCY, "p50", "p50"),
                ours_line(catalogue.LATENCY, "p99", "p99"),
                search(catalogue.LATENCY, (catalogue.SERVICE, catalogue.ROUTE), "p99"),
            ],
            12,
            4,
        ),
        widget(
            "5xx and refusals",
            [
                ours_line(catalogue.SERVER_ERRORS, "Sum", "5xx"),
                ours_line(catalogue.AUDIT_UNAVAILABLE, "Sum", "503 audit unavailable"),
                ours_line(catalogue.FORBIDDEN, "Sum", "403"),
                ours_line(catalogue.RATE_LIMITED, "Sum", "429"),
                ours_line(catalogue.AUTHORIZER_REFUSALS, "Sum", "401 authorizer"),
            ],
            0,
            10,
        ),
        widget(
            "Notifications",
            [
                ours_line(catalogue.NOTIFICATIONS_DELIVERED, "Sum", "delivered"),
                ours_line(catalogue.NOTIFICATIONS_RETRIED, "Sum", "retried"),
                ours_line(catalogue.NOTIFICATIONS_DEAD_LETTERED, "Sum", "dead letters"),
                ours_line(catalogue.RELAY_HANDED_OFF, "Sum", "handed off by the relay"),
            ],
            12,
            10,
        ),
        widget(
            "Commit to delivered (ms), oldest pending (s), keys purged",
            [
                ours_line(catalogue.DELIVERY_LATENCY, "p50", "delivery p50 ms"),
                ours_line(catalogue.DELIVERY_LATENCY, "p99", "delivery p99 ms"),
                ours_line(catalogue.OLDEST_PENDING_AGE, "Maximum", "oldest pending s"),
                ours_line(catalogue.IDEMPOTENCY_KEYS_PURGED, "Sum", "idempotency keys purged"),
            ],
            0,
            16,
        ),
        widget(
            "Lambda: invocations, errors, throttles per function",
            [
                [LAMBDA_NAMESPACE, metric, "FunctionName", function.name, {"stat": "Sum"}]
                for function in functions
                for metric in ("Invocations", "Errors", "Throttles")
            ],
            12,
            16,
        ),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


# --- SAM / CloudFormation ---------------------------------------------------------------------------

SAM_FUNCTION = "AWS::Serverless::Function"
SAM_TOPIC = "AlarmTopic"


def sam_monitoring(template: dict[str, Any], tags: dict[str, str]) -> None:
    """Add the thresholds' parameters, the alarm topic, every alarm and the dashboard to ``template``."""
    resources: dict[str, Any] = template["Resources"]
    functions_found = [r["Properties"] for r in resources.values() if r["Type"] == SAM_FUNCTION]
    settings = metric_settings_of([f.get("Environment", {}).get("Variables", {}) for f in functions_found])
    functions = [
        Function(f["FunctionName"], f["Handler"], _sam_schedule(f.get("Events", {}))) for f in functions_found
    ]
    prefix = _prefix(functions)
    tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
    template["Parameters"].update(
        {
            t.sam_name: {"Type": "Number", "Default": t.default, "MinValue": 0, "Description": t.description}
            for t in THRESHOLDS
        }
    )
    template["Parameters"]["AlarmEmail"] = {
        "Type": "String",
        "Default": "",
        "Description": "Email address subscribed to the alarm topic (empty: none; AWS asks it to confirm)",
    }
    template["Conditions"]["HasAlarmEmail"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    resources[SAM_TOPIC] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": f"{prefix}-alarms", "Tags": tag_list},
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {
            "TopicArn": {"Ref": SAM_TOPIC},
            "Protocol": "email",
            "Endpoint": {"Ref": "AlarmEmail"},
        },
    }
    names = []
    for alarm in alarms(functions, settings):
        name = sam_alarm_name(alarm)
        names.append(name)
        resources[name] = sam_alarm(alarm, prefix, tag_list)
    body = dashboard_body(settings, functions, "${AWS::Region}", [f"${{{name}.Arn}}" for name in names])
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": prefix, "DashboardBody": {"Fn::Sub": body}},
    }
    template.setdefault("Outputs", {})["AlarmTopicArn"] = {
        "Description": "SNS topic every alarm notifies",
        "Value": {"Ref": SAM_TOPIC},
    }


def sam_alarm_name(alarm: Alarm) -> str:
    return "Alarm" + camel_case(alarm.key)


def sam_alarm(alarm: Alarm, prefix: str, tag_list: list[dict[str, str]]) -> dict[str, Any]:
    """The alarm's CloudFormation resource, notifying the alarm topic (``SAM_TOPIC``)."""
    threshold = {"Ref": alarm.threshold.sam_name} if alarm.threshold else alarm.constant
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": f"{prefix}-{alarm.key}",
            "AlarmDescription": f"{alarm.description} What to do: {RUNBOOK}.",
            "ComparisonOperator": alarm.comparison,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.evaluation_periods,
            "Threshold": threshold,
            "TreatMissingData": alarm.treat_missing_data,
            "AlarmActions": [{"Ref": SAM_TOPIC}],
            "OKActions": [{"Ref": SAM_TOPIC}],
            "Metrics": [_sam_query(query, alarm.period) for query in alarm.queries],
            "Tags": tag_list,
        },
    }


def _sam_schedule(events: dict[str, Any]) -> int | None:
    for event in events.values():
        if event.get("Type") == "Schedule":
            return schedule_seconds(event["Properties"]["Schedule"])
    return None


def _sam_query(query: Query, period: int) -> dict[str, Any]:
    if query.expression:
        return {"Id": query.id, "Expression": query.expression, "ReturnData": query.returned}
    metric = {
        "Namespace": query.namespace,
        "MetricName": query.metric,
        "Dimensions": [{"Name": name, "Value": value} for name, value in query.dimensions],
    }
    return {
        "Id": query.id,
        "MetricStat": {"Metric": metric, "Period": period, "Stat": query.stat},
        "ReturnData": query.returned,
    }


# --- Terraform --------------------------------------------------------------------------------------


def terraform_monitoring(config: dict[str, Any], tags: dict[str, str]) -> None:
    """Add the thresholds' variables, the alarm topic, every alarm and the dashboard to ``config``."""
    resources: dict[str, Any] = config["resource"]
    found = resources["aws_lambda_function"]
    settings = metric_settings_of([f.get("environment", {}).get("variables", {}) for f in found.values()])
    schedules = _terraform_schedules(resources)
    functions = [Function(f["function_name"], f["handler"], schedules.get(name)) for name, f in found.items()]
    prefix = _prefix(functions)
    config["variable"].update(
        {t.name: {"type": "number", "default": t.default, "description": t.description} for t in THRESHOLDS}
    )
    config["variable"][ALARM_EMAIL] = {
        "type": "string",
        "default": None,
        "description": "Email address subscribed to the alarm topic (null: none; AWS asks it to confirm)",
    }
    resources["aws_sns_topic"] = {"alarms": {"name": f"{prefix}-alarms", "tags": dict(tags)}}
    resources["aws_sns_topic_subscription"] = {
        "alarm_email": {
            "count": f"${{var.{ALARM_EMAIL} == null ? 0 : 1}}",
            "topic_arn": "${aws_sns_topic.alarms.arn}",
            "protocol": "email",
            "endpoint": f"${{var.{ALARM_EMAIL}}}",
        }
    }
    metric_alarms: dict[str, Any] = {}
    for alarm in alarms(functions, settings):
        metric_alarms[terraform_alarm_name(alarm)] = terraform_alarm(alarm, prefix, tags)
    resources["aws_cloudwatch_metric_alarm"] = metric_alarms
    arns = [f"${{aws_cloudwatch_metric_alarm.{name}.arn}}" for name in metric_alarms]
    resources["aws_cloudwatch_dashboard"] = {
        "monitoring": {
            "dashboard_name": prefix,
            "dashboard_body": dashboard_body(settings, functions, "${data.aws_region.chalice.id}", arns),
        }
    }
    config.setdefault("output", {})["AlarmTopicArn"] = {"value": "${aws_sns_topic.alarms.arn}"}


def terraform_alarm_name(alarm: Alarm) -> str:
    return re.sub(r"[^a-z0-9]+", "_", alarm.key.lower())


def terraform_alarm(alarm: Alarm, prefix: str, tags: dict[str, str]) -> dict[str, Any]:
    """The alarm's ``aws_cloudwatch_metric_alarm`` arguments, notifying the alarm topic."""
    return {
        "alarm_name": f"{prefix}-{alarm.key}",
        "alarm_description": f"{alarm.description} What to do: {RUNBOOK}.",
        "comparison_operator": alarm.comparison,
        "evaluation_periods": alarm.evaluation_periods,
        "datapoints_to_alarm": alarm.evaluation_periods,
        "threshold": f"${{var.{alarm.threshold.name}}}" if alarm.threshold else alarm.constant,
        "treat_missing_data": alarm.treat_missing_data,
        "alarm_actions": ["${aws_sns_topic.alarms.arn}"],
        "ok_actions": ["${aws_sns_topic.alarms.arn}"],
        "metric_query": [_terraform_query(query, alarm.period) for query in alarm.queries],
        "tags": dict(tags),
    }


def _terraform_schedules(resources: dict[str, Any]) -> dict[str, int]:
    """Lambda resource name -> interval of the EventBridge rule that targets it."""
    rules = resources.get("aws_cloudwatch_event_rule", {})
    found = {}
    for target in resources.get("aws_cloudwatch_event_target", {}).values():
        function = re.fullmatch(r"\$\{aws_lambda_function\.([\w-]+)\.arn\}", target["arn"])
        rule = re.fullmatch(r"\$\{aws_cloudwatch_event_rule\.([\w-]+)\.name\}", target["rule"])
        if function and rule and "schedule_expression" in rules.get(rule.group(1), {}):
            found[function.group(1)] = schedule_seconds(rules[rule.group(1)]["schedule_expression"])
    return found


def _terraform_query(query: Query, period: int) -> dict[str, Any]:
    if query.expression:
        return {"id": query.id, "expression": query.expression, "return_data": query.returned}
    metric = {
        "namespace": query.namespace,
        "metric_name": query.metric,
        "dimensions": dict(query.dimensions),
        "period": period,
        "stat": query.stat,
    }
    return {"id": query.id, "metric": metric, "return_data": query.returned}


def _prefix(functions: list[Function]) -> str:
    """The API function's name (``telehealth-api-prod``): every other resource's name starts with it."""
    (api,) = [function.name for function in functions if function.handler == API_HANDLER]
    return api
