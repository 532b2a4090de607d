"""Input validation: every field of every request is checked here.

Validators return the canonical form of a value (lowercase MAC, int dpid,
compressed IPv4) so the rest of the code never sees two spellings of one thing.
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


def cidr(value, what="cidr"):
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a string like '10.0.0.0/24'; got {value!r}")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise bad_request(f"{what} {value!r} is not a valid network ({exc})") from None
    if net.version != 4:
        raise bad_request(f"{what} {value!r}: only IPv4 subnets are supported")
    if "/" not in value:
        raise bad_request(f"{what} {value!r} needs a prefix length, e.g. {value}/24")
    if net.prefixlen > 29 or net.prefixlen < 8:
        raise bad_request(f"{what} {value!r}: prefix length must be between /8 and /29")
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
