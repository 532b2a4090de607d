"""Allocation of the numbers a user may leave out: IPs, MACs, segments, ids.

Pure functions over a State.  Choices are deterministic where that costs
nothing (lowest free IP, lowest free segment) so that two runs of the same
script give the same addresses.  A MAC is derived from the tenant and the IP
(a locally administered address from a hash of both, as Docker's bridge driver
derives its MACs from the IP): an address handed out again -- a container
restarted or re-created with the same IP -- comes back with the same MAC, so
peers whose ARP cache still holds it reach it at once.  MACs must also be
unique against MACs users chose: on a clash a random one is taken.
"""
import hashlib
import random

from controller.model.state import SEGMENT_RANGE
from controller.compile.pipeline import MAX_PORT_SERIAL, MAX_TENANT_ID

_rng = random.SystemRandom()


class Exhausted(Exception):
    pass


def lowest_free(used, lo, hi):
    """The lowest number in lo..hi not in the set `used` (one lookup per
    number tried, no sort of every number used)."""
    n = lo
    while n in used and n <= hi:
        n += 1
    if n > hi:
        raise Exhausted()
    return n


def tenant_id(state):
    return lowest_free({t.id for t in state.tenants.values()}, 1, MAX_TENANT_ID)


def port_serial(state):
    return lowest_free({p.serial for p in state.ports.values()}, 1, MAX_PORT_SERIAL)


def segment(state, network):
    lo, hi = SEGMENT_RANGE[network]
    used = {t.segment for t in state.tenants.values() if t.network == network}
    return lowest_free(used, lo, hi)


def reserved_ips(subnet):
    """Addresses no port may hold: the network and broadcast addresses of an
    IPv4 subnet; of an IPv6 subnet the subnet-router anycast address (RFC 4291,
    its first) and, by the same rule as IPv4, its last; and the gateway."""
    net = subnet.net
    return {str(net.network_address), str(net.broadcast_address), subnet.gateway}


def ip_in_subnet(state, subnet):
    """Lowest address of the subnet that is not reserved or taken (IPv4 or IPv6:
    hosts() of an IPv6 network already skips the subnet-router anycast)."""
    if subnet.version == 6:
        used = {p.ip6 for p in state.ports_of(subnet.tenant) if p.subnet6 == subnet.cidr}
    else:
        used = {p.ip for p in state.ports_of(subnet.tenant) if p.subnet == subnet.cidr}
    taken = reserved_ips(subnet) | used
    for host in subnet.net.hosts():
        ip = str(host)
        if ip not in taken:
            return ip
    raise Exhausted()


def mac(state, tenant=None, ip=None):
    taken = {p.mac for p in state.ports.values()}
    if tenant is not None and ip is not None:
        digest = hashlib.sha256(f"{tenant}/{ip}".encode()).digest()
        candidate = ":".join(f"{o:02x}" for o in (0x02,) + tuple(digest[:5]))
        if candidate not in taken:
            return candidate
    for _ in range(1000):
        octets = [0x02] + [_rng.randrange(256) for _ in range(5)]
        candidate = ":".join(f"{o:02x}" for o in octets)
        if candidate not in taken:
            return candidate
    raise Exhausted()


def first_usable(net):
    return str(net.network_address + 1)
