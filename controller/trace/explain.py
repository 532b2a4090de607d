"""What a trace shows: every table a packet passed, whose flow it hit (the
cookie's owner, named from the model), and the verdict in words.

Why words and not flow dumps: the question is "why can't A reach B?", and the
answer an operator can act on names a port, a security group and its missing
rule, or the NAT setting -- the things the REST API changes.  Owners of
another tenant are never named (a tenant token learns nothing about others).
"""
from controller.compile.pipeline import (COOKIE_KIND_SHIFT, COOKIE_OWNER_SHIFT, OWNER_MASK,
                                         SERVICE_PORT, TENANT_MASK, CookieKind, Prio, Table,
                                         metadata_for)
from controller.compile.secgroups import rule_flows
from controller.flowsim import format_flow, format_packet
from controller.trace import words
from topology.graph import dp_node, port_node

TABLE_NAMES = {int(t): t.name for t in Table}


class Context:
    """One trace's model, network and request, with the indexes owners need."""

    def __init__(self, state, wiring, req):
        self.state, self.wiring, self.req = state, wiring, req
        self.tenant = req.tenant
        self.by_serial = {p.serial: p for p in state.ports.values()}
        self.forwards = {f.serial: f for f in state.port_forwards.values()}
        self.fips = {f.serial: f for f in state.floating_ips.values()}

    # --- names --------------------------------------------------------------
    def port_text(self, p):
        if p.tenant != self.tenant.name:
            return "a port of another tenant"
        return f"port {p.id} ({p.port} on {p.host}, {p.ip})"

    def port_name(self, host, ofport):
        return self.wiring.port_names.get(host, {}).get(ofport, str(ofport))

    def packet_view(self):
        r = self.req
        dst = {"ip": r.dst_ip}
        if r.dst_port is not None:
            dst.update(port_id=r.dst_port.id, port=r.dst_port.port, host=r.dst_port.host)
        return {"from": {"port_id": r.src.id, "port": r.src.port, "host": r.src.host,
                         "ip": r.src.ip, "mac": r.src.mac},
                "to": dst, "proto": r.proto, "dport": r.dport, "sport": r.sport,
                "src_ip": r.src_ip, "text": r.describe()}

    # --- owners -------------------------------------------------------------
    def owner(self, flow):
        """The cookie decoded: kind, owner id, and who that is, in words."""
        kind_no = (flow.cookie >> COOKIE_KIND_SHIFT) & 0xFF
        oid = (flow.cookie >> COOKIE_OWNER_SHIFT) & OWNER_MASK
        try:
            kind = CookieKind(kind_no)
        except ValueError:
            return {"kind": "foreign", "id": oid, "text": "not a flow of this controller"}
        out = {"kind": kind.name.lower(), "id": oid, "text": self._owner_text(kind, oid, flow)}
        if kind in (CookieKind.PORT, CookieKind.REMOTE, CookieKind.ARP, CookieKind.SG_LOOKUP):
            p = self.by_serial.get(oid)
            if p is not None and p.tenant == self.tenant.name:
                out["port_id"] = p.id
        if kind == CookieKind.SECGROUP:
            group, rule = self.rule_of(flow)
            if group is not None:
                out["group"] = group.name
            if rule is not None:
                out["rule"] = rule
        return out

    def _tenant_name(self, tid):
        t = self.state.tenant_by_id(tid)
        return None if t is None or t.name != self.tenant.name else t.name

    def _owner_text(self, kind, oid, flow):
        K = CookieKind
        if kind == K.BASE:
            return f"the pipeline's default for table {TABLE_NAMES.get(flow.table, flow.table)}"
        if kind in (K.PORT, K.REMOTE, K.ARP, K.SG_LOOKUP):
            p = self.by_serial.get(oid)
            if p is None:
                return f"port serial {oid} (no longer in the model)"
            what = {K.PORT: "", K.REMOTE: "towards ", K.ARP: "ARP answer for ",
                    K.SG_LOOKUP: "security groups of the IP of "}[kind]
            return what + self.port_text(p)
        if kind in (K.TENANT, K.ROUTER, K.NAT):
            name = self._tenant_name(oid)
            if name is None:
                return "another tenant"
            return {K.TENANT: f"tenant {name}", K.ROUTER: f"the router of tenant {name}",
                    K.NAT: f"NAT of tenant {name}"}[kind]
        if kind == K.EXTERNAL:
            return "the host's external port"
        if kind == K.FORWARD:
            f = self.forwards.get(oid)
            if f is None or f.tenant != self.tenant.name:
                return "a port forward of another tenant"
            return (f"port forward {f.id} ({f.protocol} {f.external_port} -> port "
                    f"{f.port_id}:{f.internal_port})")
        if kind == K.FLOATING:
            f = self.fips.get(oid)
            if f is None or f.tenant != self.tenant.name:
                return "a floating IP of another tenant"
            return f"floating IP {f.external_ip} ({f.ip})"
        if kind == K.SECGROUP:
            group, rule = self.rule_of(flow)
            if group is None:
                return "a security group of another tenant"
            if rule is None:
                return f"security group {group.name}"
            return f"security group {group.name}, rule {rule['text']}"
        return f"{kind.name.lower()} {oid}"

    def rule_of(self, flow):
        """(group, rule view) of a security-group flow: the rule whose compiled
        flows include this one (the cookie names only the group)."""
        oid = (flow.cookie >> COOKIE_OWNER_SHIFT) & OWNER_MASK
        tenant = self.state.tenant_by_id(oid >> 5)
        if tenant is None or tenant.name != self.tenant.name:
            return None, None
        group = next((g for g in self.state.groups_of(tenant.name) if g.index == oid & 31),
                     None)
        if group is None:
            return None, None
        meta = (metadata_for(tenant.id), TENANT_MASK)
        for rule in group.rules:
            if flow in rule_flows(self.state, tenant, group, rule, meta):
                return group, words.rule_view(rule, reply=words.is_reply_use(flow, rule))
        return group, None

    # --- views ---------------------------------------------------------------
    def step_view(self, step):
        flow = step.flow
        out = {"table": step.table, "table_name": TABLE_NAMES.get(step.table, str(step.table))}
        if flow is None:
            out.update(flow=None, text="no flow matched: table miss")
            return out
        out.update(flow=format_flow(flow), priority=flow.priority,
                   cookie=f"{flow.cookie:#018x}", owner=self.owner(flow),
                   text=words.step_text(flow))
        return out

    def hop_view(self, hop):
        res = hop.result
        return {"host": hop.switch, "in_port": hop.in_port,
                "in_port_name": self.port_name(hop.switch, hop.in_port),
                "packet": format_packet(res.steps[0].packet) if res.steps else None,
                "steps": [self.step_view(s) for s in res.steps],
                "outputs": [{"port": n, "name": self.port_name(hop.switch, n),
                             "to": self.output_text(hop.switch, n, pkt)}
                            for n, pkt in res.outputs],
                "dropped": res.dropped, "notes": list(res.notes)}

    def output_text(self, host, ofport, pkt):
        p = self.wiring.by_location.get((host, ofport))
        if p is not None:
            return self.port_text(p)
        h = self.wiring.hosts.get(host)
        name = self.port_name(host, ofport)
        if h is not None and name == h.external_port:
            return f"the outside network, from {pkt.get('ipv4_src')}"
        if h is not None and name == h.uplink_port:
            return f"the VLAN fabric, tag {pkt.get('vlan_vid', 0) & 0xFFF}"
        if pkt.get("tun_ipv4_dst"):
            peer = self.wiring.by_tunnel_ip.get(pkt["tun_ipv4_dst"], pkt["tun_ipv4_dst"])
            return f"a tunnel to {peer} (key {pkt.get('tunnel_id', 0)})"
        return name

    def arp_view(self, target, mac, hop):
        answered_by = None
        for step in hop.result.steps:
            if step.table == Table.ARP and step.flow is not None and \
                    step.flow.priority == Prio.ARP.RESPOND:
                answered_by = self.owner(step.flow)["text"]
        return {"target": target, "answered": mac is not None, "mac": mac,
                "answered_by": answered_by}


