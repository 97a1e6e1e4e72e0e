"""The event bus behind `docker events`: services publish, API streams subscribe."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


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


class EventBus:
    """Keeps the last events for `since` queries and fans out new ones."""

    def __init__(self, history: int = 1000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, type: str, action: str, actor_id: str, /, **attributes: str) -> Event:
        ev = Event(type, action, actor_id, {k: str(v) for k, v in attributes.items()})
        self._history.append(ev)
        for q in list(self._subscribers):
            q.put_nowait(ev)
        return ev

    def history(self) -> list[Event]:
        return list(self._history)

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(q)
