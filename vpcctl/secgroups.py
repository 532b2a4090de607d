"""`vpcctl security-group` (alias `sg`): a tenant's security groups and their rules
(/v1/tenants/T/security-groups), plus the helpers `port attach/update` use for a
port's groups.

A rule is given either with options (`rule add --direction ... --protocol ...
--ports ... --remote ...`) or, for `create` and `set-rules`, as a compact
SPEC  DIR[:PROTO[:PORTS[:REMOTE]]]  (see RULE_SPEC_HELP).  Both are checked here
for shape only (exit 2); what the controller refuses exits 1 with its message.
"""
import ipaddress
import re

import click

from vpcctl import render
from vpcctl.cliutil import AliasGroup, json_option, listing, pass_state, quiet_option, \
    show_obj
from vpcctl.client import path

DIRECTIONS = {"in": "ingress", "ingress": "ingress", "out": "egress", "egress": "egress"}
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
PORTS_RE = re.compile(r"[0-9]{1,5}(?:-[0-9]{1,5})?")

RULE_SPEC_HELP = """\b
Rule SPEC (--rule, repeatable):  DIR[:PROTO[:PORTS[:REMOTE]]]
  DIR     in | out  (or ingress | egress)
  PROTO   tcp | udp | icmp | any        (default any)
  PORTS   22 | 8000-8080                (tcp/udp only; default all)
  REMOTE  CIDR | sg:NAME                (default 0.0.0.0/0)
Empty fields take the default:
  in:tcp:22:0.0.0.0/0   ssh from anywhere
  in:tcp:443            https from anywhere
  in:icmp::sg:web       ping from members of group web
  out:any               everything outwards
"""

GROUP_COLUMNS = [("NAME", "name"), ("INDEX", "index"),
                 ("RULES", lambda g: len(g.get("rules") or [])),
                 ("PORTS", lambda g: len(g.get("ports") or []))]


# --- rules: checking and building --------------------------------------------------------
def check_remote(remote):
    """None when fine, else why not: a CIDR/address or sg:NAME."""
    if remote.startswith("sg:"):
        return None if remote[3:] else "remote sg: needs a group name, e.g. sg:web"
    try:
        ipaddress.ip_network(remote, strict=False)
    except ValueError:
        return (f"remote must be an IPv4 or IPv6 CIDR (10.0.0.0/8, fd00::/16) or sg:NAME; "
                f"got {remote!r}")
    return None


def build_rule(direction, protocol=None, ports=None, remote=None):
    """The API's rule object from its parts (None/'' = the API's default).
    ValueError with a sentence when a part is malformed."""
    rule = {"direction": direction}
    if protocol:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
        rule["protocol"] = protocol
    if ports:
        if not PORTS_RE.fullmatch(ports):
            raise ValueError(f"ports must look like 22 or 8000-8080; got {ports!r}")
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"ports {ports} need protocol tcp or udp")
        rule["ports"] = ports
    if remote:
        problem = check_remote(remote)
        if problem:
            raise ValueError(problem)
        rule["remote"] = remote
    return rule


def parse_rule(spec):
    """DIR[:PROTO[:PORTS[:REMOTE]]] -> the API's rule object (ValueError if malformed)."""
    parts = spec.strip().split(":", 3)          # the remote may be sg:NAME, with a colon
    direction = DIRECTIONS.get(parts[0].strip().lower())
    if direction is None:
        raise ValueError(f"direction must be in or out (ingress, egress); got {parts[0]!r}")
    parts += [""] * (4 - len(parts))
    protocol, ports, remote = (p.strip() for p in parts[1:])
    return build_rule(direction, protocol.lower(), ports, remote)


class RuleSpec(click.ParamType):
    name = "SPEC"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            return parse_rule(value)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


def rule_option(f):
    return click.option("--rule", "rules", type=RuleSpec(), multiple=True,
                        help="A rule as DIR[:PROTO[:PORTS[:REMOTE]]], e.g. in:tcp:22 "
                             "(repeat for more).")(f)


# --- a port's groups (used by `port attach`, `port update`, `port list`) -----------------
def group_names(ctx, param, value):
    """--security-groups a,b -> ["a", "b"]; "" -> [] (in no group); unset -> None."""
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


def port_groups(port):
    """The GROUPS cell of `port list`: a,b; '-' in no group; '(off)' without port security."""
    if port.get("port_security") is False:
        return "(off)"
    return ",".join(port.get("security_groups") or []) or "-"


# --- the command group ---------------------------------------------------------------------
def _group(state, tenant, name):
    return state.api.get(path("tenants", tenant, "security-groups", name))


@click.group("security-group", cls=AliasGroup,
             short_help="Security groups (alias sg): list, show, create, rule.")