# --- verdicts -------------------------------------------------------------------
def _verdict(action, code, reason, **extra):
    return {"action": action, "code": code, "reason": reason, **extra}


def not_sent(ctx):
    p = ctx.req.src
    host = ctx.state.hosts.get(p.host)
    if host is None:
        why = f"its host {p.host} is not registered"
    elif p.host not in ctx.wiring.hosts:
        why = f"its host {p.host} is not connected to the controller"
    else:
        why = f"host {p.host} has no OVS port {p.port} (no veth plugged in)"
    return _verdict("not_sent", "port_down", f"not sent: port {p.id} cannot send: {why}",
                    host=p.host)


def arp_unanswered(ctx, target, hop):
    drop = words.drop(ctx, hop)
    if drop is not None and drop["code"] == "spoof":
        return _verdict("dropped", **drop)
    if target == ctx.req.dst_ip:
        return _verdict("dropped", "not_in_tenant",
                        f"dropped: no port of tenant {ctx.tenant.name} has {target}, so its ARP "
                        f"request is not answered; tenants are isolated: a port of another "
                        f"tenant is never reached", host=ctx.req.src.host)
    return _verdict("dropped", "no_gateway",
                    f"dropped: the gateway {target} does not answer ARP", host=ctx.req.src.host)


def simulator_error(ctx, exc):
    return _verdict("error", "simulator_error",
                    f"the desired flows cannot be run as OVS would: {exc}")


