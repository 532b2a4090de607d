"""The service port ``vpc-svc``: an OVS internal port on br-int the agent reads.

The controller's flows send each local container's DHCP and DNS frames out
of this port (tagged with the port's serial in the destination MAC, see
frames.py) and take the agent's replies in from it.  An internal port
rather than a local OpenFlow connection: the agent needs no OpenFlow code,
the controller keeps sole ownership of the flow tables, and the kernel
queues frames for us while we are busy.

The port is made here when missing (``--may-exist``: harmless every
start), brought up, and IPv6 is switched off on it so the kernel stays
silent there (no router solicitations, no DAD, no link-local address that
could answer anything).  It has no IPv4 address either.  The AF_PACKET
socket is created inside the host's network namespace (``--netns``, the
lab's emulated hosts) with pyroute2, as vpcagent/flowlogs.py does for UDP.
"""
import logging
import socket
import subprocess
import time

from pyroute2 import IPRoute

from vpcagent.ovs import Ovs
from vpcagent.plumbing import netns_path

log = logging.getLogger("vpc-agent.services")

NAME = "vpc-svc"
ETH_P_ALL = 0x0003


class ServicePort:
    def __init__(self, bridge="br-int", ovs_rundir=None, netns=None, name=NAME):
        self.ovs = Ovs(bridge, ovs_rundir)
        self.netns = netns_path(netns)
        self.name = name

    def _ipr(self):
        return IPRoute(netns=self.netns, flags=0) if self.netns else IPRoute()

    def ifindex(self):
        """The port's interface index in the host's namespace, or None."""
        with self._ipr() as ipr:
            found = ipr.link_lookup(ifname=self.name)
        return found[0] if found else None

    def ensure(self, wait=10.0):
        """The OVS internal port exists, is up, and has IPv6 off.  OvsError,
        OSError or TimeoutError when it cannot be made so."""
        self.ovs.vsctl("--may-exist", "add-port", self.ovs.bridge, self.name, "--", "set",
                       "Interface", self.name, "type=internal")
        deadline = time.monotonic() + wait
        while self.ifindex() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not appear within {wait:.0f} s")
            time.sleep(0.1)
        self._ipv6_off()
        with self._ipr() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=self.name)[0], state="up")

    def _ipv6_off(self):
        cmd = (["nsenter", f"--net={self.netns}"] if self.netns else []) + \
            ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.name}.disable_ipv6=1"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("IPv6 off on %s: %s", self.name, exc)
            return
        if p.returncode != 0:
            log.warning("IPv6 off on %s: %s", self.name, p.stderr.strip() or p.returncode)

    def open(self):
        """An AF_PACKET socket bound to the port (in the host's namespace)."""
        proto = socket.htons(ETH_P_ALL)
        if self.netns:
            from pyroute2 import netns as pnetns
            sock = pnetns.create_socket(self.netns, socket.AF_PACKET, socket.SOCK_RAW,
                                        proto, flags=0)
        else:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((self.name, ETH_P_ALL))
        except OSError:
            sock.close()
            raise
        return sock
