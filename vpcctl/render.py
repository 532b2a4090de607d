"""Human output: aligned plain-text tables and key/value listings.

Values are shown the way a person reads them: None as '-', booleans as
yes/no, lists comma-separated, small dicts as k=v.  Machine output (--json)
never comes through here.
"""
import json


def cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) if value else "-"
    return str(value)


def table(rows, columns):
    """rows: list of dicts; columns: list of (HEADER, key or callable).
    The header line is printed even for no rows (like `docker network ls`)."""
    heads = [h for h, _ in columns]
    body = []
    for row in rows:
        line = []
        for _, get in columns:
            line.append(cell(get(row) if callable(get) else row.get(get)))
        body.append(line)
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(heads)]
    out = []
    for line in [heads] + body:
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    return "\n".join(out)


def keyvalue(obj, labels=None):
    """One object, one `key  value` line per field, in the API's order."""
    labels = labels or {}
    if not isinstance(obj, dict) or not obj:
        return cell(obj)
    keys = list(obj)
    width = max(len(k) for k in keys)
    lines = []
    for k in keys:
        value = labels[k](obj[k]) if k in labels else cell(obj[k])
        lines.append(f"{k.ljust(width)}  {value}".rstrip())
    return "\n".join(lines)


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def as_json(data):
    return json.dumps(data, indent=2)


# --- security groups ----------------------------------------------------------------
RULE_COLUMNS = [("ID", "id"), ("DIRECTION", "direction"), ("PROTOCOL", "protocol"),
                ("PORTS", "ports"), ("REMOTE", "remote")]


def security_group(group):
    """The group's fields, then RULES as a table and MEMBER PORTS one id a line."""
    head = keyvalue({k: v for k, v in group.items() if k not in ("rules", "ports")})
    rules = group.get("rules") or []
    ports = group.get("ports") or []
    return "\n\n".join([
        head,
        f"RULES ({len(rules)})\n" + (table(rules, RULE_COLUMNS) if rules else "(none)"),
        f"MEMBER PORTS ({len(ports)})\n" + ("\n".join(ports) if ports else "(none)"),
    ])


# --- topology (networkx node-link JSON) ------------------------------------------
def topology(data):
    """Sections HOSTS, DATAPATHS, TUNNELS from the node-link JSON of the
    controller's graph (nodes: host:, dp:, port:; links: bridge, port, tunnel)."""
    nodes = {n.get("id"): n for n in (data or {}).get("nodes", []) if isinstance(n, dict)}
    links = (data or {}).get("links", (data or {}).get("edges", []))
    ports_of = {}            # dp node id -> number of ports
    host_dp = {}             # host node id -> dp node id
    dp_host = {}
    tunnels = []
    for link in links:
        a, b, kind = link.get("source"), link.get("target"), link.get("kind")
        if kind == "port":
            dp = a if nodes.get(a, {}).get("kind") == "datapath" else b
            ports_of[dp] = ports_of.get(dp, 0) + 1
        elif kind == "bridge":
            host, dp = (a, b) if nodes.get(a, {}).get("kind") == "host" else (b, a)
            host_dp[host] = dp
            dp_host[dp] = host
        elif kind == "tunnel":
            tunnels.append(link)

    def name(node_id):
        return nodes.get(node_id, {}).get("name", node_id)

    hosts = sorted((n for n in nodes.values() if n.get("kind") == "host"),
                   key=lambda n: n.get("name", ""))
    host_rows = []
    for h in hosts:
        dp = nodes.get(host_dp.get(h["id"]), {})
        host_rows.append({"name": h.get("name"), "dpid": h.get("dpid"),
                          "tunnel_ip": h.get("tunnel_ip"),
                          "connected": bool(dp.get("connected")),
                          "ports": ports_of.get(dp.get("id"), 0)})
    dps = sorted((n for n in nodes.values() if n.get("kind") == "datapath"),
                 key=lambda n: n.get("dpid", ""))
    dp_rows = [{"dpid": d.get("dpid"), "host": name(dp_host[d["id"]]) if d["id"] in dp_host
                else None, "connected": bool(d.get("connected")),
                "ports": ports_of.get(d["id"], 0)} for d in dps]
    tunnel_rows = sorted(({"a": name(t["source"]), "b": name(t["target"]),
                           "endpoints": " <-> ".join(t.get("endpoints") or [])}
                          for t in tunnels), key=lambda r: (r["a"], r["b"]))

    def section(title, rows, columns):
        if not rows:
            return f"{title}\n(none)"
        return f"{title}\n" + table(rows, columns)

    return "\n\n".join([
        section(f"HOSTS ({len(host_rows)})", host_rows,
                [("NAME", "name"), ("DPID", "dpid"), ("TUNNEL_IP", "tunnel_ip"),
                 ("CONNECTED", "connected"), ("PORTS", "ports")]),
        section(f"DATAPATHS ({len(dp_rows)})", dp_rows,
                [("DPID", "dpid"), ("HOST", "host"), ("CONNECTED", "connected"),
                 ("PORTS", "ports")]),
        section(f"TUNNEL MESH ({_count(len(tunnel_rows), 'edge')} between connected hosts)",
                tunnel_rows,
                [("HOST", "a"), ("PEER", "b"), ("ENDPOINTS", "endpoints")]),
    ])
