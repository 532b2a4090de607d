"""The operations behind the REST API: validate, persist, apply, report.

Each public method either raises ApiError having changed nothing, or
  1. builds the ops of the change against the current State,
  2. makes them durable with store.commit(ops) (before any reply),
  3. applies them to the in-memory State,
  4. tells the listener which hosts need their flows recompiled.
Methods are called under one lock, so concurrent requests are serialised and
IPAM can never hand out one address twice.  An operation that commits is
marked @mutator (re-run whole on a shared store's conflict); what operations
return is built by the views mixin (views.py).
"""
import ipaddress
import threading
import uuid

from controller.compile.pipeline import SERVICE_PORT, TUNNEL_PORTS
from controller.model import ipam
from controller.model.state import (KINDS, NETWORK_TYPES, SEGMENT_RANGE, Host, Port, Subnet,
                                    Tenant, group_key, record, subnet_key)
from controller.service import addressing, validate as v
from controller.service.errors import bad_request, conflict, not_found
from controller.service.flowlogs import FlowLogOperations
from controller.service.mutator import active as mutator_active, mutator
from controller.service.names import NameOperations
from controller.service.nat import NatOperations
from controller.service.secgroups import (DEFAULT_GROUP, SecurityGroupOperations,
                                          with_ipv6_egress)
from controller.service.tokens import TokenOperations
from controller.service.trace import TraceOperations
from controller.service.views import NullTopology, Views


