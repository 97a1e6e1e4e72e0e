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
