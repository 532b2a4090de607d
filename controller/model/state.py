"""The desired state: hosts, tenants (VPCs), subnets and ports (and the API's tokens).

Plain dataclasses in plain dicts.  `State` is what the store persists and what
the compiler reads; it is changed only by `State.apply(ops)`, with ops that the
service has already validated and the store has already made durable.
"""
import bisect
import copy
import ipaddress
from dataclasses import asdict, dataclass, field, fields

from controller.model.ops import apply_ops

NETWORK_TYPES = ("vlan", "vxlan", "gre")
SEGMENT_RANGE = {"vlan": (1, 4094), "vxlan": (1, 16_777_215), "gre": (1, 4_294_967_295)}


@dataclass(frozen=True)
class Host:
    name: str
    dpid: int
    tunnel_ip: str
    uplink_port: object = None
    external_port: object = None
    external_ip: object = None
    external_gateway: object = None    # next hop for NAT'd traffic (its MAC is ARPed for)

    @property
    def has_external(self):
        return bool(self.external_port and self.external_ip)


@dataclass(frozen=True)
class Tenant:
    name: str
    network: str
    segment: int
    id: int            # small internal id: metadata value, cookie owner, ct zone
    snat: bool = False
    # DHCP options (service/names.py): what each host's agent tells the
    # tenant's containers and how it answers their DNS; None = the default.
    # Not compared: no flow reads them, so changing them is no change to the
    # incremental compiler's keys (compile/incremental.py), as for Port names.
    dns_domain: object = field(default=None, compare=False)   # default "<tenant>.internal"
    dns_resolvers: tuple = field(default=(), compare=False)   # "ip", "ip:port", "[ip6]:port"
    lease_time: object = field(default=None, compare=False)   # DHCP lease, seconds
    dns_ttl: object = field(default=None, compare=False)      # TTL of the tenant's answers, s


@dataclass(frozen=True)
class Subnet:
    """An IPv4 or an IPv6 subnet of a tenant; a tenant may hold both (dual-stack).
    Which one it is follows from the CIDR (`version`)."""
    tenant: str
    cidr: str
    gateway: str

    @property
    def net(self):
        return ipaddress.ip_network(self.cidr)

    @property
    def version(self):
        return 6 if ":" in self.cidr else 4


@dataclass(frozen=True)
class Port:
    id: str
    tenant: str
    host: str
    port: str          # OVS port name on the host's integration bridge
    ip: str
    mac: str
    subnet: str        # the subnet's CIDR
    serial: int        # small integer: cookie owner, conntrack zone (pipeline.port_zone)
    security_groups: tuple = ("default",)
    port_security: bool = True     # False: no anti-spoofing, no security groups (appliances)
    # dual-stack: the port's IPv6 address and the CIDR of the IPv6 subnet it is
    # from; None on an IPv4-only port (and in every record made before IPv6)
    ip6: object = None
    subnet6: object = None
    # DNS (service/names.py): the port's own name (a Docker container's name,
    # a pod's) and its aliases (--network-alias); several ports may share one.
    # Not compared (see Tenant): renaming a port changes no flow.
    name: object = field(default=None, compare=False)
    aliases: tuple = field(default=(), compare=False)

    @property
    def secured(self):
        return self.port_security


@dataclass(frozen=True)
class PortForward:
    """host external_ip:external_port -> the port's ip:internal_port.  Lives
    and dies with its port: the host is always the port's host."""
    id: str
    tenant: str
    port_id: str
    protocol: str      # tcp | udp
    external_port: int
    internal_port: int
    serial: int


@dataclass(frozen=True)
class FloatingIP:
    """1:1 NAT of an external IP to a tenant's private IP.  Bound to the IP,
    not the port object: detach and attach elsewhere with the same IP, and the
    floating IP follows to the new host (like an AWS Elastic IP association)."""
    id: str
    tenant: str
    external_ip: str
    ip: str
    serial: int


