"""Make chalice's Terraform output usable with current Terraform, OpenTofu and the aws provider 5 and 6.

``chalice package --pkg-format terraform`` (1.34) writes a configuration pinned
to Terraform < 1.4 and hashicorp/aws < 5, with arguments that provider 6
removed. ``modernize`` rewrites the parsed ``chalice.tf.json``:

* version constraints: Terraform >= 1.5 (the last MPL release and every later
  one; every OpenTofu), hashicorp/aws >= 5 and < 7;
* ``aws_api_gateway_deployment.stage_name`` / ``stage_description`` (deprecated
  in aws 5, removed in 6) give way to an ``aws_api_gateway_stage`` resource, and
  ``triggers`` on the API definition's hash redeploy when the API changes;
* outputs read ``invoke_url`` from that stage (the deployment's was removed in 6);
* the unused ``null_data_source`` (deprecated) goes, with the null provider;
* ``data.aws_region.*.name`` (deprecated in aws 6, where ``region`` replaces it;
  ``region`` does not exist in 5) becomes ``region`` and the floor rises to aws 6,
  only if the configuration uses it (event sources such as SNS, S3, SQS);
* our gateway responses and an ANY method per path join the API definition
  (``deploy.gateway_responses``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from deploy.gateway_responses import for_api_gateway

TERRAFORM_VERSION = ">= 1.5.0"
AWS_PROVIDER = {"source": "hashicorp/aws", "version": ">= 5.0, < 7"}
AWS_PROVIDER_FOR_REGION_ATTRIBUTE = {"source": "hashicorp/aws", "version": ">= 6.0, < 7"}
REGION_NAME = "${data.aws_region.chalice.name}"
REGION = "${data.aws_region.chalice.region}"
DEPLOYMENT = "aws_api_gateway_deployment.rest_api"
STAGE = "aws_api_gateway_stage.rest_api"


def modernize(config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of chalice's Terraform configuration fit for current Terraform and aws provider."""
    config = copy.deepcopy(config)
    _complete_api_definition(config)
    _split_stage_from_deployment(config)
    config.get("data", {}).pop("null_data_source", None)
    text = json.dumps(config)
    for attribute in ("invoke_url", "execution_arn", "stage_name"):  # outputs, custom domain mappings
        text = text.replace(f"{DEPLOYMENT}.{attribute}", f"{STAGE}.{attribute}")
    uses_region_name = REGION_NAME in text
    config = json.loads(text.replace(REGION_NAME, REGION))
    config["terraform"] = {
        "required_version": TERRAFORM_VERSION,
        "required_providers": {
            "aws": AWS_PROVIDER_FOR_REGION_ATTRIBUTE if uses_region_name else AWS_PROVIDER,
        },
    }
    return config


def _complete_api_definition(config: dict[str, Any]) -> None:
    locals_ = config["locals"]
    locals_["chalice_api_swagger"] = json.dumps(for_api_gateway(json.loads(locals_["chalice_api_swagger"])))


def _split_stage_from_deployment(config: dict[str, Any]) -> None:
    resources = config["resource"]
    deployment = resources["aws_api_gateway_deployment"]["rest_api"]
    stage_name = deployment.pop("stage_name")
    deployment.pop("stage_description", None)
    deployment["triggers"] = {"redeployment": "${sha1(local.chalice_api_swagger)}"}
    resources["aws_api_gateway_stage"] = {
        "rest_api": {
            "stage_name": stage_name,
            "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
            "deployment_id": f"${{{DEPLOYMENT}.id}}",
        }
    }
