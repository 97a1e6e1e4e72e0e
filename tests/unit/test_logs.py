"""conmon's CRI log lines: parsing, partial lines, tail without reading the whole file."""

import asyncio
from pathlib import Path

from dockyard.engine.containers.logs import LogQuery, follow, parse_lines, tail_offset

TS = "2026-11-27T06:00:00.{:09d}+00:00"


def line(i: int, stream: str = "stdout", tag: str = "F", text: str = "") -> bytes:
    return f"{TS.format(i)} {stream} {tag} {text or f'line{i}'}\n".encode()


def records(path: Path, **q) -> list[bytes]:
    async def run():
        return [r.data async for r in follow(path, LogQuery(**q), lambda: False)]
    return asyncio.run(run())


def test_partial_lines_are_joined():
    recs = list(parse_lines(iter([line(1, tag="P", text="ab"), line(2, tag="F", text="cd")])))
    assert [r.data for r in recs] == [b"abcd\n"]


def test_tail_reads_only_the_end(tmp_path):
    p = tmp_path / "log"
    with open(p, "wb") as f:
        for i in range(20000):
            f.write(line(i))
        f.write(line(20000, tag="P", text="part-"))
        f.write(line(20001, tag="F", text="end"))
    assert records(p, tail=2) == [b"line19999\n", b"part-end\n"]
    assert records(p, tail=0) == []
    with open(p, "rb") as f:
        assert tail_offset(f, 2) > 0.9 * p.stat().st_size  # it did not start at the beginning
    assert len(records(p)) == 20001


def test_streams_and_since(tmp_path):
    p = tmp_path / "log"
    p.write_bytes(line(1) + line(2, stream="stderr") + line(3))
    assert records(p, stdout=False) == [b"line2\n"]
    from dockyard.engine.containers.logs import parse_time
    assert records(p, since_ns=parse_time(TS.format(2).encode())) == [b"line2\n", b"line3\n"]


def test_output_without_a_final_newline_is_not_lost(tmp_path):
    p = tmp_path / "log"
    p.write_bytes(line(1) + line(2, tag="P", text="no-newline"))
    assert records(p) == [b"line1\n", b"no-newline"]
    assert records(p, follow=True) == [b"line1\n", b"no-newline"]
    assert records(p, tail=1) == [b"no-newline"]
