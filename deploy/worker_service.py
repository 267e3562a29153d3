"""The Celery worker as an ECS Fargate service that scales on its queue, in SAM and in Terraform alike.

``sam_worker_service`` (called by ``deploy.sam``) and ``terraform_worker_service`` (called by
``deploy.terraform_production``) add, after the alarms' topic exists:

* an ECS cluster with Container Insights (the ``RunningTaskCount`` the scaling and an alarm read);
* a Fargate task definition: the image (``WorkerImageUri``), CPU and memory, a non-root user, a
  read-only root file system with a scratch volume on /tmp, no Linux capabilities, an init process
  that passes SIGTERM on, ``stopTimeout`` from ``deploy.worker_image`` (above the longest task), and
  ``awslogs`` into a log group of its own (the functions' retention and KMS key);
* its environment: the relay function's (``APP_STAGE``, ``DATABASE_URL_PARAMETER``,
  ``REDIS_URL_PARAMETER``: the same SSM parameters) without the token secret, plus the delivery
  providers, the pool and its concurrency, and a database pool as large as the concurrency;
* a task role that may read those two parameters, send email from the sender's address and publish
  SMS (no topic), and nothing else: no token secret, no network interfaces; an execution role that
  may pull images of this account's ECR and write the worker's log group;
* the service in the private subnets (``SubnetIds``), no public IP, a security group of its own
  (``WorkerSecurityGroup`` / ``aws_security_group.worker``: no ingress; egress to PostgreSQL and
  Redis inside the VPC and HTTPS for the AWS APIs), rolled back by ECS when a deploy fails;
* target tracking between ``WorkerMinCount`` and ``WorkerMaxCount`` on the backlog per task: the
  relay's ``QueueLength`` divided by the running tasks, held near ``WorkerBacklogPerTask``;
* alarms (a backlog that stays high, a notification waiting too long for a worker, no running
  task) and a dashboard row.

Why target tracking on backlog per task rather than a step policy: it is the shape AWS documents
for queue workers, it needs one number from the operator (the backlog one task clears in an
acceptable time) instead of a ladder of steps, and its alarms are made and kept by Application Auto
Scaling. It cannot scale out from zero tasks (zero capacity times any ratio is zero), so
``WorkerMinCount`` is at least 1, which the not-running alarm wants anyway.

One module, over 300 lines, on purpose: the two forms are written from one description (the
settings, the environment, the policies, the container, the scaling metric, the alarms), so that
SAM and Terraform deploy the same worker; each form's half only spells it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.config.metrics import MetricSettings, load_metric_settings
from chalicelib.observability import metric_catalogue as catalogue
from deploy.iam_policies import for_cloudformation, for_terraform
from deploy.monitoring import (
    API_HANDLER,
    SAM_TOPIC,
    Alarm,
    Query,
    Threshold,
    ours,
    sam_alarm,
    sam_alarm_name,
    terraform_alarm,
    terraform_alarm_name,
)
from deploy.worker_image import (
    DEFAULT_WORKER_CONCURRENCY,
    DEFAULT_WORKER_POOL,
    WORKER_CONCURRENCY_VARIABLE,
    WORKER_POOL_VARIABLE,
    WORKER_STOP_TIMEOUT_SECONDS,
    WORKER_TMP_DIR,
    WORKER_USER,
)

RELAY_HANDLER = "app.relay_notifications"
CONTAINER = "worker"
TMP_VOLUME = "tmp"
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
POSTGRES_PORT, REDIS_PORT, HTTPS_PORT = 5432, 6379, 443
# The relay's variables the worker must not have: the token secret (it serves no request) and the
# Lambda-sized database pool (the worker's follows its concurrency).
NOT_FOR_THE_WORKER = ("API_TOKENS_SECRET_ID", "IDEMPOTENCY_KEY_SECRET_ID", "DB_POOL_SIZE", "DB_MAX_OVERFLOW")
SECRET_PARAMETERS = ("DATABASE_URL_PARAMETER", "REDIS_URL_PARAMETER")
SCALE_OUT_COOLDOWN, SCALE_IN_COOLDOWN = 60, 300
SECURITY_GROUP_DESCRIPTION = "Celery worker: no ingress; PostgreSQL and Redis in the VPC, HTTPS for AWS APIs"


@dataclass(frozen=True)
class Setting:
    """An operator's input: a SAM parameter (CamelCase) and a Terraform variable (snake_case)."""

    sam_name: str
    name: str
    kind: str  # "string" or "number"
    description: str
    default: str | int | None = None  # None: required
    allowed: tuple[str, ...] = ()
    minimum: int | None = None

    def sam_parameter(self) -> dict[str, Any]:
        parameter: dict[str, Any] = {
            "Type": "Number" if self.kind == "number" else "String",
            "Description": self.description,
        }
        if self.default is not None:
            parameter["Default"] = self.default
        if self.allowed:
            parameter["AllowedValues"] = list(self.allowed)
        if self.minimum is not None:
            parameter["MinValue"] = self.minimum
        return parameter

    def terraform_variable(self) -> dict[str, Any]:
        variable: dict[str, Any] = {"type": self.kind, "description": self.description}
        if self.default is not None:
            variable["default"] = self.default
        conditions = []
        if self.allowed:
            conditions.append(f"contains({json.dumps(list(self.allowed))}, var.{self.name})")
        if self.minimum is not None:
            conditions.append(f"var.{self.name} >= {self.minimum}")
        if conditions:
            variable["validation"] = [
                {"condition": "${" + " && ".join(conditions) + "}", "error_message": self.description + "."}
            ]
        return variable


