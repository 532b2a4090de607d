"""A port's addresses: which of its tenant's subnets, which IPv4 and IPv6 address.

Why a module of its own: with dual-stack a port may get an address from each
address family its tenant has, or from one it chooses, and every choice has
the same rules (a requested address must be inside the chosen subnet, not
reserved, not taken in the tenant); keeping them here keeps create_port a
sequence of steps.

Request fields (POST /v1/tenants/{t}/ports):
  ip, subnet       the IPv4 address / subnet (both optional)
  ip6, subnet6     the IPv6 address / subnet (both optional)
  family           "dual" | "ipv4" | "ipv6"; default: every family the tenant
                   has a subnet of (both = dual-stack); a requested ip or ip6
                   pins that family's address and keeps the other one
Raises ApiError having changed nothing; returns a PortAddresses.
"""
import ipaddress
from dataclasses import dataclass

from controller.model import ipam
from controller.service import validate as v
from controller.service.errors import bad_request, conflict, not_found

FAMILIES = ("dual", "ipv4", "ipv6")
FIELDS = ("ip", "subnet", "ip6", "subnet6", "family")


@dataclass(frozen=True)
class PortAddresses:
    ip: object          # IPv4 text or None
    subnet: object      # its subnet's CIDR or None
    ip6: object
    subnet6: object


@dataclass(frozen=True)
class _Want:
    version: int
    ip: object
    subnet: object


def parse(body):
    """The address fields of a port request, validated; what each family asks for."""
    ip = None if body.get("ip") is None else v.ipv4(body["ip"], "ip")
    ip6 = None if body.get("ip6") is None else v.ipv6(body["ip6"], "ip6")
    subnet = None if body.get("subnet") is None else \
        str(v.cidr(body["subnet"], "subnet", versions=(4,)))
    subnet6 = None if body.get("subnet6") is None else \
        str(v.cidr(body["subnet6"], "subnet6", versions=(6,)))
    family = body.get("family")
    if family is not None:
        v.choice(family, "family", FAMILIES)
        if family == "ipv4" and (ip6 or subnet6):
            raise bad_request("family ipv4 takes no ip6 or subnet6")
        if family == "ipv6" and (ip or subnet):
            raise bad_request("family ipv6 takes no ip or subnet")
    return family, _Want(4, ip, subnet), _Want(6, ip6, subnet6)


def assign(state, tenant, body):
    """Choose the subnets and addresses of a new port of `tenant` (validated)."""
    family, want4, want6 = parse(body)
    have4, have6 = state.subnets_of(tenant.name, 4), state.subnets_of(tenant.name, 6)
    if not have4 and not have6:
        raise conflict(f"tenant {tenant.name!r} has no subnet yet "
                       f"(POST /v1/tenants/{tenant.name}/subnets first)", code="no_subnet")
    if family is None:
        asked4, asked6 = bool(want4.ip or want4.subnet), bool(want6.ip or want6.subnet)
        use4, use6 = bool(have4), bool(have6)      # pinning one family keeps the other
        if asked4 and not have4:
            raise conflict(f"tenant {tenant.name!r} has no IPv4 subnet", code="no_subnet")
        if asked6 and not have6:
            raise conflict(f"tenant {tenant.name!r} has no IPv6 subnet", code="no_subnet")
    else:
        use4, use6 = family in ("dual", "ipv4"), family in ("dual", "ipv6")
        for used, have, name in ((use4, have4, "IPv4"), (use6, have6, "IPv6")):
            if used and not have:
                raise conflict(f"family {family}: tenant {tenant.name!r} has no {name} subnet",
                               code="no_subnet")
    ip, subnet = _address(state, tenant, have4, want4) if use4 else (None, None)
    ip6, subnet6 = _address(state, tenant, have6, want6) if use6 else (None, None)
    return PortAddresses(ip, subnet, ip6, subnet6)


def _address(state, tenant, subnets, want):
    subnet = _pick_subnet(tenant, subnets, want)
    ip = want.ip
    if ip is None:
        try:
            ip = ipam.ip_in_subnet(state, subnet)
        except ipam.Exhausted:
            raise conflict(f"subnet {subnet.cidr} has no free address", code="exhausted") from None
        return ip, subnet.cidr
    if ip in ipam.reserved_ips(subnet):
        what = "network, broadcast or gateway" if want.version == 4 else \
            "subnet-router anycast, last or gateway"
        raise bad_request(f"{ip} is the {what} address of {subnet.cidr}")
    for p in state.ports_of(tenant.name):
        if ip in (p.ip, p.ip6):
            raise conflict(f"{ip} is already used by port {p.id} of tenant {tenant.name!r}",
                           code="ip_in_use")
    return ip, subnet.cidr


def _pick_subnet(tenant, subnets, want):
    if want.subnet is not None:
        match = [s for s in subnets if s.cidr == want.subnet]
        if not match:
            raise not_found(f"tenant {tenant.name!r} has no subnet {want.subnet}")
        if want.ip is not None and ipaddress.ip_address(want.ip) not in match[0].net:
            raise bad_request(f"{want.ip} is not inside subnet {match[0].cidr}")
        return match[0]
    if want.ip is None:
        return subnets[0]
    for s in subnets:
        if ipaddress.ip_address(want.ip) in s.net:
            return s
    raise bad_request(f"{want.ip} is not inside any IPv{want.version} subnet of tenant "
                      f"{tenant.name!r} ({', '.join(s.cidr for s in subnets)})")
