"""API robustness and response shapes, over raw HTTP on the engine's socket.

1. Requests that used to answer 500 (found by schemathesis, bench/api_fuzz/run.py, and by hand)
   now answer Docker's 4xx with its JSON error shape {"message": "..."}.
2. The main objects (ContainerSummary, ContainerInspectResponse, ImageSummary, ImageInspect,
   Network, Volume, SystemInfo, SystemVersion, ExecInspect, image history, /system/df) are
   validated against the Engine API v1.50 spec: required keys and types, relaxed only where a
   real dockerd departs from the spec (dockyard/testing/apispec.py says where and why).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import urllib.parse

import pytest

from dockyard.testing import apispec

BUSYBOX = "busybox:latest"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.unix_path)


class Raw:
    """One HTTP request per call, the body as sent (no client-side validation)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def __call__(self, method: str, path: str, body=None, version: str = "1.50") -> tuple[int, bytes, str]:
        conn = _UnixConnection(self.socket_path)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, f"/v{version}" + urllib.parse.quote(path, safe="/?&=%:"), body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type") or ""
        finally:
            conn.close()

    def json(self, path: str):
        status, raw, _ = self("GET", path)
        assert status == 200, (path, status, raw)
        return json.loads(raw)


def assert_docker_error(resp: tuple[int, bytes, str], status: int, contains: str = "") -> str:
    code, raw, ctype = resp
    assert code == status, (code, raw)
    assert ctype.startswith("application/json"), ctype
    body = json.loads(raw)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    assert contains.lower() in body["message"].lower(), body["message"]
    return body["message"]


@pytest.fixture(scope="module")
def raw(engine):
    return Raw(engine.socket)


@pytest.fixture(scope="module")
def objects(engine):
    """A created, a running and an exited container, an exec, a network, a volume."""
    api = engine.api()
    made: dict[str, str] = {}
    try:
        made["created"] = api.create_container(BUSYBOX, ["sleep", "1000"], name="rb-created",
                                               volumes=["/data"], labels={"rb": "1"})["Id"]
        made["running"] = api.create_container(BUSYBOX, ["sleep", "1000"], name="rb-running")["Id"]
        api.start(made["running"])
        made["exited"] = api.create_container(BUSYBOX, ["sh", "-c", "echo hi >/f"], name="rb-exited")["Id"]
        api.start(made["exited"])
        api.wait(made["exited"], timeout=60)
        made["exec"] = api.exec_create(made["running"], ["true"])["Id"]
        made["network"] = api.create_network("rb-net", labels={"rb": "1"})["Id"]
        api.connect_container_to_network(made["running"], made["network"])
        api.create_volume("rb-vol", labels={"rb": "1"})
        made["volume"] = "rb-vol"
        yield made
    finally:
        for key in ("created", "running", "exited"):
            if key in made:
                api.remove_container(made[key], force=True, v=True)
        if "network" in made:
            api.remove_network(made["network"])
        if "volume" in made:
            api.remove_volume(made["volume"])
        api.close()


# ------------------------------------------------------------------ former 500s
@pytest.mark.parametrize("body, contains", [
    # a list where Go wants an int: TypeError in int() was a 500
    ({"RestartPolicy": {"Name": "", "MaximumRetryCount": [None, None]}}, "cannot unmarshal array"),
    # a number where Go wants a string: AttributeError in the cpuset parser was a 500
    ({"CpusetCpus": 5}, "cannot unmarshal number"),
    ({"RestartPolicy": "always"}, "cannot unmarshal string"),
    ({"MemorySwappiness": "x"}, "cannot unmarshal string"),
    # past int64: Go refuses to decode it; runc choked on it (500)
    ({"Memory": 1 << 70}, "cannot unmarshal number"),
    ({"CpuShares": 1 << 63}, "cannot unmarshal number"),
    ({"CpuRealtimeRuntime": 10000, "CpuRealtimePeriod": 1000}, "real-time runtime cannot be higher"),
    ({"CpuRealtimePeriod": -5}, "real-time"),
    # cpus the host does not have: runc update failed (500)
    ({"CpusetCpus": "0-999"}, "not available"),
])
def test_update_bad_values_are_400(raw, objects, body, contains):
    assert_docker_error(raw("POST", f"/containers/{objects['running']}/update", body), 400, contains)


