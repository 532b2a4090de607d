"""DHCP options, DNS names, and the view each host's agent answers from.

A mixin of VpcService.  Why the agent needs a view: DHCP and DNS are
answered on each host (compile/services.py steers them there), from what the
model says about the host's ports and their tenants' names -- and they must
go on being answered while the controller is down, so the agent keeps the
last view it got (also on disk) and asks again with the view's etag: the
request waits (long poll, up to MAX_WAIT s) until the view differs, so a
renamed, moved or removed container stops resolving within about a second
plus the TTL.

Names: a port may have a `name` and `aliases` (DNS names, lowercase; several
ports may share one: it then answers round robin), and every port with an
IPv4 address also has the AWS-style `ip-10-0-0-5`, so that every address of
the tenant has a PTR answer.  A tenant answers NAME and
NAME.<domain>, nothing of another tenant.  `dns_resolvers` are where other
names are forwarded; none: the agent refuses them, saying how to set one.

None of this changes a flow: the operations here commit with no host to
recompile.
"""
import hashlib
import ipaddress
import json
import re
import time

from controller.compile.ipv6 import link_local
from controller.compile.pipeline import SERVICE_PORT, router_mac
from controller.model.state import record, subnet_key
from controller.service import validate as v
from controller.service.errors import bad_request, not_found
from controller.service.mutator import mutator

DEFAULT_LEASE = 3600        # s: a container renews every 30 min; a restart asks anew
DEFAULT_TTL = 5             # s: a removed or moved container stops resolving within seconds
LEASE_RANGE = (60, 86400)
TTL_RANGE = (1, 3600)
MAX_RESOLVERS = 4
MAX_ALIASES = 32
MAX_WAIT = 30               # s: a long poll's longest wait
POLL = 0.2                  # s: how often a waiting request looks for a change
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
DNS_NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DNS_NAME_PATTERN = rf"^{_LABEL}(\.{_LABEL})*\.?$".replace("[a-z", "[A-Za-z")


def dns_name(value, what="name"):
    """A DNS name as the API keeps it: lowercase, no trailing dot.  Labels of
    letters, digits, '-' and '_' (Docker's container names have '_'), not
    starting or ending with '-', at most 63 each and 253 in all."""
    if isinstance(value, str):
        text = value.lower()[:-1] if value.endswith(".") else value.lower()
        if len(text) <= 253 and DNS_NAME_RE.fullmatch(text):
            return text
    raise bad_request(f"{what} must be a DNS name (labels of letters, digits, '-', '_', "
                      f"1-63 each, dots between, at most 253); got {value!r}")


