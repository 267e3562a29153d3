from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import FHIR_SEARCH_PATIENTS, AuditContext
from chalicelib.errors import NotSupported, PatientDataInUrl, UnacceptableValue, ValidationFailed
from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, Reply, endpoint
from chalicelib.http.requests import principal_of
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.validation import QueryParameter


def query_parameters() -> tuple[QueryParameter, ...]:
    # Loaded when the route is first called or documented, not at cold start.
    from chalicelib.fhir.search import QUERY_PARAMETERS

    return (*QUERY_PARAMETERS, FHIR_FORMAT)


@endpoint(
    "GET",
    "/fhir/Patient",
    scope=PATIENTS_READ,
    audit=FHIR_SEARCH_PATIENTS,
    summary="FHIR search without patient data: by _id, _lastUpdated, or all, in id order",
    description="A `searchset` Bundle in id order. Parameters that carry patient data (identifier, name,"
    " family, given, email, phone, telecom, birthdate…) are refused here with a 400 OperationOutcome"
    " (`phi_in_url`): send them in the form body of `POST /fhir/Patient/_search`. The `next` link is an"
    " opaque continuation (`_cursor`), sealed by the server: it holds no readable patient data.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    query=query_parameters,
    replies={200: Reply("One page of matching Patients", "FhirBundle", media_types=(FHIR_JSON,))},
    errors=(ValidationFailed, UnacceptableValue, NotSupported, PatientDataInUrl),
)
def fhir_search_patients(request: Request, *, audit: AuditContext) -> Response:
    from chalicelib.fhir import answers, requests, search, searchset

    requests.check_format(request)
    query = dict(request.query_params or {})
    principal, secret = principal_of(request), bootstrap.patient_settings().idempotency_key_secret
    token = query.pop(search.cursor.CURSOR, None)
    query.pop(FHIR_FORMAT.name, None)
    if token is not None and query:
        # The document cannot say that _cursor excludes the others: a 422, as for any such rule.
        raise UnacceptableValue(
            "A continuation (_cursor) takes no other parameter", field=search.cursor.CURSOR
        )
    wanted = search.continued(token, principal, secret) if token is not None else search.parse_query(query)
    page = searchset.run(wanted, ReadTransaction(audit=audit), bootstrap.settings())
    plain = None if token is not None else "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    return answers.fhir_response(searchset.bundle(request, wanted, page, principal, secret, plain))
