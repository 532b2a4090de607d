"""The CNI plugin's input and output, checked and shaped in one place.

Standard library only: both the plugin binary (which must start fast and run
with nothing but Python) and the agent (which checks again, because anything
that can open the socket may call it) use this module.

Spec: CNI 1.0/1.1 (https://github.com/containernetworking/cni/blob/main/SPEC.md).
Error codes are the spec's own -- 1 incompatible version, 2 unsupported
field, 4 invalid environment, 5 I/O, 6 undecodable, 7 invalid network
config, 11 try again later, 50/51 not available (STATUS) -- and ours from
100 up, so a runtime's log says which side failed:

    100 the controller refused (its sentence is the message)
    101 a host-side step failed (veth, OVS, addresses)
    102 CHECK found a difference
    103 the container already has the interface (a second ADD without DEL)

Names on the host are derived from (CNI_CONTAINERID, CNI_IFNAME), never
remembered: DEL, CHECK and GC compute them again and find the controller's
port by name (``GET /v1/tenants/T/ports``) and the OVS port by name.
"""
import hashlib
import ipaddress
import json
import os
import re

SUPPORTED_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
NEEDS_1_1 = ("STATUS", "GC")
DEFAULT_SOCKET = "/run/vpc/cni.sock"
HOST_PREFIX, PEER_PREFIX = "vn", "vq"      # Docker uses vd/vc, attach v+12 hex

