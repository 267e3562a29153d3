from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_READ_PATIENT, AuditContext
from chalicelib.errors import PatientNotFound, ValidationFailed, VersionNotFound
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import FHIR_ETAG_HEADER
from chalicelib.patients import service as patients
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.validation import PATIENT_ID, IntegerParameter

VERSION_ID = IntegerParameter("version_id", 1, 2**31 - 1, "The version (`meta.versionId`, the ETag's).")


@endpoint(
    "GET",
    "/fhir/Patient/{patient_id}/_history/{version_id}",
    scope=PATIENTS_READ,
    audit=FHIR_READ_PATIENT,
    summary="FHIR vread: a patient's current version, by its number",
    description="Only the current version is kept: it answers as a read does. Any other version is a 404"
    " `not-found` OperationOutcome (`version_not_found`): no history is kept, so an older version is"
    " not known to have existed as far as this server can show (hence not 410).",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    path_parameters={"patient_id": PATIENT_ID, "version_id": VERSION_ID},
    query=(FHIR_FORMAT,),
    replies={200: Reply("The Patient", "FhirPatient", media_types=(FHIR_JSON,), headers=FHIR_ETAG_HEADER)},
    errors=(PatientNotFound, VersionNotFound, ValidationFailed),
)
def fhir_vread_patient(
    request: Request, patient_id: str, version_id: str, *, audit: AuditContext
) -> Response:
    from chalicelib.fhir import answers, patient, requests

    requests.check_format(request)
    found = patients.get_patient(
        ReadTransaction(audit=audit), patient_id, durable_audit=bootstrap.settings().durable_read_audit
    )
    if str(found.version) != version_id:
        # Read (and recorded as read) before its version was known: the trail errs toward disclosure.
        raise VersionNotFound()
    headers = answers.version_headers(answers.base_url(request), found.id, found.version, found.updated_at)
    return answers.fhir_response(patient.patient_resource(found), headers=headers)
