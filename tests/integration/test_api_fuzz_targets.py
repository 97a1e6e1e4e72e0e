"""Hypothesis probes of the endpoints the Engine API spec describes loosely (so schemathesis,
bench/api_fuzz/run.py, barely reaches their logic): network create with garbage IPAM and
driver options, container create with odd Links / VolumesFrom / LogConfig, exec create and
start with odd Tty / DetachKeys / ConsoleSize, the legacy POST /containers/{id}/copy and
DELETE /containers/{id}/{alias}?link=1.  Whatever comes in, the answer is never a 5xx and a
4xx carries Docker's {"message": ...}; what got created is removed again.
"""

from __future__ import annotations

import json
import os
from ipaddress import ip_network
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_api_robustness import BUSYBOX, Raw

# health checks and deadline: tests/conftest.py; DOCKYARD_FUZZ_EXAMPLES=500 for a longer hunt
SETTINGS = settings(max_examples=int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "40")))

# Every value JSON can carry, small.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _not_a_cidr(s: str) -> bool:
    try:
        ip_network(s, strict=False)
    except ValueError:
        return True
    return False


# Addresses and prefixes that look right and are not, plus the network's own (safe) subnets:
# a valid random subnet would make a real bridge with a route to somewhere real.
SUBNETS = ["10.251.8.0/24", "fd77:8::/64"]
addressish = st.one_of(
    st.text(alphabet="0123456789abcdef.:/%[]x -", max_size=24).filter(_not_a_cidr),
    st.sampled_from(["10.251.8.1", "10.251.8.300", "10.251.9.1", "10.251.8.128/25", "10.251.0.0/16",
                     "fd77:8::1", "fd77:9::/64", "fe80::1", "::", "0.0.0.0", "255.255.255.255",
                     "10.251.8.0/33", "fd77:8::/129", "10.251.8.1/24", "::ffff:10.251.8.1"]),
    json_values)
garbage_opt = st.one_of(st.sampled_from(["", "0", "1", "-1", "65535", "65536", "1e3", "true", "lo", "eth0.5000",
                                         "nonexistent0", "a" * 20, "300.1.1.1", "::1"]), json_values)
OPTION_KEYS = ["com.docker.network.driver.mtu", "com.docker.network.bridge.name",
               "com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
               "com.docker.network.bridge.host_binding_ipv4", "com.docker.network.enable_ipv6",
               "com.docker.network.bridge.default_bridge", "parent", "macvlan_mode", "ipvlan_mode", "ipvlan_flag"]


def _ok(resp: tuple[int, bytes, str], what) -> None:
    status, body, ctype = resp
    assert status < 500, (what, status, body[:400])
    if status >= 400:
        assert ctype.startswith("application/json"), (what, ctype)
        assert isinstance(json.loads(body).get("message"), str), (what, body[:400])


@pytest.fixture(scope="module")
def raw(engine):
    return Raw(engine.socket)


@pytest.fixture(scope="module")
def target(engine):
    """A running container to link to, exec in, copy from and take volumes from."""
    api = engine.api()
    cid = api.create_container(BUSYBOX, ["sleep", "1000"], name="fzt-target", volumes=["/data"])["Id"]
    api.start(cid)
    yield cid
    api.remove_container(cid, force=True, v=True)
    api.close()


@SETTINGS
@given(cfg=st.fixed_dictionaries({}, optional={
    "Subnet": st.one_of(st.sampled_from(SUBNETS), addressish), "IPRange": addressish, "Gateway": addressish,
    "AuxiliaryAddresses": st.one_of(st.dictionaries(st.text(max_size=5), addressish, max_size=2), json_values)}),
    ipv6=st.one_of(st.booleans(), json_values), driver=st.sampled_from(["bridge", "macvlan", "ipvlan"]),
    options=st.one_of(st.dictionaries(st.sampled_from(OPTION_KEYS), garbage_opt, max_size=3), json_values),
    ipam_driver=st.sampled_from([None, "default", "bogus", 5]))
def test_network_create_garbage(raw, cfg, ipv6, driver, options, ipam_driver):
    body = {"Name": "fzt-net", "Driver": driver, "EnableIPv6": ipv6, "Options": options,
            "IPAM": {"Driver": ipam_driver, "Config": [cfg]}}
    resp = raw("POST", "/networks/create", body)
    if resp[0] == 201:
        assert raw("DELETE", "/networks/fzt-net")[0] == 204
    _ok(resp, body)


link_values = st.one_of(st.sampled_from(["fzt-target", "fzt-target:db", "fzt-target:", ":db", "nonexistent",
                                         "fzt-self", "fzt-self:me", "fzt-target:a:b", "/fzt-target:/x",
                                         "fzt-target:ro", "fzt-target:rw", "fzt-target:z", "fzt-target:bogus"]),
                        st.text(max_size=12), json_values)
