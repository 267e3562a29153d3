"""The optional data tier in ``make package``'s SAM template and Terraform configuration
(``deploy.data_tier``): off by default, and when on, encrypted, TLS only, backed up, reachable from
the functions and the worker only, and wired into the settings they already read.

Each test reads both forms through a small view (``DataTierView``) of what matters, so a difference
between them fails as surely as a wrong value in one. The first tests evaluate the SAM template's
conditions as CloudFormation would, with the switch off and on.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from celery import Celery
from celery.backends.redis import RedisBackend

from deploy.data_tier import DATABASE_USER, POSTGRES_MAJOR
from deploy.iam_policies import policy_document_of

DATABASE_URL_PARAMETER = "/telehealth-api/prod/database-url"
REDIS_URL_PARAMETER = "/telehealth-api/prod/redis-url"
REDIS_URL_REFERENCE = "/aws/reference/secretsmanager/telehealth-api/prod/redis-url"
DATA_TIER_TYPES = {
    "AWS::KMS::Key",
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBProxy",
    "AWS::RDS::DBProxyTargetGroup",
    "AWS::RDS::DBSubnetGroup",
    "AWS::RDS::DBParameterGroup",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::SecretsManager::Secret",
    "AWS::SSM::Parameter",
}
ROLES_READING = {  # which roles read which URL: the functions' (by their environment) and the worker's
    "DATABASE_URL_PARAMETER": {"ApiHandlerRole", "RelayNotificationsRole", "PurgeExpiredRecordsRole"},
    "REDIS_URL_PARAMETER": {"ApiHandlerRole", "RelayNotificationsRole"},
}
TERRAFORM_ROLES = {
    "ApiHandlerRole": "api_handler_role",
    "RelayNotificationsRole": "relay_notifications_role",
    "PurgeExpiredRecordsRole": "purge_expired_records_role",
    "WorkerTaskRole": "worker_task",
}


# --- CloudFormation's conditions, evaluated -----------------------------------------------------------


def evaluate(template: dict[str, Any], value: Any, parameters: dict[str, str]) -> Any:
    """``value`` with Ref to parameters, Fn::If, Fn::Equals, Fn::Not, Fn::And and Condition resolved."""
    if isinstance(value, list):
        return [evaluate(template, item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in template["Parameters"]:
        name = value["Ref"]
        return parameters.get(name, template["Parameters"][name].get("Default"))
    if set(value) == {"Condition"}:
        return condition(template, value["Condition"], parameters)
    if set(value) == {"Fn::Equals"}:
        left, right = evaluate(template, value["Fn::Equals"], parameters)
        return str(left) == str(right)
    if set(value) == {"Fn::Not"}:
        return not evaluate(template, value["Fn::Not"][0], parameters)
    if set(value) == {"Fn::And"}:
        return all(evaluate(template, item, parameters) for item in value["Fn::And"])
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        chosen = when_true if condition(template, name, parameters) else when_false
        return evaluate(template, chosen, parameters)
    return {key: evaluate(template, item, parameters) for key, item in value.items()}


def condition(template: dict[str, Any], name: str, parameters: dict[str, str]) -> bool:
    return bool(evaluate(template, template["Conditions"][name], parameters))


def active_resources(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The resources CloudFormation would create with ``parameters`` (the rest at their defaults)."""
    return {
        name: evaluate(template, resource, parameters)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or condition(template, resource["Condition"], parameters)
    }


