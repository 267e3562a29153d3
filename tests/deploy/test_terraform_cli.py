"""Terraform itself on ``make package``'s configuration: ``init`` from a local plugin mirror, ``validate``,
and ``plan`` against moto_server, all offline.

Needs a ``terraform`` binary and the hashicorp/aws provider in a filesystem mirror
(``TERRAFORM_PLUGIN_DIR``, default /opt/tf-plugins). Where either is missing the
tests are skipped with the reason (``-ra`` prints it), never silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.package import DEPLOYMENT_ZIP, TERRAFORM_CONFIG, PackageOutput

PLUGIN_DIR = Path(os.environ.get("TERRAFORM_PLUGIN_DIR", "/opt/tf-plugins"))
AWS_PROVIDER_IN_MIRROR = "registry.terraform.io/hashicorp/aws"
# Services the configuration reads or plans, all answered by moto_server.
EMULATED_SERVICES = (
    "apigateway",
    "appautoscaling",
    "cloudwatch",
    "cloudwatchlogs",
    "ec2",
    "ecs",
    "iam",
    "lambda",
    "secretsmanager",
    "sns",
    "sts",
    "wafv2",
)
PLAN_VARIABLES = {
    "subnet_ids": ["subnet-0123456789abcdef0"],
    "security_group_ids": ["sg-0123456789abcdef0"],
    "log_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    # No web_acl_arn: the plan creates the web ACL (its rules checked by the provider); the key is given.
    "code_signing_profile_version_arn": "arn:aws:signer:us-east-1:123456789012:/signing-profiles/th/abc",
    "domain_name": "api.example.org",
    "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    "alarm_email": "oncall@example.org",
    "latency_p99_milliseconds": 800,
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_cidr": "10.0.0.0/16",
    "worker_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/telehealth-worker:1a2b3c4",
    "notify_email_sender": "notifications@example.org",
    "worker_max_count": 6,
    "create_data_tier": True,
    "database_instance_class": "db.t4g.medium",
    "cache_multi_az": False,
}


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed: init, validate and plan of the Terraform output not run")
    if not (PLUGIN_DIR / AWS_PROVIDER_IN_MIRROR).is_dir():
        pytest.skip(
            f"no hashicorp/aws provider in {PLUGIN_DIR} (TERRAFORM_PLUGIN_DIR): Terraform checks not run"
        )
    return binary


@pytest.fixture(scope="module")
def terraform_dir(lambda_package: PackageOutput, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Terraform working directory with the package's configuration, initialised offline."""
    binary = terraform_binary()
    directory = tmp_path_factory.mktemp("terraform")
    for name in (TERRAFORM_CONFIG, DEPLOYMENT_ZIP):
        shutil.copyfile(lambda_package.terraform_dir / name, directory / name)
    run_terraform(binary, directory, "init", "-input=false", f"-plugin-dir={PLUGIN_DIR}")
    return directory


