"""The optional data tier, in SAM and in Terraform alike: PostgreSQL behind RDS Proxy, and Valkey.

``sam_data_tier`` (called by ``deploy.sam``) and ``terraform_data_tier`` (called by
``deploy.terraform_production``) add, after the worker's service, resources that exist only with
``CreateDataTier=true`` / ``create_data_tier = true`` (a Condition / ``count``). Without the switch
nothing of this module is created and the functions read today's parameters, which name an
operator's own endpoints. With it:

* a KMS key with rotation (unless ``DataTierKmsKeyArn`` names one) encrypting the database's
  storage, its master secret, Performance Insights, the cache and the cache's secrets;
* RDS PostgreSQL: private subnets (``SubnetIds``), Multi-AZ by parameter, backups kept
  ``DatabaseBackupRetentionDays`` (7 at least), deletion protection and a snapshot on delete,
  tags copied to snapshots, IAM database authentication, the master password made and rotated by
  RDS in Secrets Manager, a parameter group forcing TLS (``rds.force_ssl=1``) and logging errors
  tersely (no DETAIL lines, which would hold a duplicate key's values), its logs exported into
  log groups made beforehand with the functions' retention and key, enhanced monitoring, and
  Performance Insights (7 days, free) with the key;
* RDS Proxy in front of it: TLS required, IAM authentication required from clients, and the master
  secret for its own connections to the database;
* ElastiCache for Valkey: a replication group with in-transit (required) and at-rest encryption
  (with the key), an AUTH token generated in Secrets Manager, Multi-AZ with automatic failover by
  parameter (two nodes, else one);
* security groups: the proxy and the cache let in only the functions' security group (the first
  of ``SecurityGroupIds``) and the worker's (``WorkerSecurityGroup``); the database only the proxy;
* the settings the functions and the worker already read, filled from these resources:
  ``DATABASE_URL_PARAMETER`` names a String parameter the stack creates holding a URL without a
  password (``rds_iam_auth=true``: ``chalicelib.storage.rds_iam_auth`` signs an IAM token per
  connection), and ``REDIS_URL_PARAMETER`` switches to Parameter Store's reference to a Secrets
  Manager secret holding the ``rediss://`` URL with the token (CloudFormation cannot create a
  SecureString, and a String parameter must not hold the token); each role that reads them gets
  ``rds-db:connect`` for the proxy and its user, or the Redis URL secret and its key.

One module, over 300 lines, on purpose: as ``deploy.worker_service``, both forms are spelled from
one description (the settings, the names, the policies, the URLs), so that SAM and Terraform
create the same data tier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy.iam_policies import for_cloudformation, for_terraform
from deploy.monitoring import API_HANDLER
from deploy.worker_service import (
    HTTPS_EGRESS_CIDR,
    HTTPS_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    SAM_SECURITY_GROUP,
    SAM_TASK,
    SAM_TASK_ROLE,
    Setting,
)

POSTGRES_MAJOR = "16"  # RDS Proxy supports it; a new major is a planned upgrade, never a parameter change
# The version a new CloudFormation instance starts at; AutoMinorVersionUpgrade then moves it along
# (a major alone, "16", is what RDS would accept too, but cfn-lint reads it as a deprecated version;
# CloudFormation compares templates, not the instance, so a later update does not downgrade it).
POSTGRES_VERSION = f"{POSTGRES_MAJOR}.11"
VALKEY_VERSION = "8.0"
DATABASE_NAME = "telehealth"
DATABASE_USER = "telehealth"  # the master user, the one the proxy's secret holds and IAM tokens name
DATABASE_LOGS = ("postgresql", "upgrade")
ENHANCED_MONITORING_SECONDS = 60
MONITORING_POLICY = "AmazonRDSEnhancedMonitoringRole"
PERFORMANCE_INSIGHTS_DAYS = 7  # the free tier
CACHE_SNAPSHOT_DAYS = 1  # the queue can be rebuilt: the outbox in PostgreSQL is the record
SECRETS_MANAGER_REFERENCE = "/aws/reference/secretsmanager/"
AUTH_TOKEN_LENGTH = 64  # ElastiCache accepts 16-128 printable characters; letters and digits only here
# The token secret is JSON ({"token": …}): CloudFormation's documented dynamic reference by ARN names a key.
CACHE_AUTH_FIELD = "token"
DATABASE_PARAMETERS = {
    "rds.force_ssl": "1",
    # DETAIL lines would quote a violated unique key's values (an email, a phone): patient data.
    "log_error_verbosity": "terse",
}
# The worker's HTTPS egress (the VPC's CIDR with interface endpoints, else anywhere through NAT).
PROXY_HTTPS_DESCRIPTION = "HTTPS to Secrets Manager: the proxy reads the master secret"
SWITCH_DESCRIPTION = (
    "Create the data tier (RDS PostgreSQL behind RDS Proxy, ElastiCache for Valkey) and point the"
    " database and Redis settings at it; false: the parameters name existing endpoints"
)

KMS_KEY = Setting(
    "DataTierKmsKeyArn",
    "data_tier_kms_key_arn",
    "string",
    "KMS key ARN encrypting the data tier (empty: the stack creates one, with rotation)",
    "",
)
DATABASE_CLASS = Setting(
    "DatabaseInstanceClass",
    "database_instance_class",
    "string",
    "RDS instance class of PostgreSQL (docs/deployment.md: the cost of each size)",
    "db.t4g.small",
)
DATABASE_STORAGE = Setting(
    "DatabaseAllocatedStorage",
    "database_allocated_storage",
    "number",
    "Storage of PostgreSQL, GiB",
    20,
    minimum=20,
)
DATABASE_MULTI_AZ = Setting(
    "DatabaseMultiAz",
    "database_multi_az",
    "string",
    "A standby of PostgreSQL in another availability zone (true doubles the instance's cost)",
    "true",
    ("true", "false"),
)
BACKUP_DAYS = Setting(
    "DatabaseBackupRetentionDays",
    "database_backup_retention_days",
    "number",
    "Days of PostgreSQL's automated backups (7 to 35)",
    7,
    minimum=7,
)
CACHE_NODE = Setting(
    "CacheNodeType",
    "cache_node_type",
    "string",
    "ElastiCache node type of Valkey (docs/deployment.md: the cost of each size)",
    "cache.t4g.micro",
)
CACHE_MULTI_AZ = Setting(
    "CacheMultiAz",
    "cache_multi_az",
    "string",
    "A replica of Valkey in another availability zone with automatic failover (two nodes)",
    "true",
    ("true", "false"),
)
SETTINGS = (
    KMS_KEY,
    DATABASE_CLASS,
    DATABASE_STORAGE,
    DATABASE_MULTI_AZ,
    BACKUP_DAYS,
    CACHE_NODE,
    CACHE_MULTI_AZ,
)
MAX_BACKUP_DAYS = 35


@dataclass(frozen=True)
class Names:
    """The data tier's names: after the API function (``telehealth-api-prod``) and the settings'
    own parameter names (``/telehealth-api/prod/redis-url``)."""

    prefix: str
    database_url_parameter: str
    redis_url_parameter: str

    @property
    def redis_url_secret(self) -> str:
        return self.redis_url_parameter.removeprefix("/")

    @property
    def redis_auth_token_secret(self) -> str:
        return self.redis_url_secret.rsplit("/", 1)[0] + "/redis-auth-token"

    @property
    def redis_url_reference(self) -> str:
        """The name under which Parameter Store hands out the Redis URL secret."""
        return SECRETS_MANAGER_REFERENCE + self.redis_url_secret

    def log_group(self, log: str) -> str:
        return f"/aws/rds/instance/{self.prefix}/{log}"


def names_from(functions: list[Mapping[str, Any]], name_key: str, handler_key: str, env: Any) -> Names:
    """The names, from the API function's name and environment (SAM's or Terraform's keys)."""
    (api,) = [f for f in functions if f[handler_key] == API_HANDLER]
    variables = env(api)
    return Names(api[name_key], variables["DATABASE_URL_PARAMETER"], variables["REDIS_URL_PARAMETER"])


