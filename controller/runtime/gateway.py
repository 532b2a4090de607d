"""The external gateways' MACs: found by ARP, kept in the store.

NAT egress needs the MAC of each host's external gateway.  It is learned, not
desired: the controller ARPs for it from the host's external port (often until
known, then now and then to notice a change) and reads the reply as a
packet-in -- the only packet-in the pipeline makes besides LLDP.  Learned MACs
are stored, so that a restart (or a new leader) does not withdraw NAT egress
until ARP finds them again.
"""
import logging
import time

import eventlet

from controller.southbound.frames import parse_arp
from controller.store.base import StoreError

LOG = logging.getLogger(__name__)
GATEWAY_ARP_INTERVAL = 30.0     # re-ARP for each host's external gateway
GATEWAY_ARP_RETRY = 1.0         # ... and this often while its MAC is unknown
ARP_REPLY = 2
COLLECTION = "gateway_macs"


class GatewayMacs:
    def __init__(self, state, store, topology, switches, learned=None):
        self.state = state
        self.store = store
        self.topology = topology
        self.switches = switches
        self.macs = dict(learned or {})      # host name -> MAC

    def restore(self, dpid):
        """A host's bridge connected: the compiler gets its known gateway MAC."""
        host = self.state.host_by_dpid(dpid)
        if host is not None and host.name in self.macs:
            self.topology.set_gateway_mac(dpid, self.macs[host.name])

    def run(self):
        """ARP for every connected host's external gateway, forever."""
        last = {}
        while True:
            try:
                last = self.probe(last, time.monotonic())
            except Exception:      # never let the loop die
                LOG.exception("gateway ARP round failed")
            eventlet.sleep(GATEWAY_ARP_RETRY)

    def probe(self, last, now):
        """One round; `last` maps session -> time of its last probe (a new
        session ARPs at once).  Returns the updated map."""
        live = {s for _, s in self.switches.items()}
        last = {s: t for s, t in last.items() if s in live}
        view = self.topology.snapshot()
        for dpid, session in self.switches.items():
            host = self.state.host_by_dpid(dpid)
            if host is None or not host.has_external or not host.external_gateway:
                continue
            wait = GATEWAY_ARP_INTERVAL if view.gateway_mac(dpid) is not None \
                else GATEWAY_ARP_RETRY
            if now - last.get(session, -1e9) < wait:
                continue
            port_no = self.topology.port_number(dpid, host.external_port)
            mac = view.port_mac(dpid, host.external_port)
            if port_no is None or mac is None:
                continue
            last[session] = now
            session.arp_probe(port_no, mac, host.external_ip, host.external_gateway)
        return last

    def packet_in(self, dpid, data):
        """True when the frame is an ARP reply (the reason counted as
        gateway_arp); learns the MAC when it is the gateway's answer to us."""
        parsed = parse_arp(data)
        if not parsed or parsed[0] != ARP_REPLY:
            return False
        host = self.state.host_by_dpid(dpid)
        if host is None:
            return True
        _, mac, sender_ip, target_ip = parsed
        if sender_ip != host.external_gateway or target_ip != host.external_ip:
            return True
        if self.macs.get(host.name) != mac:
            try:
                self.store.commit([("put", COLLECTION, host.name, mac)])
                self.macs[host.name] = mac
            except StoreError as exc:   # e.g. a conflict on etcd: the next reply retries
                LOG.warning("gateway MAC of %s not stored: %s", host.name, exc)
        if self.topology.set_gateway_mac(dpid, mac):
            LOG.info("dpid %016x: external gateway %s is at %s", dpid, sender_ip, mac)
            self.switches.request(dpid)
        return True

    def refresh_from_store(self):
        """Another controller (the leader: only it gets packet-ins) learned
        MACs: take them, so a new leader starts with them."""
        for name, mac in dict(self.store.collection(COLLECTION)).items():
            if self.macs.get(name) == mac:
                continue
            self.macs[name] = mac
            host = self.state.hosts.get(name)
            if host is not None and self.switches.connected(host.dpid) and \
                    self.topology.set_gateway_mac(host.dpid, mac):
                self.switches.request(host.dpid)
