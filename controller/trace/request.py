"""A trace request, checked before anything runs: bad input is a 400, an unknown
tenant or port a 404 (the words other routes use), and nothing is changed.

Body of POST /v1/tenants/{t}/trace:
  from     the id (or OVS port name) of the tenant's port the packet leaves
  to       an IPv4 address, or the id (or OVS port name) of a port of the tenant
  proto    tcp | udp | icmp (default icmp: an echo request)
  dport    destination port, 1-65535, for tcp/udp (required there)
  sport    source port for tcp/udp (default 40000)
  src_ip   the source address the packet claims (default the port's own:
           give another to see port security drop a spoofed packet)
  live     also run the packet through `ofproto/trace` on the real switches
"""
import ipaddress
from dataclasses import dataclass

from controller.service.errors import bad_request, not_found

PROTOS = ("tcp", "udp", "icmp")
FIELDS = ("from", "to", "proto", "dport", "sport", "src_ip", "live")
DEFAULT_SPORT = 40000


@dataclass(frozen=True)
class TraceRequest:
    tenant: object        # model Tenant
    src: object           # model Port
    dst_ip: str
    dst_port: object      # model Port, when `to` names one or its IP is one of the tenant's
    proto: str
    dport: object
    sport: object
    src_ip: str
    live: bool = False

    def describe(self):
        """The packet in one line: 'tcp 10.0.0.2:40000 -> 10.0.0.3:22'."""
        if self.proto == "icmp":
            return f"icmp echo {self.src_ip} -> {self.dst_ip}"
        return f"{self.proto} {self.src_ip}:{self.sport} -> {self.dst_ip}:{self.dport}"


def _ipv4(value, what):
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an IPv4 address as a string; got {value!r}")
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        raise bad_request(f"{what} must be an IPv4 address; got {value!r}") from None
    if str(addr) != value:
        raise bad_request(f"{what} must be written canonically ({addr}); got {value!r}")
    if addr.is_multicast or addr.is_unspecified or value == "255.255.255.255":
        raise bad_request(f"{what} must be a unicast address; got {value}")
    return value


def _l4_port(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise bad_request(f"{what} must be an integer 1-65535; got {value!r}",
                          code="out_of_range")
    return value


def _looks_like_ip(value):
    return isinstance(value, str) and value.count(".") == 3 and \
        all(part.isdigit() for part in value.split("."))


def parse(state, tenant_name, body):
    """The checked request, or ApiError (400/404) having looked at nothing else."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise bad_request(f"unknown field(s): {', '.join(unknown)} "
                          f"(allowed: {', '.join(FIELDS)})", code="unknown_field")
    missing = [f for f in ("from", "to") if f not in body]
    if missing:
        raise bad_request(f"missing required field(s): {', '.join(missing)}",
                          code="missing_field")
    tenant = state.tenants.get(tenant_name)
    if tenant is None:
        raise not_found(f"tenant {tenant_name!r} does not exist")
    proto = body.get("proto") or "icmp"
    if proto not in PROTOS:
        raise bad_request(f"proto must be one of {', '.join(PROTOS)}; got {proto!r}")
    dport, sport = body.get("dport"), body.get("sport")
    if proto == "icmp":
        if dport is not None or sport is not None:
            raise bad_request("dport and sport are for tcp and udp; icmp has no ports")
    else:
        if dport is None:
            raise bad_request(f"{proto} needs dport (the destination port)",
                              code="missing_field")
        dport = _l4_port(dport, "dport")
        sport = DEFAULT_SPORT if sport is None else _l4_port(sport, "sport")
    live = body.get("live", False)
    if not isinstance(live, bool):
        raise bad_request(f"live must be true or false; got {live!r}")
    src = _port(state, tenant, body["from"], "from")
    to = body["to"]
    if not isinstance(to, str) or not to:
        raise bad_request(f"to must be an IPv4 address or a port id; got {to!r}")
    if _looks_like_ip(to):
        dst_ip = _ipv4(to, "to")
        dst_port = state.port_with_ip(tenant.name, dst_ip)
    else:
        dst_port = _port(state, tenant, to, "to")
        dst_ip = dst_port.ip
    src_ip = src.ip if body.get("src_ip") is None else _ipv4(body["src_ip"], "src_ip")
    return TraceRequest(tenant, src, dst_ip, dst_port, proto, dport, sport, src_ip, live)


def _port(state, tenant, value, what):
    """A port of the tenant by id, or by its OVS port name when that is unique in
    the tenant (another tenant's port is a 404, as everywhere)."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what} must be a port id; got {value!r}")
    port = state.ports.get(value)
    if port is None:        # the OVS port's name, when only one port of the tenant has it
        named = [p for p in state.ports_of(tenant.name) if p.port == value]
        port = named[0] if len(named) == 1 else None
    if port is None or port.tenant != tenant.name:
        raise not_found(f"tenant {tenant.name!r} has no port {value!r}")
    return port
