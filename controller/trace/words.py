"""The sentences of a trace: what a flow does, and why a packet was dropped.

One branch per drop point of the pipeline (docs/pipeline.md, "Tables"), each
naming what the operator can change: the port's addresses (spoofing), the
security group and the rule it lacks, the tenant's subnets (no route), SNAT
and floating IPs (NAT miss).  `code` is a stable word for programs and tests;
`reason` is the sentence.
"""
from controller.compile.pipeline import (IP_PROTO, REG_DELIVER_PORT, TUNNEL_PORTS,
                                         Prio, Table)
from controller.flowsim import format_flow

# When several copies of a packet were dropped (a flood), the most telling one
# is reported: a lower number wins.
PRIORITY = {"spoof": 0, "security_group": 1, "invalid": 2, "no_route": 3, "nat_miss": 4,
            "ttl": 5, "classify": 6, "unknown_destination": 7, "flood": 90}
_PROTO_NAME = {v: k for k, v in IP_PROTO.items()}


def rule_view(rule, reply=False):
    ports = rule.get("ports")
    ports = None if ports is None else (
        str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}")
    what = rule["protocol"] if ports is None else f"{rule['protocol']}/{ports}"
    side = "from" if rule["direction"] == "ingress" else "to"
    text = f"{rule['direction']} {what} {side} {rule['remote']}"
    if reply:
        text = f"{text} (its replies)"
    return {"id": rule.get("id"), "direction": rule["direction"],
            "protocol": rule["protocol"], "ports": ports, "remote": rule["remote"],
            "reply": reply, "text": text}


def is_reply_use(flow, rule):
    """A rule's flows in the other direction's table let its replies through."""
    own = Table.SG_IN if rule["direction"] == "ingress" else Table.SG_OUT
    return flow.table != int(own)


def step_text(flow):
    """What a flow does, as ovs-ofctl prints its actions."""
    return format_flow(flow).rsplit(" actions=", 1)[1]


def proto_text(pkt):
    proto = _PROTO_NAME.get(pkt.get("ip_proto"))
    if proto in ("tcp", "udp"):
        return f"{proto}/{pkt.get(f'{proto}_dst')}"
    return proto or f"ip proto {pkt.get('ip_proto')}"


def _groups(ctx, port):
    names = list(port.security_groups) if port.port_security else []
    return f"security group{'s' if len(names) != 1 else ''} {', '.join(names) or '(none)'}"


def drop(ctx, hop):
    """{code, reason, host, table, table_name, flow, cookie} for a hop that
    output nothing, or None when it did output."""
    res = hop.result
    if not res.dropped or not res.steps:
        return None
    last = res.steps[-1]
    flow, pkt, table, host = last.flow, last.packet, last.table, hop.switch
    code, reason = _why(ctx, hop, table, flow, pkt)
    out = {"code": code, "reason": reason, "host": host, "table": table,
           "table_name": Table(table).name if table in Table._value2member_map_ else str(table)}
    if flow is not None:
        out.update(flow=format_flow(flow), cookie=f"{flow.cookie:#018x}",
                   owner=ctx.owner(flow))
    return out


