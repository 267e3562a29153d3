"""``python -m deploy.chalice_cli [--emulator] ARGS``: chalice's own CLI, sending our API definition.

``chalice deploy`` imports its Swagger document into API Gateway with
``PutRestApi(mode=overwrite)``, which drops any gateway response configured
beside it, and it has no option to add one. This runs chalice's CLI unchanged
except that the document it sends carries our gateway responses and an ANY method
per path (``deploy.gateway_responses``), as ``make package``'s templates do. Use it
wherever you would run ``chalice``: ``python -m deploy.chalice_cli deploy --stage prod``.

``--emulator`` is for moto (``AWS_ENDPOINT_URL`` pointing at ``moto_server``),
whose API Gateway reads only OpenAPI 3 documents and ignores authorizers: the
document is replayed there call by call instead (``deploy.api_gateway_replay``).

``chalice package --pkg-format terraform`` fails on ``log_retention_in_days``
(chalice 1.34 names its handler ``_generate_log_group`` where the dispatcher looks
for ``_generate_loggroup``); ``package_log_groups_for_terraform`` connects the two,
and ``deploy.terraform`` completes the log groups it writes. ``chalice deploy``
gets the IAM policy files with the deploying account's ARNs (``deploy.iam_policies``).
"""

from __future__ import annotations

import sys
from typing import Any

from chalice.awsclient import TypedAWSClient
from chalice.cli import main as chalice_main
from chalice.deploy.deployer import PolicyGenerator
from chalice.package import TerraformGenerator

from deploy.api_gateway_replay import replay_definition
from deploy.gateway_responses import for_api_gateway
from deploy.iam_policies import resolved

EMULATOR_FLAG = "--emulator"


def send_the_completed_api_definition() -> None:
    import_rest_api = TypedAWSClient.import_rest_api
    update_api_from_swagger = TypedAWSClient.update_api_from_swagger

    def import_completed(self: TypedAWSClient, swagger_document: dict[str, Any], endpoint_type: str) -> str:
        return import_rest_api(self, for_api_gateway(swagger_document), endpoint_type)

    def update_completed(self: TypedAWSClient, rest_api_id: str, swagger_document: dict[str, Any]) -> None:
        update_api_from_swagger(self, rest_api_id, for_api_gateway(swagger_document))

    TypedAWSClient.import_rest_api = import_completed  # type: ignore[method-assign]
    TypedAWSClient.update_api_from_swagger = update_completed  # type: ignore[method-assign]


def replay_the_api_on_the_emulator() -> None:
    def import_by_replay(self: TypedAWSClient, swagger_document: dict[str, Any], endpoint_type: str) -> str:
        client = self._client("apigateway")
        created = client.create_rest_api(
            name=swagger_document["info"]["title"], endpointConfiguration={"types": [endpoint_type]}
        )
        replay_definition(client, created["id"], swagger_document)
        return str(created["id"])

    def update_by_replay(self: TypedAWSClient, rest_api_id: str, swagger_document: dict[str, Any]) -> None:
        replay_definition(self._client("apigateway"), rest_api_id, swagger_document)

    TypedAWSClient.import_rest_api = import_by_replay  # type: ignore[method-assign]
    TypedAWSClient.update_api_from_swagger = update_by_replay  # type: ignore[method-assign]


def package_log_groups_for_terraform() -> None:
    generator: Any = TerraformGenerator
    if not hasattr(generator, "_generate_loggroup"):
        generator._generate_loggroup = generator._generate_log_group


def fill_in_the_deploying_account() -> None:
    """``chalice deploy`` reads the policy files as they are: give it this account's ARNs."""
    read_document = PolicyGenerator._read_document_from_file

    def read_resolved(self: PolicyGenerator, filename: str) -> dict[str, Any]:
        import boto3

        session = boto3.session.Session()
        identity = session.client("sts").get_caller_identity()
        return resolved(
            read_document(self, filename),
            partition=identity["Arn"].split(":")[1],
            region=session.region_name,
            account_id=identity["Account"],
        )

    PolicyGenerator._read_document_from_file = read_resolved  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    package_log_groups_for_terraform()
    if "deploy" in argv:  # package keeps the placeholders: deploy.sam and deploy.terraform fill them in
        fill_in_the_deploying_account()
    if EMULATOR_FLAG in argv:
        argv.remove(EMULATOR_FLAG)
        replay_the_api_on_the_emulator()
    send_the_completed_api_definition()  # wraps whichever of the two is in place
    sys.argv = ["chalice", *argv]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