def resolver(value):
    """'ip', 'ip:port' or '[ip6]:port' -> its canonical text."""
    text = value if isinstance(value, str) else None
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+)(?::(\d{1,5}))?|([0-9A-Fa-f:.]+)",
                     text or "")
    try:
        host = ipaddress.ip_address(m.group(1) or m.group(3) or m.group(5))
        port = int(m.group(2) or m.group(4) or 53)
    except (AttributeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise bad_request(f"a resolver is 'ip', 'ip:port' or '[ipv6]:port'; got {value!r}")
    if port == 53:
        return str(host)
    return f"[{host}]:{port}" if host.version == 6 else f"{host}:{port}"


class NameOperations:
    # --- port names ---------------------------------------------------------
    def port_name_fields(self, body, port=None):
        """(name, aliases) of a port from a body (POST: absent = none; PATCH:
        absent = unchanged)."""
        name = port.name if port is not None else None
        aliases = port.aliases if port is not None else ()
        if "name" in body:
            name = None if body["name"] is None else dns_name(body["name"], "name")
        if "aliases" in body:
            raw = body["aliases"]
            if not isinstance(raw, list) or len(raw) > MAX_ALIASES:
                raise bad_request(f"aliases must be a list of at most {MAX_ALIASES} DNS names")
            aliases = tuple(dict.fromkeys(dns_name(a, "an alias") for a in raw))
        return name, aliases

    def port_dns(self, p):
        """What a container is told: its gateway(s) as DNS server, the domain."""
        tenant = self.state.tenants[p.tenant]
        servers = [self.state.subnets[subnet_key(p.tenant, c)].gateway
                   for c in (p.subnet, p.subnet6) if c]
        domain = self.tenant_domain(tenant)
        return {"nameservers": servers, "domain": domain, "search": [domain]}

    # --- the tenant's DHCP options ---------------------------------------------
    @staticmethod
    def tenant_domain(t):
        return t.dns_domain or f"{t.name.lower()}.internal"

    def dhcp_options_view(self, t):
        return {"tenant": t.name, "domain": self.tenant_domain(t),
                "resolvers": list(t.dns_resolvers),
                "lease_time": t.lease_time or DEFAULT_LEASE, "ttl": t.dns_ttl or DEFAULT_TTL}

    def get_dhcp_options(self, tenant_name):
        return self.dhcp_options_view(self._tenant(tenant_name))

    @mutator
    def set_dhcp_options(self, tenant_name, body):
        v.body_fields(body, optional=("domain", "resolvers", "lease_time", "ttl"))
        change = {}
        if "domain" in body:
            change["dns_domain"] = None if body["domain"] is None else \
                dns_name(body["domain"], "domain")
        if "resolvers" in body:
            raw = body["resolvers"]
            if not isinstance(raw, list) or len(raw) > MAX_RESOLVERS:
                raise bad_request(f"resolvers must be a list of at most {MAX_RESOLVERS} "
                                  f"addresses ('ip', 'ip:port', '[ipv6]:port')")
            change["dns_resolvers"] = tuple(dict.fromkeys(resolver(r) for r in raw))
        for field, key, bounds in (("lease_time", "lease_time", LEASE_RANGE),
                                   ("ttl", "dns_ttl", TTL_RANGE)):
            if field in body:
                change[key] = None if body[field] is None else \
                    v.integer(body[field], field, *bounds)
        with self.lock:
            t = self._tenant(tenant_name)
            new = record(t) | change
            if new != record(t):
                self._commit([("put", "tenants", t.name, new)], ())
            return self.dhcp_options_view(self.state.tenants[t.name])

    # --- names ---------------------------------------------------------------------
    def dns_records(self, tenant_name):
        """Every name of the tenant and what it answers."""
        t = self._tenant(tenant_name)
        domain = self.tenant_domain(t)
        names = {}
        for p in self.state.ports_of(t.name):
            for n in _names(p):
                r = names.setdefault(n, {"name": n, "fqdn": f"{n}.{domain}", "ip": [],
                                         "ip6": [], "ports": []})
                r["ports"].append(p.id)
                if p.ip:
                    r["ip"].append(p.ip)
                if p.ip6:
                    r["ip6"].append(p.ip6)
        return [names[n] for n in sorted(names)]

    # --- the agent's view --------------------------------------------------------------
    def host_services(self, host_name, since=None, wait=None):
        """The host's view for its agent; with `since` (an etag it has) wait up
        to `wait` seconds for a view that differs."""
        if since is not None and (not isinstance(since, str) or len(since) > 64):
            raise bad_request("since must be an etag this route gave")
        seconds = 0.0
        if wait is not None:
            try:
                seconds = float(wait)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds <= MAX_WAIT:
                raise bad_request(f"wait must be 0..{MAX_WAIT} seconds; got {wait!r}")
        deadline = time.monotonic() + seconds
        while True:
            snap = self.state.snapshot()
            if host_name not in snap.hosts:
                raise not_found(f"host {host_name!r} does not exist")
            view = self.services_view(snap, host_name)
            if view["etag"] != since or time.monotonic() >= deadline:
                return view
            while self.state.snapshot() is snap and time.monotonic() < deadline:
                time.sleep(POLL)

    def services_view(self, state, host_name):
        ports, tenants = [], {}
        for p in state.ports_on(host_name):
            t = state.tenants[p.tenant]
            entry = {"serial": p.serial, "id": p.id, "tenant": p.tenant, "mac": p.mac,
                     "name": p.name, "ip": p.ip, "prefixlen": None, "gateway": None,
                     "ip6": p.ip6, "prefixlen6": None, "gateway6": None,
                     "mtu": self.mtu_for(t)}
            for cidr, suffix in ((p.subnet, ""), (p.subnet6, "6")):
                if cidr:
                    s = state.subnets[subnet_key(p.tenant, cidr)]
                    entry["prefixlen" + suffix] = s.net.prefixlen
                    entry["gateway" + suffix] = s.gateway
            ports.append(entry)
            if t.name not in tenants:
                tenants[t.name] = self._tenant_services(state, t)
        digest = hashlib.sha256(json.dumps(ports, sort_keys=True).encode())
        for name in sorted(tenants):
            digest.update(tenants[name][1].encode())
        return {"host": host_name, "etag": digest.hexdigest()[:32],
                "service_port": SERVICE_PORT, "ports": ports,
                "tenants": {name: piece for name, (piece, _) in tenants.items()}}

    def _tenant_services(self, state, t):
        """(piece, its digest): built once per state for all the hosts whose
        agents wait (a tenant's names are the same on each of its hosts)."""
        memo = getattr(self, "_services_memo", None)
        if memo is None or memo[0] is not state:
            memo = self._services_memo = (state, {})
        got = memo[1].get(t.name)
        if got is None:
            piece = self._tenant_piece(state, t)
            got = memo[1][t.name] = (piece, hashlib.sha256(
                json.dumps(piece, sort_keys=True).encode()).hexdigest())
        return got

    def _tenant_piece(self, state, t):
        opts = self.dhcp_options_view(t)
        rmac = router_mac(t.id)
        return {"router_mac": rmac, "router_ll6": link_local(rmac), "domain": opts["domain"],
                "resolvers": opts["resolvers"], "lease_time": opts["lease_time"],
                "ttl": opts["ttl"],
                "subnets": [s.cidr for s in state.subnets_of(t.name, version=None)],
                "records": [{"names": list(_names(p)), "ip": p.ip, "ip6": p.ip6}
                            for p in state.ports_of(t.name) if _names(p)]}


def _names(p):
    """A port's DNS names, its own first (the PTR answer), the AWS-style
    ip-a-b-c-d last."""
    own = ((p.name,) if p.name else ()) + tuple(p.aliases)
    return tuple(dict.fromkeys(own + ((implicit_name(p.ip),) if p.ip else ())))


def implicit_name(ip):
    return "ip-" + ip.replace(".", "-")
