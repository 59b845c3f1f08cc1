"""Tells drf-spectacular how API keys are sent, so the OpenAPI document and Swagger UI show it."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API key from `manage.py create_api_key`."}


class SessionGrantAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.auth.SessionGrantAuthentication"
    name = "Session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The upload page's session (a staff member signed in to the admin, or an upload link). "
            "Unsafe requests also send the CSRF token in `X-CSRFToken`; staff with several tenants send `X-Tenant-Id`.",
        }
