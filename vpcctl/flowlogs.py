"""vpcctl flow-logs: a tenant's accepted and rejected connections (like AWS VPC
Flow Logs), switched on and off, filtered, and exported as JSON lines.

    vpcctl flow-logs blue --on
    vpcctl flow-logs blue --since 5m --action reject
    vpcctl flow-logs blue --since 1h --jsonl > blue-flows.jsonl
    vpcctl flow-logs blue --off

Filtering (--since, --action, --port) happens here: the controller keeps a
bounded window of records per tenant and returns it whole.
"""
import json
import re
import time
from datetime import datetime, timezone

import click

from vpcctl import render
from vpcctl.cliutil import json_option, pass_state
from vpcctl.client import path

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = [("START", "start_text"), ("PORT", "port_id"), ("DIR", "direction"),
           ("PROTO", "proto"), ("SOURCE", "source"), ("DESTINATION", "destination"),
           ("PKTS", "packets"), ("BYTES", "bytes"), ("REPLY_PKTS", "reply_packets"),
           ("REPLY_BYTES", "reply_bytes"), ("ACTION", "action"), ("RULE", "rule_text")]


def parse_since(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)([smhd]?)", value.strip())
    if not m:
        raise click.BadParameter("a duration like 90s, 5m, 2h or 1d")
    return int(m.group(1)) * UNITS[m.group(2) or "s"]


def _iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(r):
    end = f":{r['sport']}" if r.get("sport") is not None else ""
    dst = f":{r['dport']}" if r.get("dport") is not None else (
        f" type {r['icmp_type']}" if r.get("icmp_type") is not None else "")
    rule = r.get("rule") or {}
    return dict(r, start_text=_iso(r["start"]), source=f"{r['src']}{end}",
                destination=f"{r['dst']}{dst}",
                rule_text=(f"{rule.get('group')}: {rule.get('text')}" if rule else
                           r.get("reason") or "-"))


@click.command("flow-logs", short_help="Accepted and rejected connections of a tenant.")
@click.argument("tenant")
@click.option("--on", "switch", flag_value="on", help="Turn the tenant's flow logs on.")
@click.option("--off", "switch", flag_value="off",
              help="Turn them off (the tenant's records are dropped).")
@click.option("--since", callback=parse_since, metavar="DURATION",
              help="Only connections active in the last DURATION (90s, 5m, 2h, 1d).")
@click.option("--action", type=click.Choice(["accept", "reject"], case_sensitive=False),
              help="Only accepted or only rejected connections.")
@click.option("--port", "port_id", metavar="ID", help="Only the records of this port.")
@click.option("--jsonl", is_flag=True, help="One JSON record per line (for export).")
@json_option
@pass_state
def flow_logs(state, tenant, switch, since, action, port_id, jsonl):
    """Flow logs of TENANT: per port and direction, each connection's 5-tuple,
    packets and bytes both ways, start and end, ACCEPT or REJECT, and the
    security-group rule that decided (GET/PUT /v1/tenants/T/flow-logs).

    Off by default.  Records come from each host's agent (IPFIX on br-int,
    on only while a tenant there has flow logs on).

    \b
      vpcctl flow-logs blue --on
      vpcctl flow-logs blue --since 5m --action reject
      vpcctl flow-logs blue --jsonl > blue.jsonl
    """
    if switch:
        out = state.api.put(path("tenants", tenant, "flow-logs"), {"enabled": switch == "on"})
        state.emit(out, lambda d: f"flow logs of {d['tenant']}: "
                                  f"{'on' if d['enabled'] else 'off'}")
        return
    out = state.api.get(path("tenants", tenant, "flow-logs"))
    records = out["records"]
    if since is not None:
        records = [r for r in records if r["end"] >= time.time() - since]
    if action:
        records = [r for r in records if r["action"] == action.upper()]
    if port_id:
        records = [r for r in records if r["port_id"] == port_id]
    if jsonl:
        for r in records:
            click.echo(json.dumps(r, sort_keys=True))
        return
    if state.json:
        click.echo(render.as_json(dict(out, records=records)))
        return
    if not out["enabled"]:
        click.echo(f"flow logs of {tenant} are off (vpcctl flow-logs {tenant} --on)", err=True)
    click.echo(render.table([_row(r) for r in records], COLUMNS))
