"""Small worlds for compiler tests: a model, the topology its switches would
report, and a simulated network of those switches (uplinks on one VLAN
fabric, VXLAN and GRE ports in a full mesh)."""
import ipaddress

from controller.compile.datapath import compile_datapath
from controller.compile.pipeline import SERVICE_PORT, TUNNEL_PORTS
from controller.flowsim import Network
from controller.model.state import State
from controller.service.secgroups import default_rules
from topology.graph import TopoView

UPLINK, VXLAN, GRE, EXT, SERVICE = 1, 2, 3, 4, 5
FIRST_PORT = 10
GATEWAY_IP, GATEWAY_MAC = "203.0.113.1", "02:99:00:00:00:01"


def ext_ip(i):
    return f"203.0.113.{10 + i}"


def ext_mac(i):
    return f"02:ee:00:00:00:{i:02x}"


def subnet_of(ip):
    return ".".join(ip.split(".")[:3]) + ".0/24"


def host_name(i):
    return f"h{i}"


class World:
    def __init__(self, hosts=3, tenants=(), ports=(), disconnected=(), missing=(),
                 external=(), gateway_known=True, snat=(), forwards=(), fips=(), subnets=(),
                 extra_rules=(), insecure=(), subnets6=(), services=()):
        """tenants: (name, network, segment); ports: (tenant, host index, ip);
        missing: port ids whose OVS port does not exist yet; external: host
        indexes with an external port (ext0, ofport 4); snat: tenant names
        with SNAT on (slots in that order); forwards: (port id, proto, ext
        port, int port); fips: (port id, external ip); subnets: extra
        (tenant, cidr) besides 10.0.0.0/24; extra_rules: rule dicts added to
        every tenant's default group; insecure: port ids with port_security off;
        subnets6: (tenant, cidr) IPv6 subnets (gateway ::1); a port may then be
        (tenant, host index, ip or None, ip6) -- dual-stack or IPv6 only;
        services: host indexes with the agent's service port (vpc-svc, ofport 5)."""
        self.state = State()
        ops = []
        for i in range(1, hosts + 1):
            ext = dict(external_port="ext0", external_ip=ext_ip(i),
                       external_gateway=GATEWAY_IP) if i in external else {}
            ops.append(("put", "hosts", host_name(i), dict(
                name=host_name(i), dpid=i, tunnel_ip=f"198.18.0.{10 + i}", uplink_port="patch-phy",
                **ext)))
        for tid, (name, network, segment) in enumerate(tenants, 1):
            nat = dict(snat=True) if name in snat else {}
            ops.append(("put", "tenants", name, dict(name=name, network=network, segment=segment,
                                                     id=tid, **nat)))
            ops.append(("put", "subnets", f"{name}/10.0.0.0/24",
                        dict(tenant=name, cidr="10.0.0.0/24", gateway="10.0.0.1")))
            ops.append(("put", "security_groups", f"{name}/default",
                        dict(tenant=name, name="default", index=0,
                             rules=default_rules() + tuple(extra_rules))))
        self.ofport = {}
        next_port = {i: FIRST_PORT for i in range(1, hosts + 1)}
        for tenant, cidr in subnets6:
            ops.append(("put", "subnets", f"{tenant}/{cidr}",
                        dict(tenant=tenant, cidr=cidr, gateway=cidr.split("/")[0] + "1")))
        def subnet6_of(tenant, ip6):
            return next(c for t, c in subnets6
                        if t == tenant and ipaddress.ip_address(ip6) in ipaddress.ip_network(c))
        for serial, (tenant, hi, ip, *ip6) in enumerate(ports, 1):
            pid = f"p{serial}"
            mac = f"02:00:00:00:{serial >> 8:02x}:{serial & 0xff:02x}"
            secure = dict(port_security=False, security_groups=()) if pid in insecure else {}
            if ip6:
                secure.update(ip6=ip6[0], subnet6=subnet6_of(tenant, ip6[0]))
            ops.append(("put", "ports", pid, dict(id=pid, tenant=tenant, host=host_name(hi),
                                                  port=f"c{serial}", ip=ip, mac=mac,
                                                  subnet=ip and subnet_of(ip), serial=serial,
                                                  **secure)))
            self.ofport[pid] = (host_name(hi), next_port[hi])
            next_port[hi] += 1
        for tenant, cidr in subnets:
            gw = cidr.split("/")[0].rsplit(".", 1)[0] + ".1"
            ops.append(("put", "subnets", f"{tenant}/{cidr}",
                        dict(tenant=tenant, cidr=cidr, gateway=gw)))
        for serial, (pid, proto, ext, internal) in enumerate(forwards, 1):
            tenant = ports[int(pid[1:]) - 1][0]          # port ids are p<serial>
            ops.append(("put", "port_forwards", f"f{serial}", dict(
                id=f"f{serial}", tenant=tenant, port_id=pid, protocol=proto, external_port=ext,
                internal_port=internal, serial=serial)))
        self.state.apply(ops)
        fip_ops = []
        for serial, (pid, ip) in enumerate(fips, 1):
            p = self.state.ports[pid]
            fip_ops.append(("put", "floating_ips", f"fip{serial}", dict(
                id=f"fip{serial}", tenant=p.tenant, external_ip=ip, ip=p.ip, serial=serial)))
        self.state.apply(fip_ops)
        spec = {}
        for i in range(1, hosts + 1):
            names = {"patch-phy": UPLINK, TUNNEL_PORTS["vxlan"]: VXLAN, TUNNEL_PORTS["gre"]: GRE}
            macs = {}
            if i in external:
                names["ext0"], macs["ext0"] = EXT, ext_mac(i)
            if i in services:
                names[SERVICE_PORT] = SERVICE
            for pid, (h, n) in self.ofport.items():
                if h == host_name(i) and pid not in missing:
                    names[self.state.ports[pid].port] = n
            spec[i] = {"connected": i not in disconnected, "ports": names, "macs": macs,
                       "gateway_mac": GATEWAY_MAC if gateway_known and i in external else None}
        self.topo = TopoView.build(spec)
        self.flows = {host_name(i): compile_datapath(self.state, self.topo, i)
                      for i in range(1, hosts + 1)}
        self.net = Network()
        for i in range(1, hosts + 1):
            if i in disconnected:
                continue
            self.net.add_switch(host_name(i), self.flows[host_name(i)],
                                tunnel_ip=f"198.18.0.{10 + i}",
                                tunnel_ports={VXLAN: "vxlan", GRE: "gre"})
        self.net.add_fabric("phy", *[(host_name(i), UPLINK) for i in range(1, hosts + 1)
                                     if i not in disconnected])
        self.by_location = {loc: pid for pid, loc in self.ofport.items()}
        for i in external:
            self.by_location[(host_name(i), EXT)] = f"ext@h{i}"
        for i in services:
            self.by_location[(host_name(i), SERVICE)] = f"svc@h{i}"

    def port(self, pid):
        return self.state.ports[pid]

    def send(self, pid, **headers):
        """Inject a frame from port pid; return [(port id, packet)] delivered."""
        p = self.port(pid)
        pkt = {"eth_src": p.mac, **headers}
        host, n = self.ofport[pid]
        got = self.net.inject(host, n, pkt)
        return [(self.by_location.get((d.switch, d.port), (d.switch, d.port)), d.packet)
                for d in got]

    def ipv4(self, src, dst_mac, dst_ip, **extra):
        p = self.port(src)
        icmp = {"ip_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0, "icmp_id": 7}
        icmp.update(extra)
        return self.send(src, eth_dst=dst_mac, eth_type=0x0800, ipv4_src=p.ip, ipv4_dst=dst_ip,
                         **icmp)

    def arp_request(self, src, target_ip):
        p = self.port(src)
        return self.send(src, eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                         arp_spa=p.ip, arp_sha=p.mac, arp_tpa=target_ip,
                         arp_tha="00:00:00:00:00:00")

    def switches_visited(self):
        return {h.switch for h in self.net.hops}
