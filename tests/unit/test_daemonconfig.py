"""The table of daemon.json keys: consistent with EngineConfig, strict with bad values, dockerd's messages."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.config import EngineConfig
from dockyard.daemonconfig import BY_KEY, OPTIONS, ConfigError, load, reload

# what dockerd reloads on SIGHUP (daemon/reload.go), restricted to the keys dockyard has
DOCKERD_RELOADABLE = {"labels", "debug", "log-level", "registry-mirrors", "insecure-registries", "live-restore",
                      "max-concurrent-downloads", "max-concurrent-uploads", "runtimes", "default-runtime",
                      "shutdown-timeout"}


def test_every_key_fills_an_engineconfig_field_once():
    names = {f.name for f in fields(EngineConfig)}
    assert all(o.field in names for o in OPTIONS)
    assert len({o.key for o in OPTIONS}) == len(OPTIONS) == len({o.field for o in OPTIONS})
    assert {o.key for o in OPTIONS if o.reloadable} == DOCKERD_RELOADABLE


def test_fields_the_other_services_read_have_their_agreed_defaults():
    c = EngineConfig()
    assert (c.log_driver, c.log_opts, c.max_concurrent_downloads, c.max_concurrent_uploads) == ("json-file", {}, 3, 5)
    assert (c.default_address_pools, c.insecure_registries, c.registry_mirrors, c.live_restore) == ([], [], [], True)


def _file(tmp_path, data) -> str:
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps(data))
    return str(p)


def test_file_and_flags_fill_the_config(tmp_path):
    path = _file(tmp_path, {"labels": ["a=b"], "default-shm-size": "128m", "default-address-pools":
                            [{"base": "10.10.0.0/16", "size": 24}], "debug": True})
    cfg = load(["--config-file", path, "--registry-mirror", "https://m.example:5000",
                "--default-ulimit", "nofile=100:200", "--iptables", "false"]).config
    assert cfg.labels == ["a=b"] and cfg.default_shm_size == 128 << 20 and cfg.debug
    assert cfg.default_address_pools == [{"base": "10.10.0.0/16", "size": 24}]
    assert cfg.registry_mirrors == ["https://m.example:5000/"]
    assert cfg.default_ulimits == {"nofile": {"Name": "nofile", "Soft": 100, "Hard": 200}}
    assert cfg.iptables is False
    assert cfg.config_dir == tmp_path and cfg.certs_dir == tmp_path / "certs.d"


def test_conflicts_are_printed_as_dockerd_prints_them(tmp_path):
    path = _file(tmp_path, {"log-opts": {"max-size": "100m"}, "hosts": ["unix:///a.sock"]})
    with pytest.raises(ConfigError) as e:
        load(["--config-file", path, "--log-opt", "max-size=50m", "--log-opt", "max-file=5", "-H", "fd://"])
    assert str(e.value).endswith(
        "the following directives are specified both as a flag and in the configuration file: "
        "hosts: (from flag: [fd://], from file: [unix:///a.sock]), "
        "log-opts: (from flag: map[max-file:5 max-size:50m], from file: map[max-size:100m])")


def test_stop_containers_on_shutdown_is_live_restore_false(tmp_path):
    assert load(["--stop-containers-on-shutdown", "--config-file", _file(tmp_path, {})]).config.live_restore is False
    with pytest.raises(ConfigError):
        load(["--stop-containers-on-shutdown", "--config-file", _file(tmp_path, {"live-restore": True})])


def test_reload_applies_reloadable_keys_and_keeps_the_others(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"labels": ["a=1"], "bip": "10.1.0.1/16"}))
    loaded = load(["--config-file", str(path), "--max-concurrent-uploads", "2"])
    path.write_text(json.dumps({"labels": ["a=2"], "bip": "10.2.0.1/16", "live-restore": False}))
    fresh, changes = reload(loaded.config, loaded.flags)
    assert changes == {"labels": (["a=1"], ["a=2"]), "live-restore": (True, False)}
    assert fresh.bip == "10.1.0.1/16"  # needs a restart
    assert fresh.max_concurrent_uploads == 2  # flags stay
    path.write_text(json.dumps({}))
    fresh2, changes = reload(fresh, loaded.flags)
    assert fresh2.labels == [] and fresh2.live_restore is True  # back to the defaults
    path.write_text("{oops")
    with pytest.raises(ConfigError):
        reload(fresh2, loaded.flags)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8)


@settings(suppress_health_check=list(HealthCheck), deadline=None, max_examples=300)
@given(key=st.sampled_from(sorted(BY_KEY)), value=JSON)
def test_any_value_is_accepted_or_refused_naming_its_key(tmp_path_factory, key, value):
    path = tmp_path_factory.mktemp("cfg") / "daemon.json"
    path.write_text(json.dumps({key: value}))
    try:
        load(["--config-file", str(path)])
    except ConfigError as exc:
        assert key in str(exc) or "tls" in str(exc) or "hosts" in str(exc)