E_VERSION, E_FIELD, E_UNKNOWN_CONTAINER, E_ENV, E_IO, E_DECODE, E_CONFIG = 1, 2, 3, 4, 5, 6, 7
E_TRY_AGAIN, E_UNAVAILABLE, E_LIMITED = 11, 50, 51
E_CONTROLLER, E_PLUMBING, E_CHECK, E_EXISTS, E_INTERNAL = 100, 101, 102, 103, 999

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")      # the spec's network name
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # the controller's rule
CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
IFNAME_RE = re.compile(r"^[^/:\s]{1,15}$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
NETWORK_TYPES = ("vlan", "vxlan", "gre")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
DNS_NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")     # the controller's rule
MAX_ALIASES = 32
DNS_KEYS = ("nameservers", "domain", "search", "options")
PROTOCOLS = ("tcp", "udp")
MAX_FORWARD_PORT = 32767
KNOWN_KEYS = {"cniVersion", "cniVersions", "name", "type", "tenant", "subnet", "subnet6", "network",
              "mtu", "agentSocket", "dns", "aliases", "args", "runtimeConfig", "capabilities",
              "prevResult", "cni.dev/valid-attachments", "cni.dev/attachments",
              "disableCheck", "disableGC"}


class CniError(Exception):
    """A refusal in the spec's shape: ``{"cniVersion", "code", "msg", "details"}``."""

    def __init__(self, code, msg, details=""):
        super().__init__(msg)
        self.code, self.msg, self.details = int(code), msg, details

    def to_json(self, version=LATEST):
        return {"cniVersion": version, "code": self.code, "msg": self.msg,
                "details": self.details}


def port_names(container_id, ifname):
    """(host end = OVS port, temporary container end) for one attachment:
    13 characters each, inside Linux's 15."""
    h = hashlib.sha1(f"{container_id}/{ifname}".encode()).hexdigest()[:11]
    return HOST_PREFIX + h, PEER_PREFIX + h


# -- environment ---------------------------------------------------------------------
def parse_env(environ):
    """The CNI_* variables a command needs, checked (code 4 names the variable)."""
    cmd = environ.get("CNI_COMMAND", "")
    if cmd not in COMMANDS:
        raise CniError(E_ENV, f"CNI_COMMAND {cmd!r} is not one of {', '.join(COMMANDS)}",
                       "CNI_COMMAND")
    env = {"command": cmd, "containerID": environ.get("CNI_CONTAINERID", ""),
           "netns": environ.get("CNI_NETNS", ""), "ifname": environ.get("CNI_IFNAME", ""),
           "args": environ.get("CNI_ARGS", ""), "path": environ.get("CNI_PATH", "")}
    if cmd in ("ADD", "DEL", "CHECK"):
        if not CONTAINER_ID_RE.match(env["containerID"]):
            raise CniError(E_ENV, f"CNI_CONTAINERID {env['containerID']!r} is missing or "
                           f"not an id (letters, digits, '_', '.', '-')", "CNI_CONTAINERID")
        if not IFNAME_RE.match(env["ifname"]) or env["ifname"] in (".", ".."):
            raise CniError(E_ENV, f"CNI_IFNAME {env['ifname']!r} is missing or not an "
                           f"interface name (1-15 characters, no '/', ':' or spaces)",
                           "CNI_IFNAME")
    if cmd in ("ADD", "CHECK"):
        if not env["netns"]:
            raise CniError(E_ENV, f"CNI_NETNS is required for {cmd}", "CNI_NETNS")
    if env["netns"] and not env["netns"].startswith("/"):
        raise CniError(E_ENV, f"CNI_NETNS {env['netns']!r} must be a path such as "
                       f"/var/run/netns/NAME or /proc/PID/ns/net", "CNI_NETNS")
    env["cniArgs"] = parse_cni_args(env["args"])
    return env


def parse_cni_args(text):
    """``K=V;K=V`` (CNI_ARGS).  IP and MAC are honoured, K8S_POD_NAME names the
    port (its DNS name); other keys (K8S_POD_NAMESPACE...) are passed by kubelet
    to every plugin and ignored."""
    out = {}
    for part in (text or "").split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise CniError(E_ENV, f"CNI_ARGS {text!r}: {part!r} is not KEY=VALUE", "CNI_ARGS")
        out[key] = value
    return out


# -- network configuration --------------------------------------------------------------
def decode(raw):
    """The config object from stdin bytes (codes 5 and 6)."""
    if raw is None:
        raise CniError(E_IO, "could not read the network configuration from stdin")
    try:
        conf = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CniError(E_DECODE, "the network configuration on stdin is not JSON",
                       str(e)) from None
    if not isinstance(conf, dict):
        raise CniError(E_DECODE, "the network configuration must be a JSON object")
    return conf


def check_version(conf, command):
    v = conf.get("cniVersion")
    if not isinstance(v, str) or not v:
        raise CniError(E_CONFIG, "cniVersion is missing from the network configuration")
    if v not in SUPPORTED_VERSIONS:
        raise CniError(E_VERSION, f"the vpc plugin does not speak CNI {v}; it supports "
                       f"{', '.join(SUPPORTED_VERSIONS)}", v)
    if command in NEEDS_1_1 and v != "1.1.0":
        raise CniError(E_VERSION, f"{command} needs cniVersion 1.1.0, the configuration "
                       f"says {v}", v)
    if command == "CHECK" and v == "0.3.1":
        raise CniError(E_VERSION, "CHECK needs cniVersion 0.4.0 or later", v)
    return v


def parse_config(conf, command):
    """The plugin's settings from a decoded network configuration (codes 1, 2, 7)."""
    version = check_version(conf, command)
    unknown = sorted(k for k in conf if k not in KNOWN_KEYS)
    if "ipam" in conf:
        raise CniError(E_FIELD, f"unsupported field ipam={json.dumps(conf['ipam'])}: the vpc "
                       f"plugin takes addresses from the controller's IPAM", "ipam")
    if unknown:
        raise CniError(E_FIELD, f"unsupported field {unknown[0]}="
                       f"{json.dumps(conf[unknown[0]])} (the vpc plugin knows "
                       f"{', '.join(sorted(KNOWN_KEYS))})", unknown[0])
    name = conf.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CniError(E_CONFIG, f"name {name!r} is missing or invalid (letters, digits, "
                       f"'_', '.', '-')")
    if conf.get("type") != "vpc":
        raise CniError(E_CONFIG, f"type is {conf.get('type')!r}; this plugin is 'vpc'")
    tenant = conf.get("tenant", name)
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise CniError(E_CONFIG, f"tenant {tenant!r} is not a tenant name (letters, digits, "
                       f"'_', '.', '-'; at most 63)")
    cfg = {"cniVersion": version, "name": name, "tenant": tenant,
           "subnet": _subnet(conf.get("subnet")), "network": conf.get("network"),
           "subnet6": _subnet6(conf.get("subnet6")),
           "mtu": conf.get("mtu"), "dns": conf.get("dns") or {},
           "agentSocket": conf.get("agentSocket") or DEFAULT_SOCKET}
    if cfg["network"] is not None and cfg["network"] not in NETWORK_TYPES:
        raise CniError(E_CONFIG, f"network {cfg['network']!r} must be vlan, vxlan or gre")
    mtu = cfg["mtu"]
    if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool)
                            or not 576 <= mtu <= 9000):
        raise CniError(E_CONFIG, f"mtu {mtu!r} must be a number in 576-9000")
    if not isinstance(cfg["dns"], dict):
        raise CniError(E_CONFIG, "dns must be an object (nameservers, domain, search, options)")
    cfg["aliases"] = _aliases(conf.get("aliases"))
    sock = cfg["agentSocket"]
    if not isinstance(sock, str) or not sock.startswith("/"):
        raise CniError(E_CONFIG, f"agentSocket {sock!r} must be an absolute path")
    rc = conf.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        raise CniError(E_CONFIG, "runtimeConfig must be an object")
    cfg["portMappings"] = _port_mappings(rc.get("portMappings") or [])
    cfg["ip"], cfg["ip6"], cfg["mac"] = _requested(rc)
    if cfg["ip6"] and not cfg["subnet6"]:
        raise CniError(E_CONFIG, f"runtimeConfig.ips asks for {cfg['ip6']}, but the network "
                       f"has no subnet6")
    cfg["prevResult"] = conf.get("prevResult")
    if command == "GC":
        cfg["validAttachments"] = _attachments(conf.get("cni.dev/valid-attachments"))
    return cfg