VPC_ID = Setting("VpcId", "vpc_id", "string", "VPC of SubnetIds, where the worker's security group is made")
VPC_CIDR = Setting(
    "VpcCidr", "vpc_cidr", "string", "CIDR of the VPC: the worker reaches PostgreSQL and Redis inside it"
)
HTTPS_EGRESS_CIDR = Setting(
    "WorkerHttpsEgressCidr",
    "worker_https_egress_cidr",
    "string",
    "Where the worker may open HTTPS (ECR, CloudWatch Logs, SSM, SES, SNS): the VPC's CIDR with"
    " interface endpoints for all of them, else anywhere through a NAT gateway",
    "0.0.0.0/0",
)
IMAGE_URI = Setting("WorkerImageUri", "worker_image_uri", "string", "The worker's container image (ECR URI)")
CPU = Setting(
    "WorkerCpu",
    "worker_cpu",
    "string",
    "CPU units of a worker task (1024 = 1 vCPU)",
    "512",
    ("256", "512", "1024", "2048", "4096"),
)
MEMORY = Setting(
    "WorkerMemory", "worker_memory", "string", "Memory of a worker task, MiB (valid for its CPU)", "1024"
)
MIN_COUNT = Setting(
    "WorkerMinCount",
    "worker_min_count",
    "number",
    "Fewest worker tasks (at least 1: target tracking cannot scale out from zero)",
    1,
    minimum=1,
)
MAX_COUNT = Setting("WorkerMaxCount", "worker_max_count", "number", "Most worker tasks", 4, minimum=1)
BACKLOG_PER_TASK = Setting(
    "WorkerBacklogPerTask",
    "worker_backlog_per_task",
    "number",
    "Queued notifications per running task the scaling holds to: what one task delivers in the delay"
    " you accept (threads x 16 with SES: a few hundred in ten seconds)",
    500,
    minimum=1,
)
POOL = Setting(
    "WorkerPool",
    "worker_pool",
    "string",
    "Celery pool of a worker task (threads for SES and SNS, which wait on the network)",
    DEFAULT_WORKER_POOL,
    ("threads", "solo", "prefork"),
)
CONCURRENCY = Setting(
    "WorkerConcurrency",
    "worker_concurrency",
    "number",
    "Celery concurrency of a worker task (also its database pool)",
    DEFAULT_WORKER_CONCURRENCY,
    minimum=1,
)
PROVIDERS = Setting(
    "NotifyProvider",
    "notify_provider",
    "string",
    "Delivery providers of the worker (NOTIFY_PROVIDER): ses for email, sns for SMS, log for neither",
    "ses,sns",
)
EMAIL_SENDER = Setting(
    "NotifyEmailSender",
    "notify_email_sender",
    "string",
    "From address of notification emails (NOTIFY_EMAIL_SENDER): an SES-verified identity; the only"
    " address the worker may send from",
)
SETTINGS = (
    VPC_ID,
    VPC_CIDR,
    HTTPS_EGRESS_CIDR,
    IMAGE_URI,
    CPU,
    MEMORY,
    MIN_COUNT,
    MAX_COUNT,
    BACKLOG_PER_TASK,
    POOL,
    CONCURRENCY,
    PROVIDERS,
    EMAIL_SENDER,
)
QUEUE_LENGTH_THRESHOLD = Threshold(
    "worker_queue_length_threshold",
    5000,
    "queued notifications above which, for 15 minutes, to alarm (the workers do not keep up)",
)
QUEUE_AGE_THRESHOLD = Threshold(
    "worker_queue_age_seconds",
    600,
    "age in seconds of the oldest notification no worker has taken yet above which to alarm",
)
WORKER_THRESHOLDS = (QUEUE_LENGTH_THRESHOLD, QUEUE_AGE_THRESHOLD)


