"""conmon's pty master, made non-blocking so pending input never stalls output.

conmon is one single-threaded loop: it relays what attach clients send to the
container's stdin and the container's output to the log and the clients.  With
a terminal, stdin and output are the one pty master, which runc hands conmon
in blocking mode.  Once a client has sent more than the pty's input queue holds
(~64 KiB) and the process is not reading yet, conmon's write to the master
blocks, and with it the whole loop: no output is relayed, and the terminal's
echo of that input is dropped as the output side fills up.  dockerd's shim
copies each direction in its own goroutine, so there input waits in the pty
while output keeps flowing.

O_NONBLOCK belongs to the open file description, which conmon's descriptors
share with any duplicate: a duplicate taken with pidfd_getfd(2) lets the
engine set it.  conmon copes with a non-blocking master (it sets that itself
when draining at exit): a write that would block leaves the data buffered and
waits for the fd to be writable, and its attach socket holds further input
back, so the client's sends wait in turn (backpressure, not loss).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import time

_SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 (the unified syscall table)
_libc = ctypes.CDLL(None, use_errno=True)


def _pty_master_fds(pid: int) -> list[int]:
    """conmon's descriptor numbers that are a pty master (a link to some devpts `ptmx`)."""
    fds = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return fds
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.endswith("/ptmx"):
            fds.append(int(name))
    return fds


def unblock_console(conmon_pid: int, wait: float = 2.0) -> bool:
    """Set O_NONBLOCK on conmon's pty master; False when it has none (yet) or is gone.

    conmon usually holds the master by the time it reports the container's pid;
    `wait` covers the case where it accepts runc's console socket a little later.
    """
    try:
        pidfd = os.pidfd_open(conmon_pid)
    except OSError:
        return False
    try:
        deadline = time.monotonic() + wait
        while True:
            fds = _pty_master_fds(conmon_pid)
            if fds or time.monotonic() >= deadline:
                break
            # a pidfd turns readable when conmon exits (a process that ended at once): stop then
            if select.select([pidfd], [], [], 0.01)[0]:
                return False
        done = False
        for target_fd in fds:
            fd = _libc.syscall(_SYS_PIDFD_GETFD, pidfd, target_fd, 0)
            if fd < 0:
                if ctypes.get_errno() in (errno.EBADF, errno.ESRCH):
                    continue  # closed meanwhile, or conmon exited
                raise OSError(ctypes.get_errno(), "pidfd_getfd")
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
                done = True
            finally:
                os.close(fd)
        return done
    finally:
        os.close(pidfd)
