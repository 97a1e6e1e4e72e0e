"""`GET /containers/json` rows are kept between requests (api/container_list.py): each change
of a container or of the networks must show in the next listing.  `size=1` builds every row
afresh, so after each step the kept rows must equal the fresh ones (less the size fields)."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.usefixtures("cleanup_containers")


def rows(api, cid: str, **kw) -> list[dict]:
    return api.containers(all=True, filters={"id": cid}, **kw)


def listed(api, cid: str) -> dict:
    kept = rows(api, cid)
    fresh = rows(api, cid, size=True)
    for r in fresh:
        r.pop("SizeRw"), r.pop("SizeRootFs")
    assert kept == fresh
    assert len(kept) == 1
    return kept[0]


def wait_listed(api, cid: str, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = listed(api, cid)
        if row["State"] == state or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def test_rows_follow_every_change(client):
    api = client.api
    net = client.networks.create("rows_net")
    try:
        cid = api.create_container("busybox", "sleep 60", name="rows_a", labels={"k": "v"}, ports=[80],
                                   host_config=api.create_host_config(port_bindings={80: None}))["Id"]
        row = listed(api, cid)
        assert (row["Names"], row["State"], row["Status"], row["Labels"]) == (["/rows_a"], "created", "Created",
                                                                              {"k": "v"})
        assert row["Ports"] == [] and set(row["NetworkSettings"]["Networks"]) == {"bridge"}

        api.rename(cid, "rows_b")
        assert listed(api, cid)["Names"] == ["/rows_b"]

        net.connect(cid)  # a created container lists the networks it will join
        assert set(listed(api, cid)["NetworkSettings"]["Networks"]) == {"bridge", "rows_net"}

        api.start(cid)
        row = wait_listed(api, cid, "running")
        assert row["Status"].startswith("Up ")
        assert [p["PrivatePort"] for p in row["Ports"] if p.get("PublicPort")]  # published while running
        assert row["NetworkSettings"]["Networks"]["rows_net"]["IPAddress"]

        net.disconnect(cid)
        assert set(listed(api, cid)["NetworkSettings"]["Networks"]) == {"bridge"}

        api.stop(cid, timeout=0)
        row = wait_listed(api, cid, "exited")
        assert row["Status"].startswith("Exited (137)") and row["Ports"] == []
        assert row["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""

        api.remove_container(cid)
        assert rows(api, cid) == []
    finally:
        for c in api.containers(all=True, filters={"name": "rows_"}):
            api.remove_container(c["Id"], force=True)
        net.remove()


def test_rows_follow_network_removal(client):
    """A created container's row names the networks it will join: one removed since is gone."""
    api = client.api
    net = client.networks.create("rows_gone")
    cid = api.create_container("busybox", "true", host_config=api.create_host_config(network_mode="rows_gone"))["Id"]
    try:
        first = listed(api, cid)["NetworkSettings"]["Networks"]
        assert first["rows_gone"]["NetworkID"] == net.id
        api.disconnect_container_from_network(cid, net.id)
        net.remove()
        net = client.networks.create("rows_gone")  # the same name, another network
        assert net.id != first["rows_gone"]["NetworkID"]
        api.connect_container_to_network(cid, net.id)
        assert listed(api, cid)["NetworkSettings"]["Networks"]["rows_gone"]["NetworkID"] == net.id
    finally:
        api.remove_container(cid, force=True)
        net.remove()