def database_url(proxy_endpoint: str) -> str:
    """The URL the stack writes into the database parameter: no password (IAM tokens instead),
    TLS required (the proxy refuses anything else, and so does the database)."""
    return (
        f"postgresql://{DATABASE_USER}@{proxy_endpoint}:{POSTGRES_PORT}/{DATABASE_NAME}"
        "?sslmode=require&rds_iam_auth=true"
    )


def redis_url(token: str, host: str, port: str) -> str:
    """TLS with the server's certificate checked: Celery's Redis result backend refuses a rediss://
    URL without ``ssl_cert_reqs``, and its broker would not check the certificate without it."""
    return f"rediss://:{token}@{host}:{port}/0?ssl_cert_reqs=required"


def database_access_policy(proxy_resource_id: str, parameter_key_arn: str | None = None) -> dict[str, Any]:
    """What a role that reads the database URL needs besides it: connect through the proxy as the
    user, and (Terraform's SecureString) decrypt the parameter through SSM."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ConnectThroughTheProxyWithIamTokens",
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:"
            + f"{proxy_resource_id}/{DATABASE_USER}",
        }
    ]
    if parameter_key_arn is not None:
        statements.append(
            {
                "Sid": "DecryptTheDatabaseUrlThroughSsm",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": parameter_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": "ssm.${AWS::Region}.amazonaws.com"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def cache_access_policy(names: Names, secret_arn: Any, key_arn: Any) -> dict[str, Any]:
    """What a role that reads the Redis URL needs when it is a Secrets Manager secret behind
    Parameter Store: the reference, the secret, and its key through Secrets Manager only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTheRedisUrlReference",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                + names.redis_url_reference,
            },
            {
                "Sid": "ReadTheRedisUrlSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
            },
            decrypt_through_secrets_manager(key_arn),
        ],
    }


def decrypt_through_secrets_manager(key_arn: Any) -> dict[str, Any]:
    """The data tier's key may decrypt a secret only when Secrets Manager asks for it."""
    return {
        "Sid": "DecryptItThroughSecretsManager",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.${AWS::Region}.amazonaws.com"}},
    }


def proxy_policy(secret_arn: Any, key_arn: Any) -> dict[str, Any]:
    """What RDS Proxy needs: the master secret, decrypted through Secrets Manager."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTheMasterSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
            },
            decrypt_through_secrets_manager(key_arn),
        ],
    }


def key_policy(account_root: Any) -> dict[str, Any]:
    """The created key's policy: the account administers it through IAM, as AWS's default policy
    does; the services use it through the callers' grants (RDS, ElastiCache, Secrets Manager)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TheAccountAdministersTheKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": account_root},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def readers(environments: Mapping[str, Mapping[str, Any]], variable: str) -> list[str]:
    """The roles (by key) whose function reads ``variable``."""
    return sorted(role for role, env in environments.items() if variable in env)


# --- SAM / CloudFormation ---------------------------------------------------------------------------

