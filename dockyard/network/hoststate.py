"""What the engine changes on the host besides its own links and chains, and
how it is put back: the forwarding switch of each IP family, and the nf_tables
tables iptables/ip6tables create on first use.  The previous values live in
net_state, written once, so a crash and restart still restore the original.

IPv4 state is taken when the engine starts; IPv6 state only when the first
IPv6 network is set up, so an engine that never uses IPv6 never touches it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Callable

from .firewall import Firewall

# net_state keys per family (the IPv4 names predate IPv6 support)
KEYS = {4: ("fw_tables_created", "ip_forward_prev"), 6: ("fw6_tables_created", "ip6_forward_prev")}


class HostState:
    def __init__(self, firewalls: dict[int, Firewall], get: Callable[[str], str | None],
                 put: Callable[[str, str], None], delete: Callable[[list[str]], None],
                 forward: bool = True) -> None:
        self.firewalls, self.forward = firewalls, forward
        self._get, self._put, self._delete = get, put, delete

    async def record(self, family: int) -> None:
        """Remember the family's tables and forwarding switch, then turn forwarding on."""
        fw = self.firewalls[family]
        if not fw.enabled:
            return
        tables_key, forward_key = KEYS[family]
        if self._get(tables_key) is None:
            present = await asyncio.to_thread(fw.tables_present)
            self._put(tables_key, json.dumps(sorted({"nat", "filter"} - present)))
        cur = await asyncio.to_thread(fw.forwarding)
        if cur != "1" and self.forward:
            if self._get(forward_key) is None:
                self._put(forward_key, cur)
            await asyncio.to_thread(fw.set_forwarding, "1")

    async def restore(self, bridge: str) -> None:
        """Put back what `record` changed, unless another engine still routes for its containers."""
        for family, fw in self.firewalls.items():
            if not fw.enabled:
                continue
            tables_key, forward_key = KEYS[family]
            created, prev = self._get(tables_key), self._get(forward_key)
            if created is None and prev is None:
                continue
            others = await asyncio.to_thread(fw.other_dockyard_chains, bridge)
            if created is not None and not others:
                await asyncio.to_thread(fw.prune_tables, set(json.loads(created)))
            if prev is not None and not others:
                await asyncio.to_thread(fw.set_forwarding, prev)
            self._delete([tables_key, forward_key])
