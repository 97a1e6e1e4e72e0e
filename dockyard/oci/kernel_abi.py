"""Whether this kernel runs x32 system calls, for the seccomp profile's architectures.

Docker's profile lists x32 beside x86_64 and x86, and runc compiles every rule once per listed
architecture: x32 costs ~9 ms of each `runc create` and `runc exec` (a bare `runc run` of
`true` with the profile: 36–38 ms, 27–29 ms without x32).  Many kernels cannot run x32 at
all (built without CONFIG_X86_X32_ABI, as this one, or with Debian's `syscall.x32` left off):
an x32 call then fails with ENOSYS whatever the filter says, so listing x32 only slows every
start.  Without x32 in the filter, such a call meets the filter's bad-architecture
action instead (SIGSYS): a program that fails either way.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

X32_SYSCALL_BIT = 0x40000000
NR_GETPID = 39  # x86_64's (and x32's) getpid


@functools.cache
def runs_x32() -> bool:
    """True when an x32 getpid() succeeds here.  Asked in a forked child: under a filter
    without x32 (a container, systemd's SystemCallArchitectures=native) the call is fatal."""
    if platform.machine() != "x86_64":
        return False
    pid = os.fork()
    if pid == 0:  # only a syscall and _exit here: no lock another thread might hold
        code = 2
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            code = 0 if libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | NR_GETPID)) > 0 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