@dataclass(frozen=True)
class Names:
    """The names of the worker's resources, all after the API function's name (``telehealth-api-prod``)."""

    prefix: str

    @property
    def cluster(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def service(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def log_group(self) -> str:
        return f"/ecs/{self.prefix}-worker"


def worker_environment(relay_environment: Mapping[str, str]) -> dict[str, str]:
    """The worker's fixed variables: the relay function's (same stage, same parameters), less
    ``NOT_FOR_THE_WORKER``. The operator's settings are added by each form."""
    missing = [name for name in SECRET_PARAMETERS if name not in relay_environment]
    if missing:
        raise ValueError(f"the relay function's environment lacks {missing}: the worker reads the same")
    return {k: v for k, v in relay_environment.items() if k not in NOT_FOR_THE_WORKER}


def parameter_arns(environment: Mapping[str, str]) -> list[str]:
    """The SSM parameters the worker reads (``DATABASE_URL_PARAMETER``, ``REDIS_URL_PARAMETER``)."""
    return [
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/"
        + environment[name].removeprefix("/")
        for name in SECRET_PARAMETERS
    ]


def task_policy(environment: Mapping[str, str], email_sender: Any) -> dict[str, Any]:
    """What the worker's code may do: read its two URLs, email from one address, text a phone."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDatabaseAndRedisUrls",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": parameter_arns(environment),
            },
            {
                "Sid": "SendEmailFromTheSenderOnly",
                "Effect": "Allow",
                "Action": "ses:SendEmail",
                "Resource": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*",
                "Condition": {"StringEquals": {"ses:FromAddress": email_sender}},
            },
            {
                # A text to a phone number has no ARN to name; NotResource keeps every topic out.
                "Sid": "PublishSmsToPhoneNumbersOnly",
                "Effect": "Allow",
                "Action": "sns:Publish",
                "NotResource": "arn:${AWS::Partition}:sns:*:*:*",
            },
        ],
    }


def execution_policy(log_group_arn: Any) -> dict[str, Any]:
    """What ECS may do for the task: pull this account's images, write the worker's log group."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # GetAuthorizationToken names no repository: AWS allows only "*" for it.
                "Sid": "LogInToEcr",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "PullImagesOfThisAccount",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Resource": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*",
            },
            {
                "Sid": "WriteTheWorkersLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": log_group_arn,
            },
        ],
    }


def container_definition(
    image: Any, environment: list[dict[str, Any]], log_group: str, region: Any
) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "user": WORKER_USER,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "stopTimeout": WORKER_STOP_TIMEOUT_SECONDS,
        "environment": environment,
        "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": WORKER_TMP_DIR, "readOnly": False}],
        # An init process as PID 1 passes ECS's SIGTERM on to Celery and reaps its children.
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": CONTAINER,
            },
        },
    }


def backlog_queries(settings: MetricSettings, names: Names) -> list[dict[str, Any]]:
    """The scaling metric, as CloudFormation spells a target tracking metric math query: the
    relay's queue length over the running tasks (the whole queue while Container Insights says 0)."""

    def metric(
        query_id: str, namespace: str, name: str, dimensions: dict[str, str], stat: str
    ) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
                },
                "Stat": stat,
            },
            "ReturnData": False,
        }

    return [
        metric(
            "queue",
            settings.namespace,
            catalogue.QUEUE_LENGTH.name,
            {catalogue.SERVICE: settings.service},
            "Maximum",
        ),
        metric(
            "tasks",
            CONTAINER_INSIGHTS,
            "RunningTaskCount",
            {"ClusterName": names.cluster, "ServiceName": names.service},
            "Average",
        ),
        {
            "Id": "backlog",
            "Expression": "IF(tasks >= 1, queue / tasks, queue)",
            "Label": "queued notifications per running worker task",
            "ReturnData": True,
        },
    ]