class VpcService(Views, NatOperations, SecurityGroupOperations, TokenOperations,
                 TraceOperations, FlowLogOperations, NameOperations):
    def __init__(self, state, store, topology=None, underlay_mtu=1500, on_change=None,
                 lock=None):
        self.state = state
        self.store = store
        self.topology = topology or NullTopology()
        self.underlay_mtu = underlay_mtu
        self.on_change = on_change or (lambda hosts: None)
        self.lock = lock or threading.RLock()

    def refresh(self):
        """Take in what others wrote to a shared store; recompile what it touched."""
        with self.lock:
            ops = self.store.refresh()
            ops = [op for op in ops if op[1] in KINDS]
            if not ops:
                return False
            before = set(self.state.hosts)
            self.state.apply(ops)
            self.on_change(before | set(self.state.hosts))
            return True

    # --- plumbing -------------------------------------------------------
    def _commit(self, ops, hosts, first=None):
        """Persist, apply, and name the hosts to recompile: `first` (the host of
        the port the request is about) ahead of the others, so its flows -- the
        ones the caller is waiting for -- are not queued behind its peers'.
        Only a @mutator operation may commit (see controller/service/mutator.py)."""
        if not mutator_active():
            raise RuntimeError("a commit outside a @mutator operation: mark the public "
                               "method that commits with @mutator")
        self.store.commit(ops)
        self.state.apply(ops)
        hosts = set(hosts)
        self.on_change(([first] if first in hosts else []) + sorted(hosts - {first}))

    def _tenant(self, name):
        t = self.state.tenants.get(name)
        if t is None:
            raise not_found(f"tenant {name!r} does not exist")
        return t

    def _tenant_hosts(self, tenant):
        return {p.host for p in self.state.ports_of(tenant)}

    # --- hosts ----------------------------------------------------------
    @mutator
    def create_host(self, body):
        v.body_fields(body, required=("name", "dpid", "tunnel_ip"),
                      optional=("uplink_port", "external_port", "external_ip",
                                "external_gateway"))
        name = v.name(body["name"], "host name")
        dpid = v.dpid(body["dpid"])
        tunnel_ip = v.ipv4(body["tunnel_ip"], "tunnel_ip")
        uplink = body.get("uplink_port")
        uplink = None if uplink is None else v.ifname(uplink, "uplink_port")
        ext_port = body.get("external_port")
        ext_port = None if ext_port is None else v.ifname(ext_port, "external_port")
        ext_ip = body.get("external_ip")
        ext_ip = None if ext_ip is None else v.ipv4(ext_ip, "external_ip")
        ext_gw = body.get("external_gateway")
        ext_gw = None if ext_gw is None else v.ipv4(ext_gw, "external_gateway")
        if (ext_port is None) != (ext_ip is None):
            raise bad_request("external_port and external_ip go together: give both or neither")
        if ext_gw is not None and ext_ip is None:
            raise bad_request("external_gateway needs external_port and external_ip")
        if ext_gw is not None and ext_gw == ext_ip:
            raise bad_request("external_gateway must differ from external_ip")
        if uplink is not None and uplink == ext_port:
            raise bad_request("uplink_port and external_port must be different ports")
        with self.lock:
            if name in self.state.hosts:
                raise conflict(f"host {name!r} already exists", code="duplicate")
            for h in self.state.hosts.values():
                if h.dpid == dpid:
                    raise conflict(f"dpid {v.dpid_str(dpid)} is already host {h.name!r}",
                                   code="duplicate")
                if h.tunnel_ip == tunnel_ip:
                    raise conflict(f"tunnel_ip {tunnel_ip} is already used by host {h.name!r}",
                                   code="duplicate")
                if ext_ip is not None and h.external_ip == ext_ip:
                    raise conflict(f"external_ip {ext_ip} is already used by host {h.name!r}",
                                   code="duplicate")
            for f in self.state.floating_ips.values():
                if ext_ip is not None and f.external_ip == ext_ip:
                    raise conflict(f"external_ip {ext_ip} is floating IP {f.id} of tenant "
                                   f"{f.tenant!r}", code="duplicate")
            host = Host(name, dpid, tunnel_ip, uplink, ext_port, ext_ip, ext_gw)
            # Every host holds flows towards every other host: all recompile.
            self._commit([("put", "hosts", name, record(host))],
                         set(self.state.hosts) | {name})
            return self.host_view(host)

    def get_host(self, name):
        h = self.state.hosts.get(name)
        if h is None:
            raise not_found(f"host {name!r} does not exist")
        return self.host_view(h)

    def list_hosts(self):
        return [self.host_view(h) for _, h in sorted(self.state.hosts.items())]

    @mutator
    def delete_host(self, name):
        with self.lock:
            self.get_host(name)
            ports = self.state.ports_on(name)
            if ports:
                raise conflict(f"host {name!r} still has {len(ports)} port(s); detach them first "
                               f"(e.g. {ports[0].tenant}/{ports[0].id})", code="in_use")
            self._commit([("del", "hosts", name)], set(self.state.hosts))

    # --- tenants --------------------------------------------------------
    @mutator
    def create_tenant(self, body):
        v.body_fields(body, required=("name", "network"), optional=("segment",))
        name = v.name(body["name"], "tenant name")
        network = v.choice(body["network"], "network", NETWORK_TYPES)
        lo, hi = SEGMENT_RANGE[network]
        what = {"vlan": "VLAN id", "vxlan": "VXLAN VNI", "gre": "GRE key"}[network]
        segment = body.get("segment")
        if segment is not None:
            segment = v.integer(segment, f"segment ({what})", lo, hi)
        with self.lock:
            if name in self.state.tenants:
                raise conflict(f"tenant {name!r} already exists", code="duplicate")
            if segment is not None:
                for t in self.state.tenants.values():
                    if t.network == network and t.segment == segment:
                        raise conflict(f"{what} {segment} is already used by tenant {t.name!r}",
                                       code="duplicate")
            try:
                if segment is None:
                    segment = ipam.segment(self.state, network)
                tid = ipam.tenant_id(self.state)
            except ipam.Exhausted:
                raise conflict(f"no free {what} or tenant id left", code="exhausted") from None
            tenant = Tenant(name, network, segment, tid)
            self._commit([("put", "tenants", name, record(tenant))] + self.default_group_ops(name),
                         ())
            return self.tenant_view(tenant)

    def get_tenant(self, name):
        return self.tenant_view(self._tenant(name))

    def list_tenants(self):
        return [self.tenant_view(t) for _, t in sorted(self.state.tenants.items())]

    @mutator
    def delete_tenant(self, name):
        with self.lock:
            self._tenant(name)
            ports = self.state.ports_of(name)
            if ports:
                raise conflict(f"tenant {name!r} still has {len(ports)} port(s); detach them "
                               f"first", code="in_use")
            ops = [("del", "subnets", subnet_key(name, s.cidr))
                   for s in self.state.subnets_of(name, version=None)]
            ops += [("del", "floating_ips", f.id) for f in self.state.fips_of(name)]
            ops += [("del", "security_groups", f"{name}/{g.name}") for g in self.state.groups_of(name)]
            ops += self.tenant_token_ops(name)
            ops.append(("del", "tenants", name))
            self._commit(ops, ())

    # --- subnets --------------------------------------------------------
    @mutator
    def create_subnet(self, tenant_name, body):
        v.body_fields(body, required=("cidr",), optional=("gateway",))
        net = v.cidr(body["cidr"])
        gateway = body.get("gateway")
        if gateway is None:
            gateway = ipam.first_usable(net)
        else:
            gateway = (v.ipv4 if net.version == 4 else v.ipv6)(gateway, "gateway")
            gw = ipaddress.ip_address(gateway)
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise bad_request(f"gateway {gateway} is not a usable address of {net}")
        with self.lock:
            tenant = self._tenant(tenant_name)
            for s in self.state.subnets_of(tenant.name, net.version):
                if s.net.overlaps(net):
                    raise conflict(f"{net} overlaps subnet {s.cidr} of tenant {tenant.name!r}",
                                   code="overlap")
            subnet = Subnet(tenant.name, str(net), gateway)
            ops = [("put", "subnets", subnet_key(tenant.name, subnet.cidr), record(subnet))]
            if net.version == 6 and not self.state.subnets_of(tenant.name, 6):
                default = self.state.security_groups.get(group_key(tenant.name, DEFAULT_GROUP))
                twin = default and with_ipv6_egress(default)
                if twin:
                    ops.append(("put", "security_groups", group_key(tenant.name, DEFAULT_GROUP),
                                record(twin)))
            self._commit(ops, self._tenant_hosts(tenant.name))
            return self.subnet_view(subnet)

    def _subnet(self, tenant_name, cidr_text):
        self._tenant(tenant_name)
        cidr = cidr_text.replace("_", "/")
        try:                                   # one spelling: fd00:1:0::/64 is fd00:1::/64
            cidr = str(ipaddress.ip_network(cidr))
        except ValueError:
            pass                               # not a network: "no subnet" below
        s = self.state.subnets.get(subnet_key(tenant_name, cidr))
        if s is None:
            raise not_found(f"tenant {tenant_name!r} has no subnet {cidr}")
        return s

    def get_subnet(self, tenant_name, cidr_text):
        return self.subnet_view(self._subnet(tenant_name, cidr_text))

    def list_subnets(self, tenant_name):
        self._tenant(tenant_name)
        return [self.subnet_view(s) for s in self.state.subnets_of(tenant_name, version=None)]

    @mutator
    def delete_subnet(self, tenant_name, cidr_text):
        with self.lock:
            s = self._subnet(tenant_name, cidr_text)
            used = [p for p in self.state.ports_of(tenant_name) if s.cidr in (p.subnet, p.subnet6)]
            if used:
                raise conflict(f"subnet {s.cidr} still has {len(used)} port(s)", code="in_use")
            self._commit([("del", "subnets", subnet_key(tenant_name, s.cidr))],
                         self._tenant_hosts(tenant_name))

    # --- ports ----------------------------------------------------------
    @mutator
    def create_port(self, tenant_name, body):
        v.body_fields(body, required=("host", "port"),
                      optional=addressing.FIELDS + ("mac", "security_groups", "port_security",
                                                    "name", "aliases"))
        host_name = v.name(body["host"], "host")
        port_name = v.ifname(body["port"], "port")
        addressing.parse(body)                        # bad input: 400 before any lookup
        dns_name, aliases = self.port_name_fields(body)
        mac = None if body.get("mac") is None else v.mac(body["mac"], "mac")
        with self.lock:
            tenant = self._tenant(tenant_name)
            host = self.state.hosts.get(host_name)
            if host is None:
                raise not_found(f"host {host_name!r} is not registered (POST /v1/hosts first)",
                                code="unknown_host")
            if port_name in (host.uplink_port, host.external_port, SERVICE_PORT,
                             *TUNNEL_PORTS.values()):
                raise conflict(f"{port_name} is host {host_name}'s own port (uplink, external, "
                               f"tunnel or service port)", code="in_use")
            addrs = addressing.assign(self.state, tenant, body)
            groups, secured = self.port_security_fields(tenant.name, body)
            for p in self.state.ports_on(host_name):
                if p.port == port_name:
                    raise conflict(f"port {port_name} on host {host_name} is already attached "
                                   f"(tenant {p.tenant!r}, id {p.id})", code="in_use")
            if mac is None:
                mac = ipam.mac(self.state, tenant.name, addrs.ip or addrs.ip6)
            else:
                for p in self.state.ports.values():
                    if p.mac == mac:
                        raise conflict(f"MAC {mac} is already used by port {p.id}",
                                       code="mac_in_use")
            try:
                serial = ipam.port_serial(self.state)
            except ipam.Exhausted:
                raise conflict("no free port serial left", code="exhausted") from None
            port = Port(uuid.uuid4().hex[:12], tenant.name, host_name, port_name, addrs.ip, mac,
                        addrs.subnet, serial, groups, secured, addrs.ip6, addrs.subnet6,
                        dns_name, aliases)
            self._commit([("put", "ports", port.id, record(port))],
                         self._tenant_hosts(tenant.name) | {host_name}, first=host_name)
            return self.port_view(port)

    def _port(self, tenant_name, port_id):
        self._tenant(tenant_name)
        p = self.state.ports.get(port_id)
        if p is None or p.tenant != tenant_name:
            raise not_found(f"tenant {tenant_name!r} has no port {port_id!r}")
        return p

    def get_port(self, tenant_name, port_id):
        return self.port_view(self._port(tenant_name, port_id))

    def list_ports(self, tenant_name):
        self._tenant(tenant_name)
        return [self.port_view(p) for p in self.state.ports_of(tenant_name)]

    @mutator
    def delete_port(self, tenant_name, port_id):
        with self.lock:
            p = self._port(tenant_name, port_id)
            # Port forwards live and die with their port (like `docker rm`);
            # a floating IP stays with the tenant's IP, dormant until it is used again.
            ops = [("del", "port_forwards", f.id) for f in self.state.forwards_of_port(p.id)]
            ops.append(("del", "ports", p.id))
            self._commit(ops, self._tenant_hosts(tenant_name) | {p.host}, first=p.host)
