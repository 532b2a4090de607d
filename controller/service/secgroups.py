"""Security-group operations: groups, their rules, and which ports use them.

A mixin of VpcService (same lock and commit path).  Every tenant has a
`default` group (egress anywhere, ingress from members of `default`), created
with the tenant; a port without `security_groups` is in it.  Rules are
validated into one canonical form here, so the compiler never parses text.
"""
import dataclasses
import ipaddress
import re
import uuid

from controller.compile.pipeline import MAX_GROUPS
from controller.model import ipam
from controller.model.state import SecurityGroup, group_key, record
from controller.service import validate as v
from controller.service.errors import bad_request, conflict, not_found
from controller.service.mutator import mutator

DEFAULT_GROUP = "default"
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
RULE_FIELDS = ("direction", "protocol", "ports", "remote")
PORTS_RE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


def default_rules():
    return (rule_record("egress", "any", None, "0.0.0.0/0"),
            rule_record("ingress", "any", None, f"sg:{DEFAULT_GROUP}"))


IPV6_EGRESS = ("egress", "any", None, "::/0")


def with_ipv6_egress(group):
    """The default group once its tenant has an IPv6 subnet: the IPv4
    "egress anywhere" rule gets its ::/0 twin, as AWS adds one to a VPC's
    default security group when it gets an IPv6 block.  None when nothing
    changes (no IPv4 egress-anywhere rule, or the twin is there)."""
    def shape(r):
        ports = tuple(r["ports"]) if r["ports"] is not None else None     # [lo, hi] stored
        return (r["direction"], r["protocol"], ports, r["remote"])
    shapes = {shape(r) for r in group.rules}
    if ("egress", "any", None, "0.0.0.0/0") not in shapes or IPV6_EGRESS in shapes:
        return None
    return dataclasses.replace(group, rules=group.rules + (rule_record(*IPV6_EGRESS),))


def rule_record(direction, protocol, ports, remote, rule_id=None):
    return {"id": rule_id or uuid.uuid4().hex[:8], "direction": direction, "protocol": protocol,
            "ports": ports, "remote": remote}


