from chalice.app import Chalice, Request, Response

from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.responses import text_response


@endpoint(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tag=DOCUMENTATION_TAG,
    replies={200: Reply("The document", "OpenApiDocument")},
    describes_app=True,
)
def get_openapi_document(request: Request, *, app: Chalice) -> Response:
    # The routes of ``app`` (the one serving this call), built into the document once per process.
    # The builder and its schema catalogue are imported here, on first use: no other request needs them.
    from chalicelib.http.openapi import document_json

    return text_response(document_json(app), "application/json")
