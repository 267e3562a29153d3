"""What CloudFormation deploys from the SAM template: the SAM transform, run offline.

The translator needs an ``s3://`` code location and a region (``AWS_DEFAULT_REGION``); our roles are
explicit, so no managed policy is looked up.
"""

from __future__ import annotations

import copy
from typing import Any

CODE_URI = "s3://artifacts/deployment.zip"


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def translate_sam(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``template`` (code location made an S3 URI)."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = CODE_URI
    return dict(transform(template, {}, _NoManagedPolicies()))
