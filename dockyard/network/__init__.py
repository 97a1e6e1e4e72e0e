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
* `ipam.py`     address allocation in SQLite tables, pure arithmetic apart.
* `firewall.py` every iptables/nft call: per-bridge chains (DY-POST-<br>,
                DY-FWD-<br>, later DY-DNAT-<br>) so engines with different
                bridges never collide and teardown removes exactly ours.
* `service.py`  NetworkService, what the container code and the API call.

Nothing is spawned on the container start path: create_sandbox + connect is
a handful of netlink messages and two short-lived threads (7 ms median on
this machine; 20 in parallel take 135 ms).  release_sandbox returns in ~1.5 ms:
the kernel's ~30 ms veth deletion runs in the background.  iptables runs only
when a bridge network is set up or torn down.

Later work fits into the same shape: user-defined networks are more rows in
net_networks, each with its own bridge, subnet and chains (already served by
create_network/remove_network); published ports become DNAT rules in the
per-bridge DY-DNAT chain rebuilt from endpoint rows; name resolution reads
endpoint names/aliases per network (Endpoint.dns_names) from net_endpoints.
"""

from .service import Endpoint, Network, NetworkService

__all__ = ["Endpoint", "Network", "NetworkService"]
