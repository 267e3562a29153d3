"""The Celery worker's ECS Fargate service in ``make package``'s SAM template and Terraform
configuration: the same task, roles, network and scaling in both forms (``deploy.worker_service``).

Each test reads both forms through a small view (``WorkerView``) of what matters, so a difference
between them fails as surely as a wrong value in one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.config.metrics import load_metric_settings
from chalicelib.observability.metric_catalogue import OLDEST_QUEUED_AGE, QUEUE_LENGTH, SERVICE
from deploy.iam_policies import policy_document_of
from deploy.worker_image import (
    FARGATE_MAX_STOP_TIMEOUT_SECONDS,
    LONGEST_TASK_SECONDS,
    WORKER_STOP_TIMEOUT_SECONDS,
    WORKER_TMP_DIR,
)
from deploy.worker_service import CONTAINER_INSIGHTS, Names

NAMES = Names("telehealth-api-prod")
SSM = "arn:{partition}:ssm:{region}:{account}:parameter/telehealth-api/prod/{name}"
ACCOUNTS = {
    "sam": {"partition": "${AWS::Partition}", "region": "${AWS::Region}", "account": "${AWS::AccountId}"},
    "terraform": {
        "partition": "${data.aws_partition.chalice.partition}",
        "region": "${data.aws_region.chalice.id}",
        "account": "${data.aws_caller_identity.chalice.account_id}",
    },
}
# The operator's inputs, as each form refers to them.
INPUTS = {
    "sam": lambda name: {"Ref": name},
    "terraform": lambda name: (
        "${var." + "".join("_" + c.lower() if c.isupper() else c for c in name)[1:] + "}"
    ),
}


@dataclass(frozen=True)
class WorkerView:
    """What both forms must agree on, read from one of them."""

    form: str
    container: dict[str, Any]  # ECS's own camelCase names
    task: dict[str, Any]  # cpu, memory, compatibilities, network mode, volumes
    task_policy: list[dict[str, Any]]
    execution_policy: list[dict[str, Any]]
    trust: dict[str, Any]
    egress: list[tuple[int, Any]]
    ingress: list[Any]
    service: dict[str, Any]  # subnets, security groups, public ip
    scaling: dict[str, Any]  # min, max, target, metric queries (CloudFormation's names)
    log_group: dict[str, Any]
    relay_environment: dict[str, str]

    def ref(self, name: str) -> Any:
        return INPUTS[self.form](name)


def camel(value: Any) -> Any:
    """CloudFormation's PascalCase container definition in ECS's camelCase (options kept)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            return value
        return {k[0].lower() + k[1:]: v if k == "Options" else camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def sam_view(sam: dict[str, Any]) -> WorkerView:
    resources = sam["Resources"]
    task = resources["WorkerTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    group = resources["WorkerSecurityGroup"]["Properties"]
    service = resources["WorkerService"]["Properties"]
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    target = resources["WorkerScalableTarget"]["Properties"]
    policy = resources["WorkerScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    log_group = resources["WorkerLogGroup"]["Properties"]
    (relay,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        and r["Properties"]["Handler"] == "app.relay_notifications"
    ]

    def statements(role: str) -> list[dict[str, Any]]:
        (inline,) = resources[role]["Properties"]["Policies"]
        return list(inline["PolicyDocument"]["Statement"])

    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]}
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}
    assert service["Cluster"] == {"Ref": "WorkerCluster"} and service["TaskDefinition"] == {
        "Ref": "WorkerTaskDefinition"
    }
    assert resources["WorkerCluster"]["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "enabled"}
    ]
    return WorkerView(
        form="sam",
        container=camel(container),
        task={
            "cpu": task["Cpu"],
            "memory": task["Memory"],
            "compatibilities": task["RequiresCompatibilities"],
            "network_mode": task["NetworkMode"],
            "volumes": [v["Name"] for v in task["Volumes"]],
        },
        task_policy=[_unsub(s) for s in statements("WorkerTaskRole")],
        execution_policy=[_unsub(s) for s in statements("WorkerExecutionRole")],
        trust=resources["WorkerTaskRole"]["Properties"]["AssumeRolePolicyDocument"],
        egress=[
            (rule["FromPort"], rule["CidrIp"])
            for rule in group["SecurityGroupEgress"]
            if rule["ToPort"] == rule["FromPort"]
        ],
        ingress=group.get("SecurityGroupIngress", []),
        service={
            "subnets": network["Subnets"],
            "security_groups": network["SecurityGroups"],
            "public_ip": network["AssignPublicIp"] != "DISABLED",
            "launch_type": service["LaunchType"],
            "circuit_breaker": service["DeploymentConfiguration"]["DeploymentCircuitBreaker"],
        },
        scaling={
            "min": target["MinCapacity"],
            "max": target["MaxCapacity"],
            "target": policy["TargetValue"],
            "metrics": policy["CustomizedMetricSpecification"]["Metrics"],
        },
        log_group={
            "name": log_group["LogGroupName"],
            "retention": log_group["RetentionInDays"],
            "kms": log_group["KmsKeyId"],
        },
        relay_environment=relay["Environment"]["Variables"],
    )


