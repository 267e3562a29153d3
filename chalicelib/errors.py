"""Domain errors. Services raise these; ``chalicelib.http.errors`` maps them to HTTP once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause. ``message`` is safe to show to the client."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    """The request breaks the published document: a type, length, pattern or unknown name."""

    code = "validation_failed"


class PatientDataInUrl(DomainError):
    """A query parameter named like patient data: such data goes in a body, never in a URL, which
    access logs, proxies and browser histories keep. The value is never repeated."""

    code = "phi_in_url"

    def __init__(self, parameter_name: str | None) -> None:
        super().__init__(
            "Patient data must not be sent in a URL: send it in the JSON body of POST /patients/search",
            field=parameter_name,
        )


class UnacceptableValue(ValidationFailed):
    """A value the published schema admits, refused by a rule it cannot express: an address
    email-validator refuses, a phone number not possible for its region, a date that does not exist."""


class MalformedRequest(DomainError):
    code = "malformed_request"


class DuplicateKey(MalformedRequest):
    """A JSON object naming one key twice: parsers disagree on which value wins (here the last
    would, and the first would never be validated), so neither is taken."""

    code = "duplicate_key"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class Unauthenticated(DomainError):
    code = "unauthorized"


class PatientNotFound(DomainError):
    code = "patient_not_found"

    def __init__(self) -> None:
        super().__init__("Patient not found")


class NotificationNotFound(DomainError):
    code = "notification_not_found"

    def __init__(self) -> None:
        super().__init__("Notification not found")


class VersionNotFound(DomainError):
    """A version of a patient that is not its current one: only the current version is kept."""

    code = "version_not_found"

    def __init__(self) -> None:
        super().__init__(
            "No such version: only a patient's current version is kept (read it without _history)"
        )


class NotSupported(DomainError):
    """Something the request asks for that the service cannot do or hold (on the FHIR face: an element
    the patient model has no place for, a search parameter or modifier it does not implement). Never
    silently dropped: refused, named."""

    code = "not_supported"


class DuplicateEmail(DomainError):
    code = "duplicate_email"

    def __init__(self) -> None:
        super().__init__("A patient with this email already exists", field="email")


class DocumentationAssetNotFound(DomainError):
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("No such documentation asset")


class ServiceUnavailable(DomainError):
    code = "service_unavailable"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class PreconditionFailed(DomainError):
    """``current_etag``: the entity tag of the version that refused the condition, so that the client
    can tell it is stale and what is current without reading the patient again."""

    code = "precondition_failed"

    def __init__(self, current_etag: str | None = None) -> None:
        super().__init__("The patient has changed since the version named in If-Match")
        self.current_etag = current_etag


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with a different request body", field="Idempotency-Key"
        )


class InsufficientScope(DomainError):
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This token lacks the {scope} scope")
        self.scope = scope


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int, *, first_in_window: bool = True) -> None:
        super().__init__(f"Too many requests: retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds
        # The principal's first refusal of this UTC minute: the one that writes the minute's audit row
        # (the rest are counted in Redis and settled into it by the relay).
        self.first_in_window = first_in_window


class AuditUnavailable(ServiceUnavailable):
    code = "audit_unavailable"

    def __init__(self) -> None:
        super().__init__("The audit trail cannot be written; try again shortly")


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached, or its connection was lost where running the work again
    is not safe (during a COMMIT, whose outcome is then unknown) or did not help. Nothing is known
    to have changed: the client retries after ``retry_after_seconds``, with the same
    ``Idempotency-Key`` for a create, which makes that retry answer the first create if it did commit."""

    code = "database_unavailable"
    retry_after_seconds = 2

    def __init__(self) -> None:
        super().__init__(
            "The database is unavailable; retry shortly (a create with the same Idempotency-Key)"
        )


class SchemaNotMigrated(ServiceUnavailable):
    """The database lacks a table or column this code uses: no migration, or not the newest, was applied."""

    code = "schema_not_migrated"

    def __init__(self) -> None:
        super().__init__("The database schema is missing or out of date; run `make migrate`")