log_config = st.one_of(
    json_values,
    st.fixed_dictionaries({"Type": st.one_of(st.sampled_from(["json-file", "local", "syslog", "none", "journald",
                                                             "gelf", "", "bogus"]), json_values),
                           "Config": st.one_of(json_values, st.dictionaries(
                               st.sampled_from(["max-size", "max-file", "compress", "tag", "labels", "env",
                                                "labels-regex", "syslog-address", "syslog-facility",
                                                "syslog-format", "mode", "max-buffer-size", "bogus"]),
                               st.one_of(st.sampled_from(["1", "0", "-1", "1k", "99999999999999999999g", "x", "{{",
                                                          "udp://[::1", "tcp://[zz]:1", "unix:///nonexistent",
                                                          "non-blocking", "rfc5424", "local7"]), json_values),
                               max_size=3))}))


@SETTINGS
@given(links=st.one_of(st.lists(link_values, max_size=3), json_values),
       volumes_from=st.one_of(st.lists(link_values, max_size=3), json_values),
       log=log_config, network_mode=st.sampled_from([None, "bridge", "none", "host", "container:fzt-target"]))
def test_container_create_odd_links_volumes_from_log_config(raw, target, links, volumes_from, log, network_mode):
    body = {"Image": BUSYBOX, "Cmd": ["true"],
            "HostConfig": {"Links": links, "VolumesFrom": volumes_from, "LogConfig": log, "NetworkMode": network_mode}}
    resp = raw("POST", "/containers/create?name=fzt-self", body)
    if resp[0] == 201:
        assert raw("DELETE", "/containers/fzt-self?force=1&v=1")[0] == 204
    _ok(resp, body)


@SETTINGS
@given(create=st.fixed_dictionaries({}, optional={
    "Tty": json_values, "DetachKeys": st.one_of(st.sampled_from(["ctrl-", "ctrl-@@", "a,b", ",", "ctrl-1", "ctrl-p,ctrl-q"]),
                                                json_values),
    "AttachStdin": json_values, "ConsoleSize": json_values, "Env": json_values, "User": json_values,
    "WorkingDir": json_values, "Cmd": st.one_of(st.just(["/no/such/binary"]), json_values)}),
    start=st.fixed_dictionaries({"Detach": st.just(True)}, optional={"Tty": json_values, "ConsoleSize": json_values}))
def test_exec_odd_tty_and_detach_keys(raw, target, create, start):
    body = {"Cmd": ["true"], **create}
    resp = raw("POST", f"/containers/{target}/exec", body)
    _ok(resp, body)
    if resp[0] == 201:
        eid = json.loads(resp[1])["Id"]
        _ok(raw("POST", f"/exec/{eid}/start", start), (body, start))
        _ok(raw("GET", f"/exec/{eid}/json"), eid)


@SETTINGS
@given(body=st.one_of(json_values, st.fixed_dictionaries({"Resource": st.one_of(
    st.sampled_from(["/etc/hostname", "/etc", "", "relative", "/nonexistent", "/../../etc/passwd", "/proc/self/root",
                     "/dev/null", "/data", "/" + "a" * 300]), json_values)})),
       version=st.sampled_from(["1.12", "1.19", "1.23", "1.24", "1.50"]))
def test_legacy_copy_bodies(raw, target, body, version):
    resp = raw("POST", f"/containers/{target}/copy", body, version=version)
    if version >= "1.24":  # gone from API 1.24: dockerd answers a bare 404, no body
        assert resp[:2] == (404, b""), resp
    else:
        _ok(resp, (version, body))


@SETTINGS
@given(alias=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20),
       query=st.sampled_from(["link=1", "link=true", "link=0", "link=x", "link=1&force=1", "link=1&v=x"]))
def test_link_delete_odd_aliases(raw, engine, target, alias, query):
    api = engine.api()
    try:
        src = api.create_container(BUSYBOX, ["sleep", "1000"], name="fzt-linker",
                                   host_config=api.create_host_config(links={"fzt-target": "db"}))["Id"]
        _ok(raw("DELETE", f"/containers/{src}/{quote(alias, safe='')}?{query}"), (alias, query))
        _ok(raw("DELETE", f"/containers/{src}/db?{query}"), query)
    finally:
        api.remove_container("fzt-linker", force=True)
        api.close()


endpoint_settings = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "IPAMConfig": st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "IPv4Address": addressish, "IPv6Address": addressish,
        "LinkLocalIPs": st.one_of(json_values, st.lists(addressish, max_size=2))})),
    "Aliases": st.one_of(json_values, st.lists(st.text(max_size=10), max_size=2)),
    "MacAddress": st.one_of(json_values, st.sampled_from(["02:42:ac:11:00:99", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
                                                          "01:00:5e:00:00:01", "02-42-ac-11-00-98", "x"])),
    "DriverOpts": json_values, "Links": json_values, "GwPriority": json_values, "DNSNames": json_values}))