def terraform_view(terraform: dict[str, Any]) -> WorkerView:
    resources = terraform["resource"]
    task = resources["aws_ecs_task_definition"]["worker"]
    service = resources["aws_ecs_service"]["worker"]
    target = resources["aws_appautoscaling_target"]["worker"]
    policy = resources["aws_appautoscaling_policy"]["worker_backlog"][
        "target_tracking_scaling_policy_configuration"
    ]
    log_group = resources["aws_cloudwatch_log_group"]["worker"]
    (relay,) = [
        f for f in resources["aws_lambda_function"].values() if f["handler"] == "app.relay_notifications"
    ]
    rules = [
        r
        for r in resources["aws_vpc_security_group_egress_rule"].values()
        if r["security_group_id"] == "${aws_security_group.worker.id}"
    ]

    def statements(role: str) -> list[dict[str, Any]]:
        assert (
            resources["aws_iam_role_policy"][role]["policy"]
            == f"${{data.aws_iam_policy_document.{role}.json}}"
        )
        return list(policy_document_of(terraform["data"]["aws_iam_policy_document"][role])["Statement"])

    assert task["execution_role_arn"] == "${aws_iam_role.worker_execution.arn}"
    assert task["task_role_arn"] == "${aws_iam_role.worker_task.arn}"
    assert resources["aws_ecs_cluster"]["worker"]["setting"] == [
        {"name": "containerInsights", "value": "enabled"}
    ]
    # No rule lets anything into the worker (the data tier's rules let the worker into others).
    ingress_rules = resources.get("aws_vpc_security_group_ingress_rule", {}).values()
    assert not [
        rule for rule in ingress_rules if rule["security_group_id"] == "${aws_security_group.worker.id}"
    ]
    return WorkerView(
        form="terraform",
        container=_hcl_container(task["container_definitions"]),
        task={
            "cpu": task["cpu"],
            "memory": task["memory"],
            "compatibilities": task["requires_compatibilities"],
            "network_mode": task["network_mode"],
            "volumes": [v["name"] for v in task["volume"]],
        },
        task_policy=statements("worker_task"),
        execution_policy=statements("worker_execution"),
        trust=json.loads(resources["aws_iam_role"]["worker_task"]["assume_role_policy"]),
        egress=[
            (rule["from_port"], rule["cidr_ipv4"]) for rule in rules if rule["to_port"] == rule["from_port"]
        ],
        ingress=resources["aws_security_group"]["worker"].get("ingress", []),
        service={
            "subnets": service["network_configuration"]["subnets"],
            "security_groups": service["network_configuration"]["security_groups"],
            "public_ip": service["network_configuration"]["assign_public_ip"],
            "launch_type": service["launch_type"],
            "circuit_breaker": {k.capitalize(): v for k, v in service["deployment_circuit_breaker"].items()},
        },
        scaling={
            "min": target["min_capacity"],
            "max": target["max_capacity"],
            "target": policy["target_value"],
            "metrics": [
                _cloudformation_query(q) for q in policy["customized_metric_specification"]["metrics"]
            ],
        },
        log_group={
            "name": log_group["name"],
            "retention": log_group["retention_in_days"],
            "kms": log_group["kms_key_id"],
        },
        relay_environment=relay["environment"]["variables"],
    )


