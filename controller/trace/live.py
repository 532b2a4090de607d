"""Live mode: the simulated packet through `ofproto/trace` on the real switches.

For every host the simulated packet crossed, the packet as it entered that
host's br-int (in_port, tunnel key and endpoints included) is handed to
`ovs-appctl ofproto/trace br-int FLOW` on that host; its output is parsed into
(table, cookie) steps of br-int and laid beside the simulated steps.  Where
they part, the installed flows differ from the desired ones, and the flows
concerned are named: the desired flow (with its owner) and what the switch
used instead (a table miss, another cookie).  ofproto/trace sends nothing;
like the simulation it takes the packet as the first of a new connection
(ct_state trk|new at each recirculation).

How to reach a host's ovs-vswitchd is a command template, VPC_TRACE_APPCTL,
with {host} for the host's name at the controller:
  lab        env OVS_RUNDIR=/run/vpclab/LAB/{host} ovs-appctl -t ovs-vswitchd
  one box    ovs-appctl
  hosts      ssh -o BatchMode=yes {host} ovs-appctl
Unset: live mode answers "not available" and says why.
"""
import os
import re
import shlex
import subprocess

from controller.compile.pipeline import Table
from controller.flowsim import SimError, format_flow

ENV = "VPC_TRACE_APPCTL"
BRIDGE = "br-int"
TIMEOUT = 10
# OXM field -> ovs-ofctl flow syntax (what ofproto/trace parses)
_FIELD = {"in_port": "in_port", "tunnel_id": "tun_id", "tun_ipv4_src": "tun_src",
          "tun_ipv4_dst": "tun_dst", "eth_src": "dl_src", "eth_dst": "dl_dst",
          "ipv4_src": "nw_src", "ipv4_dst": "nw_dst", "ip_proto": "nw_proto",
          "ip_ttl": "nw_ttl", "tcp_src": "tcp_src", "tcp_dst": "tcp_dst",
          "udp_src": "udp_src", "udp_dst": "udp_dst", "icmpv4_type": "icmp_type",
          "icmpv4_code": "icmp_code", "arp_op": "arp_op", "arp_spa": "arp_spa",
          "arp_tpa": "arp_tpa", "arp_sha": "arp_sha", "arp_tha": "arp_tha"}
_BRIDGE_RE = re.compile(r'^\s*bridge\("([^"]+)"\)')
_STEP_RE = re.compile(r"^\s*(\d+)\.\s+(.*)$")
_PRIO_RE = re.compile(r"(?:^|, )priority (\d+)")
_COOKIE_RE = re.compile(r"cookie (0x[0-9a-f]+)")


def flow_text(packet):
    """A flowsim packet as ofproto/trace's flow argument.  Order matters to
    ovs-ofctl's parser: a field's prerequisites (dl_type, nw_proto) first."""
    parts = []
    for name in _FIELD:                  # in_port ... L2 ... L3 ... L4, ARP
        value = packet.get(name)
        if value is None or (name == "tunnel_id" and not value) or \
                (name in ("tun_ipv4_src", "tun_ipv4_dst") and value == "0.0.0.0"):
            continue
        parts.append(f"{_FIELD[name]}={value:#x}" if name == "tunnel_id"
                     else f"{_FIELD[name]}={value}")
        if name == "eth_dst":
            if packet.get("eth_type") is not None:
                parts.append(f"dl_type={packet['eth_type']:#06x}")
            if packet.get("vlan_vid"):
                parts.append(f"dl_vlan={packet['vlan_vid'] & 0xFFF}")
    return ",".join(parts)


def parse(text, bridge=BRIDGE):
    """ofproto/trace output -> ([{table, cookie, priority, match}] of `bridge`,
    [datapath actions lines])."""
    steps, actions, current = [], [], None
    for line in text.splitlines():
        m = _BRIDGE_RE.match(line)
        if m:
            current = m.group(1)
            continue
        if line.startswith("Datapath actions:"):
            actions.append(line.split(":", 1)[1].strip())
            continue
        m = _STEP_RE.match(line)
        if not m or current != bridge:
            continue
        rest = m.group(2)
        if rest.startswith("No match"):
            steps.append({"table": int(m.group(1)), "cookie": None, "priority": None,
                          "match": "no match (table miss without a flow)"})
            continue
        prio, cookie = _PRIO_RE.search(rest), _COOKIE_RE.search(rest)
        if prio is None:
            continue
        steps.append({"table": int(m.group(1)), "priority": int(prio.group(1)),
                      "cookie": int(cookie.group(1), 16) if cookie else 0,
                      "match": rest[:prio.start()].rstrip(", ") or "(any)"})
    return steps, actions