class SecurityGroupOperations:
    # --- validation ---------------------------------------------------------
    def _rule(self, tenant, body, new_group=None):
        v.body_fields(body, required=("direction",), optional=("protocol", "ports", "remote"))
        direction = v.choice(body["direction"], "direction", ("ingress", "egress"))
        protocol = v.choice(body.get("protocol", "any"), "protocol", PROTOCOLS)
        ports = body.get("ports")
        if ports is not None:
            if protocol not in ("tcp", "udp"):
                raise bad_request(f"ports only go with protocol tcp or udp, not {protocol}")
            ports = _parse_ports(ports)
        remote = body.get("remote", "0.0.0.0/0")
        if not isinstance(remote, str):
            raise bad_request(f"remote must be a CIDR or 'sg:<group>'; got {remote!r}")
        if remote.startswith("sg:"):
            name = remote[3:]
            if name != new_group and group_key(tenant, name) not in self.state.security_groups:
                raise not_found(f"remote {remote}: tenant {tenant!r} has no security group "
                                f"{name!r}", code="unknown_group")
        else:
            try:
                net = ipaddress.ip_network(remote, strict=False)
            except ValueError:
                raise bad_request(f"remote must be an IPv4 or IPv6 CIDR or 'sg:<group>'; got "
                                  f"{remote!r}") from None
            if (protocol, net.version) in (("icmp", 6), ("icmpv6", 4)):
                raise bad_request(f"protocol {protocol} does not go with the IPv{net.version} "
                                  f"remote {remote} (icmp is ICMPv4, icmpv6 is ICMPv6)")
            remote = str(net)
        return rule_record(direction, protocol, ports, remote)

    def _rules(self, tenant, rules, new_group=None):
        if not isinstance(rules, list):
            raise bad_request("rules must be a list of rule objects")
        return tuple(self._rule(tenant, r, new_group) for r in rules)

    def _group(self, tenant, name):
        self._tenant(tenant)
        g = self.state.security_groups.get(group_key(tenant, name))
        if g is None:
            raise not_found(f"tenant {tenant!r} has no security group {name!r}")
        return g

    def _groups_for_port(self, tenant, names):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad_request("security_groups must be a list of group names")
        for n in names:
            if group_key(tenant, n) not in self.state.security_groups:
                raise not_found(f"tenant {tenant!r} has no security group {n!r}",
                                code="unknown_group")
        return tuple(dict.fromkeys(names))

    # --- groups ----------------------------------------------------------------
    def default_group_ops(self, tenant):
        g = SecurityGroup(tenant, DEFAULT_GROUP, 0, default_rules())
        return [("put", "security_groups", group_key(tenant, DEFAULT_GROUP), record(g))]

    @mutator
    def create_group(self, tenant, body):
        v.body_fields(body, required=("name",), optional=("rules",))
        name = v.name(body["name"], "security group name")
        with self.lock:
            self._tenant(tenant)
            if group_key(tenant, name) in self.state.security_groups:
                raise conflict(f"security group {name!r} already exists", code="duplicate")
            rules = self._rules(tenant, body.get("rules", []), new_group=name)
            try:
                index = ipam.lowest_free({g.index for g in self.state.groups_of(tenant)},
                                         0, MAX_GROUPS - 1)
            except ipam.Exhausted:
                raise conflict(f"tenant {tenant!r} has {MAX_GROUPS} security groups, the most "
                               f"there can be", code="exhausted") from None
            g = SecurityGroup(tenant, name, index, rules)
            self._commit([("put", "security_groups", group_key(tenant, name), record(g))],
                         self._tenant_hosts(tenant))
            return self.group_view(g)

    @mutator
    def replace_rules(self, tenant, name, body):
        v.body_fields(body, required=("rules",))
        with self.lock:
            g = self._group(tenant, name)
            rules = self._rules(tenant, body["rules"], new_group=name)
            return self._put_rules(g, rules)

    @mutator
    def add_rule(self, tenant, name, body):
        with self.lock:
            g = self._group(tenant, name)
            rule = self._rule(tenant, body, new_group=name)
            self._put_rules(g, g.rules + (rule,))
            return self.rule_view(rule)

    @mutator
    def delete_rule(self, tenant, name, rule_id):
        with self.lock:
            g = self._group(tenant, name)
            rules = tuple(r for r in g.rules if r["id"] != rule_id)
            if len(rules) == len(g.rules):
                raise not_found(f"security group {name!r} has no rule {rule_id!r}")
            self._put_rules(g, rules)

    def _put_rules(self, g, rules):
        new = SecurityGroup(g.tenant, g.name, g.index, rules)
        self._commit([("put", "security_groups", group_key(g.tenant, g.name), record(new))],
                     self._tenant_hosts(g.tenant))
        return self.group_view(new)

    def get_group(self, tenant, name):
        return self.group_view(self._group(tenant, name))

    def list_groups(self, tenant):
        self._tenant(tenant)
        return [self.group_view(g) for g in self.state.groups_of(tenant)]

    @mutator
    def delete_group(self, tenant, name):
        with self.lock:
            g = self._group(tenant, name)
            if name == DEFAULT_GROUP:
                raise conflict("the default group cannot be deleted (change its rules instead)",
                               code="in_use")
            users = [p.id for p in self.state.ports_of(tenant) if name in p.security_groups]
            if users:
                raise conflict(f"security group {name!r} is used by port(s) "
                               f"{', '.join(users[:5])}", code="in_use")
            refs = [o.name for o in self.state.groups_of(tenant) if o.name != name and
                    any(r["remote"] == f"sg:{name}" for r in o.rules)]
            if refs:
                raise conflict(f"security group {name!r} is the remote of rules in "
                               f"{', '.join(refs)}", code="in_use")
            self._commit([("del", "security_groups", group_key(tenant, g.name))],
                         self._tenant_hosts(tenant))

    # --- a port's groups ----------------------------------------------------------
    def port_security_fields(self, tenant, body):
        """(security_groups, port_security) from an attach or PATCH body."""
        port_security = body.get("port_security", True)
        port_security = v.boolean(port_security, "port_security")
        groups = body.get("security_groups")
        if groups is not None:
            groups = self._groups_for_port(tenant, groups)
            if not port_security and groups:
                raise bad_request("a port with port_security false has no security groups")
        elif port_security:
            groups = (DEFAULT_GROUP,)
        else:
            groups = ()
        return groups, port_security

    @mutator
    def update_port(self, tenant, port_id, body):
        """Security groups, port security, and (service/names.py) the port's
        DNS name and aliases; an absent field is left as it is.  Names change
        no flow: only a security change recompiles the tenant's hosts."""
        v.body_fields(body, optional=("security_groups", "port_security", "name", "aliases"))
        with self.lock:
            p = self._port(tenant, port_id)
            dns_name, aliases = self.port_name_fields(body, p)
            new = record(p) | {"name": dns_name, "aliases": aliases}
            if {"security_groups", "port_security"} & set(body):
                merged = {"port_security": body.get("port_security", p.port_security)}
                if "security_groups" in body:
                    merged["security_groups"] = body["security_groups"]
                elif merged["port_security"]:
                    merged["security_groups"] = list(p.security_groups) or [DEFAULT_GROUP]
                groups, secured = self.port_security_fields(tenant, merged)
                new |= {"security_groups": groups, "port_security": secured}
            if new != record(p):
                security = (tuple(new["security_groups"]), new["port_security"]) != \
                    (tuple(p.security_groups), p.port_security)
                self._commit([("put", "ports", p.id, new)],
                             self._tenant_hosts(tenant) if security else ())
            return self.port_view(self.state.ports[p.id])


def _parse_ports(text):
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    m = PORTS_RE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise bad_request(f"ports must look like '22' or '8000-8080'; got {text!r}")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 1 <= lo <= hi <= 65535:
        raise bad_request(f"ports {text!r}: need 1 <= first <= last <= 65535")
    return [lo, hi]