def _unsub(statement: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else value

    return {k: plain(v) if k in ("Resource", "NotResource") else v for k, v in statement.items()}


def _hcl_container(expression: str) -> dict[str, Any]:
    """The container of ``${jsonencode([...])}``, read back as JSON (the HCL written is JSON with ``=``)."""
    assert expression.startswith("${jsonencode(") and expression.endswith(")}")
    body = expression.removeprefix("${jsonencode(").removesuffix(")}")
    (container,) = json.loads(body.replace('" = ', '": '))
    return dict(container)


def _cloudformation_query(query: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"Id": query["id"], "ReturnData": query["return_data"]}
    if "expression" in query:
        return {**found, "Expression": query["expression"], "Label": query["label"]}
    metric = query["metric_stat"]["metric"]
    found["MetricStat"] = {
        "Metric": {
            "Namespace": metric["namespace"],
            "MetricName": metric["metric_name"],
            "Dimensions": [{"Name": d["name"], "Value": d["value"]} for d in metric["dimensions"]],
        },
        "Stat": query["metric_stat"]["stat"],
    }
    return found


@pytest.fixture(scope="module", params=["sam", "terraform"])
def worker(request: pytest.FixtureRequest, sam: dict[str, Any], terraform: dict[str, Any]) -> WorkerView:
    return sam_view(sam) if request.param == "sam" else terraform_view(terraform)


def test_the_stop_timeout_covers_the_longest_task_within_fargates_limit(worker: WorkerView) -> None:
    assert LONGEST_TASK_SECONDS < WORKER_STOP_TIMEOUT_SECONDS <= FARGATE_MAX_STOP_TIMEOUT_SECONDS
    assert worker.container["stopTimeout"] == WORKER_STOP_TIMEOUT_SECONDS


def test_the_task_runs_on_fargate_as_a_non_root_user_on_a_read_only_root(worker: WorkerView) -> None:
    container = worker.container
    assert worker.task["compatibilities"] == ["FARGATE"] and worker.task["network_mode"] == "awsvpc"
    assert (worker.task["cpu"], worker.task["memory"]) == (
        worker.ref("WorkerCpu"),
        worker.ref("WorkerMemory"),
    )
    assert container["image"] == worker.ref("WorkerImageUri")
    assert container["readonlyRootFilesystem"] is True and container["privileged"] is False
    user = container["user"].split(":")
    assert user[0] not in ("0", "root") and user[0].isdigit()
    assert container["linuxParameters"] == {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}}
    # The one writable path: a task volume on /tmp
    (mount,) = container["mountPoints"]
    assert (mount["sourceVolume"], mount["containerPath"]) == (worker.task["volumes"][0], WORKER_TMP_DIR)
    # Logs: awslogs into the worker's own group, with the functions' retention and KMS key
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == worker.log_group["name"] == NAMES.log_group
    assert worker.log_group["retention"] == 365
    expected_key = (
        {"Fn::If": ["HasLogKmsKey", {"Ref": "LogKmsKeyArn"}, {"Fn::GetAtt": ["LogKmsKey", "Arn"]}]}
        if worker.form == "sam"
        else "${local.log_kms_key_arn}"
    )
    assert worker.log_group["kms"] == expected_key