class AppctlRunner:
    """Runs ofproto/trace on a host with the VPC_TRACE_APPCTL command template."""

    def __init__(self, template):
        self.template = template

    def __call__(self, host, flow):
        cmd = shlex.split(self.template.replace("{host}", host)) + \
            ["ofproto/trace", BRIDGE, flow]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        if out.returncode != 0:
            raise RuntimeError((out.stderr or out.stdout).strip() or f"exit {out.returncode}")
        return out.stdout


def from_env(environ=os.environ):
    template = environ.get(ENV)
    return LiveTracer(AppctlRunner(template)) if template else None


class LiveTracer:
    """The simulated packet's hops -> the live part of a trace: per hop the
    switch's steps beside the desired ones; `differs` when a switch parted
    from the desired flows, `errors` when a switch could not be asked."""

    def __init__(self, runner):
        self.runner = runner

    def __call__(self, sim_hops):
        """`sim_hops`: the flowsim Hops of the simulated packet."""
        hops, differences, errors = [], [], []
        for hop in sim_hops:
            hops.append(self._hop(hop, differences, errors))
        return {"available": True, "hops": hops, "differs": bool(differences),
                "differences": differences, "errors": errors}

    def _hop(self, hop, differences, errors):
        """One host: ofproto/trace of the packet that entered it, row by row."""
        res = hop.result
        entering = res.steps[0].packet if res.steps else {}
        try:
            text = self.runner(hop.switch, flow_text(entering))
        except (OSError, RuntimeError, subprocess.SubprocessError, SimError) as exc:
            errors.append(f"{hop.switch}: ofproto/trace failed: {exc}")
            return {"host": hop.switch, "error": str(exc), "rows": []}
        live, actions = parse(text)
        desired = [(s.table, s.flow) for s in res.steps]
        rows, parted = [], False
        for i in range(max(len(desired), len(live))):
            d = desired[i] if i < len(desired) else None
            got = live[i] if i < len(live) else None
            same = not parted and d is not None and got is not None and \
                d[0] == got["table"] and d[1] is not None and got["cookie"] == d[1].cookie
            table = d[0] if d else got["table"]
            rows.append({"table": table, "table_name": _table_name(table),
                         "desired": f"{d[1].cookie:#x}" if d and d[1] is not None else None,
                         "installed": None if got is None else (
                             f"{got['cookie']:#x}" if got["cookie"] is not None else "miss"),
                         "installed_match": None if got is None else got["match"],
                         "same": same})
            if not same and not parted:      # after the first parting, all differs
                parted = True
                differences.append(_difference(hop.switch, d, got))
        return {"host": hop.switch, "flow": flow_text(entering), "rows": rows,
                "datapath_actions": actions,
                "summary": f"datapath actions: {'; '.join(actions) or '-'}"}


def _table_name(n):
    return Table(n).name if n in Table._value2member_map_ else str(n)


def _difference(host, desired, got):
    if desired is None:
        want = "nothing more"
    elif desired[1] is None:
        want = f"table {desired[0]} {_table_name(desired[0])}: a table miss"
    else:
        want = (f"table {desired[0]} {_table_name(desired[0])}: {format_flow(desired[1])} "
                f"(cookie {desired[1].cookie:#x})")
    if got is None:
        have = "the switch's trace ends before it"
    elif got["cookie"] is None:
        have = f"the switch has no flow for it in table {got['table']} (no match)"
    else:
        have = (f"the switch used table {got['table']} {got['match']}, priority "
                f"{got['priority']} (cookie {got['cookie']:#x})")
    return f"installed flows differ from desired on {host}: desired {want}; {have}"