SWITCH = "CreateDataTier"
CONDITION = "CreatesDataTier"
KEY_CONDITION = "CreatesDataTierKey"
HAS_KEY_CONDITION = "HasDataTierKmsKey"
CACHE_MULTI_AZ_CONDITION = "DataTierCacheIsMultiAz"
SAM_KEY = "DataTierKey"
SAM_DATABASE = "Database"
SAM_PROXY = "DatabaseProxy"
SAM_CACHE = "Cache"
SAM_DATABASE_SG = "DatabaseSecurityGroup"
SAM_PROXY_SG = "DatabaseProxySecurityGroup"
SAM_CACHE_SG = "CacheSecurityGroup"
SAM_CACHE_AUTH = "CacheAuthToken"
SAM_AUTH_TOKEN_VALUE = f"{{{{resolve:secretsmanager:${{{SAM_CACHE_AUTH}}}:SecretString:{CACHE_AUTH_FIELD}}}}}"
SAM_REDIS_URL = "RedisUrlSecret"
SAM_DATABASE_URL = "DatabaseUrlParameter"
FUNCTION = "AWS::Serverless::Function"
NO_EGRESS = {
    "IpProtocol": "-1",
    "CidrIp": "127.0.0.1/32",
    "Description": "No egress: answers only (a group without a rule would allow all egress)",
}


def sam_data_tier(template: dict[str, Any], tags: dict[str, str], retention: int, log_kms_key: Any) -> None:
    """Add the data tier's parameters, conditions and resources to ``template`` (after the worker)."""
    resources: dict[str, Any] = template["Resources"]
    if SAM_SECURITY_GROUP not in resources:
        raise ValueError("the data tier lets the worker in: run deploy.worker_service first")
    functions = {name: r["Properties"] for name, r in resources.items() if r["Type"] == FUNCTION}
    names = names_from(
        list(functions.values()), "FunctionName", "Handler", lambda f: f["Environment"]["Variables"]
    )
    tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
    key = {"Fn::If": [HAS_KEY_CONDITION, {"Ref": KMS_KEY.sam_name}, {"Fn::GetAtt": [SAM_KEY, "Arn"]}]}
    # The functions' security group: the first of SecurityGroupIds (docs/deployment.md, the data tier).
    clients = [{"Fn::Select": [0, {"Ref": "SecurityGroupIds"}]}, {"Ref": SAM_SECURITY_GROUP}]

    template["Parameters"][SWITCH] = {
        "Type": "String",
        "Default": "false",
        "AllowedValues": ["false", "true"],
        "Description": SWITCH_DESCRIPTION,
    }
    template["Parameters"].update({s.sam_name: s.sam_parameter() for s in SETTINGS})
    template["Parameters"][BACKUP_DAYS.sam_name]["MaxValue"] = MAX_BACKUP_DAYS
    template["Conditions"].update(
        {
            CONDITION: {"Fn::Equals": [{"Ref": SWITCH}, "true"]},
            HAS_KEY_CONDITION: {"Fn::Not": [{"Fn::Equals": [{"Ref": KMS_KEY.sam_name}, ""]}]},
            KEY_CONDITION: {
                "Fn::And": [{"Condition": CONDITION}, {"Fn::Not": [{"Condition": HAS_KEY_CONDITION}]}]
            },
            CACHE_MULTI_AZ_CONDITION: {"Fn::Equals": [{"Ref": CACHE_MULTI_AZ.sam_name}, "true"]},
        }
    )
    new: dict[str, Any] = {}
    new[SAM_KEY] = {
        "Type": "AWS::KMS::Key",
        "Condition": KEY_CONDITION,
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": f"{names.prefix}: the data tier (database, proxy secret, cache)",
            "EnableKeyRotation": True,
            "KeyPolicy": key_policy({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}),
            "Tags": tag_list,
        },
    }
    new.update(_sam_security_groups(names, clients, tag_list))
    new.update(_sam_database(names, key, tag_list, retention, log_kms_key))
    new.update(_sam_cache(names, key, tag_list))

    environments = {
        functions[name]["Role"]["Fn::GetAtt"][0]: functions[name]["Environment"]["Variables"]
        for name in functions
    }
    worker_task = resources[SAM_TASK]["Properties"]["ContainerDefinitions"][0]
    environments[SAM_TASK_ROLE] = {e["Name"]: e["Value"] for e in worker_task["Environment"]}
    proxy_id = {"Fn::Select": [6, {"Fn::Split": [":", {"Fn::GetAtt": [SAM_PROXY, "DBProxyArn"]}]}]}
    database_policy = for_cloudformation(database_access_policy("${ProxyId}"))
    database_policy["Statement"][0]["Resource"] = {
        "Fn::Sub": [database_policy["Statement"][0]["Resource"]["Fn::Sub"], {"ProxyId": proxy_id}]
    }
    for name, document, variable in (
        ("DataTierDatabaseAccess", database_policy, "DATABASE_URL_PARAMETER"),
        (
            "DataTierCacheAccess",
            for_cloudformation(cache_access_policy(names, {"Ref": SAM_REDIS_URL}, key)),
            "REDIS_URL_PARAMETER",
        ),
    ):
        new[name] = {
            "Type": "AWS::IAM::Policy",
            "Condition": CONDITION,
            "Properties": {
                "PolicyName": name,
                "PolicyDocument": _sam_via_secrets_manager(document),
                "Roles": [{"Ref": role} for role in readers(environments, variable)],
            },
        }
    for resource in new.values():
        resource.setdefault("Condition", CONDITION)
    resources.update(new)

    # The functions and the worker read the Redis URL through Parameter Store's reference to the secret.
    redis_setting = {"Fn::If": [CONDITION, names.redis_url_reference, names.redis_url_parameter]}
    for properties in functions.values():
        variables = properties["Environment"]["Variables"]
        if variables.get("REDIS_URL_PARAMETER") == names.redis_url_parameter:
            variables["REDIS_URL_PARAMETER"] = redis_setting
    for entry in worker_task["Environment"]:
        if entry["Name"] == "REDIS_URL_PARAMETER":
            entry["Value"] = redis_setting

    template.setdefault("Outputs", {}).update(
        {
            "DatabaseProxyEndpoint": {
                "Condition": CONDITION,
                "Description": "RDS Proxy's endpoint (TLS, IAM tokens): migrations connect here",
                "Value": {"Fn::GetAtt": [SAM_PROXY, "Endpoint"]},
            },
            "DatabaseMasterSecretArn": {
                "Condition": CONDITION,
                "Description": "The master user's secret, made and rotated by RDS",
                "Value": {"Fn::GetAtt": [SAM_DATABASE, "MasterUserSecret.SecretArn"]},
            },
            "CacheEndpoint": {
                "Condition": CONDITION,
                "Description": "Valkey's primary endpoint (TLS, AUTH)",
                "Value": {"Fn::GetAtt": [SAM_CACHE, "PrimaryEndPoint.Address"]},
            },
        }
    )


