"""IPv6 router advertisements: the controller answers a container's router
solicitation on behalf of its tenant's distributed router.

Why here and not in flows: an RA is longer than the RS it answers (prefix,
MTU and link-layer options), and OVS cannot grow a packet, so the one flow
compile/ipv6.py adds for RS sends it to the controller through meter
ROUTER_SOLICIT (10/s per bridge: a flood of solicitations costs nothing).
The RA says: the router is the tenant's router MAC at its link-local
address; M and O set and no prefix for autoconfiguration, so a container
whose address came from attach / the agent keeps exactly it, and one that
asks learns its prefixes (on-link), MTU and default router.  Only the
soliciting port gets it (unicast, back out of its OpenFlow port).
"""
import ipaddress
import logging

from controller.compile.ipv6 import link_local
from controller.compile.pipeline import ENCAP_OVERHEAD, router_mac
from controller.southbound.frames import parse_router_solicit, router_advert

LOG = logging.getLogger(__name__)


class RouterAdverts:
    def __init__(self, state, topology, switches, underlay_mtu=1500):
        self.state = state
        self.topology = topology
        self.switches = switches
        self.underlay_mtu = underlay_mtu
        self.sent = 0

    def packet_in(self, dpid, in_port, data):
        """True when the frame is a router solicitation (answered when it
        comes from a port of a tenant with IPv6 subnets)."""
        parsed = parse_router_solicit(data)
        if parsed is None:
            return False
        src_mac, src_ip = parsed
        port = self._port_at(dpid, in_port)
        if port is None or port.mac != src_mac:
            return True
        tenant = self.state.tenants.get(port.tenant)
        subnets = self.state.subnets_of(port.tenant, 6)
        session = self.switches.session(dpid)
        if tenant is None or not subnets or session is None:
            return True
        rmac = router_mac(tenant.id)
        frame = router_advert(rmac, link_local(rmac), src_mac, src_ip,
                              [(str(ipaddress.ip_network(s.cidr).network_address),
                                ipaddress.ip_network(s.cidr).prefixlen) for s in subnets],
                              self.underlay_mtu - ENCAP_OVERHEAD[tenant.network])
        session.packet_out(in_port, frame)
        self.sent += 1
        return True

    def _port_at(self, dpid, in_port):
        host = self.state.host_by_dpid(dpid)
        if host is None:
            return None
        ofports = self.topology.ports(dpid)          # {OVS port name: ofport}
        for p in self.state.ports_on(host.name):
            if ofports.get(p.port) == in_port:
                return p
        return None
