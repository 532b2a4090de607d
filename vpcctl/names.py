"""DNS names and DHCP options: `vpcctl tenant dhcp-options`, `vpcctl tenant
dns-records`, and the helpers `port attach/update/list/show` use for a
port's `name` and `aliases`.

    vpcctl tenant dhcp-options blue                       # show
    vpcctl tenant dhcp-options blue --domain corp.example --resolver 10.9.0.53 \\
        --resolver '[fd00::53]:5353' --lease-time 600 --ttl 10
    vpcctl tenant dhcp-options blue --no-resolvers        # names outside the tenant: refused
    vpcctl tenant dns-records blue                        # NAME FQDN IP IP6 PORTS

Every host's agent answers DHCP and DNS for its containers; DNS at each
subnet's gateway address, names NAME and NAME.<domain> of the container's own
tenant only.  The shapes here are checked for form only (exit 2); the
controller checks the rest (exit 1 with its sentence).
"""
import ipaddress
import re

import click

from vpcctl import render
from vpcctl.cliutil import drop_none, json_option, listing, pass_state, quiet_option, show_obj
from vpcctl.client import path

MAX_RESOLVERS = 4
LEASE_RANGE = (60, 86400)
TTL_RANGE = (1, 3600)


# --- a port's name and aliases -------------------------------------------------------
def dns_text(dns):
    """A port's `dns` ({nameservers, domain, search}) on one line."""
    if not isinstance(dns, dict) or not dns:
        return render.cell(dns)
    parts = []
    if dns.get("nameservers"):
        parts.append("nameservers " + " ".join(dns["nameservers"]))
    if dns.get("domain"):
        parts.append(f"domain {dns['domain']}")
    if dns.get("search"):
        parts.append("search " + " ".join(dns["search"]))
    return "; ".join(parts) or "-"


PORT_LABELS = {"dns": dns_text}


def port_name_body(name=None, aliases=(), no_name=False, no_aliases=False):
    """The `name`/`aliases` fields of a port body from the options: only what
    was given (PATCH leaves the rest as it is)."""
    if name is not None and no_name:
        raise click.UsageError("--name and --no-name exclude each other")
    if aliases and no_aliases:
        raise click.UsageError("--alias and --no-aliases exclude each other")
    body = {}
    if no_name:
        body["name"] = None
    elif name is not None:
        body["name"] = name
    if no_aliases:
        body["aliases"] = []
    elif aliases:
        body["aliases"] = list(dict.fromkeys(aliases))
    return body


def check_names(ctx, param, value):
    """--name / --alias: not empty, no spaces (the controller checks the DNS rules)."""
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is not None and (not v or any(c.isspace() for c in v)):
            raise click.BadParameter(f"{v!r} is not a DNS name (e.g. web or web.blue)")
    return value


def name_options(f):
    """--name NAME, --alias NAME (repeatable) for `port attach`."""
    f = click.option("--alias", "aliases", multiple=True, metavar="NAME", callback=check_names,
                     help="Another DNS name of the port (repeatable); several ports may "
                          "share one: it then answers round robin.")(f)
    return click.option("--name", metavar="NAME", callback=check_names,
                        help="The port's DNS name in its tenant (NAME and NAME.<domain> "
                             "resolve to its addresses).")(f)


NAME_COLUMNS = [("NAME", "name"), ("ALIASES", lambda p: ",".join(p.get("aliases") or []) or None)]


# --- tenant dhcp-options ----------------------------------------------------------------
def check_resolver(ctx, param, values):
    """'ip', 'ip:port' or '[ipv6]:port' (the controller's forms)."""
    for v in values:
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+)(?::(\d{1,5}))?"
                         r"|([0-9A-Fa-f:.]+)", v)
        try:
            ipaddress.ip_address(m.group(1) or m.group(3) or m.group(5))
            port = int(m.group(2) or m.group(4) or 53)
        except (AttributeError, ValueError):
            port = 0
        if not 1 <= port <= 65535:
            raise click.BadParameter(f"{v!r}: a resolver is IP, IP:PORT or [IPV6]:PORT, "
                                     f"e.g. 10.0.0.53, 10.0.0.53:5353, [fd00::53]:53")
    if len(values) > MAX_RESOLVERS:
        raise click.BadParameter(f"at most {MAX_RESOLVERS} resolvers")
    return values


@click.command("dhcp-options", short_help="Show or set a tenant's DNS domain, resolvers, "
                                           "lease time.")
@click.argument("tenant")
@click.option("--domain", metavar="DOMAIN",
              help="The tenant's DNS domain: names answer as NAME and NAME.DOMAIN "
                   "(default <tenant>.internal).")
@click.option("--resolver", "resolvers", multiple=True, callback=check_resolver,
              metavar="ADDR",
              help="Where names outside the tenant are forwarded: IP, IP:PORT or "
                   "[IPV6]:PORT; repeatable, at most 4; replaces the list.")
@click.option("--no-resolvers", is_flag=True,
              help="No resolver: names outside the tenant are refused.")
@click.option("--lease-time", type=click.IntRange(*LEASE_RANGE), metavar="SECONDS",
              help="DHCP lease time.")
@click.option("--ttl", type=click.IntRange(*TTL_RANGE), metavar="SECONDS",
              help="TTL of the tenant's DNS answers.")
@json_option
@pass_state
def dhcp_options(state, tenant, domain, resolvers, no_resolvers, lease_time, ttl):
    """Show the DHCP/DNS options of TENANT, or change those given (PATCH).

    \b
    Without options: GET /v1/tenants/TENANT/dhcp-options.
    With options: PATCH the ones given; the others stay as they are.
    Prints the tenant's options either way.
    """
    if resolvers and no_resolvers:
        raise click.UsageError("--resolver and --no-resolvers exclude each other")
    body = drop_none(domain=domain, lease_time=lease_time, ttl=ttl)
    if resolvers:
        body["resolvers"] = list(resolvers)
    elif no_resolvers:
        body["resolvers"] = []
    where = path("tenants", tenant, "dhcp-options")
    if not body:
        data = state.api.get(where)
    else:
        data = state.api.patch(where, body)
    show_obj(state, data, {"resolvers": _resolvers_text})


def _resolvers_text(resolvers):
    return " ".join(resolvers) if resolvers else "- (names outside the tenant are refused)"


# --- tenant dns-records ----------------------------------------------------------------
def _joined(key):
    return lambda r: ",".join(r.get(key) or []) or None


RECORD_COLUMNS = [("NAME", "name"), ("FQDN", "fqdn"), ("IP", _joined("ip")),
                  ("IP6", _joined("ip6")), ("PORTS", _joined("ports"))]


@click.command("dns-records", short_help="The names a tenant's DNS answers.")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def dns_records(state, tenant, quiet):
    """List the DNS names of TENANT: each name (port names and aliases) with the
    addresses it answers (round robin when several ports share it) and its ports
    (GET /v1/tenants/TENANT/dns-records)."""
    listing(state, state.api.get(path("tenants", tenant, "dns-records")), RECORD_COLUMNS,
            quiet, "name")
