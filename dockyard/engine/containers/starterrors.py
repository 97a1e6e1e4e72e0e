"""What a failed start of a user's process means, for a container and an exec alike.

dockerd (translateContainerdStartErr) answers 400 when the runtime refused the user's
command, and records 127 for a command not found, 126 for one that cannot be run."""

from __future__ import annotations

from ...errors import DockyardError


def exit_code_for(msg: str) -> int:
    low = msg.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low or "exec format error" in low:
        return 126
    return 128


def is_users_fault(exc: BaseException) -> bool:
    """The runtime (runc, through conmon) refused the process: the request is at fault."""
    return isinstance(exc, DockyardError) and "OCI runtime" in exc.message
