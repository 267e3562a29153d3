from chalice.app import Request, Response

from chalicelib.http.openapi import DOCUMENTATION_TAG, Reply, document_json, operation
from chalicelib.http.routes import text_response


@operation(
    summary="This API's OpenAPI 3.1 document",
    tag=DOCUMENTATION_TAG,
    replies={200: Reply("The document", "OpenApiDocument")},
)
def get_openapi_document(request: Request) -> Response:
    # The document describes the routes app.py registered; app.py imports this module, so the
    # app is looked up on the first call, which builds the document once per process.
    from app import app

    return text_response(document_json(app), "application/json")
