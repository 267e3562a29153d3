"""Domain errors. Services raise these; ``chalicelib.http`` maps them to HTTP once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause. ``message`` is safe to show to the client."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    code = "validation_failed"


class MalformedRequest(DomainError):
    code = "malformed_request"


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


class DuplicateEmail(DomainError):
    code = "duplicate_email"

    def __init__(self) -> None:
        super().__init__("A patient with this email already exists", field="email")


class ServiceUnavailable(DomainError):
    code = "service_unavailable"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