def _sam_ingress(port: int, source: Any, description: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "SourceSecurityGroupId": source,
        "Description": description,
    }


def _sam_security_groups(names: Names, clients: list[Any], tag_list: list[Any]) -> dict[str, Any]:
    def group(name: str, description: str, ingress: list[Any], egress: list[Any]) -> dict[str, Any]:
        return {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": description,
                "VpcId": {"Ref": "VpcId"},
                "SecurityGroupIngress": ingress,
                "SecurityGroupEgress": egress,
                "Tags": [*tag_list, {"Key": "Name", "Value": f"{names.prefix}-{name}"}],
            },
        }

    function_sg, worker_sg = clients
    return {
        SAM_PROXY_SG: group(
            "database-proxy",
            "RDS Proxy: PostgreSQL from the functions and the worker only",
            [
                _sam_ingress(POSTGRES_PORT, function_sg, "PostgreSQL from the functions"),
                _sam_ingress(POSTGRES_PORT, worker_sg, "PostgreSQL from the worker"),
            ],
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": POSTGRES_PORT,
                    "ToPort": POSTGRES_PORT,
                    "CidrIp": {"Ref": "VpcCidr"},
                    "Description": "PostgreSQL to the database in the VPC",
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": HTTPS_PORT,
                    "ToPort": HTTPS_PORT,
                    "CidrIp": {"Ref": HTTPS_EGRESS_CIDR.sam_name},
                    "Description": PROXY_HTTPS_DESCRIPTION,
                },
            ],
        ),
        SAM_DATABASE_SG: group(
            "database",
            "RDS PostgreSQL: from RDS Proxy only",
            [_sam_ingress(POSTGRES_PORT, {"Ref": SAM_PROXY_SG}, "PostgreSQL from RDS Proxy")],
            [NO_EGRESS],
        ),
        SAM_CACHE_SG: group(
            "cache",
            "ElastiCache Valkey: from the functions and the worker only",
            [
                _sam_ingress(REDIS_PORT, function_sg, "Valkey from the functions"),
                _sam_ingress(REDIS_PORT, worker_sg, "Valkey from the worker"),
            ],
            [NO_EGRESS],
        ),
    }