def test_update_refused_by_the_kernel_is_400(raw, objects):
    """A quota past what the kernel accepts: runc update fails (EINVAL) and that was a 500."""
    msg = assert_docker_error(raw("POST", f"/containers/{objects['running']}/update", {"CpuQuota": 1 << 62}),
                              400, "Cannot update container")
    assert objects["running"] in msg
    status, raw_body, _ = raw("POST", f"/containers/{objects['running']}/update", {"Memory": 64 << 20})
    assert status == 200, raw_body  # the container is still updatable afterwards
    assert json.loads(raw_body) == {"Warnings": []}


def test_create_with_out_of_range_int_is_400(raw):
    resp = raw("POST", "/containers/create", {"Image": BUSYBOX, "HostConfig": {"Memory": 1 << 70}})
    assert_docker_error(resp, 400, "cannot unmarshal number")


def test_volume_name_too_long_is_400(raw):
    """mkdir failed with ENAMETOOLONG: a 500."""
    assert_docker_error(raw("POST", "/volumes/create", {"Name": "a" * 300}), 400, "too long")


def test_network_bridge_name_of_a_host_interface_is_refused(raw):
    """The bridge name of an existing non-bridge interface was a 500, and the failed create's
    teardown then tried to delete that interface (eth0...).  Now a 409 before touching anything."""
    resp = raw("POST", "/networks/create", {"Name": "rb-lo", "Options": {"com.docker.network.bridge.name": "lo"}})
    assert_docker_error(resp, 409, "in use")
    assert subprocess.run(["ip", "link", "show", "lo"], capture_output=True).returncode == 0
    status, _, _ = raw("GET", "/networks/rb-lo")
    assert status == 404  # nothing recorded


# Found by the targeted probes of bench/api_fuzz (network create with garbage IPAM and options):
# a bad ip-range or gateway was reported and then parsed again (ValueError: 500); subnets and
# MTUs the kernel refuses reached netlink (EADDRNOTAVAIL, EINVAL, ERANGE: 500).
@pytest.mark.parametrize("body, contains", [
    ({"IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "IPRange": "x"}]}},
     "invalid ip-range x: invalid CIDR block notation"),
    ({"IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "IPRange": "10.251.7.0/33"}]}}, "invalid CIDR block notation"),
    ({"IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "Gateway": "x"}]}}, "invalid gateway x: invalid address"),
    ({"IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "Gateway": "10.251.7.1/24"}]}},
     "invalid gateway 10.251.7.1/24: invalid address"),
    ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "Gateway": "fe80::/64"}]}},
     "invalid address"),
    ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "ff00::/8"}]}}, "multicast subnet 'ff00::/8' is not allowed"),
    ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "::/0"}]}}, "'::/0' clashes with the Link-Local prefix"),
    ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fe80::/10"}]}}, "clashes with the Link-Local prefix"),
    ({"Options": {"com.docker.network.driver.mtu": "65536"}}, "invalid MTU number: 65536: the maximum is 65535"),
    ({"Options": {"com.docker.network.driver.mtu": "99999999999999999999"}}, "the maximum is 65535"),
])
def test_network_create_garbage_is_400(raw, body, contains):
    name = "rb-garbage"
    assert_docker_error(raw("POST", "/networks/create", dict(body, Name=name)), 400, contains)
    assert raw("GET", f"/networks/{name}")[0] == 404  # nothing recorded, nothing left to clean


def test_syslog_address_with_a_bad_ipv6_host_is_400(raw):
    """urlsplit raised ValueError("Invalid IPv6 URL") for an unclosed bracket: a 500."""
    for address, why in (("tcp://[::1", "missing ']' in host"), ("udp://[zz]:514", "invalid IPv6 host")):
        body = {"Image": BUSYBOX, "Cmd": ["true"],
                "HostConfig": {"LogConfig": {"Type": "syslog", "Config": {"syslog-address": address}}}}
        assert_docker_error(raw("POST", "/containers/create", body), 400, f'parse "{address}": {why}')


