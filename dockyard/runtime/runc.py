"""Every invocation of the OCI runtime binary lives here.

The runtime is pluggable by path (`--runtime`): anything that speaks runc's
command line (runc, crun, youki) works.  crun fails on this machine's hybrid
cgroup layout, so runc is the default.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Callable

from ..errors import Conflict, NotFound, SystemError_


class RuntimeError_(SystemError_):
    pass


class OCIRuntime:
    def __init__(self, binary: str, root: Path, binary_for: Callable[[str], str] | None = None) -> None:
        path = shutil.which(binary)
        if path is None:
            from ..errors import Unavailable

            raise Unavailable(f"OCI runtime {binary!r} not found in PATH")
        self.binary = path
        self.root = root
        # a container's own runtime (HostConfig.Runtime, from `runtimes`); all share one state root
        self.binary_for = binary_for
        root.mkdir(parents=True, exist_ok=True)

    async def version(self) -> tuple[str, str]:
        """(version, commit) as `runc --version` prints them; cached."""
        if not hasattr(self, "_version"):
            proc = await asyncio.create_subprocess_exec(self.binary, "--version", stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.DEVNULL)
            out, _ = await proc.communicate()
            version = commit = ""
            for line in out.decode(errors="replace").splitlines():
                if line.startswith(("runc version", "crun version", "youki version")):
                    version = line.split("version", 1)[1].strip()
                elif line.startswith("commit:"):
                    commit = line.split(":", 1)[1].strip()
            self._version = (version, commit)
        return self._version

    def base_args(self, cid: str | None = None) -> list[str]:
        binary = self.binary_for(cid) if (cid and self.binary_for) else self.binary
        return [binary, "--root", str(self.root)]

    async def _run(self, *args: str, input: bytes | None = None, check: bool = True,
                   cid: str | None = None) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *self.base_args(cid), *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(input)
        if check and proc.returncode != 0:
            msg = _clean_error(err or out)
            if "does not exist" in msg or "not exist" in msg:
                raise NotFound(msg)
            if "not running" in msg or "not paused" in msg or "cannot" in msg and "state" in msg:
                raise Conflict(msg)
            raise RuntimeError_(f"{Path(self.binary).name} {args[0]}: {msg}")
        return proc.returncode or 0, out, err

    async def start(self, cid: str) -> None:
        await self._run("start", cid, cid=cid)

    async def kill(self, cid: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [cid, str(signal)]
        await self._run(*args, cid=cid)

    async def pause(self, cid: str) -> None:
        await self._run("pause", cid, cid=cid)

    async def resume(self, cid: str) -> None:
        await self._run("resume", cid, cid=cid)

    async def delete(self, cid: str, force: bool = True) -> None:
        if not (self.root / cid).exists():  # runc has no state: spare the fork (teardown runs twice on --rm)
            return
        rc, out, err = await self._run("delete", *(["--force"] if force else []), cid, check=False, cid=cid)
        if rc != 0 and b"does not exist" not in err and b"not exist" not in out:
            raise RuntimeError_(f"runc delete: {_clean_error(err)}")

    async def state(self, cid: str) -> dict | None:
        rc, out, err = await self._run("state", cid, check=False, cid=cid)
        if rc != 0:
            return None
        return json.loads(out)

    async def update(self, cid: str, resources: dict) -> None:
        await self._run("update", "--resources", "-", cid, input=json.dumps(resources).encode(), cid=cid)

    async def ps(self, cid: str) -> list[int]:
        rc, out, _ = await self._run("ps", "--format", "json", cid, check=False, cid=cid)
        if rc != 0:
            return []
        return json.loads(out) or []

    def list_ids(self) -> list[str]:
        """Containers runc knows (directories under its root), without forking."""
        if not self.root.exists():
            return []
        return [p.name for p in self.root.iterdir() if (p / "state.json").exists()]


def _clean_error(raw: bytes) -> str:
    """runc prints logrus lines (`time=... level=error msg="..."`); keep the message."""
    text = raw.decode(errors="replace").strip()
    msgs = []
    for line in text.splitlines():
        if 'msg="' in line:
            msgs.append(line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"'))
        elif line.strip():
            msgs.append(line.strip())
    return "; ".join(msgs) or text