def worker_alarms(settings: MetricSettings, names: Names) -> list[Alarm]:
    return [
        Alarm(
            "worker-queue-length",
            "Notifications have waited in the worker's queue above the threshold for 15 minutes: the"
            " workers do not keep up (at their maximum count, failing, or throttled by SES or SNS).",
            (ours(catalogue.QUEUE_LENGTH, settings, "Maximum"),),
            QUEUE_LENGTH_THRESHOLD,
            evaluation_periods=3,
        ),
        Alarm(
            "worker-queue-age",
            "A notification handed to the broker has waited for a worker longer than the threshold:"
            " the workers are behind, stopped, or not consuming the queue.",
            (ours(catalogue.OLDEST_QUEUED_AGE, settings, "Maximum"),),
            QUEUE_AGE_THRESHOLD,
        ),
        Alarm(
            "worker-not-running",
            "No worker task has run for 5 minutes: notifications wait in the queue, none is delivered.",
            (
                Query(
                    "m",
                    CONTAINER_INSIGHTS,
                    "RunningTaskCount",
                    (("ClusterName", names.cluster), ("ServiceName", names.service)),
                    "Minimum",
                    returned=True,
                ),
            ),
            None,
            comparison="LessThanThreshold",
            constant=1,
            period=60,
            evaluation_periods=5,
            treat_missing_data="breaching",
        ),
    ]


def dashboard_widget(settings: MetricSettings, names: Names, region: str) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": 0,
        "y": 22,
        "width": 24,
        "height": 6,
        "properties": {
            "title": "Worker: queued notifications, oldest queued (s), running tasks",
            "region": region,
            "period": 60,
            "view": "timeSeries",
            "metrics": [
                [
                    settings.namespace,
                    catalogue.QUEUE_LENGTH.name,
                    catalogue.SERVICE,
                    settings.service,
                    {"stat": "Maximum", "label": "queued"},
                ],
                [
                    settings.namespace,
                    catalogue.OLDEST_QUEUED_AGE.name,
                    catalogue.SERVICE,
                    settings.service,
                    {"stat": "Maximum", "label": "oldest queued s"},
                ],
                [
                    CONTAINER_INSIGHTS,
                    "RunningTaskCount",
                    "ClusterName",
                    names.cluster,
                    "ServiceName",
                    names.service,
                    {"stat": "Average", "label": "running tasks", "yAxis": "right"},
                ],
            ],
        },
    }


def _with_worker_on_dashboard(body: str, widget: dict[str, Any], alarm_arns: list[str]) -> str:
    dashboard = json.loads(body)
    for existing in dashboard["widgets"]:
        if existing["type"] == "alarm":
            existing["properties"]["alarms"] += alarm_arns
    dashboard["widgets"].append(widget)
    return json.dumps(dashboard, separators=(",", ":"))


# --- SAM / CloudFormation ---------------------------------------------------------------------------

SAM_CLUSTER = "WorkerCluster"
SAM_SERVICE = "WorkerService"
SAM_TASK = "WorkerTaskDefinition"
SAM_LOG_GROUP = "WorkerLogGroup"
SAM_SECURITY_GROUP = "WorkerSecurityGroup"
SAM_TASK_ROLE = "WorkerTaskRole"
SAM_EXECUTION_ROLE = "WorkerExecutionRole"
SAM_SCALABLE_TARGET = "WorkerScalableTarget"
SAM_SCALING_POLICY = "WorkerScalingPolicy"
ECS_TASKS_PRINCIPAL = {"Service": "ecs-tasks.amazonaws.com"}


