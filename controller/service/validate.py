"""Input validation: every field of every request is checked here.

Validators return the canonical form of a value (lowercase MAC, int dpid,
compressed IPv4 and IPv6) so the rest of the code never sees two spellings of one thing.
"""
import ipaddress
import re

from controller.service.errors import bad_request

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def body_fields(body, required=(), optional=()):
    """Check a JSON body is an object with exactly the allowed fields."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join(sorted(set(required) | set(optional)))
        raise bad_request(f"unknown field(s): {', '.join(unknown)} (allowed: {allowed})",
                          code="unknown_field")
    missing = [f for f in required if f not in body]
    if missing:
        raise bad_request(f"missing required field(s): {', '.join(missing)}",
                          code="missing_field")
    return body


def name(value, what="name"):
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise bad_request(f"{what} must be 1-63 characters of letters, digits, '_', '.', '-', "
                          f"starting with a letter or digit; got {value!r}")
    return value


def ifname(value, what="port"):
    if not isinstance(value, str) or not IFNAME_RE.fullmatch(value) or value in (".", ".."):
        raise bad_request(f"{what} must be an interface name of 1-15 characters "
                          f"(letters, digits, '_.:@-'); got {value!r}")
    return value


def ipv4(value, what="ip"):
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an IPv4 address string; got {value!r}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise bad_request(f"{what} is not a valid IPv4 address: {value!r}") from None


def ipv6(value, what="ip6"):
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an IPv6 address string; got {value!r}")
    try:
        addr = ipaddress.IPv6Address(value)
    except ValueError:
        raise bad_request(f"{what} is not a valid IPv6 address: {value!r}") from None
    if addr.ipv4_mapped is not None or addr.is_multicast or addr.is_link_local \
            or addr.is_loopback or addr.is_unspecified:
        raise bad_request(f"{what} {value!r} is not a unicast global or unique-local "
                          f"address (multicast, link-local, loopback, :: and IPv4-mapped "
                          f"addresses cannot be assigned)")
    return str(addr)


# Prefix lengths a subnet may have.  IPv6: /64 is what hosts expect of a link
# (RFC 4291, SLAAC, privacy addresses); longer ones up to /120 work because
# addresses are assigned, never autoconfigured; shorter than /64 is not a link.
PREFIX_LIMITS = {4: (8, 29), 6: (64, 120)}


def cidr(value, what="cidr", versions=(4, 6)):
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a string like '10.0.0.0/24' or 'fd00:1::/64'; "
                          f"got {value!r}")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise bad_request(f"{what} {value!r} is not a valid network ({exc})") from None
    if net.version not in versions:
        raise bad_request(f"{what} {value!r}: only IPv{versions[0]} is accepted here")
    if "/" not in value:
        raise bad_request(f"{what} {value!r} needs a prefix length, e.g. "
                          f"{value}/{24 if net.version == 4 else 64}")
    lo, hi = PREFIX_LIMITS[net.version]
    if not lo <= net.prefixlen <= hi:
        raise bad_request(f"{what} {value!r}: an IPv{net.version} prefix length must be "
                          f"between /{lo} and /{hi}")
    if net.version == 6 and (net.is_multicast or net.is_link_local or net.is_loopback
                             or net.network_address.ipv4_mapped is not None):
        raise bad_request(f"{what} {value!r}: a subnet must be global or unique-local unicast "
                          f"(not multicast, link-local, loopback or IPv4-mapped)")
    return net


def mac(value, what="mac"):
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        raise bad_request(f"{what} must look like 02:00:00:aa:bb:cc; got {value!r}")
    canon = value.lower().replace("-", ":")
    first = int(canon[:2], 16)
    if first & 1:
        raise bad_request(f"{what} {canon} is a multicast address; a port needs a unicast MAC")
    if canon == "00:00:00:00:00:00":
        raise bad_request(f"{what} may not be all zeros")
    return canon


def dpid(value):
    """Accept an int or 1-16 hex digits (optionally '0x' or colon-separated)."""
    if isinstance(value, bool):
        raise bad_request(f"dpid must be an integer or a hex string; got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        text = value.lower().replace(":", "")
        text = text[2:] if text.startswith("0x") else text
        if not re.fullmatch(r"[0-9a-f]{1,16}", text):
            raise bad_request(f"dpid must be up to 16 hex digits; got {value!r}")
        n = int(text, 16)
    else:
        raise bad_request(f"dpid must be an integer or a hex string; got {value!r}")
    if not 0 < n < 2 ** 64:
        raise bad_request(f"dpid must be between 1 and 2^64-1; got {value!r}")
    return n


def integer(value, what, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"{what} must be an integer; got {value!r}")
    if not lo <= value <= hi:
        raise bad_request(f"{what} must be between {lo} and {hi}; got {value}",
                          code="out_of_range")
    return value


def boolean(value, what):
    if not isinstance(value, bool):
        raise bad_request(f"{what} must be true or false; got {value!r}")
    return value


def choice(value, what, options):
    if value not in options:
        raise bad_request(f"{what} must be one of {', '.join(options)}; got {value!r}")
    return value


def dpid_str(n):
    return f"{n:016x}"
