"""Secret settings kept in AWS: Secrets Manager secrets and SSM SecureString parameters.

A stage names where a secret lives instead of holding its value:

* ``API_TOKENS_SECRET_ID``: a Secrets Manager secret whose string is the value of
  ``API_TOKEN_SHA256`` (``principal:<sha256 hex>`` entries, comma-separated);
* ``DATABASE_URL_PARAMETER``: an SSM parameter (SecureString) holding ``DATABASE_URL``;
* ``REDIS_URL_PARAMETER``: an SSM parameter (SecureString) holding ``REDIS_URL``;
* ``IDEMPOTENCY_KEY_SECRET_ID``: a Secrets Manager secret holding ``IDEMPOTENCY_KEY_SECRET``, the
  key of the Idempotency-Key request digests (an HMAC: the table holds no hash of patient data).

``chalicelib.config.settings`` resolves them once per process (one Lambda cold start);
the token digests are read again on a short TTL (``chalicelib.config.token_secret``).
boto3 is imported only when a stage names one of them, so development and tests
never load it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from chalicelib.config.process_cache import process_cache

# Reference variable -> the plain variable whose value it supplies.
SECRET_REFERENCES = {
    "API_TOKENS_SECRET_ID": "API_TOKEN_SHA256",
    "DATABASE_URL_PARAMETER": "DATABASE_URL",
    "REDIS_URL_PARAMETER": "REDIS_URL",
    "IDEMPOTENCY_KEY_SECRET_ID": "IDEMPOTENCY_KEY_SECRET",
}


class SecretUnavailable(RuntimeError):
    """A referenced secret could not be read (missing, not allowed, or AWS unreachable)."""


def resolve_secret_references(
    env: Mapping[str, str], only: Collection[str] = tuple(SECRET_REFERENCES)
) -> dict[str, str]:
    """Return ``env`` with every referenced secret (of ``only``) read into its plain variable.

    Raises SecretUnavailable, and ValueError when a stage sets both a reference
    and the plain variable it would supply (which one wins would be a guess).
    """
    references = {ref: env[ref] for ref in SECRET_REFERENCES if ref in only and env.get(ref)}
    for reference in references:  # every conflict before any call to AWS
        if env.get(SECRET_REFERENCES[reference]):
            raise ValueError(f"set either {reference} or {SECRET_REFERENCES[reference]}, not both")
    resolved = dict(env)
    for reference, name in references.items():
        resolved[SECRET_REFERENCES[reference]] = read_reference(reference, name)
    return resolved


def read_reference(reference: str, name: str) -> str:
    """The value of the secret ``name`` that ``reference`` (a key of SECRET_REFERENCES) points at.

    Raises SecretUnavailable, whose message names the secret, never its value.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if reference.endswith("_PARAMETER"):
            return read_parameter(name)
        return read_secret_string(name)
    except (BotoCoreError, ClientError) as error:
        # The error names the secret, never its value.
        raise SecretUnavailable(f"{reference}: cannot read {name!r}: {error}") from None


def read_secret_string(secret_id: str) -> str:
    return str(secrets_client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]).strip()


def read_parameter(name: str) -> str:
    response = secrets_client("ssm").get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"]).strip()


@process_cache(maxsize=None)
def secrets_client(service: str) -> Any:
    """One boto3 client per service and process, for reading settings at start: boto3's default
    timeouts and retries, since a setting that cannot be read fails the whole start (unlike a
    delivery's client, ``chalicelib.notifications.providers.delivery_client``, which must give up
    well inside a worker's claim)."""
    import boto3

    return boto3.client(service)