@pytest.fixture(scope="module")
def epnet(raw):
    status, body, _ = raw("POST", "/networks/create", {"Name": "fzt-epnet", "IPAM": {"Config": [{"Subnet": SUBNETS[0]}]}})
    assert status == 201, body
    yield "fzt-epnet"
    raw("DELETE", "/networks/fzt-epnet")


@SETTINGS
@given(ep=endpoint_settings, network=st.sampled_from(["bridge", "none", "host", "fzt-epnet"]))
def test_endpoint_settings_garbage(raw, target, epnet, ep, network):
    """create (and start) with NetworkingConfig, connect a running container: never a 5xx."""
    body = {"Image": BUSYBOX, "Cmd": ["true"], "HostConfig": {"NetworkMode": network},
            "NetworkingConfig": {"EndpointsConfig": {network: ep}}}
    resp = raw("POST", "/containers/create?name=fzt-ep", body)
    _ok(resp, body)
    if resp[0] == 201:
        _ok(raw("POST", "/containers/fzt-ep/start"), ("start", body))
        assert raw("DELETE", "/containers/fzt-ep?force=1")[0] == 204
    connect = {"Container": target, "EndpointConfig": ep}
    resp = raw("POST", f"/networks/{epnet}/connect", connect)
    _ok(resp, connect)
    if resp[0] == 200:
        _ok(raw("POST", f"/networks/{epnet}/disconnect", {"Container": target, "Force": True}), "disconnect")


ipc_modes = st.one_of(st.sampled_from(["", "none", "private", "shareable", "host", "container", "container:",
                                       "container:fzt-target", "container:fzt-ipc", "container:nonexistent",
                                       "container:fzt-target:x", "container:/fzt-target", "bogus", "CONTAINER:x"]),
                      st.text(max_size=12).map(lambda s: "container:" + s), json_values)
# Go templates and RE2 regexes that parse, nearly parse, or reach odd corners of either.
go_templates = st.one_of(st.sampled_from([
    "{{.ID}}", "{{.Name}}/{{.ImageName}}", "{{", "}}", "{{.Nope}}", "{{.ID", "{{json .}}", "{{index .ContainerEnv 9}}",
    "{{printf \"%d\" .ID}}", "{{.Created.Unix}}", "{{range .}}{{end}}", "{{if}}{{end}}", "{{$x := 1}}{{$x}}",
    "{{.DaemonName | len}}", "{{template \"x\"}}", "{{define \"x\"}}{{end}}", "{{/* c */}}", "{{.ID | printf}}",
    "{{slice .ID 1 99}}", "{{call .ID}}", "{{.ExtraAttributes nil}}", "{{- .ID -}}", "{{\"\\x\"}}", "{{'a'}}",
    "{{1e999}}", "{{0x}}", "{{.Created.Format \"2006\"}}", "{{with .ID}}{{.}}{{else}}x{{end}}"]),
    st.text(alphabet="{}.$|() \"'\\-abcdIDNm0123456789", max_size=24))
re2_patterns = st.one_of(st.sampled_from([
    "", "a", "(", ")", "[", "a{2,1}", "a{1001}", "(?P<n>a)", "(?<n>a)", "(?i)a", "(?z)a", "\\p{Greek}", "\\p{Nope}",
    "\\C", "\\8", "a**", "a++", "(?=a)", "(?!a)", "\\b", "[[:alpha:]]", "[[:nope:]]", "x{0,99999}", "\\Q.\\E", "\\z",
    "\\Z", "[a-\\d]", "(?P=n)", "\\1", "\\x{110000}", "\\pN", "a|*"]),
    st.text(alphabet="()[]{}?*+|\\^$.:<>=!,0123456789aPpQEzZdx-", max_size=16))


@SETTINGS
@given(ipc=ipc_modes, tag=st.one_of(st.none(), go_templates), regex_key=st.sampled_from(["labels-regex", "env-regex"]),
       regex=st.one_of(st.none(), re2_patterns), driver=st.sampled_from(["json-file", "local", "syslog", "journald"]),
       start=st.booleans())
def test_container_create_ipc_and_log_templates(raw, target, ipc, tag, regex_key, regex, driver, start):
    """IpcMode (container:<id>, shareable...) and the log driver's tag template and label/env regexes
    are checked at create as dockerd does: a 4xx for a bad one, never a 5xx at create or start."""
    config = {k: v for k, v in (("tag", tag), (regex_key, regex)) if v is not None}
    if driver == "syslog":
        config["syslog-address"] = "udp://127.0.0.1:9"
    body = {"Image": BUSYBOX, "Cmd": ["true"], "Labels": {"a": "1"}, "Env": ["A=1"],
            "HostConfig": {"IpcMode": ipc, "LogConfig": {"Type": driver, "Config": config}}}
    resp = raw("POST", "/containers/create?name=fzt-ipc", body)
    _ok(resp, body)
    if resp[0] == 201:
        if start:
            _ok(raw("POST", "/containers/fzt-ipc/start"), ("start", body))
        assert raw("DELETE", "/containers/fzt-ipc?force=1&v=1")[0] == 204