def test_exec_start_of_a_missing_command_is_400(raw, objects):
    """A detached exec start whose command runc cannot find was a 500 ("OCI runtime create
    failed"); dockerd answers 400 "OCI runtime exec failed: ..." and records exit code 127."""
    status, body, _ = raw("POST", f"/containers/{objects['running']}/exec", {"Cmd": ["/no/such/binary"]})
    assert status == 201, body
    eid = json.loads(body)["Id"]
    assert_docker_error(raw("POST", f"/exec/{eid}/start", {"Detach": True}), 400, "OCI runtime exec failed")
    assert raw.json(f"/exec/{eid}/json")["ExitCode"] == 127


@pytest.mark.parametrize("body, contains", [
    ({"Detach": "x"}, "cannot unmarshal string into Go struct field ExecStartCheck.Detach of type bool"),
    ({"Detach": True, "Tty": "x"}, "ExecStartCheck.Tty of type bool"),
    ({"Detach": True, "Tty": 5}, "cannot unmarshal number"),
])
def test_exec_start_field_types_are_checked(raw, objects, body, contains):
    """A Tty or Detach of the wrong JSON type was taken for its truthiness and the exec ran."""
    status, created, _ = raw("POST", f"/containers/{objects['running']}/exec", {"Cmd": ["true"]})
    assert status == 201, created
    eid = json.loads(created)["Id"]
    assert_docker_error(raw("POST", f"/exec/{eid}/start", body), 400, contains)
    assert raw.json(f"/exec/{eid}/json")["Running"] is False
    assert raw.json(f"/exec/{eid}/json")["Pid"] == 0  # never started


@pytest.mark.parametrize("ep, contains", [
    # iterated as a list: TypeError, a 500
    ({"IPAMConfig": {"LinkLocalIPs": 5}}, "EndpointSettings.IPAMConfig.LinkLocalIPs of type []string"),
    ({"IPAMConfig": {"LinkLocalIPs": True}}, "cannot unmarshal bool"),
    # stored as is on a "none" network: OverflowError in SQLite at start, a 500
    ({"IPAMConfig": {"IPv4Address": 1 << 70}}, "EndpointSettings.IPAMConfig.IPv4Address of type string"),
    ({"IPAMConfig": {"IPv6Address": 5}}, "cannot unmarshal number"),
    ({"Aliases": [5]}, "EndpointSettings.Aliases of type []string"),
    # the kernel refuses a multicast or all-zero MAC (EADDRNOTAVAIL at start, a 500)
    ({"MacAddress": "ff:ff:ff:ff:ff:ff"}, "invalid MAC address ff:ff:ff:ff:ff:ff: not a unicast address"),
    ({"MacAddress": "01:00:5e:00:00:01"}, "not a unicast address"),
    ({"MacAddress": "00:00:00:00:00:00"}, "not a unicast address"),
])
def test_odd_endpoint_settings_are_400(raw, objects, ep, contains):
    network = "rb-net"
    body = {"Image": BUSYBOX, "Cmd": ["true"], "HostConfig": {"NetworkMode": network},
            "NetworkingConfig": {"EndpointsConfig": {network: ep}}}
    assert_docker_error(raw("POST", "/containers/create?name=rb-odd-ep", body), 400, contains)
    assert raw("GET", "/containers/rb-odd-ep/json")[0] == 404
    connect = {"Container": objects["created"], "EndpointConfig": ep}
    assert_docker_error(raw("POST", f"/networks/{network}/connect", connect), 400, contains)
    none = {"Image": BUSYBOX, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"},
            "NetworkingConfig": {"EndpointsConfig": {"none": ep}}}
    if "MacAddress" not in ep:  # the type checks hold on every network, "none" included
        assert_docker_error(raw("POST", "/containers/create", none), 400, contains)


def test_container_wide_multicast_mac_is_400(raw):
    """Config.MacAddress (API < 1.44) reached the kernel at start: EADDRNOTAVAIL, a 500."""
    body = {"Image": BUSYBOX, "Cmd": ["true"], "MacAddress": "ff:ff:ff:ff:ff:ff"}
    assert_docker_error(raw("POST", "/containers/create", body, version="1.43"), 400, "not a unicast address")