def sam_worker_service(
    template: dict[str, Any], tags: dict[str, str], retention: int, log_kms_key: Any
) -> None:
    """Add the worker's parameters and resources to ``template`` (after ``deploy.monitoring``).

    ``log_kms_key``: the expression the functions' log groups are encrypted with (given or created).
    """
    resources: dict[str, Any] = template["Resources"]
    if SAM_TOPIC not in resources:
        raise ValueError("the worker's alarms notify the alarm topic: run deploy.monitoring first")
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    names = Names(_one(f["FunctionName"] for f in functions if f["Handler"] == API_HANDLER))
    relay_env = _one(f["Environment"]["Variables"] for f in functions if f["Handler"] == RELAY_HANDLER)
    settings = load_metric_settings(relay_env)
    tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]

    template["Parameters"].update({s.sam_name: s.sam_parameter() for s in SETTINGS})
    template["Parameters"].update(
        {
            t.sam_name: {"Type": "Number", "Default": t.default, "MinValue": 0, "Description": t.description}
            for t in WORKER_THRESHOLDS
        }
    )
    variables: dict[str, Any] = {
        **worker_environment(relay_env),
        "NOTIFY_PROVIDER": {"Ref": PROVIDERS.sam_name},
        "NOTIFY_EMAIL_SENDER": {"Ref": EMAIL_SENDER.sam_name},
        WORKER_POOL_VARIABLE: {"Ref": POOL.sam_name},
        WORKER_CONCURRENCY_VARIABLE: {"Ref": CONCURRENCY.sam_name},
        "DB_POOL_SIZE": {"Ref": CONCURRENCY.sam_name},
        "DB_MAX_OVERFLOW": "0",
    }
    container = _sam_keys(
        container_definition(
            {"Ref": IMAGE_URI.sam_name},
            [{"name": key, "value": value} for key, value in variables.items()],
            names.log_group,
            {"Ref": "AWS::Region"},
        )
    )
    resources[SAM_LOG_GROUP] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": names.log_group,
            "RetentionInDays": retention,
            "KmsKeyId": log_kms_key,
            "Tags": tag_list,
        },
    }
    resources[SAM_CLUSTER] = {
        "Type": "AWS::ECS::Cluster",
        "Properties": {
            "ClusterName": names.cluster,
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
            "Tags": tag_list,
        },
    }
    resources[SAM_TASK_ROLE] = _sam_role(
        "the worker's code", "WorkerTask", task_policy(relay_env, {"Ref": EMAIL_SENDER.sam_name}), tag_list
    )
    resources[SAM_EXECUTION_ROLE] = _sam_role(
        "ECS, for the worker's task",
        "WorkerExecution",
        execution_policy({"Fn::GetAtt": [SAM_LOG_GROUP, "Arn"]}),
        tag_list,
    )
    resources[SAM_TASK] = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": names.service,
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": {"Ref": CPU.sam_name},
            "Memory": {"Ref": MEMORY.sam_name},
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": {"Fn::GetAtt": [SAM_EXECUTION_ROLE, "Arn"]},
            "TaskRoleArn": {"Fn::GetAtt": [SAM_TASK_ROLE, "Arn"]},
            "Volumes": [{"Name": TMP_VOLUME}],
            "ContainerDefinitions": [container],
            "Tags": tag_list,
        },
    }
    resources[SAM_SECURITY_GROUP] = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": SECURITY_GROUP_DESCRIPTION,
            "VpcId": {"Ref": VPC_ID.sam_name},
            "SecurityGroupEgress": [
                _sam_egress(port, {"Ref": cidr.sam_name}, description)
                for port, cidr, description in _egress_rules()
            ],
            "Tags": [*tag_list, {"Key": "Name", "Value": names.service}],
        },
    }
    resources[SAM_SERVICE] = {
        "Type": "AWS::ECS::Service",
        # DesiredCount is left to the scaling (1 at creation), so a stack update never resets it.
        "Properties": {
            "ServiceName": names.service,
            "Cluster": {"Ref": SAM_CLUSTER},
            "TaskDefinition": {"Ref": SAM_TASK},
            "LaunchType": "FARGATE",
            "PlatformVersion": "LATEST",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "Subnets": {"Ref": "SubnetIds"},
                    "SecurityGroups": [{"Ref": SAM_SECURITY_GROUP}],
                }
            },
            "DeploymentConfiguration": {
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200,
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
            },
            "EnableECSManagedTags": True,
            "PropagateTags": "SERVICE",
            "EnableExecuteCommand": False,
            "Tags": tag_list,
        },
    }
    resources[SAM_SCALABLE_TARGET] = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ServiceNamespace": "ecs",
            "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": {"Fn::Sub": f"service/${{{SAM_CLUSTER}}}/${{{SAM_SERVICE}.Name}}"},
            "MinCapacity": {"Ref": MIN_COUNT.sam_name},
            "MaxCapacity": {"Ref": MAX_COUNT.sam_name},
        },
    }
    resources[SAM_SCALING_POLICY] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": f"{names.service}-backlog-per-task",
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": SAM_SCALABLE_TARGET},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": {"Ref": BACKLOG_PER_TASK.sam_name},
                "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
                "ScaleInCooldown": SCALE_IN_COOLDOWN,
                "CustomizedMetricSpecification": {"Metrics": backlog_queries(settings, names)},
            },
        },
    }
    alarm_names = []
    for alarm in worker_alarms(settings, names):
        name = sam_alarm_name(alarm)
        alarm_names.append(name)
        resources[name] = sam_alarm(alarm, names.prefix, tag_list)
    dashboard = resources["Dashboard"]["Properties"]
    dashboard["DashboardBody"] = {
        "Fn::Sub": _with_worker_on_dashboard(
            dashboard["DashboardBody"]["Fn::Sub"],
            dashboard_widget(settings, names, "${AWS::Region}"),
            [f"${{{name}.Arn}}" for name in alarm_names],
        )
    }
    template.setdefault("Outputs", {}).update(
        {
            "WorkerClusterName": {"Description": "ECS cluster of the worker", "Value": {"Ref": SAM_CLUSTER}},
            "WorkerServiceName": {
                "Description": "ECS service of the worker",
                "Value": {"Fn::GetAtt": [SAM_SERVICE, "Name"]},
            },
            "WorkerSecurityGroupId": {
                "Description": "The worker's security group: let it into PostgreSQL (RDS Proxy) and Redis",
                "Value": {"Ref": SAM_SECURITY_GROUP},
            },
        }
    )


