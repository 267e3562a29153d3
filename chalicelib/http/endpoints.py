"""The ``@endpoint`` declaration: everything that describes one endpoint, on its handler.

Method, path, the scope a token needs, the action the audit trail records, and
the OpenAPI description (answers, request body, parameters, the domain errors
the handler can raise) are written once, above the handler in ``functions/``.
``chalicelib.http.routes`` routes it from this declaration, and
``chalicelib.http.openapi`` documents it from the same one; its error statuses
come from the table in ``chalicelib.http.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from chalicelib.audit.recording import AuditedAction
from chalicelib.errors import DomainError
from chalicelib.validation import ChoiceParameter, IntegerParameter, QueryParameter

JSON = "application/json"
FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
# The faces the one service shows: how an endpoint's answers, errors included, are shaped.
JSON_FACE = "json"  # this API's own JSON (``chalicelib.http.errors``' error body)
FHIR_FACE = "fhir"  # HL7 FHIR R4 (``chalicelib.fhir``: resources, Bundles, OperationOutcomes)
FACES = (JSON_FACE, FHIR_FACE)
METHODS = ("GET", "POST", "PUT", "DELETE")

# The groups of the document, in its order.
PATIENTS_TAG = "patients"
NOTIFICATIONS_TAG = "notifications"
AUDIT_TAG = "audit"
DOCUMENTATION_TAG = "documentation"
FHIR_TAG = "fhir"
TAG_DESCRIPTIONS = {
    PATIENTS_TAG: "Patient records (PHI)",
    NOTIFICATIONS_TAG: "Delivery of the notifications patient changes send",
    AUDIT_TAG: "Who read or changed patient data (no PHI)",
    DOCUMENTATION_TAG: "This document and its browser view, no token",
    FHIR_TAG: "The same patients as HL7 FHIR R4 Patient resources (application/fhir+json; docs/fhir.md)",
}

Handler = TypeVar("Handler", bound=Callable[..., Any])

# Accepted on every FHIR route (FHIR's _format): each spelling of JSON, the one format served.
FHIR_FORMAT = ChoiceParameter(
    "_format",
    ("json", FHIR_JSON, JSON),
    "json",
    "FHIR's format override: JSON in any of its spellings (the only format served; no XML).",
)


@dataclass(frozen=True)
class Reply:
    """One successful answer: a component schema (or inline schema; None: no body) under one or more
    media types, and the response headers it carries."""

    description: str
    schema: str | Mapping[str, Any] | None
    media_types: tuple[str, ...] = (JSON,)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # OpenAPI link objects by name: how this answer's values feed another operation (clients and
    # schemathesis's stateful phase follow them).
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    # What a token needs for this endpoint; None: public, no token at all.
    scope: str | None = None
    # How the audit trail records each call; None: not recorded (no patient data).
    audit: AuditedAction | None = None
    # Domain errors the service can raise; body, auth and 500 errors are added from the route.
    errors: tuple[type[DomainError], ...] = ()
    request_body: str | None = None  # component schema name of a JSON body
    # The media types the body is accepted in (documented under each, with ``request_body``'s schema).
    request_media_types: tuple[str, ...] = (JSON,)
    # False: the body may be left out (a FHIR search's form: no parameter lists every patient).
    request_body_required: bool = True
    # How answers and errors are shaped (JSON_FACE or FHIR_FACE): every error of the route, those of
    # the wrapper (admission, unknown parameters, 500, 503) included, is rendered in this face.
    face: str = JSON_FACE
    # A callable is called when the route is first documented or called (it may read settings).
    query: Sequence[QueryParameter] | Callable[[], Sequence[QueryParameter]] = ()
    headers: Sequence[Mapping[str, Any]] = ()  # request header parameter objects
    path_parameters: Mapping[str, IntegerParameter | Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    # The handler is given the app that serves it (its ``app`` parameter): to describe that app.
    describes_app: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.method} {self.path}: the method is one of {', '.join(METHODS)}")
        if self.tag not in TAG_DESCRIPTIONS:
            raise ValueError(f"{self.method} {self.path}: the tag is one of {', '.join(TAG_DESCRIPTIONS)}")
        if self.face not in FACES:
            raise ValueError(f"{self.method} {self.path}: the face is one of {', '.join(FACES)}")

    def query_parameters(self) -> Sequence[QueryParameter]:
        return self.query() if callable(self.query) else self.query

    @cached_property
    def query_parameter_names(self) -> frozenset[str]:
        """Every other query parameter is refused (``chalicelib.http.requests``)."""
        return frozenset(parameter.name for parameter in self.query_parameters())


def endpoint(method: str, path: str, **details: Any) -> Callable[[Handler], Handler]:
    """Declare ``handler`` as the endpoint ``method path`` (the other fields: ``Endpoint``'s)."""
    declared = Endpoint(method, path, **details)

    def attach(handler: Handler) -> Handler:
        handler.endpoint = declared  # type: ignore[attr-defined]
        return handler

    return attach


def endpoint_of(handler: Callable[..., Any]) -> Endpoint | None:
    """The declaration ``@endpoint`` attached to ``handler`` (or to the view wrapping it), if any."""
    declared = getattr(handler, "endpoint", None)
    return declared if isinstance(declared, Endpoint) else None


# The face of each routed path (``routes.register_endpoint`` fills it): answers given before any view
# (Chalice's 405 for a method the path does not declare) take the path's face too.
_FACE_OF_PATH: dict[str, str] = {}


def register_face(path: str, face: str) -> None:
    _FACE_OF_PATH[path] = face


def face_of_path(path: str | None) -> str:
    """The face of the route template ``path`` (JSON_FACE for one not routed)."""
    return _FACE_OF_PATH.get(path or "", JSON_FACE)
