"""The lab's outside network: an upstream router and an "internet" server.

Split from lablib.py (which mixes this into ``Lab``).  Standard library only.

Layout, for a lab called L with ``external=True`` (the default):

* ``L-out``: a namespace with a Linux bridge ``br0`` holding 203.0.113.1/24
  (the external gateway, ``lab.external_gateway``) and, on its ``lo``, the
  "internet server" 198.51.100.10/32 (``lab.server_ip``): reachable through
  the gateway, as a server beyond the upstream router would be.
* per host i a veth: ``ext0`` in ``L-h<i>`` (link up, *no* address: br-int
  owns it once host-join adds it as the external port) and ``h<i>`` in
  ``L-out``, a port of br0.
* host i's external IP is 203.0.113.<10+i> (``lab.external_ip(i)``).  The lab
  configures it nowhere: the controller answers ARP for it by flows.  Floating
  IPs for tests come from 203.0.113.100-199 (``lab.floating_ip(n)``).

``down()`` needs nothing extra: ``L-out`` has the lab's prefix, so lablib
removes it (its links first) with the other namespaces.
"""
from vpclab.labsys import LabError, sh

EXTERNAL_NET = "203.0.113"
EXTERNAL_GATEWAY = f"{EXTERNAL_NET}.1"
EXTERNAL_PREFIX = 24
SERVER_IP = "198.51.100.10"
EXTERNAL_PORT = "ext0"
FLOATING_FIRST, FLOATING_LAST = 100, 199
MAX_EXTERNAL_HOSTS = 89          # host IPs .11-.99 stay below the floating IPs


class OutsideMixin:
    """Names and plumbing of the outside network; ``Lab`` inherits these."""

    external_gateway = EXTERNAL_GATEWAY
    server_ip = SERVER_IP
    external_port = EXTERNAL_PORT

    @property
    def out_ns(self):
        return f"{self.name}-out"

    def external_ip(self, i):
        """Host i's address on the outside network (owned by its br-int)."""
        if not 1 <= int(i) <= MAX_EXTERNAL_HOSTS:
            raise LabError(f"no external IP for host {i}: hosts 1..{MAX_EXTERNAL_HOSTS}")
        return f"{EXTERNAL_NET}.{10 + int(i)}"

    def floating_ip(self, n=0):
        """The n-th address tests may use as a floating IP (n = 0..99)."""
        if not 0 <= int(n) <= FLOATING_LAST - FLOATING_FIRST:
            raise LabError(f"floating IP index {n} outside 0..{FLOATING_LAST - FLOATING_FIRST}")
        return f"{EXTERNAL_NET}.{FLOATING_FIRST + int(n)}"

    def check_outside(self):
        """Refuse, before anything is made, a lab the numbering cannot cover."""
        if self.external and self.hosts > MAX_EXTERNAL_HOSTS:
            raise LabError(f"the outside network numbers at most {MAX_EXTERNAL_HOSTS} "
                           f"hosts (203.0.113.11-99); use external=False (lab up "
                           f"--no-external) for {self.hosts}")

    def make_outside(self):
        """The out namespace, its bridge, gateway and server addresses."""
        if not self.external:
            return
        ns = self.out_ns
        self._make_ns(ns)
        self.nsexec(ns, "ip", "link", "add", "br0", "type", "bridge")
        self.nsexec(ns, "ip", "addr", "add", f"{EXTERNAL_GATEWAY}/{EXTERNAL_PREFIX}",
                    "dev", "br0")
        self.nsexec(ns, "ip", "link", "set", "br0", "up")
        self.nsexec(ns, "ip", "addr", "add", f"{SERVER_IP}/32", "dev", "lo")
        # The outside's kernel would hand OVS TCP/UDP with offloaded (partial)
        # checksums over the veths; the userspace datapath does not complete
        # them and its conntrack then marks the packets invalid (LAB.md).  A
        # real uplink NIC delivers full checksums; here we ask for them.
        self.nsexec(ns, "ethtool", "-K", "br0", "tx", "off", check=False)

    def link_outside(self, i):
        """Host i's ext0 <-> h<i> on the out namespace's br0."""
        if not self.external:
            return
        ns = self.host_ns(i)
        sh(["ip", "link", "add", EXTERNAL_PORT, "netns", ns, "type", "veth",
            "peer", "name", f"h{int(i)}", "netns", self.out_ns])
        self.nsexec(self.out_ns, "ip", "link", "set", f"h{int(i)}", "master", "br0", "up")
        self.nsexec(self.out_ns, "ethtool", "-K", f"h{int(i)}", "tx", "off", check=False)
        self.nsexec(ns, "ip", "link", "set", EXTERNAL_PORT, "up")

    def external_join_args(self, i):
        """host-join arguments that give host i its external port."""
        if not self.external:
            return []
        return ["--external-port", EXTERNAL_PORT, "--external-ip", self.external_ip(i),
                "--external-gateway", EXTERNAL_GATEWAY]
