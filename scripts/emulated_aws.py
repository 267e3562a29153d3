"""``make run AWS=emulated``: the local stack against an emulated AWS (moto_server), production paths on.

The stack serves the ``dev`` stage as always (SQLite or DATABASE_URL, the local
Redis, ``app.debug`` as in development), but reaches what production reaches
through AWS the way production does:

* the API token's digest, from a Secrets Manager secret (``API_TOKENS_SECRET_ID``);
* DATABASE_URL and REDIS_URL, from SSM SecureString parameters (``*_PARAMETER``);
* notifications, delivered through SES (email) and SNS (SMS): ``NOTIFY_PROVIDER=ses,sns``.

moto's server runs in a thread of ``scripts.run_stack`` on a free loopback
port, so it stops with the stack; every process of the stack points boto3 at it
(AWS_ENDPOINT_URL, dummy credentials, no AWS config file: no real account can
be reached). Its dashboard, ``/moto-api/``, and ``/moto-api/data.json`` show
what was "sent" to patients. The API token is generated at each start and
written, readable by its owner only, to ``$TELEHEALTH_DATA_DIR/emulated-aws-token``:
the secret in moto holds only its SHA-256 digest, as in production.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config.notifications import NotificationSettings
from chalicelib.scopes import ALL_SCOPES
from scripts.flower import write_owner_only

MODE_VARIABLE = "AWS"
MODE = "emulated"
REGION = "us-east-1"
TOKEN_SECRET_ID = "telehealth-api/local/api-token-sha256"  # noqa: S105 - a name, not a secret
DATABASE_URL_PARAMETER = "/telehealth-api/local/database-url"
REDIS_URL_PARAMETER = "/telehealth-api/local/redis-url"
TOKEN_FILE = "emulated-aws-token"  # noqa: S105 - a file name
TOKEN_PRINCIPAL = "local"  # noqa: S105 - a principal name
# What boto3 reads beside its arguments: all replaced, so that nothing reaches a real account.
DUMMY_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# The plain variables the emulated AWS supplies instead.
SUPPLIED = ("DATABASE_URL", "REDIS_URL", "API_TOKENS", "API_TOKEN_SHA256")


@dataclass
class EmulatedAws:
    server: Any  # moto.server.ThreadedMotoServer
    endpoint_url: str
    token_file: Path

    def stop(self) -> None:
        self.server.stop()
        self.token_file.unlink(missing_ok=True)


def mode_problem(env: Mapping[str, str]) -> str | None:
    """Why ``AWS`` is not a mode we know, in one line; None when unset or ``emulated``."""
    value = env.get(MODE_VARIABLE, "")
    if value in ("", MODE):
        return None
    return f"{MODE_VARIABLE} must be {MODE!r} (make run AWS=emulated) or unset, not {value!r}"


def wanted(env: Mapping[str, str]) -> bool:
    return env.get(MODE_VARIABLE) == MODE


def start_emulated_aws(env: MutableMapping[str, str], database_url: str) -> EmulatedAws:
    """Start moto_server, seed it with the stack's secrets and point ``env`` at it.

    ``env`` must hold REDIS_URL and TELEHEALTH_DATA_DIR; ``database_url`` is the
    database the stack migrated. Afterwards ``env`` names the secrets instead of
    holding the URLs, and lists SES and SNS as the notification providers.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per AWS call on the terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    for name in REAL_AWS_VARIABLES:
        env.pop(name, None)
    region = env.get("AWS_DEFAULT_REGION") or REGION
    env.update(DUMMY_AWS_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint_url, AWS_DEFAULT_REGION=region)
    token = secrets.token_urlsafe(32)
    sender = env.get("NOTIFY_EMAIL_SENDER") or NotificationSettings.email_sender
    seed(env, database_url=database_url, token=token, sender=sender)
    for name in SUPPLIED:
        env.pop(name, None)
    env.update(
        API_TOKENS_SECRET_ID=TOKEN_SECRET_ID,
        DATABASE_URL_PARAMETER=DATABASE_URL_PARAMETER,
        REDIS_URL_PARAMETER=REDIS_URL_PARAMETER,
        NOTIFY_PROVIDER="ses,sns",
    )
    token_file = write_owner_only(Path(env["TELEHEALTH_DATA_DIR"]) / TOKEN_FILE, token)
    return EmulatedAws(server, endpoint_url, token_file)


def seed(env: MutableMapping[str, str], *, database_url: str, token: str, sender: str) -> None:
    """What an operator provisions before a deployment: the sender identity, the parameters, the secret."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])

    client("ses").verify_email_identity(EmailAddress=sender)
    ssm = client("ssm")
    for name, value in ((DATABASE_URL_PARAMETER, database_url), (REDIS_URL_PARAMETER, env["REDIS_URL"])):
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    digest = hashlib.sha256(token.encode()).hexdigest()
    entry = f"{TOKEN_PRINCIPAL}[{' '.join(sorted(ALL_SCOPES))}]:{digest}"
    client("secretsmanager").create_secret(Name=TOKEN_SECRET_ID, SecretString=entry)


def describe(aws: EmulatedAws) -> str:
    """What a person needs at start-up: where to see what was sent, and how to call the API."""
    return "\n".join(
        [
            f"emulated AWS (moto_server) on {aws.endpoint_url}: secrets from Secrets Manager and SSM,"
            " notifications through SES and SNS",
            f"  what was sent to patients: {aws.endpoint_url}/moto-api/ (dashboard),"
            f" {aws.endpoint_url}/moto-api/data.json",
            f"  API token (generated at each start) in {aws.token_file}:"
            f' curl -H "Authorization: Bearer $(cat {aws.token_file})" ...',
        ]
    )
