from chalice.app import Request, Response

from chalicelib.http.docs_page import DOCS_PAGE, DOCS_PAGE_FROM_ITS_DIRECTORY
from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.responses import redirect_response, text_response


@endpoint(
    "GET",
    "/docs",
    summary="Browse and try this API (Swagger UI)",
    description="`/docs/` redirects here: the page's links are relative to `/docs`.",
    tag=DOCUMENTATION_TAG,
    replies={
        200: Reply("The page", {"type": "string"}, media_types=("text/html",)),
        301: Reply(
            "Asked as `/docs/`: the page is at `../docs`",
            None,
            headers={"Location": {"description": "`../docs`", "schema": {"type": "string"}}},
        ),
    },
)
def get_docs_page(request: Request) -> Response:
    # API Gateway and chalice local route /docs/ here too; the path keeps the slash.
    if (request.context or {}).get("path", "").endswith("/"):
        return redirect_response(DOCS_PAGE_FROM_ITS_DIRECTORY)
    return text_response(DOCS_PAGE, "text/html; charset=utf-8")
