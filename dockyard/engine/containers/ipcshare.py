"""IpcMode `shareable` and `container:<id>`: one container joining another's IPC namespace.

docker-compose 1.29 turns `ipc: service:x` into `IpcMode: container:<id of x's container>`;
`docker run --ipc container:NAME` sends the name.  As dockerd:
- at create the reference must name an existing container (400 "No such container: x"), and is
  kept as `container:<full id>`;
- at start the donor must be running (409 "container <id> is not running") and shareable: an
  IpcMode of `shareable` or `host`, or one that itself joined another (a private or `none`
  donor: 400 "container <id>: non-shareable IPC (hint: use IpcMode:shareable for the donor
  container)", moby's getIPCContainer).
The joiner enters the donor's namespace (`/proc/<pid>/ns/ipc`) and binds the donor's /dev/shm.
A mount cannot be bound out of another mount namespace, so, as dockerd's ShmPath, a shareable
container's /dev/shm is a tmpfs the engine mounts on the host (`<container dir>/shm`, ShmSize)
and binds in; it is unmounted with the rest of the container's runtime state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ...errors import Conflict, InvalidParameter, NotFound
from ...store import mounts
from .model import Container

PREFIX = "container:"
HINT = "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"


def resolve_at_create(host_config: dict[str, Any], get: Callable[[str], Container]) -> None:
    """Check the donor exists and keep it as `container:<full id>`."""
    mode = host_config.get("IpcMode") or ""
    if not mode.startswith(PREFIX):
        return
    try:
        donor = get(mode[len(PREFIX):])
    except NotFound as exc:
        raise InvalidParameter(exc.message) from None
    host_config["IpcMode"] = PREFIX + donor.id


def plan(c: Container, shm_size: int, get: Callable[[str], Container],
         ctr_dir: Callable[[str], Path]) -> tuple[str | None, str | None]:
    """(IPC namespace to join, host path to bind at /dev/shm) for the container's start."""
    mode = c.host_config.get("IpcMode") or ""
    if mode == "shareable":
        return None, str(_mount_shm(ctr_dir(c.id), shm_size))
    if not mode.startswith(PREFIX):
        return None, None
    ref = mode[len(PREFIX):]
    try:
        donor = get(ref)
    except NotFound as exc:
        raise InvalidParameter(exc.message) from None
    if not donor.state.running or not donor.state.pid:
        raise Conflict(f"container {ref} is not running")
    donor_mode = donor.host_config.get("IpcMode") or ""
    if not (donor_mode in ("shareable", "host") or donor_mode.startswith(PREFIX)):
        raise InvalidParameter(f"container {ref}: {HINT}")
    return f"/proc/{donor.state.pid}/ns/ipc", _shm_of(donor, get, ctr_dir)


def _shm_of(donor: Container, get: Callable[[str], Container], ctr_dir: Callable[[str], Path]) -> str:
    """Where the donor's /dev/shm lives on the host (a joiner's is its own donor's)."""
    seen = set()
    while True:
        mode = donor.host_config.get("IpcMode") or ""
        if mode == "host":
            return "/dev/shm"
        if not mode.startswith(PREFIX) or donor.id in seen:
            return str(ctr_dir(donor.id) / "shm")
        seen.add(donor.id)
        try:
            donor = get(mode[len(PREFIX):])
        except NotFound:
            return str(ctr_dir(donor.id) / "shm")


def _mount_shm(cdir: Path, size: int) -> Path:
    path = cdir / "shm"
    path.mkdir(exist_ok=True)
    if not mounts.is_mounted(path):
        mounts.mount("shm", str(path), "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV | mounts.MS_NOEXEC,
                     f"mode=1777,size={size}")
    return path


def release(c: Container, cdir: Path) -> None:
    """Unmount a shareable container's /dev/shm (its joiners keep their own binds of it)."""
    if (c.host_config.get("IpcMode") or "") == "shareable":
        mounts.unmount(cdir / "shm")
