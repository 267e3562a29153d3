from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_UPDATE_PATIENT, AuditContext
from chalicelib.errors import (
    DuplicateEmail,
    NotSupported,
    PatientNotFound,
    PreconditionFailed,
    UnacceptableValue,
    ValidationFailed,
)
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, JSON, Reply, endpoint
from chalicelib.http.openapi_headers import FHIR_ETAG_HEADER, FHIR_IF_MATCH_PARAMETER, FHIR_LOCATION_HEADER
from chalicelib.http.requests import request_id_of
from chalicelib.patients import service as patients
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.validation import PATIENT_ID


@endpoint(
    "PUT",
    "/fhir/Patient/{patient_id}",
    scope=PATIENTS_WRITE,
    audit=FHIR_UPDATE_PATIENT,
    summary="FHIR update: replace a patient with a FHIR Patient",
    description="The whole patient, as FHIR's update: `id` must be the URL's, and a telecom left out"
    ' (the phone) is cleared. With `If-Match: W/"<version>"`, only while the patient is still that'
    " version; otherwise 412 and nothing changes. No create on update: an unknown id is a 404.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    path_parameters={"patient_id": PATIENT_ID},
    request_body="FhirPatientUpdate",
    request_media_types=(FHIR_JSON, JSON),
    query=(FHIR_FORMAT,),
    headers=(FHIR_IF_MATCH_PARAMETER,),
    replies={
        200: Reply(
            "The Patient as now stored (no body to a token without `patients:read`)",
            "FhirPatient",
            media_types=(FHIR_JSON,),
            headers={**FHIR_ETAG_HEADER, **FHIR_LOCATION_HEADER},
        )
    },
    errors=(
        PatientNotFound,
        ValidationFailed,
        UnacceptableValue,
        NotSupported,
        DuplicateEmail,
        PreconditionFailed,
    ),
)
def fhir_update_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, patient, requests

    requests.check_format(request)
    if_match = requests.version_condition(request, patient_id)
    fields = patient.patient_fields(requests.read_resource(request), url_id=patient_id)
    change = patients.update_patient(
        UnitOfWork(audit=audit),
        patient_id,
        fields,
        if_match,
        settings=bootstrap.patient_settings(),
        correlation_id=request_id_of(request),
    )
    return answers.patient_answer(request, change.patient, 200)