def _sam_database(
    names: Names, key: Any, tag_list: list[Any], retention: int, log_kms_key: Any
) -> dict[str, Any]:
    log_groups = {f"DatabaseLogGroup{log.capitalize()}": log for log in DATABASE_LOGS}
    master_credentials = {"Fn::GetAtt": [SAM_DATABASE, "MasterUserSecret.SecretArn"]}
    resources: dict[str, Any] = {
        name: {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": names.log_group(log),
                "RetentionInDays": retention,
                "KmsKeyId": log_kms_key,
                "Tags": tag_list,
            },
        }
        for name, log in log_groups.items()
    }
    resources["DatabaseSubnetGroup"] = {
        "Type": "AWS::RDS::DBSubnetGroup",
        "Properties": {
            "DBSubnetGroupDescription": f"{names.prefix}: private subnets of PostgreSQL",
            "SubnetIds": {"Ref": "SubnetIds"},
            "Tags": tag_list,
        },
    }
    resources["DatabaseParameterGroup"] = {
        "Type": "AWS::RDS::DBParameterGroup",
        "Properties": {
            "Description": f"{names.prefix}: TLS only, terse error logs",
            "Family": f"postgres{POSTGRES_MAJOR}",
            "Parameters": DATABASE_PARAMETERS,
            "Tags": tag_list,
        },
    }
    resources["DatabaseMonitoringRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "Assumed by RDS to send enhanced monitoring",
            "AssumeRolePolicyDocument": _trust("monitoring.rds.amazonaws.com"),
            "ManagedPolicyArns": [
                {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/" + MONITORING_POLICY}
            ],
            "Tags": tag_list,
        },
    }
    resources[SAM_DATABASE] = {
        "Type": "AWS::RDS::DBInstance",
        "DependsOn": sorted(log_groups),
        # A stack deletion or a replacement keeps a final snapshot; deletion protection refuses the first.
        "DeletionPolicy": "Snapshot",
        "UpdateReplacePolicy": "Snapshot",
        "Properties": {
            "DBInstanceIdentifier": names.prefix,
            "Engine": "postgres",
            "EngineVersion": POSTGRES_VERSION,
            "DBInstanceClass": {"Ref": DATABASE_CLASS.sam_name},
            "AllocatedStorage": {"Ref": DATABASE_STORAGE.sam_name},
            "StorageType": "gp3",
            "StorageEncrypted": True,
            "KmsKeyId": key,
            "MultiAZ": {"Ref": DATABASE_MULTI_AZ.sam_name},
            "DBName": DATABASE_NAME,
            "MasterUsername": DATABASE_USER,
            "ManageMasterUserPassword": True,
            "MasterUserSecret": {"KmsKeyId": key},
            "EnableIAMDatabaseAuthentication": True,
            "DBSubnetGroupName": {"Ref": "DatabaseSubnetGroup"},
            "VPCSecurityGroups": [{"Ref": SAM_DATABASE_SG}],
            "DBParameterGroupName": {"Ref": "DatabaseParameterGroup"},
            "PubliclyAccessible": False,
            "BackupRetentionPeriod": {"Ref": BACKUP_DAYS.sam_name},
            "DeletionProtection": True,
            "CopyTagsToSnapshot": True,
            "AutoMinorVersionUpgrade": True,
            "EnableCloudwatchLogsExports": list(DATABASE_LOGS),
            "MonitoringInterval": ENHANCED_MONITORING_SECONDS,
            "MonitoringRoleArn": {"Fn::GetAtt": ["DatabaseMonitoringRole", "Arn"]},
            "EnablePerformanceInsights": True,
            "PerformanceInsightsKMSKeyId": key,
            "PerformanceInsightsRetentionPeriod": PERFORMANCE_INSIGHTS_DAYS,
            "Tags": tag_list,
        },
    }
    resources["DatabaseProxyRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "Assumed by RDS Proxy to read the master secret",
            "AssumeRolePolicyDocument": _trust("rds.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "ReadTheMasterSecret",
                    "PolicyDocument": _sam_via_secrets_manager(
                        for_cloudformation(proxy_policy(master_credentials, key))
                    ),
                }
            ],
            "Tags": tag_list,
        },
    }
    resources[SAM_PROXY] = {
        "Type": "AWS::RDS::DBProxy",
        "Properties": {
            "DBProxyName": names.prefix,
            "EngineFamily": "POSTGRESQL",
            "RequireTLS": True,
            "RoleArn": {"Fn::GetAtt": ["DatabaseProxyRole", "Arn"]},
            "Auth": [
                {
                    "AuthScheme": "SECRETS",
                    "SecretArn": master_credentials,
                    "IAMAuth": "REQUIRED",
                    "ClientPasswordAuthType": "POSTGRES_SCRAM_SHA_256",
                }
            ],
            "VpcSubnetIds": {"Ref": "SubnetIds"},
            "VpcSecurityGroupIds": [{"Ref": SAM_PROXY_SG}],
            # Debug logging would write the SQL, with patient values, into the proxy's logs.
            "DebugLogging": False,
            "Tags": tag_list,
        },
    }
    resources["DatabaseProxyTargetGroup"] = {
        "Type": "AWS::RDS::DBProxyTargetGroup",
        "Properties": {
            "DBProxyName": {"Ref": SAM_PROXY},
            "TargetGroupName": "default",
            "DBInstanceIdentifiers": [{"Ref": SAM_DATABASE}],
        },
    }
    resources[SAM_DATABASE_URL] = {
        "Type": "AWS::SSM::Parameter",
        "Properties": {
            "Name": names.database_url_parameter,
            "Type": "String",
            "Description": "DATABASE_URL of the data tier: no password, IAM tokens through RDS Proxy",
            "Value": {"Fn::Sub": database_url(f"${{{SAM_PROXY}.Endpoint}}")},
            "Tags": {tag["Key"]: tag["Value"] for tag in tag_list},  # a map here, not a list
        },
    }
    return resources


def _sam_cache(names: Names, key: Any, tag_list: list[Any]) -> dict[str, Any]:
    return {
        "CacheSubnetGroup": {
            "Type": "AWS::ElastiCache::SubnetGroup",
            "Properties": {
                "Description": f"{names.prefix}: private subnets of Valkey",
                "SubnetIds": {"Ref": "SubnetIds"},
                "Tags": tag_list,
            },
        },
        SAM_CACHE_AUTH: {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": names.redis_auth_token_secret,
                "Description": "Valkey's AUTH token (docs/deployment.md: how to rotate it)",
                "KmsKeyId": key,
                "GenerateSecretString": {
                    "SecretStringTemplate": "{}",
                    "GenerateStringKey": CACHE_AUTH_FIELD,
                    "PasswordLength": AUTH_TOKEN_LENGTH,
                    "ExcludePunctuation": True,
                },
                "Tags": tag_list,
            },
        },
        SAM_CACHE: {
            "Type": "AWS::ElastiCache::ReplicationGroup",
            "Properties": {
                "ReplicationGroupId": names.prefix,
                "ReplicationGroupDescription": f"{names.prefix}: Celery broker and rate limits",
                "Engine": "valkey",
                "EngineVersion": VALKEY_VERSION,
                "CacheNodeType": {"Ref": CACHE_NODE.sam_name},
                "NumCacheClusters": {"Fn::If": [CACHE_MULTI_AZ_CONDITION, 2, 1]},
                "AutomaticFailoverEnabled": {"Ref": CACHE_MULTI_AZ.sam_name},
                "MultiAZEnabled": {"Ref": CACHE_MULTI_AZ.sam_name},
                "TransitEncryptionEnabled": True,
                "TransitEncryptionMode": "required",
                "AtRestEncryptionEnabled": True,
                "KmsKeyId": key,
                "AuthToken": {"Fn::Sub": SAM_AUTH_TOKEN_VALUE},
                "CacheSubnetGroupName": {"Ref": "CacheSubnetGroup"},
                "SecurityGroupIds": [{"Ref": SAM_CACHE_SG}],
                "Port": REDIS_PORT,
                "SnapshotRetentionLimit": CACHE_SNAPSHOT_DAYS,
                "AutoMinorVersionUpgrade": True,
                "Tags": tag_list,
            },
        },
        SAM_REDIS_URL: {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": names.redis_url_secret,
                "Description": "REDIS_URL of the data tier (rediss://, with the AUTH token)",
                "KmsKeyId": key,
                "SecretString": {
                    "Fn::Sub": redis_url(
                        SAM_AUTH_TOKEN_VALUE,
                        f"${{{SAM_CACHE}.PrimaryEndPoint.Address}}",
                        f"${{{SAM_CACHE}.PrimaryEndPoint.Port}}",
                    )
                },
                "Tags": tag_list,
            },
        },
    }


