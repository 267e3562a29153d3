from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_CREATE_PATIENT, AuditContext
from chalicelib.errors import (
    DuplicateEmail,
    IdempotencyKeyReused,
    NotSupported,
    ServiceUnavailable,
    UnacceptableValue,
    ValidationFailed,
)
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, JSON, Reply, endpoint
from chalicelib.http.openapi_headers import (
    FHIR_ETAG_HEADER,
    FHIR_IF_NONE_EXIST_PARAMETER,
    FHIR_LOCATION_HEADER,
    IDEMPOTENCY_KEY_PARAMETER,
)
from chalicelib.http.requests import principal_of, request_id_of
from chalicelib.patients import service as patients
from chalicelib.patients.idempotency import IDEMPOTENCY_KEY, idempotency_key
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork

ANSWER_HEADERS = {**FHIR_ETAG_HEADER, **FHIR_LOCATION_HEADER}


@endpoint(
    "POST",
    "/fhir/Patient",
    scope=PATIENTS_WRITE,
    audit=FHIR_CREATE_PATIENT,
    summary="FHIR create: a new patient from a FHIR Patient",
    description="The same create as `POST /patients` (the same rules, notification and `Idempotency-Key`)."
    " `If-None-Exist` makes it conditional. Elements the patient model cannot hold (birthDate, gender,"
    " address…) are refused with a 422 `not-supported` OperationOutcome, never dropped. A token without"
    " `patients:read` gets no body.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    request_body="FhirPatientInput",
    request_media_types=(FHIR_JSON, JSON),
    query=(FHIR_FORMAT,),
    headers=(FHIR_IF_NONE_EXIST_PARAMETER, IDEMPOTENCY_KEY_PARAMETER),
    replies={
        201: Reply("The Patient as stored", "FhirPatient", media_types=(FHIR_JSON,), headers=ANSWER_HEADERS),
        200: Reply(
            "If-None-Exist matched this patient: nothing was created",
            "FhirPatient",
            media_types=(FHIR_JSON,),
            headers=ANSWER_HEADERS,
        ),
    },
    errors=(
        ValidationFailed,
        UnacceptableValue,
        NotSupported,
        DuplicateEmail,
        IdempotencyKeyReused,
        ServiceUnavailable,
    ),
)
def fhir_create_patient(request: Request, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, patient, requests, searchset

    requests.check_format(request)
    fields = patient.patient_fields(requests.read_resource(request))
    settings = bootstrap.patient_settings()
    condition = request.headers.get(requests.IF_NONE_EXIST)
    if condition is not None:
        existing = searchset.match_for_create(condition, audit, bootstrap.settings())
        if existing is not None:
            return answers.patient_answer(request, existing, 200)
    key = idempotency_key(
        principal_of(request), request.headers.get(IDEMPOTENCY_KEY), fields, settings.idempotency_key_secret
    )
    change = patients.create_patient(
        UnitOfWork(audit=audit), fields, key, settings=settings, correlation_id=request_id_of(request)
    )
    return answers.patient_answer(request, change.patient, 201, replayed=change.replayed)
