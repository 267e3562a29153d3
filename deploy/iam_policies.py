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
