"""docker events filters."""

from dockyard.engine.events import Event, matches
from dockyard.engine.filters import Filters


def f(**kw) -> Filters:
    return Filters({k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in kw.items()})


C = Event("container", "start", "abc123", {"name": "web", "image": "busybox", "team": "a"})
V = Event("volume", "create", "data1", {"driver": "local"})
N = Event("network", "connect", "net9", {"name": "n1", "container": "abc123"})
E = Event("container", "exec_start: sh -c true", "abc123", {"name": "web"})


def test_type_event_and_objects():
    assert matches(C, f(type="container")) and not matches(V, f(type="container"))
    assert matches(C, f(event="start")) and not matches(C, f(event="die"))
    assert matches(E, f(event="exec_start"))
    assert matches(C, f(container="web")) and matches(C, f(container="abc")) and not matches(C, f(container="x"))
    assert matches(V, f(volume="data1")) and not matches(V, f(volume="other"))
    assert not matches(C, f(volume="data1"))  # a volume filter is not ignored
    assert matches(N, f(network="n1")) and not matches(C, f(network="n1"))
    assert matches(C, f(image="busybox"))
    assert not matches(C, f(daemon="x")) and not matches(C, f(service="s"))
    assert matches(C, f(container="web", volume="data1")) and matches(V, f(container="web", volume="data1"))


def test_label_and_scope():
    assert matches(C, f(label="team=a")) and not matches(C, f(label="team=b"))
    assert matches(C, f(scope="local")) and not matches(C, f(scope="swarm"))


def test_a_subscriber_that_stops_reading_is_dropped():
    import asyncio

    from dockyard.engine import events as ev_mod

    async def run():
        bus = ev_mod.EventBus()
        q = bus.subscribe()
        for i in range(ev_mod.SUBSCRIBER_BACKLOG + 5):
            bus.publish("container", "start", str(i))
        assert q not in bus._subscribers
        items = [q.get_nowait() for _ in range(q.qsize())]
        assert items[-1] is None and len(items) == ev_mod.SUBSCRIBER_BACKLOG
    asyncio.run(run())
