"""Health check settings and probe commands; image HEALTHCHECK inheritance."""

from dockyard.engine.containers.createspec import merge_config
from dockyard.engine.containers.health import probe_command, setting


def test_probe_command_forms():
    assert probe_command({"Test": ["CMD-SHELL", "curl -f x || exit 1"]}) == ["/bin/sh", "-c", "curl -f x || exit 1"]
    assert probe_command({"Test": ["CMD", "true"]}) == ["true"]
    assert probe_command({"Test": ["NONE"]}) is None
    assert probe_command(None) is None and probe_command({}) is None


def test_defaults_are_dockers():
    assert setting({}, "Interval") == 30 and setting({}, "Timeout") == 30 and setting({}, "Retries") == 3
    assert setting({"Interval": 2_000_000_000}, "Interval") == 2


def test_image_healthcheck_is_inherited_unless_overridden():
    image = {"config": {"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"]}}}
    assert merge_config({"Image": "x"}, image)["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert merge_config({"Image": "x", "Healthcheck": {"Test": ["NONE"]}}, image)["Healthcheck"] == {"Test": ["NONE"]}
