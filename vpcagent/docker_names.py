"""DNS names and resolver for Docker containers on vpc networks (issue 19).

Docker's remote network driver API carries no DNS at all: Join names the
endpoint and the sandbox, never the container, its hostname or its
``--network-alias`` values, and Docker's embedded resolver (127.0.0.11 in
each container's resolv.conf) knows only the containers of this one dockerd.
The tenant's DNS, answered at each subnet's gateway by every host's agent,
knows the whole tenant across hosts.  So after each Join, in a background
thread (Join's answer is on the container's start path and never waits for
this), ``ContainerNames``:

1. finds the container through dockerd's API: the one whose
   ``NetworkSettings.SandboxKey`` is the Join's ``SandboxKey`` (dockerd
   answers an inspect of a starting container only once the start is done,
   and the container must be running within WAIT seconds);
2. PATCHes the controller port: ``name`` = the container's name, ``aliases``
   = its hostname and its aliases on this network (``--network-alias``
   values and Docker's own short-id alias), deduplicated, lowercased; a name
   that is no DNS name is skipped with a log line;
3. points the container's resolver at the tenant's DNS: the file at the
   container's ``ResolvConfPath`` (Docker's generated resolv.conf,
   bind-mounted as /etc/resolv.conf) is rewritten in place (same inode, so
   the bind mount sees it) to ``nameserver <gateway>`` (and ``<gateway6>``
   on a dual-stack network), ``search <domain>``, ``options ndots:0`` -- only
   while it still is Docker's (it names 127.0.0.11, or it is the content
   Docker's ``.hash`` file records) or ours, and not for a container started
   with ``--dns``/``--dns-search``/``--dns-option`` nor on a network made
   with ``-o vpc.dns=docker`` (which keeps Docker's resolver).

Everything here is best effort: a failure is a log line, never a failed
container.  Nothing is remembered: a restarted container Joins again and is
named again.
"""
import hashlib
import logging
import re
import threading
import time

from vpcctl.client import path
from vpcagent.server import ProtocolError

log = logging.getLogger("vpcagent")

WAIT = 15.0                 # s: the container must be found running within this
POLL = 0.2                  # s: between two looks
DOCKER_TIMEOUT = 30         # s: an inspect waits while dockerd starts the container
DOCKER_RESOLVER = "127.0.0.11"
MARK = "# vpc-agent:"
MAX_ALIASES = 32
DNS_MODES = ("vpc", "docker")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
DNS_NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def dns_name(value):
    """``value`` as the controller keeps a DNS name (lowercase, no trailing
    dot), or None when it is none (labels of letters, digits, '-', '_', not
    starting or ending with '-', at most 63 each, 253 in all)."""
    if not isinstance(value, str):
        return None
    text = value.lower()
    text = text[:-1] if text.endswith(".") else text
    return text if len(text) <= 253 and DNS_NAME_RE.fullmatch(text) else None


def network_entry(info, network_id, endpoint_id=None):
    """The container's ``NetworkSettings.Networks`` entry of this network (by
    NetworkID, else by EndpointID), or {}."""
    nets = ((info.get("NetworkSettings") or {}).get("Networks") or {}).values()
    for n in nets:
        if network_id and n.get("NetworkID") == network_id:
            return n
    for n in nets:
        if endpoint_id and n.get("EndpointID") == endpoint_id:
            return n
    return {}


def names_of(info, network_id, endpoint_id=None):
    """(name or None, [aliases], [skipped]) of a container as ``docker
    inspect`` shows it: the container's name, then its hostname and its
    aliases on the network; deduplicated, invalid DNS names skipped."""
    skipped = []
    raw_name = (info.get("Name") or "").lstrip("/")
    name = dns_name(raw_name)
    if raw_name and name is None:
        skipped.append(raw_name)
    candidates = [(info.get("Config") or {}).get("Hostname")]
    candidates += network_entry(info, network_id, endpoint_id).get("Aliases") or []
    aliases = []
    for c in candidates:
        if not c:
            continue
        n = dns_name(c)
        if n is None:
            skipped.append(c)
        elif n != name and n not in aliases:
            aliases.append(n)
    if len(aliases) > MAX_ALIASES:
        skipped += aliases[MAX_ALIASES:]
        aliases = aliases[:MAX_ALIASES]
    return name, aliases, skipped


