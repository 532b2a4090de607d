"""Docker's remote network driver protocol, driver name ``vpc``.

Lifecycle as dockerd 20.10 drives it (see ../shared/LAB.md):

    network create : [IPAM RequestPool, RequestAddress(gateway)] CreateNetwork
    container start: [IPAM RequestAddress] CreateEndpoint, Join,
                     ProgramExternalConnectivity, EndpointOperInfo
    container stop : RevokeExternalConnectivity, Leave, DeleteEndpoint,
                     [IPAM ReleaseAddress]

* CreateNetwork binds the Docker network to a tenant and subnet at the
  controller: created when missing, adopted when they agree, refused with a
  sentence when they do not (``-o vpc.tenant=T -o vpc.network=vxlan``).
* CreateEndpoint finds the controller port the IPAM driver made (tenant, this
  host, the endpoint's IP) -- or, under another IPAM driver, makes it -- and
  plumbs the veth: host end on br-int with external_ids naming the port,
  tenant and Docker endpoint, MTU from the controller, tx off on both ends.
  The MAC: a request without one (no --mac-address) is answered with the
  port's, ``{"Interface": {"MacAddress": ...}}``, which Docker then sets on
  eth0; the controller derives it from tenant and IP, so a restarted
  container keeps it.  A request with one is the user's --mac-address (it
  may not be answered: Docker refuses a driver that changes a given MAC); a
  port with another MAC is made again with it.  On a dual-stack network
  (``--ipv6``) the endpoint's IPv6 address, held by the IPAM driver's
  placeholder port, is folded into its port (made again dual-stack).
* Join hands Docker the container end (``SrcName``); Docker moves it in and
  renames it eth0, keeping MTU and tx off.  Gateway (and GatewayIPv6) = the
  subnets' gateways;
  no static routes (a bad route would only fail at container start).  Then,
  in the background, the port gets the container's DNS names and the
  container's resolv.conf the tenant's DNS (docker_names.py; ``-o
  vpc.dns=docker`` keeps Docker's resolver).
* Leave/DeleteEndpoint delete the veth pair (Docker moves the container end
  back to the host on stop; left alone, veths pile up) and the OVS port.
* ProgramExternalConnectivity turns ``-p HOST:CTR`` into controller port
  forwards on this host's external IP, plus a security group ``pub-<port>``
  admitting the published ports (the default group admits only members);
  Revoke removes both.

Everything per endpoint is found through OVSDB (external_ids
``vpc-endpoint-id``) and the controller, never from memory, so a killed
agent restarts into a working state.  Errors are ``{"Err": sentence}``.
"""
import ipaddress
import logging

from vpcagent.controller import NETWORK_TYPES, peer_name, port_names
from vpcagent.docker_names import DNS_MODES, ContainerNames
from vpcagent.docker_ipam import (LOCAL_SPACE, GLOBAL_SPACE, ipv4_network, ipv6_network,
                                  tenant_name)
from vpcagent.plumbing import PlumbingError
from vpcagent.server import ProtocolError

log = logging.getLogger("vpcagent")

GENERIC = "com.docker.network.generic"
PORTMAP = "com.docker.network.portmap"
PROTOCOLS = {6: "tcp", 17: "udp"}
MAX_FORWARD_PORT = 32767
DEFAULT_NETWORK = "vxlan"
KNOWN_OPTIONS = ("vpc.tenant", "vpc.network", "vpc.dns")


def _str(body, key):
    v = body.get(key)
    if not isinstance(v, str) or not v:
        raise ProtocolError(f"{key} is missing")
    return v