def test_the_worker_gets_the_relays_settings_without_the_token_secret(worker: WorkerView) -> None:
    environment = {variable["name"]: variable["value"] for variable in worker.container["environment"]}
    relay = worker.relay_environment

    assert "API_TOKENS_SECRET_ID" not in relay and "API_TOKENS_SECRET_ID" not in environment
    assert not [name for name in environment if "SECRET" in name or "TOKEN" in name]
    for name in ("APP_STAGE", "DATABASE_URL_PARAMETER", "REDIS_URL_PARAMETER"):
        assert environment[name] == relay[name]
    # Its metrics land under the relay's (and the alarms') Service
    assert load_metric_settings(environment).service == load_metric_settings(relay).service
    assert environment["NOTIFY_PROVIDER"] == worker.ref("NotifyProvider")
    assert environment["NOTIFY_EMAIL_SENDER"] == worker.ref("NotifyEmailSender")
    assert environment["WORKER_POOL"] == worker.ref("WorkerPool")
    # The database pool follows the concurrency: one connection per thread, no overflow
    concurrency = worker.ref("WorkerConcurrency")
    if worker.form == "terraform":
        concurrency = "${tostring(var.worker_concurrency)}"
    assert environment["WORKER_CONCURRENCY"] == environment["DB_POOL_SIZE"] == concurrency
    assert environment["DB_MAX_OVERFLOW"] == "0"


def test_the_task_role_reads_two_urls_emails_from_the_sender_and_texts_phones_only(
    worker: WorkerView,
) -> None:
    account = ACCOUNTS[worker.form]
    by_action = {statement["Action"]: statement for statement in worker.task_policy}

    assert set(by_action) == {"ssm:GetParameter", "ses:SendEmail", "sns:Publish"}
    assert all(statement["Effect"] == "Allow" for statement in worker.task_policy)
    assert set(by_action["ssm:GetParameter"]["Resource"]) == {
        SSM.format(**account, name=name) for name in ("database-url", "redis-url")
    }
    ses = by_action["ses:SendEmail"]
    assert ses["Resource"] == "arn:{partition}:ses:{region}:{account}:identity/*".format(**account)
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": worker.ref("NotifyEmailSender")}}
    sns = by_action["sns:Publish"]
    assert "Resource" not in sns and sns["NotResource"] == "arn:{partition}:sns:*:*:*".format(**account)
    text = json.dumps(worker.task_policy)
    for refused in ("secretsmanager", "api-token", "ec2:", "kms:", "logs:", '"*"'):
        assert refused not in text, refused
    trust = worker.trust["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"} and "aws:SourceAccount" in str(trust)