def resolv_conf(dns):
    """Our resolv.conf for a port's ``dns`` ({nameservers, domain, search})."""
    lines = [f"{MARK} the tenant's DNS at the subnet's gateway (docker network create "
             f"-o vpc.dns=docker keeps Docker's own resolver)"]
    lines += [f"nameserver {ns}" for ns in dns.get("nameservers") or []]
    search = dns.get("search") or ([dns["domain"]] if dns.get("domain") else [])
    if search:
        lines.append("search " + " ".join(search))
    lines.append("options ndots:0")
    return "\n".join(lines) + "\n"


def nameservers(text):
    return [ln.split()[1] for ln in text.splitlines()
            if ln.strip().startswith("nameserver") and len(ln.split()) > 1]


def whose(text, hash_text=None):
    """'docker' (Docker's generated file: it names 127.0.0.11, or its hash
    file records exactly this content), 'ours', or None (someone else's)."""
    if text.startswith(MARK):
        return "ours"
    if DOCKER_RESOLVER in nameservers(text):
        return "docker"
    if hash_text is not None and hash_text.strip() == \
            "sha256:" + hashlib.sha256(text.encode()).hexdigest():
        return "docker"
    return None


def rewrite_resolv_conf(file_path, content):
    """Replace the file's content in place (same inode: the container's bind
    mount of it sees the change) when it is Docker's or ours.  Returns
    (True, None) when written, (False, why) when left alone."""
    try:
        with open(file_path + ".hash") as f:
            hash_text = f.read()
    except OSError:
        hash_text = None
    with open(file_path, "r+") as f:
        text = f.read()
        owner = whose(text, hash_text)
        if owner is None:
            return False, f"{file_path} is not Docker's generated resolv.conf any more " \
                          f"(nameservers {', '.join(nameservers(text)) or 'none'})"
        if text == content:
            return True, None
        f.seek(0)
        f.write(content)
        f.truncate()
    return True, None