def _why(ctx, hop, table, flow, pkt):
    req, host, tenant = ctx.req, hop.switch, ctx.tenant.name
    prio = flow.priority if flow is not None else 0
    if hop.result.drop_reason == "ttl expired":
        return "ttl", f"dropped on {host}: its TTL ran out (a routing loop?)"
    if table == Table.PORT_SECURITY:
        return "spoof", _spoof(ctx, pkt, prio)
    if table in (Table.SG_OUT, Table.SG_IN):
        if prio == Prio.SG_OUT.INVALID:
            return "invalid", f"dropped on {host}: conntrack finds the packet invalid"
        if table == Table.SG_OUT:
            return "security_group", (f"dropped by {_groups(ctx, req.src)}: no egress rule "
                                      f"for {proto_text(pkt)} to {pkt.get('ipv4_dst')} "
                                      f"(port {req.src.id} sends)")
        port = ctx.wiring.by_location.get((host, pkt.get(REG_DELIVER_PORT.oxm, 0)))
        if port is None or port.tenant != tenant:
            return "security_group", f"dropped on {host} by the receiving port's security groups"
        return "security_group", (f"dropped by {_groups(ctx, port)}: no ingress rule for "
                                  f"{proto_text(pkt)} from {pkt.get('ipv4_src')} (port "
                                  f"{port.id} receives)")
    if table == Table.L3:
        return "no_route", _no_route(ctx, host, prio, pkt)
    if table in (Table.NAT_OUT, Table.NAT_SHARED, Table.EXT_OUT):
        return "nat_miss", _nat_miss(ctx, host, table, hop.result.notes)
    if table == Table.CLASSIFY:
        name = ctx.port_name(host, pkt.get("in_port"))
        if name in TUNNEL_PORTS.values():
            return "classify", (f"dropped on {host}: tunnel key {pkt.get('tunnel_id', 0)} is no "
                                f"tenant with ports on this host")
        return "classify", f"dropped on {host}: port {name} belongs to no tenant here"
    if table == Table.L2:
        return "unknown_destination", (f"dropped on {host}: {pkt.get('eth_dst')} is no port of "
                                       f"tenant {tenant} here")
    if table == Table.FLOOD:
        return "flood", f"flooded on {host}, and no port there took it"
    name = Table(table).name if table in Table._value2member_map_ else table
    return "dropped", f"dropped on {host} in table {table} ({name})"


def _spoof(ctx, pkt, prio):
    p = ctx.req.src
    if prio == Prio.PORT_SECURITY.DHCP_SERVER:
        return f"dropped: port {p.id} may not send DHCP server replies (UDP from port 67)"
    if pkt.get("vlan_vid"):
        return f"dropped: port {p.id} sent an 802.1Q-tagged frame"
    if pkt.get("eth_src") != p.mac:
        return f"dropped: source MAC {pkt.get('eth_src')} is not bound to port {p.id}"
    src = pkt.get("ipv4_src", pkt.get("arp_spa"))
    if src is not None and src != p.ip:
        return f"dropped: source {src} is not bound to port {p.id}"
    return f"dropped: port {p.id} may send only IPv4 and ARP from its own addresses"


def _no_route(ctx, host, prio, pkt):
    tenant, dst = ctx.tenant, pkt.get("ipv4_dst")
    if prio == Prio.L3.SUBNET_DROP:
        return (f"dropped by the router of tenant {tenant.name}: no route to {dst}: it is in "
                f"a subnet of the tenant, but no port has that address")
    h = ctx.wiring.hosts.get(host)
    if h is None or not h.has_external:
        why = f"host {host} has no external network"
    elif h.external_port not in ctx.wiring.port_names.get(host, {}).values():
        why = f"host {host}'s external port {h.external_port} does not exist"
    elif not tenant.snat:
        why = f"SNAT is off for tenant {tenant.name}"
    else:
        why = f"host {host} does no NAT for tenant {tenant.name}"
    return (f"dropped by the router of tenant {tenant.name}: no route to {dst}: it is outside "
            f"the tenant's subnets and {why}")


def _nat_miss(ctx, host, table, notes):
    tenant, p = ctx.tenant, ctx.req.src
    if table == Table.NAT_OUT:
        fips = [f for f in ctx.state.fips_of(tenant.name) if f.ip == p.ip]
        why = []
        if not tenant.snat:
            why.append(f"SNAT is off for tenant {tenant.name}")
        if not fips:
            why.append(f"port {p.id} has no floating IP")
        return (f"dropped by NAT on {host} (NAT miss): no NAT rule takes a new connection "
                f"from {p.ip}: {' and '.join(why) or 'nothing matched'}")
    if any("exhausted" in n for n in notes):
        return f"dropped by NAT on {host} (NAT miss): its SNAT ports are exhausted"
    h = ctx.wiring.hosts.get(host)
    if table == Table.EXT_OUT and h is not None and \
            ctx.wiring.topo.gateway_mac(h.dpid) is None:
        return (f"dropped on {host} (NAT miss): the MAC of the external gateway "
                f"{h.external_gateway} is not known yet (it did not answer ARP)")
    return f"dropped by NAT on {host} (NAT miss): the packet was not translated"

