from chalice.app import Request, Response

from chalicelib.http.endpoints import FHIR_FACE, FHIR_FORMAT, FHIR_JSON, FHIR_TAG, Reply, endpoint


@endpoint(
    "GET",
    "/fhir/metadata",
    summary="FHIR CapabilityStatement: what this FHIR R4 server implements",
    description="Public, no token: the Patient interactions, search parameters and SMART scopes served.",
    tag=FHIR_TAG,
    face=FHIR_FACE,
    query=(FHIR_FORMAT,),
    replies={200: Reply("The CapabilityStatement", "FhirCapabilityStatement", media_types=(FHIR_JSON,))},
)
def fhir_get_metadata(request: Request) -> Response:
    # Imported here, as in every FHIR handler: the JSON routes' cold start never loads the FHIR face.
    from chalicelib.fhir import answers, capability, requests

    requests.check_format(request)
    return answers.fhir_response(capability.capability_statement(answers.base_url(request)))
