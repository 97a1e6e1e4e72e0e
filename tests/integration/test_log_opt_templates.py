"""A bad `tag` template or `labels-regex`/`env-regex` is refused with dockerd's words.

dockerd 20.10 takes such options at create and fails the start with
`failed to initialize logging driver: <Go's error>` (a 500, the container left
"created").  dockyard checks log option values at create already (as it does
for max-size and the rest), so these are a 400 there with Go's error text —
the texts below are the reference dockerd's, for the same options.
"""

from __future__ import annotations

import os

import docker.errors
import pytest

from engine_harness import uniq

pytestmark = pytest.mark.usefixtures("cleanup_containers")

# (driver, option, value, dockerd 20.10's error after "failed to initialize logging driver: ")
BAD = [
    ("json-file", "tag", "{{.Name", "template: log-tag:1: unclosed action"),
    ("json-file", "tag", "a{{.Nope}}", 'template: log-tag:1:3: executing "log-tag" at <.Nope>: '
                                       "can't evaluate field Nope in type *logger.Info"),
    ("json-file", "tag", "{{foo}}", 'template: log-tag:1: function "foo" not defined'),
    ("json-file", "tag", "{{if .Name}}x", "template: log-tag:1: unexpected EOF"),
    ("json-file", "tag", "{{.Name}", "template: log-tag:1: bad character U+007D '}'"),
    ("syslog", "tag", "{{end}}", "template: log-tag:1: unexpected {{end}}"),
    ("json-file", "labels-regex", "[a", "error parsing regexp: missing closing ]: `[a`"),
    ("json-file", "env-regex", "(x", "error parsing regexp: missing closing ): `(x`"),
    ("json-file", "labels-regex", "(?=x)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
]


def opts_for(driver: str, key: str, value: str) -> dict[str, str]:
    opts = {key: value}
    if driver == "syslog":
        opts["syslog-address"] = "udp://127.0.0.1:514"  # a datagram dial needs no listener
    return opts


@pytest.mark.parametrize("driver,key,value,message", BAD, ids=[f"{b[1]}={b[2]}" for b in BAD])
def test_bad_template_or_regex_is_a_400_at_create_and_creates_nothing(engine, api, driver, key, value, message):
    before = len(api.containers(all=True))
    args = [a for k, v in opts_for(driver, key, value).items() for a in ("--log-opt", f"{k}={v}")]
    r = engine.cli("create", "--name", uniq("tpl"), "--log-driver", driver, *args, "busybox", "true")
    assert r.returncode != 0
    assert f"Error response from daemon: {message}\n" in r.stderr.decode()
    with pytest.raises(docker.errors.APIError) as e:
        api.create_container("busybox", ["true"], host_config={
            "LogConfig": {"Type": driver, "Config": opts_for(driver, key, value)}})
    assert e.value.response.status_code == 400 and e.value.explanation == message
    assert len(api.containers(all=True)) == before


def test_good_templates_and_regexes_still_log(engine, api):
    """What dockerd takes is taken, and the tag and attributes reach the json-file log."""
    name = uniq("tplok")
    cid = engine.cli_ok("run", "-d", "--name", name, "--label", "com.example.team=a",
                        "--log-opt", "tag={{.Name}}/{{.ImageName}}|{{ .ID }}",
                        "--log-opt", r"labels-regex=^com\.example\.", "--log-opt", "env-regex=^(A|B)$",
                        "-e", "A=1", "busybox", "echo", "hi").strip()
    assert api.wait(cid, timeout=60)["StatusCode"] == 0
    with open(api.inspect_container(cid)["LogPath"]) as f:
        line = f.readline()
    assert f'"tag":"{name}/busybox|{cid[:12]}"' in line
    assert '"com.example.team":"a"' in line and '"A":"1"' in line


def test_tags_with_pipes_and_functions_come_out_as_dockerds(engine, api, tmp_path):
    """json-file's attrs.tag and syslog's tag: Go's text/template run on the container's
    *logger.Info, with dockerd's tag functions (upper, truncate, split/join, title…)."""
    from test_log_drivers import Listener, wait_for

    name = uniq("tpl-fn")
    tag = ('{{.ImageName | upper}}/{{truncate .ID 5}}/{{join (split .Name "-") "_"}}'
           '{{if .ContainerLabels.team}}/{{.ContainerLabels.team | title}}{{end}}/{{.Command}}')
    cid = engine.cli_ok("run", "-d", "--name", name, "--label", "team=blue sky", "--log-opt", f"tag={tag}",
                        "busybox", "echo", "hi").strip()
    assert api.wait(cid, timeout=60)["StatusCode"] == 0
    want = f"BUSYBOX/{cid[:5]}/{name.replace('-', '_')}/Blue Sky/echo hi"
    with open(api.inspect_container(cid)["LogPath"]) as f:
        assert f'"attrs":{{"tag":"{want}"}}' in f.readline()

    os.chmod(tmp_path, 0o755)
    lst = Listener("unixgram", tmp_path)
    try:
        cid = engine.cli_ok("run", "-d", "--log-driver", "syslog", "--log-opt", f"syslog-address={lst.address}",
                            "--log-opt", "syslog-format=rfc5424",
                            "--log-opt", "tag={{.ImageName | lower | upper}}-{{truncate .ID 4}}",
                            "busybox", "echo", "to-syslog").strip()
        api.wait(cid, timeout=60)
        [msg] = wait_for(lambda: [m for m in lst.messages if m.endswith("to-syslog")], 30)
        assert msg.split(" ")[3] == f"BUSYBOX-{cid[:4]}"  # APP-NAME
    finally:
        lst.close()
