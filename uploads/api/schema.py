"""What the OpenAPI document says beyond the views' own annotations."""

from typing import Any

# The operations that start a file, and so may meet one of the tenant's caps.
INITIATING = [("/v1/catalog/upload/initiate", "post"), ("/v1/catalog/uploads", "post")]


def document_caps(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the 409 of every operation that starts a file names
    the tenant's caps beside the other conflicts."""
    for path, method in INITIATING:
        response = result.get("paths", {}).get(path, {}).get(method, {}).get("responses", {}).get("409")
        if response is not None:
            response["description"] = (
                "A conflict with the submission (another artisan's, or closed), or `quota_exceeded`: one of "
                "the tenant's caps is reached. Its details name the cap (`maxOpenUploads`, "
                "`maxReservedBytes`, `maxFilesPerSubmission`), its `limit` and the `current` use, and "
                "`requested` (bytes) or `trackingId`. Finishing or aborting uploads frees room; waiting "
                "alone does not."
            )
    return result
