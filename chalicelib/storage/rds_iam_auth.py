"""IAM database authentication: a ``DATABASE_URL`` that says so carries no password.

The optional data tier (``deploy.data_tier``) fills ``DATABASE_URL_PARAMETER`` with a URL such as
``postgresql://telehealth@<proxy endpoint>:5432/telehealth?sslmode=require&rds_iam_auth=true``: a
plain String parameter (CloudFormation cannot create a SecureString), safe because it holds no
secret. Each new connection then gets a fresh IAM token (15 minutes, signed locally: no AWS call)
as its password, for the URL's host, port and user; RDS Proxy checks it against the caller's
``rds-db:connect`` permission. The marker rides in the URL so that every reader of it (functions,
worker, ``make migrate``) authenticates the same way without another setting; it is taken out
before the URL reaches the driver, which would refuse an unknown option.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from chalicelib.config.process_cache import process_cache

RDS_IAM_AUTH = "rds_iam_auth"
DEFAULT_PORT = 5432


def without_iam_auth_marker(url: str) -> tuple[str, bool]:
    """``url`` without ``rds_iam_auth=true``, and whether it had it. Raises ValueError when the
    marker has another value, or comes with a password (which one would be used is a guess)."""
    parsed = make_url(url)
    if RDS_IAM_AUTH not in parsed.query:
        return url, False
    if parsed.query[RDS_IAM_AUTH] != "true":
        raise ValueError(f"{RDS_IAM_AUTH} must be 'true' when set")
    if parsed.password is not None or not parsed.username or not parsed.host:
        raise ValueError(f"a URL with {RDS_IAM_AUTH}=true names a user and a host, and no password")
    return parsed.difference_update_query([RDS_IAM_AUTH]).render_as_string(hide_password=False), True


def authenticate_with_iam_tokens(engine: Engine, url: str) -> None:
    """Give each new connection of ``engine`` an IAM token for ``url``'s host, port and user."""
    parsed = make_url(url)
    host, port, user = parsed.host, parsed.port or DEFAULT_PORT, parsed.username

    @event.listens_for(engine, "do_connect")
    def _with_token(_dialect: Any, _record: Any, _args: Any, parameters: dict[str, Any]) -> None:
        parameters["password"] = rds_client().generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user
        )


@process_cache()
def rds_client() -> Any:
    """One RDS client per process (boto3 loads only for a URL that asks for IAM tokens)."""
    import boto3

    return boto3.client("rds")