def verdict(ctx, hops, deliveries, lost):
    req = ctx.req
    for d in deliveries:
        p = ctx.wiring.by_location.get((d.switch, d.port))
        if p is not None and req.dst_port is not None and p.id == req.dst_port.id:
            return _verdict("delivered", "delivered",
                            f"delivered to {ctx.port_text(p)}", host=d.switch)
        h = ctx.wiring.hosts.get(d.switch)
        if h is not None and ctx.port_name(d.switch, d.port) == h.external_port:
            src = d.packet.get("ipv4_src")
            sport = d.packet.get(f"{req.proto}_src")
            return _verdict("forwarded", "outside",
                            f"leaves {d.switch} by its external port {h.external_port} to "
                            f"{req.dst_ip} as {src}{f':{sport}' if sport else ''}",
                            host=d.switch)
        if ctx.port_name(d.switch, d.port) == SERVICE_PORT:
            return _verdict("delivered", "agent",
                            f"answered on {d.switch} by its vpc-agent (DHCP/DNS, through the "
                            f"service port {SERVICE_PORT}): {req.dst_ip} is the port's DNS "
                            f"server", host=d.switch)
        if p is not None and p.id == req.src.id and d.packet.get("icmpv4_type") == 0:
            return _verdict("delivered", "answered",
                            f"answered by the router of tenant {ctx.tenant.name}: "
                            f"{req.dst_ip} is a gateway", host=d.switch)
    dst = req.dst_port
    if dst is not None and dst.host not in ctx.wiring.hosts:
        why = "is not registered" if dst.host not in ctx.state.hosts else \
            "is not connected to the controller"
        return _verdict("dropped", "host_down",
                        f"not delivered: the host of port {dst.id}, {dst.host}, {why}, so "
                        f"no flow leads there", host=req.src.host)
    drops = [words.drop(ctx, h) for h in hops if h.result.dropped]
    drops = [d for d in drops if d is not None]
    if drops:
        best = min(drops, key=lambda d: words.PRIORITY.get(d["code"], 50))
        return _verdict("dropped", **best)
    if lost:
        first = lost[0]
        peer = ctx.wiring.by_tunnel_ip.get(first.packet.get("tun_ipv4_dst"))
        return _verdict("dropped", "lost",
                        f"lost on the way: {first.switch} sent it to "
                        f"{first.reason}{f' ({peer})' if peer else ''}, which is not connected",
                        host=first.switch)
    return _verdict("dropped", "not_delivered",
                    f"not delivered: it reached {', '.join(sorted({h.switch for h in hops}))} "
                    f"but no port took it", host=req.src.host)


def path(ctx, out):
    """The path for the topology picture, as its node ids (port, bridge, ...)."""
    nodes = []

    def add(node):
        if node and (not nodes or nodes[-1] != node):
            nodes.append(node)

    src_host = ctx.state.hosts.get(ctx.req.src.host)
    if src_host is not None:
        add(port_node(src_host.dpid, ctx.req.src.port))
    for i, hop in enumerate(out.get("hops") or ()):
        h = ctx.wiring.hosts[hop["host"]]
        if i > 0:                                  # in by its tunnel port or uplink
            add(port_node(h.dpid, hop["in_port_name"]))
        add(dp_node(h.dpid))
        for o in hop["outputs"]:
            add(port_node(h.dpid, o["name"]))
    if not out.get("hops") and src_host is not None:
        add(dp_node(src_host.dpid))
    return nodes

