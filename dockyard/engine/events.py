"""The event bus behind `docker events`: services publish, API streams subscribe."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .filters import Filters


@dataclass
class Event:
    type: str  # container, image, network, volume, daemon
    action: str  # create, start, die, destroy, tag, pull, ...
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = field(default_factory=time.time_ns)
    scope: str = "local"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        # Pre-1.22 fields docker-py and old clients still read.
        if self.type == "container":
            d["status"] = self.action
            d["id"] = self.actor_id
            if "image" in self.attributes:
                d["from"] = self.attributes["image"]
        return d


EVENT_FILTERS = {"container", "event", "image", "label", "type", "volume", "network", "daemon",
                 "plugin", "node", "service", "secret", "config", "scope"}
# filters naming an object of one type: an event matches when it is about that object
_OBJECT_FILTERS = ("container", "image", "volume", "network", "daemon", "plugin", "node", "service",
                   "secret", "config")


def matches(ev: Event, f: "Filters") -> bool:
    """Docker's events filters: values of one key are OR-ed, keys are AND-ed."""
    if f.get("type") and ev.type not in f.get("type"):
        return False
    if f.get("event") and ev.action not in f.get("event") and ev.action.split(":")[0] not in f.get("event"):
        return False
    if f.get("scope") and ev.scope not in f.get("scope"):
        return False
    asked = [k for k in _OBJECT_FILTERS if f.get(k)]
    if asked:
        # an event passes when it is about one of the objects named, whatever its type
        def names(v: str) -> bool:
            a = ev.attributes
            return ev.actor_id == v or ev.actor_id.startswith(v) or a.get("name") == v or a.get("image") == v
        if not any(ev.type == k and any(names(v) for v in f.get(k)) for k in asked):
            if not (f.get("image") and ev.type == "container" and ev.attributes.get("image") in f.get("image")):
                return False
    return f.match_labels(ev.attributes)


SUBSCRIBER_BACKLOG = 10_000


class EventBus:
    """Keeps the last events for `since` queries and fans out new ones."""

    def __init__(self, history: int = 1000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()
        # called with every event (metrics count them); must not block
        self.observers: list[Callable[[Event], None]] = []

    def publish(self, type: str, action: str, actor_id: str, /, **attributes: str) -> Event:
        ev = Event(type, action, actor_id, {k: str(v) for k, v in attributes.items()})
        self._history.append(ev)
        for observe in self.observers:
            observe(ev)
        for q in list(self._subscribers):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                # a subscriber that stopped reading is dropped, not fed forever
                self._subscribers.discard(q)
                q.get_nowait()
                q.put_nowait(None)  # tells the reader its stream is over
        return ev

    def history(self) -> list[Event]:
        return list(self._history)

    def subscribe(self) -> "asyncio.Queue[Event | None]":
        q: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: "asyncio.Queue[Event | None]") -> None:
        self._subscribers.discard(q)