class ContainerNames:
    """The background work after each Join (see the module's doc)."""

    def __init__(self, controller, networks, docker_socket=None, client_factory=None,
                 wait=WAIT, poll=POLL):
        self.c = controller
        self.nets = networks
        self.docker_socket = docker_socket or getattr(networks, "docker_socket", None) \
            or "/var/run/docker.sock"
        self.client_factory = client_factory or self._client
        self.wait, self.poll = wait, poll

    def _client(self):
        import docker
        from vpcagent.dockernet import DOCKER_API_VERSION
        return docker.APIClient(base_url=f"unix://{self.docker_socket}",
                                version=DOCKER_API_VERSION, timeout=DOCKER_TIMEOUT)

    def joined(self, network_id, endpoint_id, sandbox_key, ids):
        """Start the work for one Join; returns the (daemon) thread."""
        t = threading.Thread(target=self.run, name=f"vpc-names-{endpoint_id[:12]}",
                             args=(network_id, endpoint_id, sandbox_key, dict(ids)),
                             daemon=True)
        t.start()
        return t

    def run(self, network_id, endpoint_id, sandbox_key, ids):
        """Returns what was done (for tests and the log): {"container", "name",
        "aliases", "resolv_conf"} or None when nothing could be."""
        who = f"endpoint {endpoint_id[:12]}"
        try:
            client = self.client_factory()
            info = self.find(client, sandbox_key, endpoint_id)
            if info is None:
                return None
            return self.apply(info, network_id, endpoint_id, ids)
        except Exception as e:                               # noqa: BLE001 -- never fatal
            log.warning("names: %s: %s", who, e)
            return None

    # -- 1. the container -------------------------------------------------------
    def find(self, client, sandbox_key, endpoint_id):
        """The inspected container with this SandboxKey, once it runs; None
        (logged) when there is none within ``wait`` seconds."""
        import docker.errors
        deadline = time.monotonic() + self.wait
        seen = False
        while True:
            try:
                rows = client.containers(all=True, filters={
                    "status": ["created", "running", "restarting"]})
            except docker.errors.APIError as e:
                log.warning("names: endpoint %s: dockerd cannot list containers (%s); the "
                            "container keeps no DNS name", endpoint_id[:12], e)
                return None
            for row in sorted(rows, key=lambda r: _likely(r, endpoint_id)):
                try:
                    info = client.inspect_container(row["Id"])
                except docker.errors.NotFound:
                    continue
                if (info.get("NetworkSettings") or {}).get("SandboxKey") != sandbox_key:
                    continue
                seen = True
                if (info.get("State") or {}).get("Running"):
                    return info
                break
            if time.monotonic() >= deadline:
                log.warning("names: endpoint %s: %s", endpoint_id[:12],
                            "its container did not run" if seen else
                            f"no container has sandbox {sandbox_key}")
                return None
            time.sleep(self.poll)

    # -- 2. + 3. ------------------------------------------------------------------
    def apply(self, info, network_id, endpoint_id, ids):
        cname = (info.get("Name") or "").lstrip("/") or info.get("Id", "")[:12]
        tenant, port_id = ids.get("vpc-tenant"), ids.get("vpc-port-id")
        name, aliases, skipped = names_of(info, network_id, endpoint_id)
        if skipped:
            log.info("names: container %s: %s not DNS names, skipped", cname,
                     ", ".join(repr(s) for s in skipped))
        done = {"container": cname, "name": name, "aliases": aliases, "resolv_conf": None}
        port = None
        try:
            port = self.c.call("PATCH", path("tenants", tenant, "ports", port_id),
                               {"name": name, "aliases": aliases})
        except ProtocolError as e:
            log.warning("names: container %s: port %s keeps no DNS name: %s", cname, port_id,
                        e)
        done["resolv_conf"] = self.resolver(info, cname, network_id, tenant, port, ids)
        log.info("names: container %s -> port %s name=%s aliases=%s resolv.conf=%s", cname,
                 port_id, name or "-", ",".join(aliases) or "-", done["resolv_conf"])
        return done

    def resolver(self, info, cname, network_id, tenant, port, ids):
        """Rewrite the container's resolv.conf; a word for the log."""
        try:
            mode = (self.nets.get(network_id) or {}).get("dns") or "vpc"
        except ProtocolError:
            mode = "vpc"
        if mode == "docker":
            return "docker's (-o vpc.dns=docker)"
        host = info.get("HostConfig") or {}
        if host.get("Dns") or host.get("DnsSearch") or host.get("DnsOptions"):
            return "the container's own (--dns)"
        rc_path = info.get("ResolvConfPath")
        if not rc_path:
            return "none (dockerd names no ResolvConfPath)"
        dns = (port or {}).get("dns") or self.fallback_dns(tenant, ids)
        if not dns.get("nameservers"):
            return "unchanged (the port has no gateway)"
        try:
            written, why = rewrite_resolv_conf(rc_path, resolv_conf(dns))
        except OSError as e:
            log.warning("names: container %s: cannot rewrite %s: %s", cname, rc_path,
                        e.strerror or e)
            return "unchanged (error)"
        if not written:
            log.info("names: container %s: %s; left alone", cname, why)
            return "unchanged (not Docker's)"
        return " ".join(dns["nameservers"])

    def fallback_dns(self, tenant, ids):
        """The port's dns when the PATCH's reply had none: its gateways and the
        tenant's domain."""
        servers = [g for g in (ids.get("vpc-gateway"), ids.get("vpc-gateway6")) if g]
        try:
            domain = (self.c.get("tenants", tenant, "dhcp-options", missing_ok=True)
                      or {}).get("domain")
        except ProtocolError:
            domain = None
        domain = domain or f"{tenant.lower()}.internal"
        return {"nameservers": servers, "domain": domain, "search": [domain]}


def _likely(row, endpoint_id):
    """Sort key: the row naming the endpoint first, then starting ones, newest first."""
    nets = ((row.get("NetworkSettings") or {}).get("Networks") or {}).values()
    has_ep = any(n.get("EndpointID") == endpoint_id for n in nets)
    return (not has_ep, row.get("State") == "running", -(row.get("Created") or 0))
