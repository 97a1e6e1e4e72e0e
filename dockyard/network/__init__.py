"""Container networking: bridges, sandboxes, veths, IPAM and NAT.

Design note: pyroute2 + iptables rather than the CNI plugins
-------------------------------------------------------------
Debian's CNI plugins (bridge, host-local, loopback, portmap) would do the
plumbing, but each container start would then exec two or three Go binaries
(~10-20 ms each on this machine), host-local would keep its own allocation
files beside our SQLite metadata (two sources of truth to reconcile after a
crash), and the bridge plugin never deletes its bridge nor, exactly, its
chains - the engine must leave the host's links and iptables as they were.
So dockyard talks netlink itself with pyroute2 (already a dependency, pure
Python) and keeps firewalling in one small module:

* `netns.py`    persistent named namespaces under `<exec_root>/netns/<id>`,
                created in-process (unshare in a throwaway thread + bind mount).
* `links.py`    bridge, veth pairs (the peer is created directly inside the
                sandbox as ethN), addresses, routes - netlink only.
* `ipam.py`     address pools and allocation in SQLite tables (IPv4 and IPv6,
                --ip-range, aux addresses), pure arithmetic apart.
* `ipamconfig.py` network create IPAM and endpoint settings: dockerd's checks,
                texts and overlap rules; default address pools.
* `driveropts.py` -o options of bridge, macvlan and ipvlan, parsed as dockerd.
* `firewall.py` every iptables/ip6tables/nft call: per-bridge chains (DY-POST-<br>,
                DY-FWD-<br>, DY-DNAT-<br>, DY-ISO-<br> for internal networks)
                so engines with different bridges never collide and teardown
                removes exactly ours; one class, family 4 or 6.
* `hoststate.py` forwarding sysctls and nf_tables tables: noted, then restored.
* `parentlink.py` macvlan/ipvlan: sub-interfaces of a parent moved into sandboxes.
* `loopback6.py` published TCP and UDP ports on [::1] (the kernel cannot DNAT ::1);
  `loopback6_udp.py` its UDP relay, a flow per client as docker-proxy's.
* `views.py`    Docker's JSON for networks, and their list filters.
* `drivers.py`  the driver interface (prepare/create/delete/join/leave/refresh)
                and its bridge, macvlan/ipvlan and null/host implementations.
* `model.py`    Network and Endpoint records, their tables.
* `ports.py`    PortBindings parsing, host port reservation, Docker's views.
* `dns.py`      the embedded DNS server at 127.0.0.11 (user-defined networks).
* `service.py`  NetworkService, what the container code and the API call.

Nothing is spawned on the container start path: create_sandbox + connect is
a handful of netlink messages and two short-lived threads (7 ms median on
this machine; 20 in parallel take 135 ms).  release_sandbox returns in ~1.5 ms:
the kernel's ~30 ms veth deletion runs in the background.  iptables runs only
when a bridge network is set up or torn down, or when a container with
published ports starts or stops.

Published ports (`ports.py`, `firewall.py`)
--------------------------------------------
-p/-P become DNAT rules in a per-bridge nat chain DY-DNAT-<br>, rebuilt
from the net_ports rows (one iptables-save + restore) whenever a container
with published ports starts or stops, and jumped to from PREROUTING (traffic
from outside and from containers) and OUTPUT (the host's own connections) for
`--dst-type LOCAL` destinations.  Connections from the host to 127.0.0.1:<port>
are handled in the kernel rather than by a userland proxy: the bridge gets
`net.ipv4.conf.<br>.route_localnet=1` (a per-interface sysctl that vanishes
with the bridge, so nothing of the host's changes) and DY-POST-<br> masquerades
`-s 127.0.0.0/8 -o <br>`, so the container answers to the bridge address.
Why not docker-proxy's way: a proxy is a process (or an asyncio copy loop in
the engine) per port, costs a copy of every byte, hides the client's address
and dies with the engine, while rules keep working through engine restarts.
Hairpin (a container reaching a port published on its own bridge through the
host's address) is one more rule, `-s <subnet> -o <br> --ctstate DNAT ->
MASQUERADE`, so replies come back through the host and are un-NATed.
Host ports are reserved by binding (not listening) a socket per mapping in
the engine, as docker-proxy does: the kernel refuses the port to any other
program or container (-> "Bind for 0.0.0.0:8080 failed: port is already
allocated" at start, before any rule is written) and port 0 picks an
ephemeral port.  The reservations are re-made for running containers when
the engine starts again (`repair`).

Name resolution (`dns.py`)
--------------------------
Containers on user-defined networks get `nameserver 127.0.0.11` in resolv.conf
(`dns_servers`, called by the container service when it writes the file).
The engine serves 127.0.0.11:53 (udp + tcp) inside each such sandbox with
sockets it creates there (a thread setns()es into the sandbox and binds; a
socket stays in the namespace it was born in) and serves on its own asyncio
loop: no process per container.  Answers come from net_endpoints, scoped to
the networks the asker shares with the target: container name, network
aliases, short and full id (A; AAAA answered empty; PTR as <name>.<network>).
Other names with a dot are forwarded, from the host's namespace, to
HostConfig.Dns or else the host's resolvers (loopback ones included);
unknown single-label names get NXDOMAIN without leaving the host.  The
default bridge keeps the host's resolvers and no name resolution, as Docker.
Listeners are closed with the sandbox and re-opened for running containers
at engine start (`repair`), so resolution survives engine restarts.

Connecting a running container to another network (`connect` with its
sandbox) adds `ethN`; the default route stays with the first network.
"""

from .service import Endpoint, Network, NetworkService

__all__ = ["Endpoint", "Network", "NetworkService"]
