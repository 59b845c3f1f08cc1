"""Checks real responses against the OpenAPI document the portal serves."""

from functools import cache
from typing import Any

import jsonschema
from rest_framework.test import APIClient


@cache
def openapi_document() -> dict[str, Any]:
    response = APIClient().get("/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` is not JSON Schema: fold it into the type. Objects with declared
    properties are closed, so an undocumented field in a response fails the check."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        if node.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


def assert_matches_schema(response: Any, path: str, method: str) -> None:
    """`path` is the templated path as it appears in the document, e.g. /v1/catalog/status/{tracking_id}."""
    document = openapi_document()
    operation = document["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} does not document {status}"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    resolver_root = {"components": _to_json_schema(document["components"]), **_to_json_schema(schema)}
    jsonschema.validate(response.json(), resolver_root)
