"""Config pieces of the builder: Go durations, EXPOSE specs, HEALTHCHECK, Go list formatting."""

from __future__ import annotations

import pytest

from dockyard.engine.build.configops import exposed_ports, go_list, healthcheck, parse_duration
from dockyard.errors import InvalidParameter


@pytest.mark.parametrize("text, ns", [("0", 0), ("5s", 5_000_000_000), ("1m30s", 90_000_000_000),
                                      ("250ms", 250_000_000), ("1.5h", 5_400_000_000_000), ("10us", 10_000)])
def test_parse_duration(text, ns):
    assert parse_duration(text, "interval") == ns


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "5s junk", "-"])
def test_parse_duration_rejects(text):
    with pytest.raises(InvalidParameter):
        parse_duration(text, "interval")


def test_exposed_ports():
    assert exposed_ports(["80", "53/UDP", "8000-8002/tcp"]) == [
        "80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
    for bad in (["http"], ["80/icmp"], ["0"], ["9-1"], ["70000"]):
        with pytest.raises(InvalidParameter):
            exposed_ports(bad)


def test_healthcheck():
    assert healthcheck(["NONE"], False, {}) == {"Test": ["NONE"]}
    assert healthcheck(["CMD", "curl -f x"], False, {"interval": "5s", "retries": "3", "timeout": "0"}) == {
        "Test": ["CMD-SHELL", "curl -f x"], "Interval": 5_000_000_000, "Retries": 3}
    assert healthcheck(["CMD", "a", "b"], True, {}) == {"Test": ["CMD", "a", "b"]}
    with pytest.raises(InvalidParameter, match="cannot be less than 1ms"):
        healthcheck(["CMD", "x"], False, {"interval": "10us"})
    with pytest.raises(InvalidParameter, match="cannot be negative"):
        healthcheck(["CMD", "x"], False, {"retries": "-1"})


def test_go_list():
    assert go_list(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'
