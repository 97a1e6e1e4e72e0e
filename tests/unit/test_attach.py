"""Detach keys: parsing and scanning stdin."""

from dockyard.engine.containers.attach import DetachScanner, parse_detach_keys


def test_detach_keys_only_scanned_with_a_tty():
    from dockyard.engine.containers.attach import AttachStream, DEFAULT_DETACH_KEYS, parse_detach_keys

    keys = parse_detach_keys(DEFAULT_DETACH_KEYS)
    piped = AttachStream(stdin=True, stdout=True, stderr=True, tty=False, detach_keys=keys)
    assert piped.scanner.feed(b"a\x10\x11b") == (b"a\x10\x11b", False)
    tty = AttachStream(stdin=True, stdout=True, stderr=True, tty=True, detach_keys=keys)
    assert tty.scanner.feed(b"a\x10\x11b") == (b"a", True)


def test_sequence_split_across_reads():
    sc = DetachScanner(parse_detach_keys("ctrl-p,ctrl-q"))
    assert sc.feed(b"ab\x10") == (b"ab", False)
    assert sc.feed(b"\x11rest") == (b"", True)
    sc = DetachScanner(parse_detach_keys("ctrl-p,ctrl-q"))
    assert sc.feed(b"\x10") == (b"", False)
    assert sc.feed(b"x") == (b"\x10x", False)


def test_output_queued_behind_a_reset_is_still_read(tmp_path):
    """A monitor that exits with our stdin unread resets the connection; the kernel reports
    ECONNRESET once, before the output packets still queued: they must all be delivered."""
    import asyncio
    import socket

    from dockyard.engine.containers.attach import AttachStream
    from dockyard.runtime.conmon import STREAM_STDERR, STREAM_STDOUT

    async def scenario() -> list:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(str(tmp_path / "attach"))
        listener.listen(1)
        st = AttachStream(stdin=True, stdout=True, stderr=True, tty=False, detach_keys=b"")
        st.connect(tmp_path)
        monitor, _ = listener.accept()
        assert await st.send(b"stdin nobody reads")
        monitor.send(bytes([STREAM_STDOUT]) + b"out")
        monitor.send(bytes([STREAM_STDERR]) + b"err")
        monitor.close()  # with our stdin still in its queue: ECONNRESET for us
        listener.close()
        got = []
        while (item := await asyncio.wait_for(st.recv(), 10)) is not None:
            got.append(item)
        st.close()
        return got

    assert asyncio.run(scenario()) == [(1, b"out"), (2, b"err")]
