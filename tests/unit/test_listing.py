"""`docker ps` filters, on container records (no engine)."""

import pytest

from dockyard.engine.containers.listing import name_matches, select
from dockyard.engine.containers.model import Container, State
from dockyard.engine.filters import Filters
from dockyard.errors import InvalidParameter


def ctr(cid: str, name: str, status: str = "running", created: str = "2026-01-01T00:00:00Z", **kw) -> Container:
    c = Container(id=cid * 64, name=name, created=created, image_id="sha256:img", image_ref="busybox",
                  path="sh", args=[], config=kw.pop("config", {}), host_config=kw.pop("host_config", {}),
                  state=State(status=status), **kw)
    return c


CTRS = [
    ctr("a", "web", created="2026-01-01T00:00:01Z", config={"ExposedPorts": {"80/tcp": {}}, "Labels": {"t": "x"}},
        host_config={"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}, volumes={"/data": "webdata"}),
    ctr("b", "db", status="exited", created="2026-01-01T00:00:02Z", config={"ExposedPorts": {"5432/tcp": {}}}),
    ctr("c", "job", status="created", created="2026-01-01T00:00:03Z",
        host_config={"Binds": ["/srv:/srv:ro"]}),
]


def ids(f: dict, all: bool = True, limit: int = -1) -> list[str]:
    got = select(CTRS, Filters({k: v if isinstance(v, list) else [v] for k, v in f.items()}), all=all,
                 limit=limit, get=lambda r: next(c for c in CTRS if c.name == r), image_id=lambda r: "sha256:img")
    return [c.name for c in got]


def test_default_lists_running_newest_first():
    assert ids({}, all=False) == ["web"]
    assert ids({}) == ["job", "db", "web"]
    assert ids({}, all=False, limit=2) == ["job", "db"]


def test_filters():
    assert ids({"volume": "webdata"}) == ["web"]
    assert ids({"volume": "/srv"}) == ["job"]
    assert ids({"publish": "80"}) == ["web"]
    assert ids({"publish": "80/udp"}) == []
    assert ids({"expose": "5432/tcp"}) == ["db"]
    assert ids({"health": "none"}) == ["job", "db", "web"]
    assert ids({"health": "healthy"}) == []
    assert ids({"is-task": "true"}) == []
    assert ids({"is-task": "false"}) == ["job", "db", "web"]
    assert ids({"label": "t=x"}) == ["web"]
    assert ids({"before": "job"}) == ["db", "web"]
    assert ids({"since": "web"}) == ["job", "db"]
    assert ids({"status": "exited"}, all=False) == ["db"]
    assert ids({"name": "^w"}) == ["web"]


def test_bad_filters_are_400():
    for f in ({"status": "bogus"}, {"health": "bogus"}, {"publish": "http"}, {"nope": "x"}):
        with pytest.raises(InvalidParameter):
            ids(f)


def test_name_matches_regex_or_substring():
    assert name_matches("/we", "web") and name_matches("b$", "web") and name_matches("[", "a[b")


def test_health_filter_uses_the_container_health():
    sick = ctr("d", "sick")
    sick.state.health = {"Status": "unhealthy", "FailingStreak": 3, "Log": []}
    got = select([sick, *CTRS], Filters({"health": ["unhealthy"]}), all=True, limit=-1,
                 get=lambda r: sick, image_id=lambda r: None)
    assert [c.name for c in got] == ["sick"]


def test_exited_filter_must_be_a_number():
    with pytest.raises(InvalidParameter):
        ids({"exited": "x"})
    assert ids({"exited": "0"}) == ["db"]
