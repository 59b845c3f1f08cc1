"""A Python client for the catalog upload portal's v1 API, and its command line
(`python -m uploads.client --help`). It imports nothing from Django: requests and tqdm only.

    from uploads.client import CatalogClient

    with CatalogClient("https://portal.example.com", api_key) as client:
        result = client.submit("photo.jpg", "description.m4a", artisan_id="art_1", language="hi")
        client.wait(result.tracking_id, until=("queued",))

Uploads are resumable (run the same call again after any interruption), parallel, and
checked: each part's MD5 against storage's ETag, every part against the portal's own account
before completing."""

from uploads.client.client import CatalogClient, SubmitResult
from uploads.client.errors import CatalogError
from uploads.client.results import FileProgress, UploadResult
from uploads.client.state import StateFile

__all__ = ["CatalogClient", "CatalogError", "FileProgress", "StateFile", "SubmitResult", "UploadResult"]
