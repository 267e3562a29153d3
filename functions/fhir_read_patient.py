from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_READ_PATIENT, AuditContext
from chalicelib.errors import PatientNotFound, ValidationFailed
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import FHIR_ETAG_HEADER
from chalicelib.patients import service as patients
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.validation import PATIENT_ID


@endpoint(
    "GET",
    "/fhir/Patient/{patient_id}",
    scope=PATIENTS_READ,
    audit=FHIR_READ_PATIENT,
    summary="FHIR read: a patient as a FHIR Patient",
    description='The same patient as `GET /patients/{patient_id}`; `ETag: W/"<version>"` and'
    " `meta.versionId` carry its version.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    path_parameters={"patient_id": PATIENT_ID},
    query=(FHIR_FORMAT,),
    replies={200: Reply("The Patient", "FhirPatient", media_types=(FHIR_JSON,), headers=FHIR_ETAG_HEADER)},
    errors=(PatientNotFound, ValidationFailed),
)
def fhir_read_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, patient, requests

    requests.check_format(request)
    found = patients.get_patient(
        ReadTransaction(audit=audit), patient_id, durable_audit=bootstrap.settings().durable_read_audit
    )
    headers = answers.version_headers(answers.base_url(request), found.id, found.version, found.updated_at)
    del headers["Location"]  # a read's own URL
    return answers.fhir_response(patient.patient_resource(found), headers=headers)
