"""What can go wrong, as a caller needs to tell it apart: the portal's own refusals carry its
`code`, `message` and `details` unchanged; the client adds a few codes of its own, each named
after what the caller should do about it (see `exit_code`)."""

from typing import Any

# Codes the client itself raises (the portal's codes are listed in its OpenAPI schema).
NETWORK = "network"  # no answer after every retry: rerun to resume
FILE_CHANGED = "file_changed"  # the file on disk changed while it was being sent
INTEGRITY = "integrity"  # storage kept holding other bytes than the file's after every retry
UNEXPECTED_RESPONSE = "unexpected_response"  # an answer that is not the v1 contract

# Exit codes of the command line, documented in its --help and the README.
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_AUTH = 4
EXIT_UNREACHABLE = 5
EXIT_INTEGRITY = 6
EXIT_SUBMISSION_FAILED = 7
EXIT_INTERRUPTED = 130


class CatalogError(Exception):
    """An API call or an upload that did not succeed. `status` is the HTTP status of the last
    answer (0: none came); `code`, `message` and `details` are the portal's error body when it
    sent one."""

    def __init__(self, message: str, *, code: str, status: int = 0, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details: dict[str, Any] = details or {}

    @property
    def retryable(self) -> bool:
        """Trying the same request again later may succeed: no answer, throttled, or the
        server's own trouble. A 4xx other than 408/429 will be refused again."""
        return self.status in (0, 408, 429) or self.status >= 500

    @property
    def exit_code(self) -> int:
        if self.code in (FILE_CHANGED, INTEGRITY):
            return EXIT_INTEGRITY
        if self.retryable:
            return EXIT_UNREACHABLE
        if self.status in (401, 403):
            return EXIT_AUTH
        return EXIT_REFUSED

    def as_dict(self) -> dict[str, Any]:
        """The portal's own error shape, for --json output."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details, "status": self.status}}

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        return f"{self.message} [{self.code}]{where}"
