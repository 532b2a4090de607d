"""DHCP and DNS for the containers of this host, answered by the agent.

The controller steers each local port's DHCPv4, DHCPv6 and DNS frames to the
OVS internal port ``vpc-svc`` on br-int; the agent reads them there and
writes the replies back (frame contract: frames.py; docs/agent.md, "DHCP
and DNS on the host").  Everything it answers comes from the controller's
per-host services view, kept in memory and on disk so answers continue while
the controller is down.

Modules:
  frames.py     tag MAC, Ethernet/IPv4/IPv6/UDP parse and build (dpkt)
  view.py       the view, indexed per tenant; the state file
  sync.py       the long poll that keeps the view current
  dhcp4.py      DHCPv4 (dpkt)
  dhcp6.py      DHCPv6 (struct: a few TLVs)
  dns.py        local names, PTR, negative answers (dnslib)
  forward.py    other names to the tenant's resolvers (worker threads)
  port.py       the vpc-svc port and its AF_PACKET socket
  responder.py  the receive loop and the per-frame dispatch
"""
import logging
import threading

from vpcagent.services.forward import Forwarder
from vpcagent.services.port import ServicePort
from vpcagent.services.responder import Responder
from vpcagent.services.sync import Sync
from vpcagent.services.view import Store, state_path

log = logging.getLogger("vpc-agent.services")

DEFAULT_STATE_DIR = "/var/lib/vpc-agent"


class Services:
    """The running service: ``stop()`` ends both threads (the port stays)."""

    def __init__(self, controller, bridge="br-int", ovs_rundir=None, netns=None,
                 state_dir=DEFAULT_STATE_DIR):
        self.store = Store(state_path(state_dir, controller.host))
        self.port = ServicePort(bridge, ovs_rundir, netns)
        self.forwarder = Forwarder(netns=self.port.netns)
        self.sync = Sync(controller, self.store)
        self.responder = Responder(self.port, self.store, self.forwarder)
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        self._threads.append(self.sync.start(self._stop))
        t = threading.Thread(target=self.responder.run, args=(self._stop,),
                             name="services-responder", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self, timeout=3.0):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self.forwarder.close()


def start(controller, bridge="br-int", ovs_rundir=None, netns=None,
          state_dir=DEFAULT_STATE_DIR):
    """Start DHCP and DNS for this host's ports (vpc-agent does, unless
    --no-services); returns the running ``Services``."""
    return Services(controller, bridge, ovs_rundir, netns, state_dir).start()
