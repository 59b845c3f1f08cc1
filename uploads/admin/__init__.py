"""Staff triage in the Django admin, scoped to each staff member's tenants: find a submission,
see everything that happened to it, and act on it through the same services as the API."""

from uploads.admin import outbox, submissions

__all__ = ["outbox", "submissions"]