def _trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _sam_via_secrets_manager(document: dict[str, Any]) -> dict[str, Any]:
    for statement in document["Statement"]:
        if "Condition" in statement:
            statement["Condition"] = {
                "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
            }
    return document


# --- Terraform --------------------------------------------------------------------------------------

COUNT = "${var.create_data_tier ? 1 : 0}"
TF_KEY = (
    "${var.data_tier_kms_key_arn == null ? one(aws_kms_key.data_tier[*].arn) : var.data_tier_kms_key_arn}"
)


def terraform_data_tier(
    config: dict[str, Any], tags: dict[str, str], retention: int, log_kms_key: str
) -> None:
    """Add the data tier's variables and resources to ``config`` (after the worker)."""
    resources: dict[str, Any] = config["resource"]
    if "worker" not in resources.get("aws_security_group", {}):
        raise ValueError("the data tier lets the worker in: run deploy.worker_service first")
    functions: dict[str, Any] = resources["aws_lambda_function"]
    names = names_from(
        list(functions.values()), "function_name", "handler", lambda f: f["environment"]["variables"]
    )
    config["variable"]["create_data_tier"] = {
        "type": "bool",
        "default": False,
        "description": SWITCH_DESCRIPTION,
    }
    config["variable"].update({s.name: s.terraform_variable() for s in SETTINGS})
    config["variable"][KMS_KEY.name]["default"] = None
    for switch in (DATABASE_MULTI_AZ, CACHE_MULTI_AZ):  # SAM has no boolean parameter; Terraform has
        config["variable"][switch.name] = {"type": "bool", "default": True, "description": switch.description}
    config["variable"][BACKUP_DAYS.name]["validation"][0]["condition"] = (
        f"${{var.{BACKUP_DAYS.name} >= 7 && var.{BACKUP_DAYS.name} <= {MAX_BACKUP_DAYS}}}"
    )
    clients = {"functions": "${var.security_group_ids[0]}", "worker": "${aws_security_group.worker.id}"}

    def add(kind: str, name: str, body: dict[str, Any], count: str = COUNT) -> None:
        resources.setdefault(kind, {})[name] = {"count": count, **body}

    add(
        "aws_kms_key",
        "data_tier",
        {
            "description": f"{names.prefix}: the data tier (database, proxy secret, cache)",
            "enable_key_rotation": True,
            "policy": json.dumps(
                key_policy(
                    "arn:${data.aws_partition.chalice.partition}:iam::"
                    "${data.aws_caller_identity.chalice.account_id}:root"
                )
            ),
            "tags": dict(tags),
        },
        count="${var.create_data_tier && var.data_tier_kms_key_arn == null ? 1 : 0}",
    )
    # Security groups
    for name, description in (
        ("database_proxy", "RDS Proxy: PostgreSQL from the functions and the worker only"),
        ("database", "RDS PostgreSQL: from RDS Proxy only"),
        ("cache", "ElastiCache Valkey: from the functions and the worker only"),
    ):
        add(
            "aws_security_group",
            name,
            {
                "name_prefix": f"{names.prefix}-{name.replace('_', '-')}-",
                "description": description,
                "vpc_id": "${var.vpc_id}",
                "tags": {**tags, "Name": f"{names.prefix}-{name.replace('_', '-')}"},
                "lifecycle": {"create_before_destroy": True},
            },
        )
    ingress = resources.setdefault("aws_vpc_security_group_ingress_rule", {})
    for group, port, service in (
        ("database_proxy", POSTGRES_PORT, "PostgreSQL"),
        ("cache", REDIS_PORT, "Valkey"),
    ):
        for client, source in clients.items():
            ingress[f"{group}_from_{client}"] = _tf_rule(group, port, source, f"{service} from the {client}")
    ingress["database_from_proxy"] = _tf_rule(
        "database", POSTGRES_PORT, "${aws_security_group.database_proxy[0].id}", "PostgreSQL from RDS Proxy"
    )
    egress = resources.setdefault("aws_vpc_security_group_egress_rule", {})
    egress["database_proxy_to_database"] = {
        **_tf_rule("database_proxy", POSTGRES_PORT, None, "PostgreSQL to the database in the VPC"),
        "cidr_ipv4": "${var.vpc_cidr}",
    }
    egress["database_proxy_to_secrets_manager"] = {
        **_tf_rule("database_proxy", HTTPS_PORT, None, PROXY_HTTPS_DESCRIPTION),
        "cidr_ipv4": f"${{var.{HTTPS_EGRESS_CIDR.name}}}",
    }
    # Database
    for log in DATABASE_LOGS:
        add(
            "aws_cloudwatch_log_group",
            f"database_{log}",
            {
                "name": names.log_group(log),
                "retention_in_days": retention,
                "kms_key_id": log_kms_key,
                "tags": dict(tags),
            },
        )
    add(
        "aws_db_subnet_group",
        "data_tier",
        {
            "name_prefix": f"{names.prefix}-",
            "description": f"{names.prefix}: private subnets of PostgreSQL",
            "subnet_ids": "${var.subnet_ids}",
            "tags": dict(tags),
        },
    )
    add(
        "aws_db_parameter_group",
        "data_tier",
        {
            "name_prefix": f"{names.prefix}-",
            "description": f"{names.prefix}: TLS only, terse error logs",
            "family": f"postgres{POSTGRES_MAJOR}",
            "parameter": [{"name": k, "value": v} for k, v in DATABASE_PARAMETERS.items()],
            "tags": dict(tags),
            "lifecycle": {"create_before_destroy": True},
        },
    )
    roles = resources.setdefault("aws_iam_role", {})
    for role, short, service, whom in (
        (
            "database_monitoring",
            "db-monitoring",
            "monitoring.rds.amazonaws.com",
            "RDS to send enhanced monitoring",
        ),
        ("database_proxy", "db-proxy", "rds.amazonaws.com", "RDS Proxy to read the master secret"),
    ):
        roles[role] = {
            "count": COUNT,
            "name_prefix": f"{names.prefix[:20]}-{short}-",  # IAM allows 38 characters
            "description": f"Assumed by {whom}",
            "assume_role_policy": json.dumps(_trust(service)),
            "tags": dict(tags),
        }
    add(
        "aws_iam_role_policy_attachment",
        "database_monitoring",
        {
            "role": "${aws_iam_role.database_monitoring[0].name}",
            "policy_arn": "arn:${data.aws_partition.chalice.partition}:iam::aws:policy/service-role/"
            + MONITORING_POLICY,
        },
    )
    master_credentials = "${aws_db_instance.data_tier[0].master_user_secret[0].secret_arn}"
    policies = resources.setdefault("aws_iam_role_policy", {})
    policies["database_proxy"] = {
        "count": COUNT,
        "name": "ReadTheMasterSecret",
        "role": "${aws_iam_role.database_proxy[0].id}",
        "policy": for_terraform(json.dumps(proxy_policy(master_credentials, TF_KEY))),
    }
    add(
        "aws_db_instance",
        "data_tier",
        {
            "identifier": names.prefix,
            "engine": "postgres",
            # A prefix: with minor upgrades on, the provider then reads no drift (engine_version_actual).
            "engine_version": POSTGRES_MAJOR,
            "instance_class": f"${{var.{DATABASE_CLASS.name}}}",
            "allocated_storage": f"${{var.{DATABASE_STORAGE.name}}}",
            "storage_type": "gp3",
            "storage_encrypted": True,
            "kms_key_id": TF_KEY,
            "multi_az": f"${{var.{DATABASE_MULTI_AZ.name}}}",
            "db_name": DATABASE_NAME,
            "username": DATABASE_USER,
            "manage_master_user_password": True,
            "master_user_secret_kms_key_id": TF_KEY,
            "iam_database_authentication_enabled": True,
            "db_subnet_group_name": "${aws_db_subnet_group.data_tier[0].name}",
            "vpc_security_group_ids": ["${aws_security_group.database[0].id}"],
            "parameter_group_name": "${aws_db_parameter_group.data_tier[0].name}",
            "publicly_accessible": False,
            "backup_retention_period": f"${{var.{BACKUP_DAYS.name}}}",
            "deletion_protection": True,
            "skip_final_snapshot": False,
            "final_snapshot_identifier": f"{names.prefix}-final",
            "copy_tags_to_snapshot": True,
            "auto_minor_version_upgrade": True,
            "enabled_cloudwatch_logs_exports": list(DATABASE_LOGS),
            "monitoring_interval": ENHANCED_MONITORING_SECONDS,
            "monitoring_role_arn": "${aws_iam_role.database_monitoring[0].arn}",
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": TF_KEY,
            "performance_insights_retention_period": PERFORMANCE_INSIGHTS_DAYS,
            "tags": dict(tags),
            "depends_on": [f"aws_cloudwatch_log_group.database_{log}" for log in DATABASE_LOGS],
        },
    )
    add(
        "aws_db_proxy",
        "data_tier",
        {
            "name": names.prefix,
            "engine_family": "POSTGRESQL",
            "require_tls": True,
            "role_arn": "${aws_iam_role.database_proxy[0].arn}",
            "auth": [
                {
                    "auth_scheme": "SECRETS",
                    "secret_arn": master_credentials,
                    "iam_auth": "REQUIRED",
                    "client_password_auth_type": "POSTGRES_SCRAM_SHA_256",
                }
            ],
            "vpc_subnet_ids": "${var.subnet_ids}",
            "vpc_security_group_ids": ["${aws_security_group.database_proxy[0].id}"],
            "debug_logging": False,
            "tags": dict(tags),
        },
    )
    add(
        "aws_db_proxy_default_target_group",
        "data_tier",
        {"db_proxy_name": "${aws_db_proxy.data_tier[0].name}"},
    )
    add(
        "aws_db_proxy_target",
        "data_tier",
        {
            "db_proxy_name": "${aws_db_proxy.data_tier[0].name}",
            "target_group_name": "${aws_db_proxy_default_target_group.data_tier[0].name}",
            "db_instance_identifier": "${aws_db_instance.data_tier[0].identifier}",
        },
    )
    add(
        "aws_ssm_parameter",
        "database_url",
        {
            "name": names.database_url_parameter,
            # It holds no secret (SAM's is a String: CloudFormation cannot make a SecureString), but
            # Terraform can encrypt it, with the data tier's key, at the cost of one more permission.
            "type": "SecureString",
            "key_id": TF_KEY,
            "description": "DATABASE_URL of the data tier: no password, IAM tokens through RDS Proxy",
            "value": database_url("${aws_db_proxy.data_tier[0].endpoint}"),
            "tags": dict(tags),
        },
    )
    # Cache
    add(
        "aws_elasticache_subnet_group",
        "data_tier",
        {
            "name": names.prefix,
            "description": f"{names.prefix}: private subnets of Valkey",
            "subnet_ids": "${var.subnet_ids}",
            "tags": dict(tags),
        },
    )
    for name, secret, description in (
        (
            "cache_auth_token",
            names.redis_auth_token_secret,
            "Valkey's AUTH token (docs/deployment.md: how to rotate it)",
        ),
        ("redis_url", names.redis_url_secret, "REDIS_URL of the data tier (rediss://, with the AUTH token)"),
    ):
        add(
            "aws_secretsmanager_secret",
            name,
            {"name": secret, "description": description, "kms_key_id": TF_KEY, "tags": dict(tags)},
        )
    config.setdefault("data", {})["aws_secretsmanager_random_password"] = {
        "cache_auth_token": {
            "count": COUNT,
            "password_length": AUTH_TOKEN_LENGTH,
            "exclude_punctuation": True,
        }
    }
    auth_value = (
        "${jsondecode(aws_secretsmanager_secret_version.cache_auth_token[0].secret_string)."
        + CACHE_AUTH_FIELD
        + "}"
    )
    add(
        "aws_secretsmanager_secret_version",
        "cache_auth_token",
        {
            "secret_id": "${aws_secretsmanager_secret.cache_auth_token[0].id}",
            "secret_string": "${jsonencode({"
            + CACHE_AUTH_FIELD
            + " = data.aws_secretsmanager_random_password.cache_auth_token[0].random_password})}",
            # A new random value at each plan: the token changes only by rotation (docs/deployment.md).
            "lifecycle": {"ignore_changes": ["secret_string"]},
        },
    )
    cache_multi_az = f"var.{CACHE_MULTI_AZ.name}"
    add(
        "aws_elasticache_replication_group",
        "data_tier",
        {
            "replication_group_id": names.prefix,
            "description": f"{names.prefix}: Celery broker and rate limits",
            "engine": "valkey",
            "engine_version": VALKEY_VERSION,
            "node_type": f"${{var.{CACHE_NODE.name}}}",
            "num_cache_clusters": f"${{{cache_multi_az} ? 2 : 1}}",
            "automatic_failover_enabled": f"${{{cache_multi_az}}}",
            "multi_az_enabled": f"${{{cache_multi_az}}}",
            "transit_encryption_enabled": True,
            "transit_encryption_mode": "required",
            "at_rest_encryption_enabled": True,
            "kms_key_id": TF_KEY,
            "auth_token": auth_value,
            "subnet_group_name": "${aws_elasticache_subnet_group.data_tier[0].name}",
            "security_group_ids": ["${aws_security_group.cache[0].id}"],
            "port": REDIS_PORT,
            "snapshot_retention_limit": CACHE_SNAPSHOT_DAYS,
            "auto_minor_version_upgrade": True,
            "tags": dict(tags),
            "lifecycle": {"ignore_changes": ["auth_token"]},
        },
    )
    add(
        "aws_secretsmanager_secret_version",
        "redis_url",
        {
            "secret_id": "${aws_secretsmanager_secret.redis_url[0].id}",
            "secret_string": redis_url(
                auth_value,
                "${aws_elasticache_replication_group.data_tier[0].primary_endpoint_address}",
                str(REDIS_PORT),
            ),
        },
    )
    # Who reads what: the functions' and the worker's roles.
    environments = {
        function["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}"): function["environment"][
            "variables"
        ]
        for function in functions.values()
    }
    environments["worker_task"] = {"DATABASE_URL_PARAMETER": "", "REDIS_URL_PARAMETER": ""}
    # The proxy's resource id (prx-…), which rds-db:connect names: the last part of its ARN.
    config["locals"]["database_proxy_resource_id"] = (
        '${one([for arn in aws_db_proxy.data_tier[*].arn : element(split(":", arn), 6)])}'
    )
    proxy_id = "${local.database_proxy_resource_id}"
    for variable, policy_name, document in (
        ("DATABASE_URL_PARAMETER", "data_tier_database", database_access_policy(proxy_id, TF_KEY)),
        (
            "REDIS_URL_PARAMETER",
            "data_tier_cache",
            cache_access_policy(names, "${aws_secretsmanager_secret.redis_url[0].arn}", TF_KEY),
        ),
    ):
        for role in readers(environments, variable):
            policies[f"{policy_name}_{role}"] = {
                "count": COUNT,
                "name": policy_name,
                "role": f"${{aws_iam_role.{role}.id}}",
                "policy": for_terraform(json.dumps(document)),
            }
    # The functions and the worker read the Redis URL through Parameter Store's reference to the secret.
    reference, parameter = json.dumps(names.redis_url_reference), json.dumps(names.redis_url_parameter)
    config["locals"]["redis_url_parameter"] = f"${{var.create_data_tier ? {reference} : {parameter}}}"
    redis_setting = "${local.redis_url_parameter}"
    for function in functions.values():
        variables = function["environment"]["variables"]
        if variables.get("REDIS_URL_PARAMETER") == names.redis_url_parameter:
            variables["REDIS_URL_PARAMETER"] = redis_setting
    task = resources["aws_ecs_task_definition"]["worker"]
    fixed = f'{{"name" = "REDIS_URL_PARAMETER", "value" = {parameter}}}'
    if task["container_definitions"].count(fixed) != 1:
        raise ValueError("the worker's container must read REDIS_URL_PARAMETER once, as the relay's")
    task["container_definitions"] = task["container_definitions"].replace(
        fixed, f'{{"name" = "REDIS_URL_PARAMETER", "value" = {json.dumps(redis_setting)}}}'
    )
    config.setdefault("output", {}).update(
        {
            "DatabaseProxyEndpoint": {"value": "${one(aws_db_proxy.data_tier[*].endpoint)}"},
            "DatabaseMasterSecretArn": {
                "value": "${one(aws_db_instance.data_tier[*].master_user_secret[0].secret_arn)}"
            },
            "CacheEndpoint": {
                "value": "${one(aws_elasticache_replication_group.data_tier[*].primary_endpoint_address)}"
            },
        }
    )


def _tf_rule(group: str, port: int, source: str | None, description: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "count": COUNT,
        "security_group_id": f"${{aws_security_group.{group}[0].id}}",
        "ip_protocol": "tcp",
        "from_port": port,
        "to_port": port,
        "description": description,
    }
    if source is not None:
        rule["referenced_security_group_id"] = source
    return rule
