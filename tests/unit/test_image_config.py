"""Image configs: `--change` lines, platforms, the import config, chain IDs."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.errors import InvalidParameter
from dockyard.oci import digest as dg
from dockyard.oci import image as oimg


def changes(*lines):
    return oimg.apply_changes(oimg.empty_container_config(), list(lines))


def test_cmd_and_entrypoint_forms():
    assert changes('CMD ["sh", "-c", "echo hi"]')["Cmd"] == ["sh", "-c", "echo hi"]
    assert changes("CMD echo hi")["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert changes('ENTRYPOINT ["/bin/app"]')["Entrypoint"] == ["/bin/app"]
    assert changes("entrypoint /bin/app --flag")["Entrypoint"] == ["/bin/sh", "-c", "/bin/app --flag"]


def test_env_label_expose_volume_and_the_rest():
    cfg = changes("ENV A=1 B=\"two words\"", "ENV A=3", "ENV LEGACY value with spaces",
                  'LABEL com.example.x=y "quoted key"=v', "EXPOSE 80 53/udp 8000-8010/tcp",
                  'VOLUME ["/data", "/logs"]', "VOLUME /cache", "WORKDIR /srv", "USER app:app",
                  "STOPSIGNAL SIGINT", "ONBUILD RUN echo hi")
    assert cfg["Env"] == ["A=3", "B=two words", "LEGACY=value with spaces"]
    assert cfg["Labels"] == {"com.example.x": "y", "quoted key": "v"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000-8010/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}
    assert (cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == ("/srv", "app:app", "SIGINT")
    assert cfg["OnBuild"] == ["RUN echo hi"]


@pytest.mark.parametrize("line,msg", [
    ("RUN echo", "RUN is not a valid change command"),
    ("FROM busybox", "not a valid change command"),
    ("EXPOSE 99999", "invalid containerPort"),
    ("EXPOSE 80/xyz", "invalid proto"),
    ("ENV", "requires at least one argument"),
    ("ENV =x", "can not be blank"),
    ("ONBUILD FROM x", "isn't allowed as an ONBUILD trigger"),
])
def test_invalid_changes(line, msg):
    with pytest.raises(InvalidParameter, match=msg):
        changes(line)


def test_import_config_and_id_are_stable():
    t = datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)
    diff = "sha256:" + "1" * 64
    cfg = oimg.import_config([diff], ["CMD [\"sh\"]"], "Imported from -", t, "linux/amd64")
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [diff]}
    assert cfg["created"] == "2024-01-02T03:04:05.123Z"
    assert cfg["history"] == [{"created": "2024-01-02T03:04:05.123Z", "comment": "Imported from -"}]
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64")
    raw = oimg.encode(cfg)
    assert json.loads(raw) == cfg and b" " not in raw.replace(b"Imported from -", b"")
    assert oimg.validate_config(raw) == cfg
    assert dg.sha256_bytes(raw) == dg.sha256_bytes(oimg.encode(cfg))


@pytest.mark.parametrize("spec", ["windows", "linux/amd64/v1/x", "linux//v1", "/amd64"])
def test_bad_platforms(spec):
    with pytest.raises(InvalidParameter):
        oimg.parse_platform(spec)


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"rootfs": {"type": "x"}}',
                                 b'{"rootfs": {"type": "layers", "diff_ids": ["md5:x"]}}'])
def test_bad_configs(raw):
    with pytest.raises(InvalidParameter):
        oimg.validate_config(raw)


def test_time_round_trip():
    for s in ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05+02:00"]:
        assert oimg.parse_time(s) is not None
    assert oimg.parse_time("yesterday") is None


@given(st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), min_size=1, max_size=5))
def test_chain_ids(hexes):
    diffs = ["sha256:" + h for h in hexes]
    chains = dg.chain_ids(diffs)
    assert chains[0] == diffs[0] and len(chains) == len(diffs)
    for i in range(1, len(diffs)):
        assert chains[i] == dg.sha256_bytes(f"{chains[i - 1]} {diffs[i]}".encode())