@pytest.mark.parametrize("keys", ["ctrl-", "ctrl-@@", ",", "ctrl-1", "ctrl-\u00e9"])
def test_exec_create_checks_detach_keys(raw, objects, keys):
    """dockerd refuses bad DetachKeys at exec create; they were kept and refused only at an
    attached start (a detached one ignored them)."""
    resp = raw("POST", f"/containers/{objects['running']}/exec", {"Cmd": ["true"], "DetachKeys": keys})
    assert_docker_error(resp, 400, f"Invalid escape keys ({keys}) provided")


def test_volumes_from_itself_is_404(raw):
    """A container named in its own VolumesFrom was created (a no-op self-reference); dockerd
    registers the container after resolving VolumesFrom, so it answers 404 and keeps nothing."""
    body = {"Image": BUSYBOX, "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["rb-selfvol:ro"]}}
    assert_docker_error(raw("POST", "/containers/create?name=rb-selfvol", body), 404, "No such container: rb-selfvol")
    assert raw("GET", "/containers/rb-selfvol/json")[0] == 404
    status, created, _ = raw("POST", "/containers/create?name=rb-selfvol", {"Image": BUSYBOX, "Cmd": ["true"]})
    assert status == 201, created  # the name was released
    assert raw("DELETE", "/containers/rb-selfvol")[0] == 204


@pytest.mark.parametrize("query, status", [
    ("since=1&until=2", 200),  # one-shot: both in the past, the stream ends at once
    ("until=1", 200),
    ("since=1&until=2&filters=%7B%22type%22%3A%5B%22container%22%5D%7D", 200),
    ("since=abc&until=1", 400),
    ("until=abc", 400),
    ("filters=abc&until=1", 400),
    ("filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D&until=1", 400),
])
def test_events_one_shot(raw, query, status):
    resp = raw("GET", "/events?" + query)
    if status == 200:
        assert resp[0] == 200, resp
        for line in resp[1].splitlines():  # whatever came is one JSON event per line
            assert "Type" in json.loads(line)
    else:
        assert_docker_error(resp, status)


def test_archive_bad_paths(raw, objects):
    cid = objects["running"]
    assert_docker_error(raw("GET", f"/containers/{cid}/archive?path=relative/x"), 400)
    assert_docker_error(raw("GET", f"/containers/{cid}/archive"), 400)
    assert_docker_error(raw("GET", f"/containers/{cid}/archive?path=/nonexistent"), 404)
    assert raw("HEAD", f"/containers/{cid}/archive?path=/nonexistent")[0] == 404
    assert raw("HEAD", f"/containers/{cid}/archive?path=relative")[0] == 400
    assert raw("HEAD", f"/containers/{cid}/archive?path=/etc/hostname")[0] == 200


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/containers/{running}/kill?signal=BOGUS", 400),
    ("POST", "/containers/{running}/kill?signal=99999999999999999999", 400),
    ("POST", "/containers/{running}/resize?h=abc&w=1", 400),
    ("POST", "/containers/{running}/resize?h=-1&w=1", 400),
    ("POST", "/containers/{created}/resize?h=10&w=10", 409),
    ("POST", "/containers/{running}/stop?t=abc", 400),
    ("POST", "/containers/{created}/rename?name=bad%20name", 400),
    ("POST", "/containers/{created}/pause", 409),
    ("GET", "/containers/{created}/top", 409),
    ("GET", "/containers/{running}/top?ps_args=a%00b", 400),  # exec of ps raised ValueError: a 500
    ("GET", "/containers/{running}/top?ps_args=-o%20pid%3Dx", 400),
    ("GET", "/containers/{running}/stats?stream=abc", 400),
    ("GET", "/containers/json?limit=x", 400),
    ("GET", "/containers/json?filters=%5B1%5D", 400),
    ("POST", "/exec/{exec}/resize?h=abc", 400),
    ("GET", "/images/%2B/history", 400),
])
def test_bad_parameters_are_4xx(raw, objects, method, path, status):
    assert_docker_error(raw(method, path.format(**objects)), status)


