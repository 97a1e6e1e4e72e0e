"""Domain errors shared by every service.

Services raise these; the HTTP layers map them to status codes in exactly one
place each (dockyard.api.errors for the engine, the registry has its own
OCI error codes).  Services never know about HTTP.
"""


class DockyardError(Exception):
    """Base class: `message` is what the client sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(DockyardError):
    """Bad input from the client (400)."""


class Unauthorized(DockyardError):
    """Credentials missing or wrong (401)."""


class Forbidden(DockyardError):
    """Not allowed in the current state (403)."""


class NotFound(DockyardError):
    """No such object (404)."""


class Conflict(DockyardError):
    """Name taken, object in use, wrong state (409)."""


class NotModified(DockyardError):
    """Nothing to do: already started, already stopped (304)."""


class Unavailable(DockyardError):
    """A dependency is missing or broken on this host (503)."""


class SystemError_(DockyardError):
    """An operation failed for reasons outside the client's control (500)."""


class NotImplemented_(DockyardError):
    """The feature exists in Docker's API but not for this object (501)."""
