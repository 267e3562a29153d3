from chalice.app import Request, Response

from chalicelib.errors import DocumentationAssetNotFound
from chalicelib.http.docs_page import ASSET_CACHE_CONTROL, ASSETS, read_asset
from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.responses import text_response


@endpoint(
    "GET",
    "/docs/assets/{asset}",
    summary="A script or stylesheet of the docs page",
    tag=DOCUMENTATION_TAG,
    path_parameters={"asset": {"schema": {"type": "string", "enum": sorted(ASSETS)}}},
    replies={200: Reply("The file", {"type": "string"}, media_types=("text/css", "text/javascript"))},
    errors=(DocumentationAssetNotFound,),
)
def get_docs_asset(request: Request, asset: str) -> Response:
    text, content_type = read_asset(asset)
    return text_response(text, content_type, cache_control=ASSET_CACHE_CONTROL)