def redis_settings(resources: dict[str, Any]) -> set[str]:
    """REDIS_URL_PARAMETER as each function and the worker's container read it."""
    found = {
        r["Properties"]["Environment"]["Variables"]["REDIS_URL_PARAMETER"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        and "REDIS_URL_PARAMETER" in r["Properties"]["Environment"]["Variables"]
    }
    (container,) = resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"]
    found |= {e["Value"] for e in container["Environment"] if e["Name"] == "REDIS_URL_PARAMETER"}
    return found


def test_without_the_switch_no_data_tier_resource_exists_and_the_settings_are_todays(
    sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    # GIVEN the templates as make package writes them, deployed with their defaults
    resources = active_resources(sam, {})

    # THEN nothing of the data tier is created, and the functions and the worker read today's parameters
    assert sam["Parameters"]["CreateDataTier"]["Default"] == "false"
    # (the stack's own key for the logs and the alarm topic, LogKmsKey, is not the data tier's)
    data_tier = {name: r["Type"] for name, r in resources.items() if r["Type"] in DATA_TIER_TYPES}
    assert not {name: kind for name, kind in data_tier.items() if name != "LogKmsKey"}
    assert not [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Policy"]
    assert redis_settings(resources) == {REDIS_URL_PARAMETER}
    for function in (r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"):
        if "DATABASE_URL_PARAMETER" in function["Properties"]["Environment"]["Variables"]:
            assert function["Properties"]["Environment"]["Variables"]["DATABASE_URL_PARAMETER"] == (
                DATABASE_URL_PARAMETER
            )
    # AND in Terraform every data tier resource counts on the switch, off by default
    variable = terraform["variable"]["create_data_tier"]
    assert (variable["type"], variable["default"]) == ("bool", False)
    for kind, name in data_tier_addresses(terraform):
        count = terraform["resource"][kind][name]["count"]
        assert count.startswith("${var.create_data_tier ") and count.endswith(" ? 1 : 0}"), (kind, name)
    assert terraform["locals"]["redis_url_parameter"] == (
        f'${{var.create_data_tier ? "{REDIS_URL_REFERENCE}" : "{REDIS_URL_PARAMETER}"}}'
    )


def test_with_the_switch_the_data_tier_exists_and_the_redis_url_comes_from_its_secret(
    sam: dict[str, Any],
) -> None:
    # GIVEN the switch on, no key given
    resources = active_resources(sam, {"CreateDataTier": "true"})

    # THEN every part exists, with the key the stack makes, and Redis is read through the secret
    assert {r["Type"] for r in resources.values()} >= DATA_TIER_TYPES
    assert redis_settings(resources) == {REDIS_URL_REFERENCE}
    # AND with a key given, the stack makes none and uses it
    given = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    with_key = active_resources(sam, {"CreateDataTier": "true", "DataTierKmsKeyArn": given})
    assert "DataTierKey" not in with_key
    assert with_key["Database"]["Properties"]["KmsKeyId"] == given


# --- Both forms, through one view ------------------------------------------------------------------


@dataclass(frozen=True)
class DataTierView:
    """What both forms must agree on, read from one of them (CloudFormation's property names)."""

    form: str
    key: Any
    database: dict[str, Any]
    database_parameters: dict[str, str]
    proxy: dict[str, Any]
    cache: dict[str, Any]
    secrets: dict[str, dict[str, Any]]  # by name
    database_url: dict[str, Any]  # Name, Type, Value
    redis_url: str
    ingress: dict[str, list[tuple[int, Any]]]  # group -> (port, source security group)
    ingress_cidrs: list[Any]
    log_groups: dict[str, dict[str, Any]]
    access: dict[str, dict[str, list[dict[str, Any]]]]  # policy -> role -> statements
    functions_group: Any
    worker_group: Any
    proxy_group: Any


def sam_view(sam: dict[str, Any]) -> DataTierView:
    resources = sam["Resources"]

    def properties(name: str) -> dict[str, Any]:
        return dict(resources[name]["Properties"])

    groups = {
        "proxy": "DatabaseProxySecurityGroup",
        "database": "DatabaseSecurityGroup",
        "cache": "CacheSecurityGroup",
    }
    ingress = {
        group: [
            (rule["FromPort"], rule.get("SourceSecurityGroupId"))
            for rule in properties(name)["SecurityGroupIngress"]
        ]
        for group, name in groups.items()
    }
    cidrs = [
        rule.get("CidrIp") for name in groups.values() for rule in properties(name)["SecurityGroupIngress"]
    ]
    access = {
        policy: {
            role["Ref"]: properties(policy)["PolicyDocument"]["Statement"]
            for role in properties(policy)["Roles"]
        }
        for policy in ("DataTierDatabaseAccess", "DataTierCacheAccess")
    }
    secrets = {
        p["Name"]: p
        for p in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret")
    }
    return DataTierView(
        form="sam",
        key={
            "Fn::If": [
                "HasDataTierKmsKey",
                {"Ref": "DataTierKmsKeyArn"},
                {"Fn::GetAtt": ["DataTierKey", "Arn"]},
            ]
        },
        database=properties("Database"),
        database_parameters=properties("DatabaseParameterGroup")["Parameters"],
        proxy=properties("DatabaseProxy"),
        cache=properties("Cache"),
        secrets=secrets,
        database_url={
            **properties("DatabaseUrlParameter"),
            "Value": properties("DatabaseUrlParameter")["Value"]["Fn::Sub"],
        },
        redis_url=properties("RedisUrlSecret")["SecretString"]["Fn::Sub"],
        ingress=ingress,
        ingress_cidrs=[cidr for cidr in cidrs if cidr is not None],
        log_groups={
            p["LogGroupName"]: p
            for p in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup")
            if str(p["LogGroupName"]).startswith("/aws/rds/")
        },
        access=access,
        functions_group={"Fn::Select": [0, {"Ref": "SecurityGroupIds"}]},
        worker_group={"Ref": "WorkerSecurityGroup"},
        proxy_group={"Ref": "DatabaseProxySecurityGroup"},
    )


def terraform_view(terraform: dict[str, Any]) -> DataTierView:
    resources = terraform["resource"]
    key = (
        "${var.data_tier_kms_key_arn == null ? one(aws_kms_key.data_tier[*].arn) : var.data_tier_kms_key_arn}"
    )
    database = resources["aws_db_instance"]["data_tier"]
    proxy = resources["aws_db_proxy"]["data_tier"]
    cache = resources["aws_elasticache_replication_group"]["data_tier"]
    (auth,) = proxy["auth"]
    groups = {"proxy": "database_proxy", "database": "database", "cache": "cache"}
    rules = resources["aws_vpc_security_group_ingress_rule"].values()
    ingress = {
        group: [
            (rule["from_port"], rule.get("referenced_security_group_id"))
            for rule in rules
            if rule["security_group_id"] == f"${{aws_security_group.{name}[0].id}}"
        ]
        for group, name in groups.items()
    }
    access: dict[str, dict[str, list[dict[str, Any]]]] = {
        "DataTierDatabaseAccess": {},
        "DataTierCacheAccess": {},
    }
    for name in resources["aws_iam_role_policy"]:
        for prefix, kind in (
            ("data_tier_database_", "DataTierDatabaseAccess"),
            ("data_tier_cache_", "DataTierCacheAccess"),
        ):
            if name.startswith(prefix):
                role = {v: k for k, v in TERRAFORM_ROLES.items()}[name.removeprefix(prefix)]
                # Each role policy's document is a data source of the same name (deploy.iam_policies)
                document = policy_document_of(terraform["data"]["aws_iam_policy_document"][name])
                access[kind][role] = document["Statement"]
    parameter = resources["aws_ssm_parameter"]["database_url"]
    secrets = {
        s["name"]: {"Name": s["name"], "KmsKeyId": s["kms_key_id"]}
        for s in resources["aws_secretsmanager_secret"].values()
    }
    return DataTierView(
        form="terraform",
        key=key,
        database={
            "Engine": database["engine"],
            "EngineVersion": database["engine_version"],
            "StorageEncrypted": database["storage_encrypted"],
            "KmsKeyId": database["kms_key_id"],
            "MultiAZ": database["multi_az"],
            "MasterUsername": database["username"],
            "ManageMasterUserPassword": database["manage_master_user_password"],
            "MasterUserSecret": {"KmsKeyId": database["master_user_secret_kms_key_id"]},
            "EnableIAMDatabaseAuthentication": database["iam_database_authentication_enabled"],
            "PubliclyAccessible": database["publicly_accessible"],
            "BackupRetentionPeriod": database["backup_retention_period"],
            "DeletionProtection": database["deletion_protection"],
            "CopyTagsToSnapshot": database["copy_tags_to_snapshot"],
            "AutoMinorVersionUpgrade": database["auto_minor_version_upgrade"],
            "EnableCloudwatchLogsExports": database["enabled_cloudwatch_logs_exports"],
            "EnablePerformanceInsights": database["performance_insights_enabled"],
            "PerformanceInsightsKMSKeyId": database["performance_insights_kms_key_id"],
            "VPCSecurityGroups": database["vpc_security_group_ids"],
        },
        database_parameters={
            p["name"]: p["value"] for p in resources["aws_db_parameter_group"]["data_tier"]["parameter"]
        },
        proxy={
            "RequireTLS": proxy["require_tls"],
            "DebugLogging": proxy["debug_logging"],
            "Auth": [
                {
                    "AuthScheme": auth["auth_scheme"],
                    "SecretArn": auth["secret_arn"],
                    "IAMAuth": auth["iam_auth"],
                    "ClientPasswordAuthType": auth["client_password_auth_type"],
                }
            ],
        },
        cache={
            "Engine": cache["engine"],
            "TransitEncryptionEnabled": cache["transit_encryption_enabled"],
            "TransitEncryptionMode": cache["transit_encryption_mode"],
            "AtRestEncryptionEnabled": cache["at_rest_encryption_enabled"],
            "KmsKeyId": cache["kms_key_id"],
            "AuthToken": cache["auth_token"],
            "AutomaticFailoverEnabled": cache["automatic_failover_enabled"],
            "MultiAZEnabled": cache["multi_az_enabled"],
        },
        secrets=secrets,
        database_url={"Name": parameter["name"], "Type": parameter["type"], "Value": parameter["value"]},
        redis_url=resources["aws_secretsmanager_secret_version"]["redis_url"]["secret_string"],
        ingress=ingress,
        ingress_cidrs=[rule["cidr_ipv4"] for rule in rules if "cidr_ipv4" in rule],
        log_groups={
            group["name"]: {"RetentionInDays": group["retention_in_days"], "KmsKeyId": group["kms_key_id"]}
            for group in resources["aws_cloudwatch_log_group"].values()
            if group["name"].startswith("/aws/rds/")
        },
        access=access,
        functions_group="${var.security_group_ids[0]}",
        worker_group="${aws_security_group.worker.id}",
        proxy_group="${aws_security_group.database_proxy[0].id}",
    )


def data_tier_addresses(terraform: dict[str, Any]) -> list[tuple[str, str]]:
    kinds = ("aws_kms_key", "aws_db_", "aws_elasticache_", "aws_secretsmanager_", "aws_ssm_parameter")
    found = [
        (kind, name)
        for kind, resources in terraform["resource"].items()
        for name in resources
        if (
            kind.startswith(kinds) and (kind, name) != ("aws_kms_key", "logs")
        )  # the logs' key is not the tier's
        or (kind == "aws_security_group" and name != "worker")
        or (kind.startswith("aws_vpc_security_group") and not name.startswith("worker"))
        or name.startswith(("data_tier", "database"))
    ]
    assert found
    return found


@pytest.fixture(scope="module", params=["sam", "terraform"])
def tier(request: pytest.FixtureRequest, sam: dict[str, Any], terraform: dict[str, Any]) -> DataTierView:
    return sam_view(sam) if request.param == "sam" else terraform_view(terraform)


def test_storage_secrets_and_cache_are_encrypted_with_the_data_tier_key(tier: DataTierView) -> None:
    assert tier.database["StorageEncrypted"] is True
    assert tier.database["KmsKeyId"] == tier.key
    assert tier.database["MasterUserSecret"] == {"KmsKeyId": tier.key}
    assert tier.database["EnablePerformanceInsights"] is True
    assert tier.database["PerformanceInsightsKMSKeyId"] == tier.key
    assert tier.cache["AtRestEncryptionEnabled"] is True and tier.cache["KmsKeyId"] == tier.key
    assert {name: secret["KmsKeyId"] for name, secret in tier.secrets.items()} == {
        "telehealth-api/prod/redis-auth-token": tier.key,
        "telehealth-api/prod/redis-url": tier.key,
    }
    # The database's exported logs go to groups made beforehand, with the functions' retention and key
    assert set(tier.log_groups) == {
        f"/aws/rds/instance/telehealth-api-prod/{log}" for log in tier.database["EnableCloudwatchLogsExports"]
    }
    assert {g["RetentionInDays"] for g in tier.log_groups.values()} == {365}
    expected_log_key = (
        {"Fn::If": ["HasLogKmsKey", {"Ref": "LogKmsKeyArn"}, {"Fn::GetAtt": ["LogKmsKey", "Arn"]}]}
        if tier.form == "sam"
        else "${local.log_kms_key_arn}"
    )
    assert {json.dumps(g["KmsKeyId"]) for g in tier.log_groups.values()} == {json.dumps(expected_log_key)}


def test_every_connection_is_tls_and_authenticated_by_iam_or_auth_token(tier: DataTierView) -> None:
    assert tier.database_parameters["rds.force_ssl"] == "1"
    # No DETAIL lines in PostgreSQL's log: they quote a violated unique key's values
    assert tier.database_parameters["log_error_verbosity"] == "terse"
    assert tier.database["EngineVersion"].split(".")[0] == POSTGRES_MAJOR
    assert tier.database["EnableIAMDatabaseAuthentication"] is True
    assert tier.database["PubliclyAccessible"] is False
    assert tier.database["ManageMasterUserPassword"] is True
    assert tier.proxy["RequireTLS"] is True and tier.proxy["DebugLogging"] is False
    (auth,) = tier.proxy["Auth"]
    assert (auth["AuthScheme"], auth["IAMAuth"]) == ("SECRETS", "REQUIRED")
    assert "MasterUserSecret" in json.dumps(auth["SecretArn"]) or "master_user_secret" in auth["SecretArn"]
    assert tier.cache["Engine"] == "valkey"
    assert (
        tier.cache["TransitEncryptionEnabled"] is True and tier.cache["TransitEncryptionMode"] == "required"
    )
    # The AUTH token is the generated secret's value (redis-auth-token), never a literal
    assert tier.cache["AuthToken"] == (
        {"Fn::Sub": "{{resolve:secretsmanager:${CacheAuthToken}:SecretString:token}}"}
        if tier.form == "sam"
        else "${jsondecode(aws_secretsmanager_secret_version.cache_auth_token[0].secret_string).token}"
    )


def test_backups_deletion_protection_and_multi_az_by_parameter(
    tier: DataTierView, sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    assert tier.database["DeletionProtection"] is True
    assert tier.database["CopyTagsToSnapshot"] is True and tier.database["AutoMinorVersionUpgrade"] is True
    if tier.form == "sam":
        assert tier.database["BackupRetentionPeriod"] == {"Ref": "DatabaseBackupRetentionDays"}
        backups = sam["Parameters"]["DatabaseBackupRetentionDays"]
        assert (backups["Default"], backups["MinValue"], backups["MaxValue"]) == (7, 7, 35)
        assert tier.database["MultiAZ"] == {"Ref": "DatabaseMultiAz"}
        assert (
            tier.cache["AutomaticFailoverEnabled"] == tier.cache["MultiAZEnabled"] == {"Ref": "CacheMultiAz"}
        )
        assert (
            sam["Parameters"]["DatabaseMultiAz"]["Default"]
            == sam["Parameters"]["CacheMultiAz"]["Default"]
            == "true"
        )
        assert sam["Resources"]["Database"]["DeletionPolicy"] == "Snapshot"
    else:
        assert tier.database["BackupRetentionPeriod"] == "${var.database_backup_retention_days}"
        variables = terraform["variable"]
        assert variables["database_backup_retention_days"]["default"] == 7
        assert "var.database_backup_retention_days >= 7" in json.dumps(
            variables["database_backup_retention_days"]
        )
        assert tier.database["MultiAZ"] == "${var.database_multi_az}"
        assert (
            tier.cache["AutomaticFailoverEnabled"] == tier.cache["MultiAZEnabled"] == "${var.cache_multi_az}"
        )
        assert variables["database_multi_az"]["default"] is variables["cache_multi_az"]["default"] is True
        assert terraform["resource"]["aws_db_instance"]["data_tier"]["skip_final_snapshot"] is False


def test_only_the_functions_and_the_worker_reach_the_proxy_and_the_cache(tier: DataTierView) -> None:
    clients = sorted([(5432, tier.functions_group), (5432, tier.worker_group)], key=json.dumps)
    assert sorted(tier.ingress["proxy"], key=json.dumps) == clients
    assert sorted(tier.ingress["cache"], key=json.dumps) == sorted(
        [(6379, tier.functions_group), (6379, tier.worker_group)], key=json.dumps
    )
    # The database only from the proxy: migrations go through it as well
    assert tier.ingress["database"] == [(5432, tier.proxy_group)]
    assert tier.ingress_cidrs == []


def test_the_settings_the_functions_read_are_filled_from_the_data_tier(tier: DataTierView) -> None:
    # The database URL: today's parameter name, no password, IAM tokens, TLS, through the proxy
    assert tier.database_url["Name"] == DATABASE_URL_PARAMETER
    assert tier.database_url["Type"] == ("String" if tier.form == "sam" else "SecureString")
    endpoint = "${DatabaseProxy.Endpoint}" if tier.form == "sam" else "${aws_db_proxy.data_tier[0].endpoint}"
    assert endpoint in tier.database_url["Value"]
    url = urlsplit(tier.database_url["Value"].replace(endpoint, "proxy.invalid"))
    assert (url.scheme, url.username, url.password, url.hostname, url.port) == (
        "postgresql",
        DATABASE_USER,
        None,
        "proxy.invalid",
        5432,
    )
    assert parse_qs(url.query) == {"sslmode": ["require"], "rds_iam_auth": ["true"]}
    # The Redis URL: a secret named after today's parameter, rediss:// with the AUTH token
    assert "telehealth-api/prod/redis-url" in tier.secrets
    assert tier.redis_url.startswith("rediss://:") and tier.redis_url.endswith("/0?ssl_cert_reqs=required")
    # Each role that reads a URL may use it, and no other role
    assert set(tier.access["DataTierDatabaseAccess"]) == ROLES_READING["DATABASE_URL_PARAMETER"] | {
        "WorkerTaskRole"
    }
    assert set(tier.access["DataTierCacheAccess"]) == ROLES_READING["REDIS_URL_PARAMETER"] | {
        "WorkerTaskRole"
    }
    for statements in tier.access["DataTierDatabaseAccess"].values():
        connect = statements[0]
        assert connect["Action"] == "rds-db:connect"
        assert json.dumps(connect["Resource"]).count(f"/{DATABASE_USER}") == 1
    for statements in tier.access["DataTierCacheAccess"].values():
        actions = {s["Sid"]: s["Action"] for s in statements}
        assert actions == {
            "ReadTheRedisUrlReference": "ssm:GetParameter",
            "ReadTheRedisUrlSecret": "secretsmanager:GetSecretValue",
            "DecryptItThroughSecretsManager": "kms:Decrypt",
        }
        (reference,) = [s["Resource"] for s in statements if s["Action"] == "ssm:GetParameter"]
        assert json.dumps(reference).endswith(f':parameter{REDIS_URL_REFERENCE}"}}') or json.dumps(
            reference
        ).endswith(f':parameter{REDIS_URL_REFERENCE}"')


def test_the_redis_url_is_one_celery_and_redis_py_accept_with_the_certificate_checked(
    sam: dict[str, Any],
) -> None:
    # GIVEN the Redis URL the stack writes, with a token and an endpoint in place of its references
    template = sam_view(sam).redis_url
    url = template.replace("{{resolve:secretsmanager:${CacheAuthToken}:SecretString:token}}", "t0ken")
    url = url.replace("${Cache.PrimaryEndPoint.Address}", "primary.cache.invalid")
    url = url.replace("${Cache.PrimaryEndPoint.Port}", "6379")

    # WHEN the worker's result backend, its broker and the API's Redis client read it (no connection)
    backend = RedisBackend(app=Celery(set_as_current=False), url=url)
    broker = Celery(broker=url, set_as_current=False).connection_for_write()
    client = redis.Redis.from_url(url)

    # THEN each speaks TLS and checks the server's certificate
    assert backend.connparams["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert broker.transport.driver_name == "redis" and broker.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"
    assert client.connection_pool.connection_kwargs["password"] == "t0ken"
