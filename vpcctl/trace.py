"""vpcctl trace: why can (or can't) a port reach an address? (POST /v1/tenants/T/trace)

Apart from main.py because it has its own output (a walk, table by table) and
its own exit codes, so that scripts can ask "does this path work?":
  0  the packet arrives (delivered, answered, or leaves to the outside)
  4  it is dropped (the verdict says where and why) or cannot be sent
  5  --live: the switches' installed flows differ from the desired ones
plus the usual 1 (refused, e.g. an unknown port), 2 (usage), 3 (unreachable).
"""
import click

from vpcctl.cliutil import json_option, pass_state
from vpcctl.client import path

EXIT_DROPPED = 4
EXIT_DIFFERS = 5
ARRIVES = ("delivered", "forwarded")


@click.command(short_help="Trace a packet through the VPC: every table, and why.")
@click.argument("tenant")
@click.option("--from", "src", required=True, metavar="PORT",
              help="The port the packet leaves: its id, or its OVS port name.")
@click.option("--to", "dst", required=True, metavar="IP|PORT",
              help="An IPv4 address, or a port of the tenant (id or OVS port name).")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="icmp",
              show_default=True, help="icmp is an echo request.")
@click.option("--dport", type=click.IntRange(1, 65535), metavar="N",
              help="Destination port (tcp/udp: required).")
@click.option("--sport", type=click.IntRange(1, 65535), metavar="N",
              help="Source port (tcp/udp; default 40000).")
@click.option("--src-ip", metavar="IP",
              help="Claim another source address (to see port security drop a spoof).")
@click.option("--live", is_flag=True,
              help="Also run it through ofproto/trace on the real switches, side by side.")
@click.option("-v", "--verbose", is_flag=True, help="Show every flow in full.")
@json_option
@pass_state
def trace(state, tenant, src, dst, proto, dport, sport, src_ip, live, verbose):
    """Trace a packet from a port of TENANT to an address or port.

    \b
    The packet (the first of a new connection) runs through the flows the
    controller wants on each host it crosses: source host, tunnel or VLAN,
    destination host, or NAT to the outside.  Every table, the flow it hits
    and whose flow that is (port, tenant, security group rule, NAT rule),
    and the verdict in words.  Nothing is changed and nothing is sent.

    \b
      vpcctl trace blue --from web1 --to 10.0.0.3 --proto tcp --dport 22
      vpcctl trace blue --from web1 --to db1 --live
      vpcctl trace blue --from web1 --to 198.51.100.7 --proto udp --dport 53

    Exit status: 0 the packet arrives, 4 it is dropped, 5 (--live) installed
    flows differ from desired; 1 refused, 2 bad usage, 3 unreachable.
    """
    if proto in ("tcp", "udp") and dport is None:
        raise click.UsageError(f"--proto {proto} needs --dport")
    if proto == "icmp" and (dport or sport):
        raise click.UsageError("--dport/--sport are for tcp and udp")
    body = {"from": src, "to": dst, "proto": proto}
    for key, value in (("dport", dport), ("sport", sport), ("src_ip", src_ip)):
        if value is not None:
            body[key] = value
    if live:
        body["live"] = True
    out = state.api.post(path("tenants", tenant, "trace"), body)
    state.emit(out, lambda d: render(d, verbose))
    ctx = click.get_current_context()
    if live and (out.get("live") or {}).get("differs"):
        ctx.exit(EXIT_DIFFERS)
    if out["verdict"]["action"] not in ARRIVES:
        ctx.exit(EXIT_DROPPED)


def _step_line(step, verbose):
    owner = (step.get("owner") or {}).get("text", "")
    what = step.get("flow") if verbose else step.get("text", "")
    return f"  {step['table']:>3} {step['table_name']:<14} {owner:<48} {what or ''}"


def render(out, verbose=False):
    pkt = out["packet"]
    lines = [f"{pkt['text']}  (from port {pkt['from']['port_id']} on {pkt['from']['host']})"]
    arp = out.get("arp")
    if arp:
        lines.append(f"arp  {arp['target']} is {arp['mac']}  ({arp['answered_by']})"
                     if arp["answered"] else f"arp  {arp['target']}: no answer")
    for hop in out["hops"]:
        lines.append(f"{hop['host']}  in {hop['in_port_name']}")
        lines += [_step_line(s, verbose) for s in hop["steps"]]
        lines += [f"      -> {o['name']}: {o['to']}" for o in hop["outputs"]]
    v = out["verdict"]
    lines.append(f"verdict: {v['action'].upper()}  {v['reason']}")
    if v.get("flow"):
        lines.append(f"  by {v['flow']}  (cookie {v['cookie']}: "
                     f"{(v.get('owner') or {}).get('text', '')})")
    live = out.get("live")
    if live is not None:
        lines += render_live(live)
    sim = out.get("simulated") or {}
    if sim:
        lines.append(f"(simulated {sim.get('flows')} desired flows of "
                     f"{', '.join(sim.get('hosts', []))} in {sim.get('ms')} ms)")
    return "\n".join(lines)


def render_live(live):
    if not live.get("available", True):
        return [f"live: not available: {live.get('reason')}"]
    lines = ["live (ofproto/trace on the switches):"]
    for hop in live.get("hops", []):
        lines.append(f"  {hop['host']}: {hop.get('summary', '')}")
        for row in hop.get("rows", []):
            mark = " " if row.get("same") else "!"
            lines.append(f"  {mark} {row['table']:>3} {row.get('table_name', ''):<14} "
                         f"desired {row.get('desired') or '-':<20} installed "
                         f"{row.get('installed') or '-'}")
    lines += [f"live: {e}" for e in live.get("errors", [])]
    if live.get("differs"):
        lines.append("installed flows differ from desired:")
        lines += [f"  {d}" for d in live.get("differences", [])]
    elif not live.get("errors"):
        lines.append("installed flows agree with desired on this path")
    return lines
