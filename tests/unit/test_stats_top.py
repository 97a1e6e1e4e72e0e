"""Pure parts of the stats and top services: /proc/net/dev, ps output, ps_args checks."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from dockyard.engine import stats, top
from dockyard.errors import InvalidParameter

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1116      12    1    2    0     0          0         0      516       6    3    4    0     0       0          0
"""


def test_parse_net_dev_skips_loopback():
    assert stats.parse_net_dev(NET_DEV) == {"eth0": {
        "rx_bytes": 1116, "rx_packets": 12, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 516, "tx_packets": 6, "tx_errors": 3, "tx_dropped": 4}}
    assert stats.parse_net_dev("") == {}


def test_empty_stats_is_go_zero_value():
    s = stats.empty_stats("/n", "abc")
    assert s["read"] == s["preread"] == stats.ZERO_TIME
    assert s["memory_stats"] == {} and s["pids_stats"] == {}
    assert s["precpu_stats"] == s["cpu_stats"]
    assert "networks" not in s


def test_previous_sample_becomes_precpu():
    a = {"read": "t1", "cpu_stats": {"cpu_usage": {"total_usage": 5}}}
    b = {"read": "t2", "cpu_stats": {"cpu_usage": {"total_usage": 9}}, "preread": stats.ZERO_TIME,
         "precpu_stats": {}}
    out = stats._with_previous(b, a)
    assert out["preread"] == "t1" and out["precpu_stats"] == a["cpu_stats"]
    a["cpu_stats"]["cpu_usage"]["total_usage"] = 7  # a copy, not a shared dict
    assert out["precpu_stats"]["cpu_usage"]["total_usage"] == 5
    zero = stats.empty_stats("/n", "x")
    assert stats._with_previous(zero, a)["preread"] == stats.ZERO_TIME


PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 05:46 ?        00:00:04 /sbin/init splash
root         200       1  0 05:47 ?        00:00:00 sleep 300
root         201     200  1 05:47 pts/0    00:00:01 sh -c while :; do :; done
"""


def test_parse_ps_output_filters_and_joins_cmd():
    out = top.parse_ps_output(PS, {200, 201})
    assert out["Titles"] == top.DEFAULT_TITLES
    assert out["Processes"] == [
        ["root", "200", "1", "0", "05:47", "?", "00:00:00", "sleep 300"],
        ["root", "201", "200", "1", "05:47", "pts/0", "00:00:01", "sh -c while :; do :; done"]]


def test_parse_ps_output_threads_follow_their_process():
    text = "PID TID CMD\n10 - a\n- 10 -\n- 11 -\n20 - b\n- 20 -\n"
    assert top.parse_ps_output(text, {10})["Processes"] == [["10", "-", "a"], ["-", "10", "-"],
                                                            ["-", "11", "-"]]


def test_parse_ps_output_needs_pid_column():
    with pytest.raises(InvalidParameter):
        top.parse_ps_output("USER COMMAND\nroot x\n", {1})


@pytest.mark.parametrize("args,ok", [("-ef", True), ("-o pid,comm", True), ("-o pid=PID", True),
                                     ("-o user=PID", False), ("aux -o comm=PIDX", False)])
def test_validate_ps_args(args, ok):
    if ok:
        top.validate_ps_args(args)
    else:
        with pytest.raises(InvalidParameter):
            top.validate_ps_args(args)


@pytest.mark.skipif(not shutil.which("ps"), reason="compares with procps")
def test_proc_fallback_matches_ps():
    pid = os.getpid()
    mine = top.proc_top([pid])["Processes"][0]
    ps = top.parse_ps_output(subprocess.run(
        ["ps", "-ef"], capture_output=True, text=True, env={**os.environ, "COLUMNS": top.PS_COLUMNS}).stdout,
                             {pid})["Processes"][0]
    assert mine[:3] == ps[:3]      # UID PID PPID
    assert mine[5] == ps[5]        # TTY
    assert mine[7] == ps[7]        # CMD
