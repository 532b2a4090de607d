"""The JSON shape of each resource, as the service returns it.

A mixin of VpcService.  Kept in the service, not in controller/api, because a
view is computed from the model under the operation's lock, inside its
conflict retry, so what an operation returns is the model it committed to;
and because the service's other callers (the etcd tests, the bench scenario,
the HA tests) read these dicts too.  The REST layer only serialises them.

A view reads facts the model does not hold from `self.topology` (is a host's
bridge connected, a port's OpenFlow number) and the MTU from
`self.underlay_mtu`: the app supplies both.
"""
from controller.compile.pipeline import ENCAP_OVERHEAD, SNAT_PORTS, router_mac
from controller.model.state import subnet_key
from controller.service.validate import dpid_str


class NullTopology:
    """Topology facts the views show; the app plugs in the live graph."""

    def host_connected(self, dpid):
        return False

    def port_number(self, dpid, name):
        return None

    def port_link_down(self, dpid, name):
        return None


def ports_text(ports):
    """A rule's [lo, hi] as the API writes it: '22' or '8000-8080'."""
    if ports is None:
        return None
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"


class Views:
    def host_view(self, h):
        return {"name": h.name, "dpid": dpid_str(h.dpid), "tunnel_ip": h.tunnel_ip,
                "uplink_port": h.uplink_port, "external_port": h.external_port,
                "external_ip": h.external_ip, "external_gateway": h.external_gateway,
                "connected": self.topology.host_connected(h.dpid)}

    def tenant_view(self, t):
        return {"name": t.name, "network": t.network, "segment": t.segment, "id": t.id,
                "subnets": [s.cidr for s in self.state.subnets_of(t.name, version=None)],
                "ports": len(self.state.ports_of(t.name)), "router_mac": router_mac(t.id),
                "snat": t.snat,
                "snat_ports": list(SNAT_PORTS) if t.snat else None}

    def subnet_view(self, s):
        return {"tenant": s.tenant, "cidr": s.cidr, "gateway": s.gateway,
                "ip_version": s.version,
                "ports": sum(1 for p in self.state.ports_of(s.tenant)
                             if s.cidr in (p.subnet, p.subnet6))}

    def mtu_for(self, tenant):
        return self.underlay_mtu - ENCAP_OVERHEAD[tenant.network]

    def port_view(self, p):
        """A port; an IPv4-only port shows no ip6/prefixlen6/gateway6/subnet6
        (as every port did before IPv6), an IPv6-only one null ip/prefixlen/gateway."""
        subnet = self.state.subnets.get(subnet_key(p.tenant, p.subnet)) if p.subnet else None
        host = self.state.hosts.get(p.host)
        ofport = self.topology.port_number(host.dpid, p.port) if host else None
        reason = self.port_down_reason(p, host, ofport)
        six = {}
        if p.ip6:
            subnet6 = self.state.subnets[subnet_key(p.tenant, p.subnet6)]
            six = {"ip6": p.ip6, "prefixlen6": subnet6.net.prefixlen,
                   "gateway6": subnet6.gateway, "subnet6": p.subnet6}
        return {"id": p.id, "tenant": p.tenant, "host": p.host, "port": p.port,
                "ip": p.ip, "mac": p.mac, "prefixlen": subnet.net.prefixlen if subnet else None,
                "gateway": subnet.gateway if subnet else None, "subnet": p.subnet, **six,
                "mtu": self.mtu_for(self.state.tenants[p.tenant]),
                "status": "down" if reason else "up", "status_reason": reason,
                "ofport": ofport,
                "security_groups": list(p.security_groups), "port_security": p.port_security,
                "name": p.name, "aliases": list(p.aliases), "dns": self.port_dns(p)}

    def port_down_reason(self, p, host, ofport):
        """Why a port cannot carry traffic now, in words; None when it can.
        The truth comes from the switch (port-status events), not from the
        attach that created the port: a container restarted without its veth,
        or a veth whose container end is gone, shows here."""
        if host is None:
            return f"host {p.host} is not registered"
        if not self.topology.host_connected(host.dpid):
            return f"host {p.host}: its bridge is not connected to the controller"
        if ofport is None:
            return f"host {p.host} has no OVS port {p.port} (no veth plugged in)"
        if self.topology.port_link_down(host.dpid, p.port):
            return (f"OVS port {p.port} on {p.host} has no link (the container end of "
                    f"its veth is gone or down)")
        return None

    def forward_view(self, f):
        port = self.state.ports.get(f.port_id)
        host = self.state.hosts.get(port.host) if port else None
        return {"id": f.id, "tenant": f.tenant, "port_id": f.port_id, "protocol": f.protocol,
                "external_ip": host.external_ip if host else None,
                "external_port": f.external_port, "internal_ip": port.ip if port else None,
                "internal_port": f.internal_port, "host": port.host if port else None}

    def fip_view(self, f):
        port = self.state.port_with_ip(f.tenant, f.ip)
        return {"id": f.id, "tenant": f.tenant, "external_ip": f.external_ip, "ip": f.ip,
                "port_id": port.id if port else None, "host": port.host if port else None}

    def rule_view(self, rule):
        return dict(rule, ports=ports_text(rule["ports"]))

    def group_view(self, g):
        members = [p.id for p in self.state.ports_of(g.tenant)
                   if p.port_security and g.name in p.security_groups]
        return {"tenant": g.tenant, "name": g.name, "index": g.index,
                "rules": [self.rule_view(r) for r in g.rules], "ports": members}