def _sam_role(whom: str, policy_name: str, document: dict[str, Any], tag_list: list[Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"Assumed by {whom}",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": ECS_TASKS_PRINCIPAL,
                        "Action": "sts:AssumeRole",
                        # Only tasks of this account may assume it (the confused deputy).
                        "Condition": {
                            "ArnLike": {
                                "aws:SourceArn": {
                                    "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"
                                }
                            },
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        },
                    }
                ],
            },
            "Policies": [{"PolicyName": policy_name, "PolicyDocument": _sam_policy(document)}],
            "Tags": tag_list,
        },
    }


def _sam_policy(document: dict[str, Any]) -> dict[str, Any]:
    """``for_cloudformation``, and a NotResource with placeholders as an ``Fn::Sub`` too."""
    statements = []
    for statement in document["Statement"]:
        if "NotResource" in statement:
            statements.append({**statement, "NotResource": {"Fn::Sub": statement["NotResource"]}})
        else:
            statements += for_cloudformation({"Statement": [statement]})["Statement"]
    return {**document, "Statement": statements}


def _sam_egress(port: int, cidr: Any, description: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": cidr, "Description": description}


def _egress_rules() -> list[tuple[int, Setting, str]]:
    return [
        (POSTGRES_PORT, VPC_CIDR, "PostgreSQL (RDS Proxy) in the VPC"),
        (REDIS_PORT, VPC_CIDR, "Redis (ElastiCache) in the VPC"),
        (HTTPS_PORT, HTTPS_EGRESS_CIDR, "AWS APIs: ECR, CloudWatch Logs, SSM, SES, SNS"),
    ]


def _sam_keys(value: Any) -> Any:
    """ECS's camelCase container definition as CloudFormation spells it (PascalCase keys); the log
    driver's options and CloudFormation's own functions keep theirs."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            return value
        return {
            key[0].upper() + key[1:]: item if key == "options" else _sam_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_sam_keys(item) for item in value]
    return value


def _one(values: Any) -> Any:
    (value,) = list(values)
    return value


# --- Terraform --------------------------------------------------------------------------------------


def terraform_worker_service(
    config: dict[str, Any], tags: dict[str, str], retention: int, log_kms_key: str
) -> None:
    """Add the worker's variables and resources to ``config`` (after ``deploy.monitoring``)."""
    resources: dict[str, Any] = config["resource"]
    functions = resources["aws_lambda_function"].values()
    names = Names(_one(f["function_name"] for f in functions if f["handler"] == API_HANDLER))
    relay_env = _one(f["environment"]["variables"] for f in functions if f["handler"] == RELAY_HANDLER)
    settings = load_metric_settings(relay_env)

    config["variable"].update({s.name: s.terraform_variable() for s in SETTINGS})
    config["variable"].update(
        {
            t.name: {"type": "number", "default": t.default, "description": t.description}
            for t in WORKER_THRESHOLDS
        }
    )
    variables = {
        **worker_environment(relay_env),
        "NOTIFY_PROVIDER": f"${{var.{PROVIDERS.name}}}",
        "NOTIFY_EMAIL_SENDER": f"${{var.{EMAIL_SENDER.name}}}",
        WORKER_POOL_VARIABLE: f"${{var.{POOL.name}}}",
        WORKER_CONCURRENCY_VARIABLE: f"${{tostring(var.{CONCURRENCY.name})}}",
        "DB_POOL_SIZE": f"${{tostring(var.{CONCURRENCY.name})}}",
        "DB_MAX_OVERFLOW": "0",
    }
    container = container_definition(
        f"${{var.{IMAGE_URI.name}}}",
        [{"name": key, "value": value} for key, value in variables.items()],
        names.log_group,
        "${data.aws_region.chalice.id}",
    )
    resources.setdefault("aws_cloudwatch_log_group", {})["worker"] = {
        "name": names.log_group,
        "retention_in_days": retention,
        "kms_key_id": log_kms_key,
        "tags": dict(tags),
    }
    resources["aws_ecs_cluster"] = {
        "worker": {
            "name": names.cluster,
            "setting": [{"name": "containerInsights", "value": "enabled"}],
            "tags": dict(tags),
        }
    }
    roles = resources.setdefault("aws_iam_role", {})
    policies = resources.setdefault("aws_iam_role_policy", {})
    for role, whom, document in (
        ("worker_task", "the worker's code", task_policy(relay_env, f"${{var.{EMAIL_SENDER.name}}}")),
        (
            "worker_execution",
            "ECS, for the worker's task",
            execution_policy("${aws_cloudwatch_log_group.worker.arn}:*"),
        ),
    ):
        roles[role] = {
            "name_prefix": f"{names.prefix[:20]}-{role.replace('_', '-')}-",
            "description": f"Assumed by {whom}",
            "assume_role_policy": json.dumps(_terraform_trust_policy()),
            "tags": dict(tags),
        }
        policies[role] = {
            "name": role,
            "role": f"${{aws_iam_role.{role}.id}}",
            "policy": for_terraform(json.dumps(document)),
        }
    resources["aws_ecs_task_definition"] = {
        "worker": {
            "family": names.service,
            "requires_compatibilities": ["FARGATE"],
            "network_mode": "awsvpc",
            "cpu": f"${{var.{CPU.name}}}",
            "memory": f"${{var.{MEMORY.name}}}",
            "runtime_platform": {"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            "execution_role_arn": "${aws_iam_role.worker_execution.arn}",
            "task_role_arn": "${aws_iam_role.worker_task.arn}",
            "volume": [{"name": TMP_VOLUME}],
            "container_definitions": "${jsonencode(" + _hcl_value([container]) + ")}",
            "tags": dict(tags),
        }
    }
    resources["aws_security_group"] = {
        "worker": {
            "name_prefix": f"{names.service}-",
            "description": SECURITY_GROUP_DESCRIPTION,
            "vpc_id": f"${{var.{VPC_ID.name}}}",
            "tags": {**tags, "Name": names.service},
            "lifecycle": {"create_before_destroy": True},
        }
    }
    resources["aws_vpc_security_group_egress_rule"] = {
        f"worker_{port}": {
            "security_group_id": "${aws_security_group.worker.id}",
            "ip_protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_ipv4": f"${{var.{cidr.name}}}",
            "description": description,
            "tags": dict(tags),
        }
        for port, cidr, description in _egress_rules()
    }
    resources["aws_ecs_service"] = {
        "worker": {
            "name": names.service,
            "cluster": "${aws_ecs_cluster.worker.id}",
            "task_definition": "${aws_ecs_task_definition.worker.arn}",
            "launch_type": "FARGATE",
            "platform_version": "LATEST",
            "desired_count": f"${{var.{MIN_COUNT.name}}}",
            "network_configuration": {
                "subnets": "${var.subnet_ids}",
                "security_groups": ["${aws_security_group.worker.id}"],
                "assign_public_ip": False,
            },
            "deployment_minimum_healthy_percent": 100,
            "deployment_maximum_percent": 200,
            "deployment_circuit_breaker": {"enable": True, "rollback": True},
            "enable_ecs_managed_tags": True,
            "propagate_tags": "SERVICE",
            "enable_execute_command": False,
            "tags": dict(tags),
            # The scaling owns the count after creation.
            "lifecycle": {"ignore_changes": ["desired_count"]},
        }
    }
    resources["aws_appautoscaling_target"] = {
        "worker": {
            "service_namespace": "ecs",
            "scalable_dimension": "ecs:service:DesiredCount",
            "resource_id": "service/${aws_ecs_cluster.worker.name}/${aws_ecs_service.worker.name}",
            "min_capacity": f"${{var.{MIN_COUNT.name}}}",
            "max_capacity": f"${{var.{MAX_COUNT.name}}}",
        }
    }
    resources["aws_appautoscaling_policy"] = {
        "worker_backlog": {
            "name": f"{names.service}-backlog-per-task",
            "policy_type": "TargetTrackingScaling",
            "service_namespace": "${aws_appautoscaling_target.worker.service_namespace}",
            "scalable_dimension": "${aws_appautoscaling_target.worker.scalable_dimension}",
            "resource_id": "${aws_appautoscaling_target.worker.resource_id}",
            "target_tracking_scaling_policy_configuration": {
                "target_value": f"${{var.{BACKLOG_PER_TASK.name}}}",
                "scale_out_cooldown": SCALE_OUT_COOLDOWN,
                "scale_in_cooldown": SCALE_IN_COOLDOWN,
                "customized_metric_specification": {
                    "metrics": [_terraform_query(query) for query in backlog_queries(settings, names)]
                },
            },
        }
    }
    metric_alarms = resources["aws_cloudwatch_metric_alarm"]
    arns = []
    for alarm in worker_alarms(settings, names):
        name = terraform_alarm_name(alarm)
        metric_alarms[name] = terraform_alarm(alarm, names.prefix, tags)
        arns.append(f"${{aws_cloudwatch_metric_alarm.{name}.arn}}")
    dashboard = resources["aws_cloudwatch_dashboard"]["monitoring"]
    dashboard["dashboard_body"] = _with_worker_on_dashboard(
        dashboard["dashboard_body"], dashboard_widget(settings, names, "${data.aws_region.chalice.id}"), arns
    )
    config.setdefault("output", {}).update(
        {
            "WorkerClusterName": {"value": "${aws_ecs_cluster.worker.name}"},
            "WorkerServiceName": {"value": "${aws_ecs_service.worker.name}"},
            "WorkerSecurityGroupId": {"value": "${aws_security_group.worker.id}"},
        }
    )


def _terraform_trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": ECS_TASKS_PRINCIPAL,
                "Action": "sts:AssumeRole",
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": "arn:${data.aws_partition.chalice.partition}:ecs:"
                        "${data.aws_region.chalice.id}:${data.aws_caller_identity.chalice.account_id}:*"
                    },
                    "StringEquals": {"aws:SourceAccount": "${data.aws_caller_identity.chalice.account_id}"},
                },
            }
        ],
    }


def _terraform_query(query: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation metric math query (``backlog_queries``) as the aws provider spells it."""
    found: dict[str, Any] = {"id": query["Id"], "return_data": query["ReturnData"]}
    if "Expression" in query:
        return {**found, "expression": query["Expression"], "label": query["Label"]}
    metric = query["MetricStat"]["Metric"]
    found["metric_stat"] = {
        "stat": query["MetricStat"]["Stat"],
        "metric": {
            "namespace": metric["Namespace"],
            "metric_name": metric["MetricName"],
            "dimensions": [{"name": d["Name"], "value": d["Value"]} for d in metric["Dimensions"]],
        },
    }
    return found


def _hcl_value(value: Any) -> str:
    """A JSON value as an HCL expression (inside ``${...}``): strings with interpolations stay
    templates, so ``jsonencode`` gets the variables' values and quotes them itself."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_hcl_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl_value(item) for item in value) + "]"
    return json.dumps(value)
