"""Every iptables (and nft) invocation of dockyard lives here.

Each bridge gets its own chains, named after it, so several engines with
different bridges never touch each other's rules and teardown is exact:

  nat    POSTROUTING -m comment --comment dockyard:<br> -j DY-POST-<br>
         DY-POST-<br>: -s <subnet> ! -o <br> -j MASQUERADE      (outbound NAT)
  filter FORWARD     -m comment --comment dockyard:<br> -j DY-FWD-<br>  (inserted first)
         DY-FWD-<br>: replies to the bridge, bridge->outside, bridge<->bridge

Published ports go to a DY-DNAT-<br> nat chain jumped to from PREROUTING
and OUTPUT for local destinations (`-m addrtype --dst-type LOCAL`, so the
host's own addresses and 127.0.0.1 work from the host itself), plus ACCEPT
rules in DY-FWD-<br> and two MASQUERADE rules in DY-POST-<br>:

  -s 127.0.0.0/8 -o <br>                         connections to 127.0.0.1:<port> (the
                                                 bridge has route_localnet=1)
  -s <subnet> -o <br> --ctstate DNAT             hairpin: a container reaching a port
                                                 published on its own bridge

All chains of a bridge are rebuilt from the engine's state (policy + port
rows) with the same one-shot restore whenever a published port comes or goes.

Setup is one `iptables-save` + one `iptables-restore --noflush`: declaring a
chain in restore input creates it or empties it, so re-running after a crash
converges to the same rules without duplicates.  Teardown deletes exactly the
jump rules that target our chains, then the chains.  With the nf_tables
backend iptables creates the `ip nat` / `ip filter` tables on first use and
never deletes them; `prune_tables` removes such a table again when it is
empty, so the host's ruleset ends as it began.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from ..errors import Unavailable

log = logging.getLogger(__name__)

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
IP6_FORWARD = Path("/proc/sys/net/ipv6/conf/all/forwarding")
CHAIN_PREFIXES = ("DY-POST-", "DY-FWD-", "DY-DNAT-", "DY-ISO-")


def chain_names(bridge: str) -> dict[str, str]:
    # iptables chain names are limited to 28 characters; bridge names to 15.
    return {"post": f"DY-POST-{bridge}", "fwd": f"DY-FWD-{bridge}", "dnat": f"DY-DNAT-{bridge}",
            "iso": f"DY-ISO-{bridge}"}


def comment(bridge: str) -> str:
    return f"dockyard:{bridge}"


@dataclass(frozen=True)
class PortRule:
    """host_ip:host_port/proto on the host -> dest_ip:dest_port in a container."""

    proto: str
    host_ip: str
    host_port: int
    dest_ip: str
    dest_port: int


@dataclass
class BridgePolicy:
    bridge: str
    subnet: IPv4Network | IPv6Network
    masquerade: bool = True
    icc: bool = True  # container-to-container traffic on the bridge
    internal: bool = False  # no traffic in or out of the bridge


def _run(args: list[str], input: str | None = None) -> str:
    proc = subprocess.run(args, input=input, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Unavailable(f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


class Firewall:
    """iptables (family 4) or ip6tables (family 6): the same chains and rules for both."""

    def __init__(self, enabled: bool = True, family: int = 4) -> None:
        self.enabled = enabled
        self.family = family
        tool = "iptables" if family == 4 else "ip6tables"
        self.save = shutil.which(f"{tool}-save")
        self.restore = shutil.which(f"{tool}-restore")
        self.nft = shutil.which("nft")
        self.nft_family = "ip" if family == 4 else "ip6"
        if enabled and not (self.save and self.restore):
            raise Unavailable(f"{tool}-save/{tool}-restore not found: install iptables or disable iptables")
        ver = subprocess.run([self.save, "--version"], capture_output=True, text=True).stdout if enabled else ""
        self.nf_tables = "nf_tables" in ver

    # ------------------------------------------------------------ reading

    def dump(self, table: str) -> list[str]:
        """Rules of one table as iptables-save lines (empty if the table does not exist)."""
        out = _run([self.save, "-t", table])
        return [l for l in out.splitlines() if l and not l.startswith("#")]

    def bridge_lines(self, bridge: str) -> list[str]:
        """Every nat/filter line that belongs to `bridge` (for tests and diagnostics)."""
        names = set(chain_names(bridge).values())
        out = []
        for table in ("nat", "filter"):
            for line in self.dump(table):
                if any(n in line.split() for n in names) or comment(bridge) in line:
                    out.append(f"{table}: {line}")
        return out

    def other_dockyard_chains(self, bridge: str) -> bool:
        """Does any other dockyard bridge (another engine) still have rules?"""
        ours = set(chain_names(bridge).values())
        for table in ("nat", "filter"):
            for line in self.dump(table):
                if line.startswith(":DY-") and line.split()[0][1:] not in ours:
                    return True
        return False

    def tables_present(self) -> set[str]:
        if not self.nf_tables or not self.nft:
            return {"nat", "filter"}
        out = _run([self.nft, "list", "tables", self.nft_family])
        return {l.split()[-1] for l in out.splitlines() if l.startswith(f"table {self.nft_family} ")}

    # ------------------------------------------------------------ writing

    def ensure_bridge(self, p: BridgePolicy, ports: list[PortRule] = ()) -> None:
        """Create or rewrite every chain of the bridge (idempotent), with `ports` published."""
        if not self.enabled:
            return
        c = chain_names(p.bridge)
        br, sub, tag = p.bridge, str(p.subnet), comment(p.bridge)
        ports = [] if p.internal else list(ports)
        nat = self.dump("nat")
        flt = self.dump("filter")
        jump_post = f"-A POSTROUTING -m comment --comment {tag} -j {c['post']}"
        jump_fwd = f"-I FORWARD 1 -m comment --comment {tag} -j {c['fwd']}"
        lines = ["*nat", f":{c['post']} - [0:0]"]
        if p.masquerade and not p.internal:
            lines.append(f"-A {c['post']} -s {sub} ! -o {br} -j MASQUERADE")
        if not p.internal:
            if self.family == 4:  # IPv6 has no route_localnet: ::1 is served by loopback6.py
                lines.append(f"-A {c['post']} -s 127.0.0.0/8 -o {br} -j MASQUERADE")
            lines.append(f"-A {c['post']} -s {sub} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE")
        if not _has_jump(nat, "POSTROUTING", c["post"]):
            lines.append(jump_post)
        if not p.internal:
            lines.append(f":{c['dnat']} - [0:0]")
            for r in ports:
                dst = "" if r.host_ip in ("0.0.0.0", "::") else f"-d {r.host_ip}/{32 if self.family == 4 else 128} "
                to = f"{r.dest_ip}:{r.dest_port}" if self.family == 4 else f"[{r.dest_ip}]:{r.dest_port}"
                lines.append(
                    f"-A {c['dnat']} {dst}-p {r.proto} -m {r.proto} --dport {r.host_port}"
                    f" -j DNAT --to-destination {to}"
                )
            for hook in ("PREROUTING", "OUTPUT"):
                # ::1 cannot be DNATed out of the loopback device: loopback6.py serves it
                not_lo = "! -d ::1/128 " if self.family == 6 and hook == "OUTPUT" else ""
                if not _has_jump(nat, hook, c["dnat"]):
                    lines.append(
                        f"-A {hook} {not_lo}-m addrtype --dst-type LOCAL -m comment --comment {tag} -j {c['dnat']}"
                    )
        lines += ["COMMIT", "*filter", f":{c['fwd']} - [0:0]"]
        for r in ports:
            lines.append(
                f"-A {c['fwd']} -d {r.dest_ip}/{32 if self.family == 4 else 128} ! -i {br} -o {br} -p {r.proto} -m {r.proto}"
                f" --dport {r.dest_port} -j ACCEPT"
            )
        if p.internal:
            # In a chain of its own, jumped to before every other bridge's chain
            # (see _isolation_first): another network's "-i other -j ACCEPT"
            # must not let traffic into an internal network.
            lines += [
                f":{c['iso']} - [0:0]",
                f"-A {c['iso']} -i {br} ! -o {br} -j DROP",
                f"-A {c['iso']} -o {br} ! -i {br} -j DROP",
            ]
        else:
            lines += [
                f"-A {c['fwd']} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                f"-A {c['fwd']} -i {br} ! -o {br} -j ACCEPT",
            ]
        lines.append(f"-A {c['fwd']} -i {br} -o {br} -j {'ACCEPT' if p.icc else 'DROP'}")
        if not _has_jump(flt, "FORWARD", c["fwd"]):
            lines.append(jump_fwd)
        lines += _isolation_first(flt, c["iso"] if p.internal else None, tag)
        lines.append("COMMIT")
        _run([self.restore, "-w", "--noflush"], "\n".join(lines) + "\n")

    def remove_bridge(self, bridge: str) -> None:
        """Delete the jumps to our chains and the chains themselves; exact and idempotent."""
        if not self.enabled:
            return
        ours = set(chain_names(bridge).values())
        script: list[str] = []
        for table in ("nat", "filter"):
            dump = self.dump(table)
            if not dump:
                continue
            present = {l.split()[0][1:] for l in dump if l.startswith(":")} & ours
            deletes = [
                "-D" + l[2:]
                for l in dump
                if l.startswith("-A ") and l.split()[1] not in ours and _target(l) in ours
            ]
            if not present and not deletes:
                continue
            script.append(f"*{table}")
            script += deletes
            script += [f"-F {ch}" for ch in sorted(present)]
            script += [f"-X {ch}" for ch in sorted(present)]
            script.append("COMMIT")
        if script:
            _run([self.restore, "-w", "--noflush"], "\n".join(script) + "\n")

    def prune_tables(self, tables: set[str]) -> None:
        """Delete nf_tables `ip` tables (of `tables`) that hold no rule and no user chain.

        Used for tables iptables created on our behalf; the per-chain deletes make
        the nft transaction fail (and change nothing) if any rule appeared meanwhile.
        """
        if not (self.enabled and self.nf_tables and self.nft):
            return
        for table in sorted(tables):
            try:
                data = json.loads(_run([self.nft, "-j", "list", "table", self.nft_family, table]))
            except (Unavailable, json.JSONDecodeError):
                continue  # already gone
            items = data.get("nftables", [])
            chains = [i["chain"] for i in items if "chain" in i]
            others = [i for i in items if not ({"chain", "table", "metainfo"} & i.keys())]
            if others or any("hook" not in ch for ch in chains):
                continue
            script = [f"delete chain {self.nft_family} {table} {ch['name']}" for ch in chains]
            script.append(f"delete table {self.nft_family} {table}")
            try:
                _run([self.nft, "-f", "-"], "\n".join(script) + "\n")
            except Unavailable as exc:
                log.info("kept iptables table %s: %s", table, exc.message)

    # ------------------------------------------------------------ sysctl

    @staticmethod
    def ip_forward() -> str:
        return IP_FORWARD.read_text().strip()

    @staticmethod
    def set_ip_forward(value: str) -> None:
        IP_FORWARD.write_text(value + "\n")

    def forwarding(self) -> str:
        """This family's forwarding switch: ip_forward, or IPv6's conf/all/forwarding."""
        return (IP_FORWARD if self.family == 4 else IP6_FORWARD).read_text().strip()

    def set_forwarding(self, value: str) -> None:
        (IP_FORWARD if self.family == 4 else IP6_FORWARD).write_text(value + "\n")

    @staticmethod
    def forget_udp_flows(dest_ip: str, dest_port: int) -> int:
        """Delete the conntrack entries of UDP flows DNATed to dest_ip:dest_port.

        A UDP "connection" never ends, so without this a client that keeps
        sending to the host port would follow the old entry to an address that
        no longer exists (or now belongs to another container) - Docker does the same.
        """
        from . import netlink  # noqa: F401 - pyroute2's modules without its whole package
        from pyroute2.conntrack import Conntrack
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

        n = 0
        with Conntrack() as ct:
            match = NFCTAttrTuple(saddr=dest_ip, proto=17, sport=dest_port)
            for e in list(ct.dump_entries(tuple_reply=match)):
                try:
                    ct.entry("del", tuple_orig=e.tuple_orig)
                    n += 1
                except Exception:  # gone meanwhile
                    pass
        return n

    @staticmethod
    def set_route_localnet(bridge: str) -> None:
        """Let the bridge route 127.0.0.0/8 sources (DNATed connections to 127.0.0.1).

        A per-interface sysctl: it goes away with the bridge, nothing to restore."""
        Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1\n")


def _target(line: str) -> str | None:
    parts = line.split()
    for i, p in enumerate(parts[:-1]):
        if p in ("-j", "-g"):
            return parts[i + 1]
    return None


def _isolation_first(flt: list[str], own: str | None, tag: str) -> list[str]:
    """Rules that (re)put every DY-ISO-* jump at the top of FORWARD, ours included:
    the jumps of bridges set up later are inserted first, above them."""
    out = []
    jumps = [l for l in flt if l.startswith("-A FORWARD ") and (_target(l) or "").startswith("DY-ISO-")]
    for l in jumps:
        out.append("-D" + l[2:])
    for l in jumps:
        if _target(l) != own:
            out.append("-I FORWARD 1" + l[len("-A FORWARD"):])
    if own:
        out.append(f"-I FORWARD 1 -m comment --comment {tag} -j {own}")
    return out


def _has_jump(dump: list[str], chain: str, target: str) -> bool:
    return any(l.startswith(f"-A {chain} ") and _target(l) == target for l in dump)