def dns_name(value):
    """A DNS name as the controller keeps it (lowercase, no trailing dot), or
    None when ``value`` is none."""
    if not isinstance(value, str):
        return None
    text = value.lower()
    text = text[:-1] if text.endswith(".") else text
    return text if len(text) <= 253 and DNS_NAME_RE.fullmatch(text) else None


def _aliases(value):
    """The optional ``aliases`` key: more DNS names of every pod of the network."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ALIASES:
        raise CniError(E_CONFIG, f"aliases must be a list of at most {MAX_ALIASES} DNS names")
    out = []
    for a in value:
        name = dns_name(a)
        if name is None:
            raise CniError(E_CONFIG, f"aliases: {a!r} is not a DNS name (labels of letters, "
                           f"digits, '-', '_', dots between)")
        if name not in out:
            out.append(name)
    return out


def pod_name(env):
    """The pod's DNS name: CNI_ARGS K8S_POD_NAME (kubelet sets it), lowercased;
    None without one or when it is no DNS name."""
    return dns_name((env.get("cniArgs") or {}).get("K8S_POD_NAME"))


def _subnet(value):
    if not isinstance(value, str) or not value:
        raise CniError(E_CONFIG, "subnet is missing (the tenant's IPv4 CIDR, e.g. "
                       "\"10.1.0.0/24\")")
    try:
        net = ipaddress.IPv4Network(value)
    except ValueError:
        raise CniError(E_CONFIG, f"subnet {value!r} is not an IPv4 CIDR with its host "
                       f"bits zero, e.g. 10.1.0.0/24") from None
    if net.prefixlen > 30:
        raise CniError(E_CONFIG, f"subnet {value} is too small (at most /30)")
    return str(net)


def _subnet6(value):
    """The optional IPv6 subnet of a dual-stack network (/64 .. /120)."""
    if value is None:
        return None
    try:
        net = ipaddress.IPv6Network(value)
    except (ValueError, TypeError):
        raise CniError(E_CONFIG, f"subnet6 {value!r} is not an IPv6 CIDR with its host bits "
                       f"zero, e.g. fd00:1::/64") from None
    if not 64 <= net.prefixlen <= 120:
        raise CniError(E_CONFIG, f"subnet6 {value}: the prefix length must be /64 to /120")
    return str(net)


def _port_mappings(value):
    """runtimeConfig.portMappings -> [(protocol, hostPort, containerPort)]."""
    if not isinstance(value, list):
        raise CniError(E_CONFIG, "runtimeConfig.portMappings must be a list")
    out = []
    for m in value:
        if not isinstance(m, dict):
            raise CniError(E_CONFIG, "runtimeConfig.portMappings entries must be objects")
        proto = (m.get("protocol") or "tcp").lower()
        host, ctr = m.get("hostPort"), m.get("containerPort")
        if proto not in PROTOCOLS:
            raise CniError(E_CONFIG, f"portMappings protocol {proto!r}: tcp and udp only")
        if not isinstance(ctr, int) or not 1 <= ctr <= 65535:
            raise CniError(E_CONFIG, f"portMappings containerPort {ctr!r} is not a port")
        if not isinstance(host, int) or not 1 <= host <= MAX_FORWARD_PORT:
            raise CniError(E_CONFIG, f"portMappings hostPort {host!r} must be in "
                           f"1-{MAX_FORWARD_PORT}")
        if m.get("hostIP") not in (None, "", "0.0.0.0"):
            raise CniError(E_CONFIG, f"portMappings hostIP {m['hostIP']!r}: the vpc plugin "
                           f"publishes on the host's external IP only (leave hostIP out)")
        out.append((proto, host, ctr))
    if len({(p, h) for p, h, _ in out}) != len(out):
        raise CniError(E_CONFIG, "portMappings uses the same hostPort twice")
    return out


def _requested(rc):
    """runtimeConfig.ips / runtimeConfig.mac (capabilities "ips", "mac"):
    (IPv4 or None, IPv6 or None, MAC or None)."""
    ips = rc.get("ips") or []
    if not isinstance(ips, list) or len(ips) > 2:
        raise CniError(E_CONFIG, "runtimeConfig.ips: at most one IPv4 and one IPv6 address")
    got = {}
    for text in ips:
        try:
            addr = ipaddress.ip_interface(text).ip
        except (ValueError, TypeError):
            raise CniError(E_CONFIG, f"runtimeConfig.ips {text!r} is not an IP address") \
                from None
        if addr.version in got:
            raise CniError(E_CONFIG, "runtimeConfig.ips: at most one IPv4 and one IPv6 address")
        got[addr.version] = str(addr)
    ip, ip6 = got.get(4), got.get(6)
    mac = rc.get("mac")
    if mac is not None and (not isinstance(mac, str) or not MAC_RE.match(mac)):
        raise CniError(E_CONFIG, f"runtimeConfig.mac {mac!r} is not a MAC address")
    return ip, ip6, mac.lower() if mac else None


def _attachments(value):
    if value is None:
        value = []
    if not isinstance(value, list) or not all(
            isinstance(a, dict) and isinstance(a.get("containerID"), str)
            and isinstance(a.get("ifname"), str) for a in value):
        raise CniError(E_CONFIG, "cni.dev/valid-attachments must be a list of "
                       "{\"containerID\", \"ifname\"}")
    return [(a["containerID"], a["ifname"]) for a in value]


def requested_address(cfg, env):
    """IP and MAC asked for: runtimeConfig first, then CNI_ARGS IP=/MAC=."""
    args = env.get("cniArgs") or {}
    ip, mac = cfg.get("ip"), cfg.get("mac")
    if ip is None and args.get("IP"):
        try:
            ip = str(ipaddress.IPv4Address(args["IP"].split("/")[0]))
        except ValueError:
            raise CniError(E_ENV, f"CNI_ARGS IP={args['IP']!r} is not IPv4", "CNI_ARGS") \
                from None
    if mac is None and args.get("MAC"):
        if not MAC_RE.match(args["MAC"]):
            raise CniError(E_ENV, f"CNI_ARGS MAC={args['MAC']!r} is not a MAC", "CNI_ARGS")
        mac = args["MAC"].lower()
    if ip is not None and ipaddress.IPv4Address(ip) not in ipaddress.IPv4Network(cfg["subnet"]):
        raise CniError(E_CONFIG, f"requested IP {ip} is not in subnet {cfg['subnet']}")
    return ip, mac


# -- result ------------------------------------------------------------------------------
def port_addresses(port):
    """[(version, "ip/len", gateway)] of a controller port: IPv4, then IPv6."""
    out = []
    if port.get("ip"):
        out.append(("4", f"{port['ip']}/{port['prefixlen']}", port.get("gateway")))
    if port.get("ip6"):
        out.append(("6", f"{port['ip6']}/{port['prefixlen6']}", port.get("gateway6")))
    return out


def result(cfg, port, host_if, host_mac, netns, ifname):
    """The ADD result for the controller port ``port``: its IPv4 (and, on a
    dual-stack network, IPv6) address, gateway and default route, and DNS."""
    ips, routes = [], []
    for version, address, gateway in port_addresses(port):
        ip = {"address": address, "interface": 1}
        if gateway:
            ip["gateway"] = gateway
            routes.append({"dst": "0.0.0.0/0" if version == "4" else "::/0", "gw": gateway})
        if cfg["cniVersion"] == "0.4.0":
            ip["version"] = version
        ips.append(ip)
    return {"cniVersion": cfg["cniVersion"],
            "interfaces": [{"name": host_if, "mac": host_mac or ""},
                           {"name": ifname, "mac": port["mac"], "sandbox": netns}],
            "ips": ips, "routes": routes, "dns": result_dns(cfg, port)}


def result_dns(cfg, port):
    """The result's ``dns``: the controller port's (its gateways as
    nameservers, the tenant's domain and search), each key overridden by the
    network configuration's ``dns`` when that has it."""
    view = port.get("dns") if isinstance(port.get("dns"), dict) else {}
    dns = {k: view[k] for k in DNS_KEYS if view.get(k)}
    dns.update(cfg.get("dns") or {})
    return dns


def prev_addresses(cfg):
    """The container addresses in a CHECK's prevResult, or None without one."""
    prev = cfg.get("prevResult")
    if not isinstance(prev, dict):
        return None
    return [ip["address"] for ip in prev.get("ips") or []
            if isinstance(ip, dict) and isinstance(ip.get("address"), str)]


def socket_path(conf_or_cfg, environ=None):
    """Where the agent listens: the config's agentSocket, else VPC_CNI_SOCKET, else
    the default (the agent's --cni-socket default)."""
    environ = os.environ if environ is None else environ
    sock = conf_or_cfg.get("agentSocket") if isinstance(conf_or_cfg, dict) else None
    return sock or environ.get("VPC_CNI_SOCKET") or DEFAULT_SOCKET