def security_group():
    """Security groups of a tenant: stateful allow-lists on its ports
    (/v1/tenants/T/security-groups).  `vpcctl sg` is the same command.

    Every tenant has a group `default` (egress anywhere, ingress from members
    of default); a port attached without --security-groups is in it.  A port's
    traffic passes when any of its groups allows it; replies always pass.
    Change a port's groups with `vpcctl port update`.
    """


@security_group.command("list")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def sg_list(state, tenant, quiet):
    """List the security groups of TENANT (RULES, PORTS: how many)."""
    listing(state, state.api.get(path("tenants", tenant, "security-groups")), GROUP_COLUMNS,
            quiet, "name")


@security_group.command("show")
@click.argument("tenant")
@click.argument("name")
@json_option
@pass_state
def sg_show(state, tenant, name):
    """Show group NAME of TENANT: its rules and member ports."""
    state.emit(_group(state, tenant, name), render.security_group)


@security_group.command("create", epilog=RULE_SPEC_HELP)
@click.argument("tenant")
@click.argument("name")
@rule_option
@json_option
@pass_state
def sg_create(state, tenant, name, rules):
    """Create group NAME in TENANT with the --rule rules.

    Without rules the group allows nothing (a port's other groups still do).

    \b
      vpcctl sg create blue web --rule in:tcp:80 --rule in:tcp:443 --rule out:any
    """
    body = {"name": name}
    if rules:
        body["rules"] = list(rules)
    state.emit(state.api.post(path("tenants", tenant, "security-groups"), body),
               render.security_group)


@security_group.command("set-rules", epilog=RULE_SPEC_HELP)
@click.argument("tenant")
@click.argument("name")
@rule_option
@json_option
@pass_state
def sg_set_rules(state, tenant, name, rules):
    """Replace all rules of group NAME of TENANT (PUT).

    Without --rule the group is left with no rules at all.

    \b
      vpcctl sg set-rules blue default --rule out:any --rule in:any::sg:default --rule in:tcp:22
    """
    data = state.api.put(path("tenants", tenant, "security-groups", name),
                         {"rules": list(rules)})
    state.emit(data, render.security_group)


@security_group.command("delete")
@click.argument("tenant")
@click.argument("name")
@json_option
@pass_state
def sg_delete(state, tenant, name):
    """Delete group NAME of TENANT.

    Refused for default, and while ports or other groups' rules (sg:NAME) use it.
    """
    state.api.delete(path("tenants", tenant, "security-groups", name))
    state.deleted("security group", name)


# --- rules of one group ----------------------------------------------------------------------
@security_group.group("rule", cls=AliasGroup, short_help="Rules of a group: list, add, delete.")
def sg_rule():
    """The rules of one security group, one at a time."""


@sg_rule.command("list")
@click.argument("tenant")
@click.argument("group")
@quiet_option
@json_option
@pass_state
def rule_list(state, tenant, group, quiet):
    """List the rules of GROUP of TENANT (--json: the group's `rules`)."""
    listing(state, _group(state, tenant, group)["rules"], render.RULE_COLUMNS, quiet, "id")


@sg_rule.command("add")
@click.argument("tenant")
@click.argument("group")
@click.option("--direction", required=True, type=click.Choice(["ingress", "egress"]),
              help="ingress: traffic to the port; egress: from it.")
@click.option("--protocol", type=click.Choice(PROTOCOLS, case_sensitive=False),
              help="Protocol (default: any).")
@click.option("--ports", metavar="N|N-M", help="Port or range, tcp/udp only (default: all).")
@click.option("--remote", metavar="CIDR|sg:NAME",
              help="The other end: a CIDR or the members of a group (default: 0.0.0.0/0).")
@json_option
@pass_state
def rule_add(state, tenant, group, direction, protocol, ports, remote):
    """Add a rule to GROUP of TENANT; prints the rule with its id.

    \b
      vpcctl sg rule add blue web --direction ingress --protocol tcp --ports 443
      vpcctl sg rule add blue db --direction ingress --protocol tcp --ports 5432 --remote sg:web
    """
    try:
        rule = build_rule(direction, protocol and protocol.lower(), ports, remote)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    show_obj(state, state.api.post(path("tenants", tenant, "security-groups", group, "rules"),
                                   rule))


@sg_rule.command("delete")
@click.argument("tenant")
@click.argument("group")
@click.argument("rule_id", metavar="RULE_ID")
@json_option
@pass_state
def rule_delete(state, tenant, group, rule_id):
    """Delete rule RULE_ID from GROUP of TENANT.

    The connections it admitted are cut at their next packet.
    """
    state.api.delete(path("tenants", tenant, "security-groups", group, "rules", rule_id))
    state.deleted("rule", rule_id)
