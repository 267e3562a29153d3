"""What a cold start must not import."""

from __future__ import annotations

# Modules a cold start must not import: each loads on the first request that needs it.
LOADED_ON_FIRST_USE = (
    "celery",
    "kombu",
    "redis",
    "boto3",
    "botocore",
    "alembic",
    "email_validator",
    "phonenumbers",
)


def heavy_modules(modules: list[str]) -> list[str]:
    """The names in ``modules`` (as in ``sys.modules``) that belong to LOADED_ON_FIRST_USE's packages."""
    return sorted(name for name in modules if name.split(".")[0] in LOADED_ON_FIRST_USE)
