from chalice.app import Request, Response

from chalicelib.api_docs import DOCS_PAGE
from chalicelib.http import text_response
from chalicelib.openapi import DOCUMENTATION_TAG, Reply, operation


@operation(
    summary="Browse and try this API (Swagger UI)",
    tag=DOCUMENTATION_TAG,
    replies={200: Reply("The page", {"type": "string"}, media_types=("text/html",))},
)
def get_docs_page(request: Request) -> Response:
    return text_response(DOCS_PAGE, "text/html; charset=utf-8")
