from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_SEARCH_PATIENTS, AuditContext
from chalicelib.errors import (
    NotSupported,
    PayloadTooLarge,
    UnacceptableValue,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, FORM, Reply, endpoint
from chalicelib.http.requests import principal_of
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction


@endpoint(
    "POST",
    "/fhir/Patient/_search",
    scope=PATIENTS_READ,
    audit=FHIR_SEARCH_PATIENTS,
    summary="FHIR search by identifier, name, email, phone or telecom (form body)",
    description="FHIR's search by POST: the parameters travel in an `application/x-www-form-urlencoded`"
    " body, never in a URL. Each parameter once, no modifiers, no comma lists; all given must hold."
    " `name`, `family` and `given` match the words' starts of the one name string (regardless of case"
    " and accents); `email` regardless of case; `phone` in E.164 form; `telecom` is `email|…`, `phone|…`"
    " or a value (an email when it has @); `identifier` is `urn:telehealth-api:patient-id|<id>` or the"
    " id. A parameter not implemented (birthdate, gender, address…) is a 422 `not-supported`. The same"
    " search service as `POST /patients/search`; the `next` link is a sealed continuation.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    request_body="FhirSearchForm",
    request_media_types=(FORM,),
    request_body_required=False,
    query=(FHIR_FORMAT,),
    replies={200: Reply("One page of matching Patients", "FhirBundle", media_types=(FHIR_JSON,))},
    errors=(ValidationFailed, UnacceptableValue, NotSupported, PayloadTooLarge, UnsupportedMediaType),
)
def fhir_search_patients_form(request: Request, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, requests, search, searchset

    requests.check_format(request)
    settings = bootstrap.settings()
    wanted = search.parse_form(request.raw_body, request.headers.get("content-type"), settings.max_body_bytes)
    page = searchset.run(wanted, ReadTransaction(audit=audit), settings)
    principal, secret = principal_of(request), bootstrap.patient_settings().idempotency_key_secret
    return answers.fhir_response(searchset.bundle(request, wanted, page, principal, secret, None))
