"""Rendering Go templates (log tags): the docker CLI's own text/template is the oracle.

The docker CLI renders `--format` templates client-side with Go's text/template and the
same functions dockerd gives log tags (json split join title lower upper pad truncate), so
`docker version --format` prints what Go makes of a template built from literals, even
with no daemon to ask.  Fields of *logger.Info are checked against dockerd's methods.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from dockyard.engine.logdrivers.attrs import TAG_FUNCS, logger_info, parse_tag
from dockyard.engine.logdrivers.base import ContainerInfo
from dockyard.gotemplate import TemplateError
from dockyard.gotemplate_exec import render

LITERAL_TEMPLATES = [
    '{{"web-1" | title}}', '{{"hello wORLD_x y.z" | title}}', '{{pad "ab" 2 1}}!', '{{pad "" 2 1}}!',
    '{{truncate "abcdef" 3}}', '{{truncate "ab" 3}}', '{{"AbC" | lower}}{{"AbC" | upper}}',
    '{{json (split "a-b" "-")}}', '{{json "<&>"}}', '{{join (split "a-b-c" "-") "_"}}',
    '{{split "abc" ""}}', '{{printf "%s-%d-%v" "x" 3 true}}', '{{ "a" }}  {{- "b" -}}  c',
    '{{$x := "v"}}{{$x}}{{$x = "w"}}{{$x | upper}}', '{{if eq "a" "b" "a"}}yes{{else}}no{{end}}',
    '{{if ne 1 1}}x{{else if lt 1 2}}lt{{end}}', '{{with ""}}x{{else}}empty{{end}}',
    '{{range $i, $e := split "x,y" ","}}{{$i}}={{$e}};{{end}}', '{{range split "" ","}}[{{.}}]{{end}}',
    '{{len "abc"}} {{index (split "a b" " ") 1}} {{slice "abcdef" 1 3}}', '{{print "a" 1 2 "b"}}',
    '{{and "" "x"}}|{{or "" "y"}}|{{not true}}', '{{"a\\tb\\u00e9" | printf "%q"}}', '{{html "<a>"}}',
    '{{/* a comment */}}after', '{{(split "a.b" ".") | json}}', 'x {{- /* c */ -}} y',
    '{{ "a" -}}\n\n  {{ "b" }}', '{{range $i, $e := split "a,b" ","}}{{if $i}},{{end}}{{$e | upper}}{{end}}',
    '{{if false}}a{{else if false}}b{{else}}c{{end}}', '{{$a := 1}}{{range split "x y" " "}}{{$a = 2}}{{end}}{{$a}}',
    '{{"x" | printf "%s-%s" "y"}}', "{{0x1F}} {{1_000}} {{'a'}} {{1e3}}", '{{json 1}} {{json true}} {{json nil}}',
    '{{title "élan vital_x-y"}}', '{{and 1 0 2}} {{or 0 "" nil}}',
]


def go_render(template: str) -> str:
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/dockyard-oracle.sock")
    r = subprocess.run(["docker", "version", "--format", template + "\x1e"], env=env,
                       capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert "\x1e" in out, r.stderr
    return out.split("\x1e", 1)[0]


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is the oracle")
@pytest.mark.parametrize("template", LITERAL_TEMPLATES)
def test_renders_as_gos_text_template(template):
    assert render("log-tag", template, TAG_FUNCS, None) == go_render(template)


INFO = ContainerInfo(id="0123456789abcdef" * 4, name="web-1", image_id="sha256:" + "f" * 64,
                     image_name="registry.local/app:1.0", labels={"com.example.team": "a", "x": "y"},
                     env=["A=1", "B=2"], entrypoint="/bin/sh", args=["-c", "echo hi"],
                     created="2026-11-30T16:55:20.120000000Z", log_path="/var/x-json.log")


@pytest.mark.parametrize("template,expected", [
    ("{{.ID}}", "0123456789ab"),
    ("{{.ImageName | upper}}", "REGISTRY.LOCAL/APP:1.0"),
    ("{{truncate .FullID 5}}-{{.ImageID}}", "01234-ffffffffffff"),
    ('{{join (split .Name "-") "_"}}', "web_1"),
    ("{{.ContainerName}} {{.ContainerImageID}}", "/web-1 sha256:" + "f" * 64),
    ("{{.ContainerLabels.x}}|{{.ContainerLabels.nope}}|{{index .ContainerLabels \"nope\"}}|",
     "y|<no value>||"),
    ("{{json .ContainerLabels}} {{.ContainerEnv}}", '{"com.example.team":"a","x":"y"} [A=1 B=2]'),
    ("{{range .ContainerEnv}}{{if ne . \"A=1\"}}{{.}}{{end}}{{end}}", "B=2"),
    ("{{.DaemonName}}:{{.Config.mode | title}}", "docker:Blocking"),
    ("{{.Command}}|{{.ContainerEntrypoint}}|{{json .ContainerArgs}}|{{.LogPath}}",
     '/bin/sh -c echo hi|/bin/sh|["-c","echo hi"]|/var/x-json.log'),
    ("{{.ContainerCreated}} {{.ContainerCreated.Unix}}", "2026-11-30 16:55:20.12 +0000 UTC 1796057720"),
])
def test_tag_fields_and_methods(template, expected):
    assert parse_tag(INFO, {"tag": template, "mode": "blocking"}, "") == expected


def test_a_function_given_the_wrong_type_fails_like_go():
    with pytest.raises(TemplateError) as e:
        render("log-tag", "{{upper .ContainerEnv}}", TAG_FUNCS, logger_info(INFO, {}))
    assert str(e.value) == ('template: log-tag:1:8: executing "log-tag" at <.ContainerEnv>: '
                            "wrong type for value; expected string; got []string")


def test_a_tag_failing_at_log_time_keeps_its_plain_fields():
    """Create checked the template; what still fails (unmodelled) must not stop the records."""
    assert parse_tag(INFO, {"tag": "{{upper .ContainerEnv}}-{{.Name}}"}, "") == "{{upper .ContainerEnv}}-web-1"