@dataclass(frozen=True)
class SecurityGroup:
    """Stateful allow-rules, AWS style.  `index` is the group's bit in the
    registers that carry group membership (pipeline.MAX_GROUPS per tenant).
    rules: [{"id", "direction", "protocol", "ports": [lo, hi] | None,
             "remote": "a.b.c.d/n" | "sg:<name>"}]"""
    tenant: str
    name: str
    index: int
    rules: tuple = ()


@dataclass(frozen=True)
class Token:
    """An API token the admin made for one tenant or one host (service/tokens.py).
    Only the sha256 of its secret is kept: the token itself is shown once, in
    the reply that creates it, like an AWS secret access key.  `networks`
    (host tokens only) also lets the host create tenants and subnets and
    publish ports -- what the Docker driver does."""
    id: str
    kind: str          # tenant | host
    scope: str         # the tenant's or the host's name
    name: str
    hash: str          # sha256 hex of the secret
    created_at: float
    expires_at: object = None      # unix seconds, None = never
    networks: bool = False


def group_key(tenant, name):
    return f"{tenant}/{name}"


KINDS = {"hosts": Host, "tenants": Tenant, "subnets": Subnet, "ports": Port,
         "port_forwards": PortForward, "floating_ips": FloatingIP,
         "security_groups": SecurityGroup, "tokens": Token}


def subnet_key(tenant, cidr):
    return f"{tenant}/{cidr}"


def record(obj):
    return asdict(obj)


def from_record(kind, data):
    cls = KINDS[kind]
    names = {f.name for f in fields(cls)}
    # msgpack gives lists back; the dataclasses hold tuples (hashable, one spelling)
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in names})


_INCREMENTAL_OPS = 64        # more port ops in one apply (a restore, a big delete): rebuild


def _regroup(idx, attr, before, ports):
    """A grouped index ({value: [records by serial]}) after the port changes
    `before` ({key: record before, or None}): a new dict, new lists only for
    the values whose ports changed."""
    out = dict(idx)
    copied = set()

    def own(v):                      # the value's list, copied once
        if v not in copied:
            out[v] = list(out.get(v, ()))
            copied.add(v)
        return out[v]

    for key, old in before.items():
        new = ports.get(key)
        if old is new:
            continue
        if old is not None:
            v = getattr(old, attr)
            lst = own(v)
            lst[:] = [r for r in lst if r is not old]
            if not lst:
                del out[v]
                copied.discard(v)
        if new is not None:
            bisect.insort(own(getattr(new, attr)), new, key=lambda r: r.serial)
    return out