class NetworkDriver:
    def __init__(self, controller, host, networks, names=None):
        """``names``: what runs after each Join (docker_names.ContainerNames:
        the port's DNS names, the container's resolver); False for nothing."""
        self.c = controller
        self.host = host
        self.nets = networks
        self.names = ContainerNames(controller, networks) if names is None else names

    def register(self, router):
        r = "NetworkDriver."
        router.add(f"/{r}GetCapabilities", self.get_capabilities, needs_body=False)
        for name, fn in (("CreateNetwork", self.create_network),
                         ("DeleteNetwork", self.delete_network),
                         ("CreateEndpoint", self.create_endpoint),
                         ("DeleteEndpoint", self.delete_endpoint),
                         ("EndpointOperInfo", self.endpoint_info),
                         ("Join", self.join), ("Leave", self.leave),
                         ("ProgramExternalConnectivity", self.program_external),
                         ("RevokeExternalConnectivity", self.revoke_external)):
            router.add(f"/{r}{name}", fn)
        for name in ("DiscoverNew", "DiscoverDelete"):
            router.add(f"/{r}{name}", lambda body: {}, needs_body=False)

    def get_capabilities(self, body):
        return {"Scope": "local", "ConnectivityScope": "local"}

    # -- networks --------------------------------------------------------------
    def create_network(self, body):
        nid = _str(body, "NetworkID")
        opts = (body.get("Options") or {})
        generic = opts.get(GENERIC) or {} if isinstance(opts, dict) else None
        if not isinstance(generic, dict):
            raise ProtocolError("Options must be an object")
        tenant = tenant_name(generic.get("vpc.tenant"), "-o vpc.tenant=NAME")
        unknown = sorted(k for k in generic if k not in KNOWN_OPTIONS)
        if unknown:
            raise ProtocolError(f"unknown option(s) {', '.join(unknown)} (the vpc driver "
                                f"knows -o vpc.tenant, -o vpc.network and -o vpc.dns)")
        network = generic.get("vpc.network")
        if network is not None and network not in NETWORK_TYPES:
            raise ProtocolError(f"-o vpc.network must be vlan, vxlan or gre, not {network!r}")
        dns = generic.get("vpc.dns")
        if dns is not None and dns not in DNS_MODES:
            raise ProtocolError(f"-o vpc.dns must be vpc (the tenant's DNS, the default) or "
                                f"docker (Docker's own resolver), not {dns!r}")
        v6 = body.get("IPv6Data") or []
        if not isinstance(v6, list) or len(v6) > 1 or (v6 and not isinstance(v6[0], dict)):
            raise ProtocolError("a vpc network has at most one IPv6 subnet (--ipv6 --subnet "
                                "IPV6-CIDR)")
        v4 = body.get("IPv4Data")
        if not isinstance(v4, list) or len(v4) != 1 or not isinstance(v4[0], dict):
            raise ProtocolError("a vpc network has exactly one IPv4 subnet (--subnet CIDR)")
        net = ipv4_network(v4[0].get("Pool"), "the subnet")
        gateway = (v4[0].get("Gateway") or "").split("/")[0] or None
        if gateway:
            try:
                ipaddress.IPv4Address(gateway)
            except ValueError:
                raise ProtocolError(f"gateway {gateway!r} is not an IPv4 address") from None
        net6, gateway6 = None, None
        if v6:
            net6 = ipv6_network(v6[0].get("Pool"), "the IPv6 subnet")
            gateway6 = (v6[0].get("Gateway") or "").split("/")[0] or None
            if gateway6:
                try:
                    ipaddress.IPv6Address(gateway6)
                except ValueError:
                    raise ProtocolError(f"gateway {gateway6!r} is not an IPv6 address") \
                        from None
        t = self.c.tenant(tenant)
        if t is not None and network is None:
            network = t["network"]
        self.c.ensure_network(tenant, network or DEFAULT_NETWORK, str(net), gateway)
        if net6 is not None:
            self.c.ensure_network(tenant, network or DEFAULT_NETWORK, str(net6), gateway6)
        ours = v4[0].get("AddressSpace") in (LOCAL_SPACE, GLOBAL_SPACE)
        self.nets.remember(nid, {"tenant": tenant, "network": network or DEFAULT_NETWORK,
                                 "pool": str(net), "gateway": gateway, "ipam": ours,
                                 "pool6": net6 and str(net6), "dns": dns})
        return {}

    def delete_network(self, body):
        # The tenant and subnet stay: they are the VPC's, and other hosts use them.
        self.nets.forget(_str(body, "NetworkID"))
        return {}

    # -- endpoints -------------------------------------------------------------
    def _row(self, eid, must=True):
        rows = self.host.ovs.find(**{"vpc-endpoint-id": eid})
        if not rows and must:
            raise ProtocolError(f"endpoint {eid[:12]} has no port on this host (was it "
                                f"created through another agent?)")
        return rows[0] if rows else None

    def _found(self, body):
        """The OVS row of the request's endpoint, or None: the calls that
        take an endpoint down are idempotent (Docker repeats them after a
        restart of either side)."""
        _str(body, "NetworkID")
        return self._row(_str(body, "EndpointID"), must=False)

    def create_endpoint(self, body):
        nid, eid = _str(body, "NetworkID"), _str(body, "EndpointID")
        iface = body.get("Interface") or {}
        if not isinstance(iface, dict):
            raise ProtocolError("Interface must be an object")
        ip6 = None
        if iface.get("AddressIPv6"):
            try:
                ip6 = str(ipaddress.IPv6Interface(iface["AddressIPv6"]).ip)
            except ValueError:
                raise ProtocolError(f"Interface.AddressIPv6 {iface['AddressIPv6']!r} is not "
                                    f"an IPv6 CIDR") from None
        addr = iface.get("Address")
        if not isinstance(addr, str) or not addr:
            raise ProtocolError("the endpoint has no IPv4 address")
        try:
            ip = str(ipaddress.IPv4Interface(addr).ip)
        except ValueError:
            raise ProtocolError(f"Interface.Address {addr!r} is not IPv4 CIDR") from None
        mac = iface.get("MacAddress") or None
        net = self._network(nid, ip)
        tenant = net["tenant"]
        port, release = self.c.port_by_ip(tenant, ip), "ipam"
        if port is None:
            if net.get("ipam", True):
                raise ProtocolError(f"tenant {tenant!r} has no port with {ip} (the IPAM driver "
                                    f"makes it): is --ipam-opt vpc.tenant the same as "
                                    f"-o vpc.tenant?")
            port = self.c.create_port(tenant, port_names(tenant, ip)[0], net["pool"],
                                      ip=ip, mac=mac, subnet6=ip6 and net.get("pool6"),
                                      ip6=ip6)
            release = "endpoint"
        if port["host"] != self.c.host:
            raise ProtocolError(f"{ip} of tenant {tenant!r} is in use on host {port['host']}")
        if ip6 and port.get("ip6") != ip6:
            subnets = (self.c.tenant(tenant) or {}).get("subnets") or []
            if not any(":" in s and ipaddress.ip_address(ip6) in ipaddress.ip_network(s)
                       for s in subnets):
                raise ProtocolError(f"tenant {tenant!r} has no IPv6 subnet holding {ip6} (was "
                                    f"the network created with --ipv6 and -d vpc?)")
            port = self._fold_ipv6(tenant, port, ip6, mac)
            mac = None                       # made with the MAC asked for, if any
        if mac and port["mac"].lower() != mac.lower():
            if not port["port"].startswith("vd") or \
                    self.host.ovs.find(**{"vpc-port-id": port["id"]}):
                raise ProtocolError(f"{ip} of tenant {tenant!r} has MAC {port['mac']} at the "
                                    f"controller, not {mac}, and is not this endpoint's")
            port = self.c.remake_port(tenant, port, mac)
        ids = {"vpc-port-id": port["id"], "vpc-tenant": tenant, "vpc-owner": "docker",
               "vpc-endpoint-id": eid, "vpc-network-id": nid,
               "vpc-gateway": port.get("gateway") or "", "vpc-mtu": str(port.get("mtu") or ""),
               "vpc-gateway6": port.get("gateway6") or "", "vpc-release": release}
        try:
            self.host.create_port(port["port"], peer_name(port["port"]), mtu=port.get("mtu"),
                                  external_ids=ids)
        except PlumbingError as e:
            if release == "endpoint":
                self.c.delete_port(tenant, port["id"])
            raise ProtocolError(f"cannot plumb {port['port']}: {e}") from None
        return {} if iface.get("MacAddress") else {"Interface": {"MacAddress": port["mac"]}}

    def _fold_ipv6(self, tenant, port, ip6, mac):
        """The endpoint's IPv6 address joins its port: the IPAM driver's
        placeholder holding it goes, the port is made again dual-stack (same
        name, IP, MAC or the one asked for, groups).  A placeholder that is not
        this host's or holds an IPv4 address too is someone else's: refused."""
        if not port["port"].startswith("vd") or self.host.ovs.find(**{"vpc-port-id": port["id"]}):
            raise ProtocolError(f"port {port['id']} of tenant {tenant!r} is not this "
                                f"endpoint's to give {ip6}")
        holder = self.c.port_by_ip6(tenant, ip6)
        if holder is not None:
            if holder["host"] != self.c.host or holder.get("ip") is not None \
                    or not holder["port"].startswith("v6"):
                raise ProtocolError(f"{ip6} of tenant {tenant!r} is port {holder['id']}'s "
                                    f"(host {holder['host']})")
            self.c.delete_port(tenant, holder["id"])
        return self.c.remake_port(tenant, port, mac or port["mac"], ip6=ip6)

    def _network(self, nid, ip):
        """The network's options for CreateEndpoint: from the cache, else the
        tenant from the controller -- the one port on this host with this IP
        that the IPAM driver made and no OVS port plumbs yet (RequestAddress
        made it just before) -- and only when that is not one port, from
        dockerd's API.  At boot dockerd restores --restart containers before
        its API answers: a CreateEndpoint waiting on that API waits for
        itself, and the container stays down."""
        known = self.nets.cached(nid)
        if known is not None:
            return known
        tenants = []
        for t in self.c.get("tenants") or []:
            p = self.c.port_by_ip(t["name"], ip)
            if p is not None and p["host"] == self.c.host and p["port"].startswith("vd") \
                    and not self.host.ovs.find(**{"vpc-port-id": p["id"]}):
                tenants.append(t["name"])
        if len(tenants) == 1:
            return {"tenant": tenants[0], "network": None, "pool": None, "gateway": None,
                    "ipam": True}
        return self.nets.get(nid)

    def delete_endpoint(self, body):
        row = self._found(body)
        if row is None:
            return {}
        ids = row["external_ids"]
        self.host.delete_port(row["name"])
        if ids.get("vpc-release") == "endpoint":
            self.c.delete_port(ids["vpc-tenant"], ids["vpc-port-id"])
        return {}

    def endpoint_info(self, body):
        row = self._found(body)
        if row is None:
            return {"Value": {}}
        ids = row["external_ids"]
        return {"Value": {"port_id": ids.get("vpc-port-id", ""), "ovs_port": row["name"],
                          "tenant": ids.get("vpc-tenant", ""),
                          "link_state": row.get("link_state") or ""}}

    def join(self, body):
        nid = _str(body, "NetworkID")
        eid = _str(body, "EndpointID")
        sandbox = _str(body, "SandboxKey")
        row = self._row(eid)
        name, ids = row["name"], row["external_ids"]
        peer = peer_name(name)
        if not self.host.link_exists(name) or not self.host.link_exists(peer):
            # Joined before and left (the pair was deleted), or someone removed it.
            self.host.delete_link(name)
            mtu = ids.get("vpc-mtu") or None
            self.host.create_port(name, peer, mtu=mtu, external_ids=ids)
        gateway = ids.get("vpc-gateway")
        if not gateway:
            port = self.c.port(ids["vpc-tenant"], ids["vpc-port-id"]) or {}
            gateway = port.get("gateway")
        reply = {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
                 "DisableGatewayService": False}
        if gateway:
            reply["Gateway"] = gateway
        if ids.get("vpc-gateway6"):
            reply["GatewayIPv6"] = ids["vpc-gateway6"]
        if self.names:
            try:                 # names and resolver: in the background, never failing Join
                self.names.joined(nid, eid, sandbox, ids)
            except Exception as e:                           # noqa: BLE001
                log.warning("names: endpoint %s: %s", eid[:12], e)
        return reply

    def leave(self, body):
        row = self._found(body)
        if row is not None:
            self.host.delete_link(row["name"])
        return {}

    # -- published ports ----------------------------------------------------------
    def program_external(self, body):
        _str(body, "NetworkID")
        eid = _str(body, "EndpointID")
        opts = body.get("Options") or {}
        if not isinstance(opts, dict):
            raise ProtocolError("Options must be an object")
        bindings = self._bindings(opts.get(PORTMAP) or [])
        if not bindings:
            return {}
        row = self._row(eid)
        ids = row["external_ids"]
        port = self.c.port(ids["vpc-tenant"], ids["vpc-port-id"])
        if port is None:
            raise ProtocolError(f"port {ids['vpc-port-id']} is gone at the controller")
        self.c.publish(ids["vpc-tenant"], port, bindings)
        return {}

    def _bindings(self, portmap):
        if not isinstance(portmap, list):
            raise ProtocolError(f"{PORTMAP} must be a list")
        out, ext_ip = [], None
        for b in portmap:
            if not isinstance(b, dict):
                raise ProtocolError(f"{PORTMAP} entries must be objects")
            proto = PROTOCOLS.get(b.get("Proto"))
            if proto is None:
                raise ProtocolError(f"publishing protocol {b.get('Proto')!r} is not supported "
                                    f"(tcp and udp are)")
            internal, ext = b.get("Port"), b.get("HostPort")
            end = b.get("HostPortEnd") or ext
            if not isinstance(internal, int) or not 1 <= internal <= 65535:
                raise ProtocolError(f"container port {internal!r} is not a port number")
            if not ext:
                raise ProtocolError(f"-p {internal}: name the host port (-p HOSTPORT:"
                                    f"{internal}); the vpc driver does not pick one")
            if not isinstance(ext, int) or not 1 <= ext <= MAX_FORWARD_PORT or end != ext:
                raise ProtocolError(f"host port {ext!r} must be one port in 1-"
                                    f"{MAX_FORWARD_PORT} (no ranges)")
            host_ip = b.get("HostIP") or ""
            if host_ip not in ("", "0.0.0.0"):
                ext_ip = ext_ip or self.c.host_record().get("external_ip")
                if host_ip != ext_ip:
                    raise ProtocolError(f"-p {host_ip}:{ext}:{internal}: this host publishes "
                                        f"on its external IP {ext_ip} only")
            out.append((proto, ext, internal))
        return out

    def revoke_external(self, body):
        row = self._found(body)
        if row is None:
            return {}
        ids = row["external_ids"]
        port = self.c.port(ids["vpc-tenant"], ids["vpc-port-id"])
        if port is not None:
            self.c.unpublish(ids["vpc-tenant"], port)
        return {}
