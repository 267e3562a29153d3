from chalice.app import Request, Response

from chalicelib.audit.recording import FHIR_DELETE_PATIENT, AuditContext
from chalicelib.errors import PatientNotFound, PreconditionFailed, ValidationFailed
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import FHIR_IF_MATCH_PARAMETER
from chalicelib.patients import service as patients
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.validation import PATIENT_ID


@endpoint(
    "DELETE",
    "/fhir/Patient/{patient_id}",
    scope=PATIENTS_WRITE,
    audit=FHIR_DELETE_PATIENT,
    summary="FHIR delete: delete a patient",
    description="As `DELETE /patients/{patient_id}` (its unsent notifications are cancelled). With"
    ' `If-Match: W/"<version>"`, only while the patient is still that version; otherwise 412.',
    tag=FHIR_TAG,
    face=FHIR_FACE,
    path_parameters={"patient_id": PATIENT_ID},
    query=(FHIR_FORMAT,),
    headers=(FHIR_IF_MATCH_PARAMETER,),
    replies={204: Reply("Deleted", None)},
    errors=(PatientNotFound, ValidationFailed, PreconditionFailed),
)
def fhir_delete_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, requests

    requests.check_format(request)
    patients.delete_patient(
        UnitOfWork(audit=audit), patient_id, requests.version_condition(request, patient_id)
    )
    return answers.empty_fhir_response(204)