class State:
    """All desired state, indexed the ways the service and compiler ask.

    The per-tenant / per-host / per-dpid indexes are built lazily on first
    query and dropped by every mutation (apply, copy): the compiler asks
    "ports of tenant T" thousands of times per switch, and a scan of every
    port each time made compiling N hosts O(N^2) at a few thousand ports.
    The collections are only ever changed through apply().
    """

    def __init__(self, collections=None):
        self._idx = {}
        self.hosts = {}
        self.tenants = {}
        self.subnets = {}
        self.ports = {}
        self.port_forwards = {}
        self.floating_ips = {}
        self.security_groups = {}
        self.tokens = {}
        for kind, items in (collections or {}).items():
            if kind in KINDS:
                for key, data in items.items():
                    getattr(self, kind)[key] = from_record(kind, data)

    def to_collections(self):
        return {kind: {k: record(v) for k, v in getattr(self, kind).items()} for kind in KINDS}

    def apply(self, ops):
        """Apply validated ops: ("put", kind, key, record) / ("del", kind, key).

        The grouped port indexes (ports of a tenant, ports on a host) are
        carried over, changed only where a port came, went or changed: at
        5,000 ports rebuilding them after every attach was most of the POST
        (and again of the first compile after it).  Carried over as new dicts
        and lists, never changed in place: a snapshot shares them."""
        ops = list(ops)
        before = {op[2]: self.ports.get(op[2]) for op in ops if op[1] == "ports"}
        keep = {name: idx for name, idx in self._idx.items()
                if name[0] == "ports" and name[2]} if len(before) <= _INCREMENTAL_OPS else {}
        self._idx = {}
        apply_ops({kind: getattr(self, kind) for kind in KINDS}, ops, from_record)
        for (kind, attr, grouped), idx in keep.items():
            self._idx[(kind, attr, grouped)] = _regroup(idx, attr, before, self.ports)

    def copy(self):
        return copy.copy(self)._shallow()

    def snapshot(self):
        """This state as a copy nobody will change, the same object until the
        next apply().  For readers that yield midway (the controller compiles
        in pieces and lets REST requests run in between): they must not see
        half of a change, nor a dict changing size under them."""
        snap = self._idx.get("snapshot")
        if snap is None:
            snap = self._idx["snapshot"] = self.copy()
        return snap

    def _shallow(self):
        # the grouped port indexes are never changed in place (apply): share them
        self._idx = {name: idx for name, idx in self._idx.items()
                     if name[0] == "ports" and name[2]}
        for kind in KINDS:
            setattr(self, kind, dict(getattr(self, kind)))
        return self

    # --- queries -------------------------------------------------------
    def subnets_of(self, tenant, version=4):
        """The tenant's subnets of one IP version (4 by default: what every
        IPv4 path asks for), or of both with version=None (IPv4 first)."""
        return sorted((s for s in self.subnets.values()
                       if s.tenant == tenant and version in (None, s.version)),
                      key=lambda s: (s.version, s.net.network_address, s.net.prefixlen))

    def _index(self, kind, attr, grouped=False):
        """{value of attr: record} over one collection (the first record with it),
        or with grouped {value: [records by serial]}; built once per state."""
        name = (kind, attr, grouped)
        idx = self._idx.get(name)
        if idx is None:
            idx = self._idx[name] = {}
            items = getattr(self, kind).values()
            if grouped:
                for r in sorted(items, key=lambda r: r.serial):
                    idx.setdefault(getattr(r, attr), []).append(r)
            else:
                for r in items:
                    idx.setdefault(getattr(r, attr), r)
        return idx

    def ports_of(self, tenant):
        return list(self._index("ports", "tenant", grouped=True).get(tenant, ()))

    def ports_on(self, host):
        return list(self._index("ports", "host", grouped=True).get(host, ()))

    def groups_of(self, tenant):
        return sorted((g for g in self.security_groups.values() if g.tenant == tenant),
                      key=lambda g: g.index)

    def group_bits(self, port):
        """reg3/reg4 value: the bits of the port's security groups."""
        bits = 0
        for name in port.security_groups if port.port_security else ():
            g = self.security_groups.get(group_key(port.tenant, name))
            if g is not None:
                bits |= 1 << g.index
        return bits

    def forwards_of_port(self, port_id):
        return sorted((f for f in self.port_forwards.values() if f.port_id == port_id),
                      key=lambda f: f.serial)

    def forwards_of(self, tenant):
        return sorted((f for f in self.port_forwards.values() if f.tenant == tenant),
                      key=lambda f: f.serial)

    def fips_of(self, tenant):
        return sorted((f for f in self.floating_ips.values() if f.tenant == tenant),
                      key=lambda f: f.serial)

    def tokens_of(self, kind, scope):
        return sorted((t for t in self.tokens.values() if t.kind == kind and t.scope == scope),
                      key=lambda t: (t.created_at, t.id))

    def port_with_ip(self, tenant, ip):
        """The tenant's port holding `ip` (IPv4 or IPv6, canonical text), or None."""
        for p in self.ports.values():
            if p.tenant == tenant and ip in (p.ip, p.ip6):
                return p
        return None

    def host_by_dpid(self, dpid):
        return self._index("hosts", "dpid").get(dpid)

    def tenant_by_id(self, tid):
        return self._index("tenants", "id").get(tid)