def test_read_endpoints_one_shot(raw, objects):
    """The read operations the fuzzer drives with real ids answer 200 with JSON."""
    changes = raw.json(f"/containers/{objects['exited']}/changes")
    assert {"Path": "/f", "Kind": 1} in changes
    top = raw.json(f"/containers/{objects['running']}/top")
    assert top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
    stats = raw.json(f"/containers/{objects['running']}/stats?stream=false")
    assert stats["id"] == objects["running"]
    df = raw.json("/system/df")
    assert any(c["Id"] == objects["running"] for c in df["Containers"])


# ------------------------------------------------------------------ response shapes
@pytest.fixture(scope="module")
def spec():
    if not apispec.SPEC_PATH.exists():
        pytest.skip(f"the Engine API spec is not at {apispec.SPEC_PATH} (../shared/reference): shape checks need it")
    pytest.importorskip("jsonschema", reason="jsonschema validates the shapes (pip: the test extras)")
    return apispec.docker_tolerant(apispec.load_spec())


def _check(spec, schema: dict, instances: list, what: str) -> None:
    assert instances, f"nothing to check for {what}"
    v = apispec.validator(spec, schema)
    errors = [f"{what}[{i}] {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for i, inst in enumerate(instances) for e in v.iter_errors(inst)]
    assert not errors, "\n".join(errors)


def _ref(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


def test_container_shapes(raw, objects, spec):
    _check(spec, _ref("ContainerSummary"), raw.json("/containers/json?all=1&size=1"), "ContainerSummary")
    inspected = [raw.json(f"/containers/{objects[k]}/json?size=1") for k in ("created", "running", "exited")]
    _check(spec, _ref("ContainerInspectResponse"), inspected, "ContainerInspectResponse")
    created, running, _ = inspected
    # dockerd renders the whole HostConfig struct, zero values included
    for key in ("Memory", "CpuShares", "CapAdd", "Binds", "ShmSize", "Privileged", "MaskedPaths"):
        assert key in created["HostConfig"], key
    # a never-started container lists the network it will join, as dockerd does
    assert list(created["NetworkSettings"]["Networks"]) == ["bridge"]
    assert created["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    assert set(running["NetworkSettings"]["Networks"]) == {"bridge", "rb-net"}


def test_image_shapes(raw, spec):
    images = raw.json("/images/json")
    _check(spec, _ref("ImageSummary"), images, "ImageSummary")
    _check(spec, _ref("ImageInspect"), [raw.json(f"/images/{BUSYBOX}/json")], "ImageInspect")
    history_schema = spec["paths"]["/images/{name}/history"]["get"]["responses"][200]["schema"]
    _check(spec, history_schema, [raw.json(f"/images/{BUSYBOX}/history")], "history")


def test_network_and_volume_shapes(raw, objects, spec):
    _check(spec, _ref("Network"), raw.json("/networks"), "Network (list)")
    _check(spec, _ref("Network"), [raw.json(f"/networks/{objects['network']}"), raw.json("/networks/bridge")],
           "Network")
    vols = raw.json("/volumes")
    assert vols["Warnings"] is None  # dockerd: a nil slice
    _check(spec, _ref("Volume"), vols["Volumes"], "Volume (list)")
    _check(spec, _ref("Volume"), [raw.json(f"/volumes/{objects['volume']}")], "Volume")


def test_system_shapes(raw, objects, spec):
    _check(spec, _ref("SystemInfo"), [raw.json("/info")], "SystemInfo")
    _check(spec, _ref("SystemVersion"), [raw.json("/version")], "SystemVersion")
    paths = spec["paths"]
    _check(spec, paths["/system/df"]["get"]["responses"][200]["schema"], [raw.json("/system/df")], "system/df")
    _check(spec, paths["/exec/{id}/json"]["get"]["responses"][200]["schema"],
           [raw.json(f"/exec/{objects['exec']}/json")], "ExecInspect")
    _check(spec, paths["/containers/{id}/changes"]["get"]["responses"][200]["schema"],
           [raw.json(f"/containers/{objects['exited']}/changes")], "changes")
