"""conmon's spool: the CRI "k8s-file" lines conmon appends, read back into records.

conmon writes `<RFC3339Nano> <stdout|stderr> <P|F> <text>\\n` per chunk it read
from the container (P: the line goes on in the next chunk).  The spool is only
a hand-over between conmon and the log daemon; the files users see are the
driver's.  conmon replaces the spool with a fresh file (rename over it) every
`SPOOL_MAX` bytes, which bounds it while no daemon reads it; the daemon keeps
the files it has open until it has read them whole, but never more than the
one it is finishing and the newest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import STDERR, STDOUT, LogRecord, parse_time

SPOOL_NAME = "spool.log"
OFFSET_NAME = "spool.offset"
# dockerd's copier cuts lines at 16 KiB into partial messages: so do we when joining P chunks
MAX_LINE = 16 * 1024
CHUNK = 1 << 20


def spool_max(total_limit: int) -> int:
    """conmon's --log-size-max for a driver keeping about `total_limit` bytes (-1: no limit)."""
    if total_limit <= 0:
        return 64 << 20
    return min(max(total_limit // 4, 1 << 20), 64 << 20)


HEAD = 48  # a spool's first bytes (its first line's timestamp): with the inode, which file it is


@dataclass
class _Open:
    f: object
    ino: int
    offset: int = 0
    head: bytes = b""

    def ident(self) -> bytes:
        # inode numbers are reused: the file's first bytes tell a new spool from the one saved
        if len(self.head) < HEAD:
            self.head = os.pread(self.f.fileno(), HEAD, 0)
        return self.head


@dataclass
class SpoolReader:
    """Reads a container's spool across conmon's replacements, joining partial lines.

    `offset()` is where reading must resume after a crash: the start of any
    partial line not yet handed out, so nothing is lost (a few records may repeat).
    """

    path: Path
    files: list[_Open] = field(default_factory=list)
    pending: dict[int, tuple[LogRecord, int]] = field(default_factory=dict)  # stream → (rec, start)
    skipped: int = 0  # spool bytes dropped unread because the reader lagged more than a file behind

    def open(self, ino: int = 0, offset: int = 0, head: bytes | None = None) -> None:
        """Start at a remembered (inode, offset, first bytes), or at 0 of the current file."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        st = os.fstat(f.fileno())
        o = _Open(f, st.st_ino)
        same = st.st_ino == ino and offset <= st.st_size
        if same and head is not None:  # None: saved by a daemon that kept no head
            same = o.ident()[:len(head)] == head
        o.offset = offset if same else 0
        self.files.append(o)

    def notice_replacement(self) -> None:
        """Open a file conmon renamed into place, so the one before can be finished first."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if self.files and self.files[-1].ino == st.st_ino:
            return
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        ino = os.fstat(f.fileno()).st_ino
        if self.files and self.files[-1].ino == ino:
            f.close()
            return
        # At most the file being finished and the newest are held: replaced files stay on
        # disk while open, so a reader slower than conmon must not collect them (the
        # spool's bound would no longer hold).  The ones between are dropped, as conmon
        # drops those nobody opened.
        while len(self.files) > 1:
            gone = self.files.pop()
            self.skipped += max(os.fstat(gone.f.fileno()).st_size - gone.offset, 0)
            gone.f.close()
        self.files.append(_Open(f, ino))

    def read(self, limit: int = 8 * CHUNK) -> list[LogRecord]:
        """Records now complete, at most about `limit` bytes of spool."""
        self.notice_replacement()
        out: list[LogRecord] = []
        budget = limit
        while self.files and budget > 0:
            cur = self.files[0]
            cur.f.seek(cur.offset)
            data = cur.f.read(min(CHUNK, budget))
            end = data.rfind(b"\n") + 1
            if end:
                self._parse(data[:end], cur.offset, out)
                cur.offset += end
                budget -= end
                continue
            if len(self.files) > 1:  # finished (a torn last line of a replaced file is dropped)
                cur.f.close()
                self.files.pop(0)
                continue
            break
        return out

    def _parse(self, data: bytes, base: int, out: list[LogRecord]) -> None:
        pos = 0
        for raw in data.split(b"\n")[:-1]:
            start = base + pos
            pos += len(raw) + 1
            parts = raw.split(b" ", 3)
            if len(parts) < 3:
                continue
            stream = STDERR if parts[1] == b"stderr" else STDOUT
            try:
                t = parse_time(parts[0])
            except ValueError:
                continue
            text = parts[3] if len(parts) > 3 else b""
            prev = self.pending.pop(stream, None)
            if prev is not None:
                rec, first = prev
                rec.data += text
            else:
                rec, first = LogRecord(stream, t, text), start
            if parts[2].startswith(b"P"):
                if len(rec.data) >= MAX_LINE:
                    out.append(rec)  # a long line goes out in partial pieces, as from dockerd
                else:
                    self.pending[stream] = (rec, first)
            else:
                rec.data += b"\n"
                out.append(rec)

    def flush(self) -> list[LogRecord]:
        """The partial lines held back: the container is gone, they will not go on."""
        out = [rec for rec, _ in self.pending.values()]
        self.pending.clear()
        return sorted(out, key=lambda r: r.time_ns)

    def position(self) -> tuple[int, int, bytes]:
        """(inode, offset, first bytes) to resume from."""
        if not self.files:
            return 0, 0, b""
        cur = self.files[0]
        starts = [first for _, first in self.pending.values()]
        return cur.ino, min([cur.offset, *starts]), cur.ident()

    def close(self) -> None:
        for o in self.files:
            o.f.close()
        self.files.clear()