def test_the_execution_role_pulls_images_and_writes_the_workers_log_group_only(worker: WorkerView) -> None:
    actions = {
        action
        for statement in worker.execution_policy
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    wildcard = [s for s in worker.execution_policy if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["ecr:GetAuthorizationToken"]  # AWS allows nothing else
    (logs,) = [s for s in worker.execution_policy if "logs:PutLogEvents" in s["Action"]]
    expected = (
        {"Fn::GetAtt": ["WorkerLogGroup", "Arn"]}
        if worker.form == "sam"
        else "${aws_cloudwatch_log_group.worker.arn}:*"
    )
    assert logs["Resource"] == expected


def test_the_service_runs_in_the_private_subnets_with_its_own_group_and_no_public_ip(
    worker: WorkerView,
) -> None:
    sam_form = worker.form == "sam"
    assert worker.service["subnets"] == ({"Ref": "SubnetIds"} if sam_form else "${var.subnet_ids}")
    assert worker.service["security_groups"] == (
        [{"Ref": "WorkerSecurityGroup"}] if sam_form else ["${aws_security_group.worker.id}"]
    )
    assert worker.service["public_ip"] is False and worker.service["launch_type"] == "FARGATE"
    assert worker.service["circuit_breaker"] == {"Enable": True, "Rollback": True}
    # No way in; out only to PostgreSQL and Redis in the VPC, and HTTPS for the AWS APIs
    assert worker.ingress == []
    assert sorted(worker.egress) == [
        (443, worker.ref("WorkerHttpsEgressCidr")),
        (5432, worker.ref("VpcCidr")),
        (6379, worker.ref("VpcCidr")),
    ]


def test_it_scales_between_its_bounds_on_the_relays_queue_length_per_running_task(worker: WorkerView) -> None:
    scaling = worker.scaling
    assert (scaling["min"], scaling["max"], scaling["target"]) == (
        worker.ref("WorkerMinCount"),
        worker.ref("WorkerMaxCount"),
        worker.ref("WorkerBacklogPerTask"),
    )
    queries = {query["Id"]: query for query in scaling["metrics"]}
    queue = queries["queue"]["MetricStat"]["Metric"]
    service = load_metric_settings(worker.relay_environment).service
    # The metric the relay writes (the catalogue's), under the relay's Service
    assert (queue["Namespace"], queue["MetricName"]) == ("TelehealthApi", QUEUE_LENGTH.name)
    assert queue["Dimensions"] == [{"Name": SERVICE, "Value": service}]
    tasks = queries["tasks"]["MetricStat"]["Metric"]
    assert (tasks["Namespace"], tasks["MetricName"]) == (CONTAINER_INSIGHTS, "RunningTaskCount")
    assert tasks["Dimensions"] == [
        {"Name": "ClusterName", "Value": NAMES.cluster},
        {"Name": "ServiceName", "Value": NAMES.service},
    ]
    returned = [query for query in scaling["metrics"] if query["ReturnData"]]
    assert [query["Id"] for query in returned] == ["backlog"]
    assert "queue / tasks" in returned[0]["Expression"]


def test_the_bounds_are_inputs_that_refuse_zero_tasks(sam: dict[str, Any], terraform: dict[str, Any]) -> None:
    parameters, variables = sam["Parameters"], terraform["variable"]
    assert parameters["WorkerMinCount"]["MinValue"] == 1 and parameters["WorkerMaxCount"]["MinValue"] == 1
    assert parameters["WorkerMinCount"]["Default"] <= parameters["WorkerMaxCount"]["Default"]
    for name in ("worker_min_count", "worker_max_count"):
        (validation,) = variables[name]["validation"]
        assert validation["condition"] == "${var." + name + " >= 1}"
    # Required: the image and the sender have no default that could deploy by accident
    for required in ("WorkerImageUri", "NotifyEmailSender", "VpcId", "VpcCidr"):
        assert "Default" not in parameters[required]
    for required in ("worker_image_uri", "notify_email_sender", "vpc_id", "vpc_cidr"):
        assert "default" not in variables[required]
    resources = sam["Resources"]
    assert resources["WorkerService"]["Properties"].get("DesiredCount") is None  # left to the scaling
    assert terraform["resource"]["aws_ecs_service"]["worker"]["lifecycle"] == {
        "ignore_changes": ["desired_count"]
    }


def test_the_alarms_watch_the_queue_and_a_service_with_no_running_task(sam: dict[str, Any]) -> None:
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    not_running = alarms[f"{NAMES.prefix}-worker-not-running"]
    (query,) = not_running["Metrics"]
    assert query["MetricStat"]["Metric"]["Namespace"] == CONTAINER_INSIGHTS
    assert (not_running["ComparisonOperator"], not_running["Threshold"]) == ("LessThanThreshold", 1)
    assert not_running["TreatMissingData"] == "breaching"
    queue = alarms[f"{NAMES.prefix}-worker-queue-length"]
    (query,) = queue["Metrics"]
    assert query["MetricStat"]["Metric"]["MetricName"] == QUEUE_LENGTH.name
    assert queue["Threshold"] == {"Ref": "WorkerQueueLengthThreshold"}
    assert sam["Parameters"]["WorkerQueueLengthThreshold"]["Default"] > 0
    age = alarms[f"{NAMES.prefix}-worker-queue-age"]
    (query,) = age["Metrics"]
    assert query["MetricStat"]["Metric"]["MetricName"] == OLDEST_QUEUED_AGE.name
    assert age["Threshold"] == {"Ref": "WorkerQueueAgeSeconds"}