def run_terraform(binary: str, directory: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,  # no user configuration, no network mirror
        "CHECKPOINT_DISABLE": "1",
    }
    result = subprocess.run(
        [binary, *args, "-no-color"], cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_terraform_validates_the_configuration(terraform_dir: Path) -> None:
    output = run_terraform(terraform_binary(), terraform_dir, "validate", "-json")

    report = json.loads(output)
    assert report["valid"] is True and report["warning_count"] == 0, report["diagnostics"]


def test_terraform_plans_every_resource_against_moto_server(terraform_dir: Path, moto_endpoint: str) -> None:
    binary = terraform_binary()
    # GIVEN the provider pointed at moto_server (an override file, as an operator's provider block would be)
    provider: dict[str, Any] = {
        "region": "us-east-1",
        "access_key": "testing",
        "secret_key": "testing",
        "skip_credentials_validation": True,
        "skip_metadata_api_check": True,
        "skip_requesting_account_id": True,
        "endpoints": [{service: moto_endpoint for service in EMULATED_SERVICES}],
    }
    (terraform_dir / "moto_override.tf.json").write_text(json.dumps({"provider": {"aws": provider}}))
    (terraform_dir / "plan.auto.tfvars.json").write_text(json.dumps(PLAN_VARIABLES))

    # WHEN terraform plans the deployment with every optional part switched on (the web ACL created)
    run_terraform(binary, terraform_dir, "plan", "-input=false", "-out=tfplan")
    plan = json.loads(run_terraform(binary, terraform_dir, "show", "-json", "tfplan"))

    # THEN it creates each part, with the operator's values where they belong (policy documents that name
    # resources still to be created are read at apply)
    planned = {
        change["address"]: change for change in plan["resource_changes"] if change["mode"] == "managed"
    }
    assert {change["change"]["actions"][0] for change in planned.values()} == {"create"}
    for address in (
        "aws_lambda_function.api_handler",
        "aws_lambda_function.bearer_token",
        "aws_cloudwatch_log_group.api_access",
        "aws_api_gateway_stage.rest_api",
        "aws_api_gateway_method_settings.rest_api",
        "aws_wafv2_web_acl.rest_api[0]",
        "aws_wafv2_web_acl_association.rest_api",
        "aws_lambda_code_signing_config.functions[0]",
        "aws_api_gateway_domain_name.rest_api[0]",
        "aws_api_gateway_base_path_mapping.rest_api[0]",
        "aws_sns_topic.alarms",
        "aws_sns_topic_subscription.alarm_email[0]",
        "aws_cloudwatch_metric_alarm.latency_p99",
        "aws_cloudwatch_metric_alarm.relay_notifications_not_running",
        "aws_cloudwatch_dashboard.monitoring",
        "aws_ecs_cluster.worker",
        "aws_ecs_task_definition.worker",
        "aws_ecs_service.worker",
        "aws_security_group.worker",
        "aws_appautoscaling_target.worker",
        "aws_appautoscaling_policy.worker_backlog",
        "aws_cloudwatch_metric_alarm.worker_not_running",
        "aws_kms_key.data_tier[0]",
        "aws_db_instance.data_tier[0]",
        "aws_db_proxy.data_tier[0]",
        "aws_db_proxy_target.data_tier[0]",
        "aws_ssm_parameter.database_url[0]",
        "aws_elasticache_replication_group.data_tier[0]",
        "aws_secretsmanager_secret_version.redis_url[0]",
        "aws_iam_role_policy.data_tier_database_worker_task[0]",
    ):
        assert address in planned, sorted(planned)
    api_function = planned["aws_lambda_function.api_handler"]["change"]["after"]
    assert api_function["vpc_config"][0]["subnet_ids"] == PLAN_VARIABLES["subnet_ids"]
    assert api_function["vpc_config"][0]["security_group_ids"] == PLAN_VARIABLES["security_group_ids"]
    assert "aws_kms_key.logs[0]" not in planned  # the key given is used
    assert (
        planned["aws_sns_topic.alarms"]["change"]["after"]["kms_master_key_id"]
        == PLAN_VARIABLES["log_kms_key_arn"]
    )
    rate_rule = planned["aws_wafv2_web_acl.rest_api[0]"]["change"]["after"]["rule"]
    assert any(rule["statement"][0]["rate_based_statement"] for rule in rate_rule)
    access_logs = planned["aws_cloudwatch_log_group.api_access"]["change"]["after"]
    assert access_logs["kms_key_id"] == PLAN_VARIABLES["log_kms_key_arn"]
    domain = planned["aws_api_gateway_domain_name.rest_api[0]"]["change"]["after"]
    assert domain["security_policy"] == "TLS_1_2"
    latency = planned["aws_cloudwatch_metric_alarm.latency_p99"]["change"]["after"]
    assert latency["threshold"] == PLAN_VARIABLES["latency_p99_milliseconds"]
    subscription = planned["aws_sns_topic_subscription.alarm_email[0]"]["change"]["after"]
    assert subscription["endpoint"] == PLAN_VARIABLES["alarm_email"]
    # The worker: its image, its sender, its bounds, its log group's key, in the private subnets
    (container,) = json.loads(
        planned["aws_ecs_task_definition.worker"]["change"]["after"]["container_definitions"]
    )
    assert container["image"] == PLAN_VARIABLES["worker_image_uri"]
    assert {"name": "NOTIFY_EMAIL_SENDER", "value": PLAN_VARIABLES["notify_email_sender"]} in container[
        "environment"
    ]
    target = planned["aws_appautoscaling_target.worker"]["change"]["after"]
    assert (target["min_capacity"], target["max_capacity"]) == (1, PLAN_VARIABLES["worker_max_count"])
    network = planned["aws_ecs_service.worker"]["change"]["after"]["network_configuration"][0]
    assert network["subnets"] == PLAN_VARIABLES["subnet_ids"] and network["assign_public_ip"] is False
    worker_logs = planned["aws_cloudwatch_log_group.worker"]["change"]["after"]
    assert worker_logs["kms_key_id"] == PLAN_VARIABLES["log_kms_key_arn"]
    # The data tier: the operator's sizes and switches, encrypted, TLS only, IAM auth, in the private subnets
    database = planned["aws_db_instance.data_tier[0]"]["change"]["after"]
    assert database["instance_class"] == PLAN_VARIABLES["database_instance_class"]
    assert database["storage_encrypted"] and database["iam_database_authentication_enabled"]
    assert (
        database["multi_az"] and database["deletion_protection"] and database["backup_retention_period"] == 7
    )
    assert planned["aws_db_proxy.data_tier[0]"]["change"]["after"]["require_tls"] is True
    assert (
        planned["aws_db_subnet_group.data_tier[0]"]["change"]["after"]["subnet_ids"]
        == (PLAN_VARIABLES["subnet_ids"])
    )
    cache = planned["aws_elasticache_replication_group.data_tier[0]"]["change"]["after"]
    assert cache["transit_encryption_enabled"] and cache["at_rest_encryption_enabled"]
    assert (cache["num_cache_clusters"], cache["automatic_failover_enabled"]) == (1, False)
    api_environment = api_function["environment"][0]["variables"]
    assert (
        api_environment["REDIS_URL_PARAMETER"]
        == "/aws/reference/secretsmanager/telehealth-api/prod/redis-url"
    )
