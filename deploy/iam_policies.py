"""The IAM policy files of ``.chalice/`` name the account, region and partition as CloudFormation does.

``policy-prod.json`` (the API function), ``policy-prod-authorizer.json`` (the
authorizer, ``lambda_functions.bearer_token.iam_policy_file``) and the scheduled
functions' ``policy-prod-relay.json`` and ``policy-prod-purge.json`` scope every ARN
to ``${AWS::Partition}``, ``${AWS::Region}`` and ``${AWS::AccountId}``, never ``*``.
Each deployment path fills them its own way:

* SAM: ``for_cloudformation`` makes each such ARN an ``Fn::Sub``;
* Terraform: ``for_terraform`` puts the configuration's data sources in their place;
* ``chalice deploy`` (``deploy.chalice_cli``): ``resolved`` writes the deploying
  account's values in.
"""

from __future__ import annotations

import json
from typing import Any

ACCOUNT_PLACEHOLDERS = ("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")
# aws_region's ``id`` is the region's name under both aws provider 5 and 6 (``name`` is deprecated in 6).
TERRAFORM_VALUES = {
    "${AWS::Partition}": "${data.aws_partition.chalice.partition}",
    "${AWS::Region}": "${data.aws_region.chalice.id}",
    "${AWS::AccountId}": "${data.aws_caller_identity.chalice.account_id}",
}


def for_cloudformation(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a policy document whose ARNs with placeholders are ``Fn::Sub`` expressions."""
    return {
        **document,
        "Statement": [
            {**statement, "Resource": _map_resources(statement["Resource"], _sub)}
            for statement in document["Statement"]
        ],
    }


def for_terraform(policy_text: str) -> str:
    """A policy document (JSON text, as in chalice's Terraform) reading the configuration's data sources."""
    for placeholder, value in TERRAFORM_VALUES.items():
        policy_text = policy_text.replace(placeholder, value)
    return policy_text


def resolved(document: dict[str, Any], *, partition: str, region: str, account_id: str) -> dict[str, Any]:
    """A copy of a policy document with the deploying account's values in place of the placeholders."""
    text = json.dumps(document)
    for placeholder, value in zip(ACCOUNT_PLACEHOLDERS, (partition, region, account_id), strict=True):
        text = text.replace(placeholder, value)
    return dict(json.loads(text))


def _map_resources(resource: Any, convert: Any) -> Any:
    return [convert(r) for r in resource] if isinstance(resource, list) else convert(resource)


def _sub(arn: Any) -> Any:
    return {"Fn::Sub": arn} if isinstance(arn, str) and "${AWS::" in arn else arn


# Terraform: each role policy's document as an ``aws_iam_policy_document`` data source, which Terraform
# renders locally and checkov's IAM checks read (a JSON string in ``policy`` they leave unread).
_TERRAFORM_KEYS = (("Sid", "sid"), ("Effect", "effect"), ("Action", "actions"), ("NotAction", "not_actions"))
_TERRAFORM_RESOURCES = (("Resource", "resources"), ("NotResource", "not_resources"))


def terraform_policy_document(document: dict[str, Any]) -> dict[str, Any]:
    """The ``aws_iam_policy_document`` arguments of an IAM policy document."""
    statements = []
    for statement in document["Statement"]:
        block: dict[str, Any] = {}
        for key, argument in (*_TERRAFORM_KEYS, *_TERRAFORM_RESOURCES):
            if key in statement:
                value = statement[key]
                block[argument] = value if key in ("Sid", "Effect") or isinstance(value, list) else [value]
        conditions = [
            {"test": test, "variable": variable, "values": values if isinstance(values, list) else [values]}
            for test, keys in statement.get("Condition", {}).items()
            for variable, values in keys.items()
        ]
        if conditions:
            block["condition"] = conditions
        statements.append(block)
    return {"version": document.get("Version", "2012-10-17"), "statement": statements}


def policy_document_of(arguments: dict[str, Any]) -> dict[str, Any]:
    """The IAM policy document an ``aws_iam_policy_document``'s arguments render, a one-element list
    written as its single value (as IAM reads both alike): for reading a role's permissions back."""
    statements = []
    for block in arguments["statement"]:
        statement: dict[str, Any] = {}
        for key, argument in (*_TERRAFORM_KEYS, *_TERRAFORM_RESOURCES):
            if argument in block:
                statement[key] = _single(block[argument])
        for condition in block.get("condition", []):
            statement.setdefault("Condition", {}).setdefault(condition["test"], {})[condition["variable"]] = (
                _single(condition["values"])
            )
        statements.append(statement)
    return {"Version": arguments["version"], "Statement": statements}


def _single(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def terraform_role_policies_as_documents(config: dict[str, Any]) -> None:
    """Give every ``aws_iam_role_policy`` of ``config`` its document as a data source of the same name."""
    documents = config.setdefault("data", {}).setdefault("aws_iam_policy_document", {})
    for name, role_policy in config["resource"].get("aws_iam_role_policy", {}).items():
        if name in documents:
            raise ValueError(f"two role policies would share the policy document {name}")
        documents[name] = terraform_policy_document(json.loads(role_policy["policy"]))
        if "count" in role_policy:  # a policy of an optional part names resources that may not exist
            documents[name] = {"count": role_policy["count"], **documents[name]}
            role_policy["policy"] = f"${{data.aws_iam_policy_document.{name}[count.index].json}}"
        else:
            role_policy["policy"] = f"${{data.aws_iam_policy_document.{name}.json}}"
