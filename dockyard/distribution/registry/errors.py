"""OCI distribution error codes, and the one mapping from code to HTTP status.

Services raise `RegistryError(code, message, detail)`; the app renders
`{"errors": [{"code", "message", "detail"}]}` with `STATUS[code]`.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, default message).  The first fourteen are the OCI
# distribution-spec list; the others come from the Docker registry API spec and Distribution.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAVAILABLE": (503, "service unavailable"),  # Distribution's: failed health checks, upstream down
}


class RegistryError(Exception):
    """An error the client caused or must know about; never a 500."""

    def __init__(self, code: str, message: str | None = None, detail: Any = None,
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        default_status, default_message = CODES[code]
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return {"errors": [err]}


class RangeNotSatisfiable(RegistryError):
    """A chunk that does not start where the upload ends (416)."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__("BLOB_UPLOAD_INVALID", message, status=416, headers=headers)


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", {"digest": digest})


def manifest_unknown(ref: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {ref}", {"reference": ref})


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", f"repository name not known to registry: {name}", {"name": name})


def unsupported() -> RegistryError:
    """Distribution's answer to a write on a registry that takes none (pull-through cache,
    read-only maintenance), checked against Distribution 2.8."""
    return RegistryError("UNSUPPORTED", "The operation is unsupported.")
