"""Controller settings, from the environment (osken-manager owns the command line).

  VPC_REST_HOST     address the REST API binds to            (127.0.0.1)
  VPC_REST_PORT     its TCP port                               (8080)
  VPC_STATE         directory of the msgpack store             (/var/lib/vpc-controller)
  VPC_UNDERLAY_MTU  MTU of the hosts' physical network         (1500)
  VPC_LOG_LEVEL     logging level of the controller's modules  (INFO)
  VPC_LLDP_INTERVAL seconds between LLDP probes on each port   (1.0)
  VPC_LLDP_TIMEOUT  a link with no LLDP for this long is down  (3.0)
  VPC_STORE         msgpack | etcd                             (msgpack)
  VPC_ETCD_ENDPOINTS etcd members, comma separated  (http://127.0.0.1:2379)
  VPC_LEASE_TTL     leader lease, seconds (etcd store only)    (1)
  VPC_RECONCILE_PARALLEL switches reconciled at the same time    (64)
  VPC_STARTUP_GRACE seconds after start during which registered hosts
                    not back yet still count as connected      (10)
  VPC_AUTH          on | off: REST wants a token (docs/security.md)
                    (on when VPC_REST_HOST is not loopback or an admin token is
                    given, else off; off beyond loopback is refused)
  VPC_ADMIN_TOKEN   the admin token itself                     (none)
  VPC_ADMIN_TOKEN_FILE file holding it; made (0600) when missing
                                                 (<VPC_STATE>/admin.token)
  VPC_REST_CERT, VPC_REST_KEY  PEM certificate (chain) and private key: the
                    REST API speaks HTTPS only (both or neither; HTTP without)

The OpenFlow side uses os-ken's own flags: --ofp-tcp-listen-port (6653) and
--ofp-listen-host; over TLS --ofp-ssl-listen-port, --ctl-privkey, --ctl-cert
and --ca-certs (docs/security.md).
"""
import ipaddress
import os
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    state_dir: str = "/var/lib/vpc-controller"
    underlay_mtu: int = 1500
    log_level: str = "INFO"
    lldp_interval: float = 1.0
    lldp_timeout: float = 3.0
    store: str = "msgpack"
    etcd_endpoints: tuple = ("http://127.0.0.1:2379",)
    lease_ttl: int = 1
    # 64: bundles and flow dumps in flight overlap ovs-vswitchd's round trips
    # (a switch's reconcile is mostly waiting for its replies); 4 made a cold
    # start of 100 switches 2.7x slower (docs/benchmarks.md, section 2), and
    # with our own encoder no bundle idles into OVS's 10 s timeout at 100.
    reconcile_parallel: int = 64
    startup_grace: float = 10.0
    rest_cert: str = None
    rest_key: str = None
    auth: bool = False
    admin_token: str = None
    admin_token_file: str = None

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        d = cls()
        try:
            port = int(env.get("VPC_REST_PORT", d.rest_port))
            mtu = int(env.get("VPC_UNDERLAY_MTU", d.underlay_mtu))
        except ValueError as exc:
            raise ConfigError(f"VPC_REST_PORT and VPC_UNDERLAY_MTU must be integers ({exc})")
        try:
            lldp_interval = float(env.get("VPC_LLDP_INTERVAL", d.lldp_interval))
            lldp_timeout = float(env.get("VPC_LLDP_TIMEOUT", d.lldp_timeout))
        except ValueError as exc:
            raise ConfigError(f"VPC_LLDP_INTERVAL and VPC_LLDP_TIMEOUT must be numbers ({exc})")
        if not 0.05 <= lldp_interval <= 3600 or not lldp_timeout > lldp_interval:
            raise ConfigError(f"VPC_LLDP_INTERVAL {lldp_interval} must be 0.05..3600 s and "
                              f"VPC_LLDP_TIMEOUT {lldp_timeout} longer than it")
        if not 0 < port < 65536:
            raise ConfigError(f"VPC_REST_PORT {port} is not a TCP port")
        if not 576 <= mtu <= 65535:
            raise ConfigError(f"VPC_UNDERLAY_MTU {mtu} must be between 576 and 65535")
        store = env.get("VPC_STORE", d.store).strip().lower()
        if store not in ("msgpack", "etcd"):
            raise ConfigError(f"VPC_STORE {store!r} must be msgpack or etcd")
        endpoints = tuple(e.strip() for e in
                          env.get("VPC_ETCD_ENDPOINTS", ",".join(d.etcd_endpoints)).split(",")
                          if e.strip())
        try:
            lease_ttl = int(env.get("VPC_LEASE_TTL", d.lease_ttl))
        except ValueError as exc:
            raise ConfigError(f"VPC_LEASE_TTL must be an integer ({exc})")
        if not 1 <= lease_ttl <= 3600 or not endpoints:
            raise ConfigError("VPC_LEASE_TTL must be 1..3600 s and VPC_ETCD_ENDPOINTS non-empty")
        try:
            parallel = int(env.get("VPC_RECONCILE_PARALLEL", d.reconcile_parallel))
        except ValueError as exc:
            raise ConfigError(f"VPC_RECONCILE_PARALLEL must be an integer ({exc})")
        if not 1 <= parallel <= 1024:
            raise ConfigError(f"VPC_RECONCILE_PARALLEL {parallel} must be 1..1024")
        try:
            grace = float(env.get("VPC_STARTUP_GRACE", d.startup_grace))
        except ValueError as exc:
            raise ConfigError(f"VPC_STARTUP_GRACE must be a number ({exc})")
        if not 0 <= grace <= 600:
            raise ConfigError(f"VPC_STARTUP_GRACE {grace} must be 0..600 s")
        rest_cert, rest_key = _tls_files(env)
        rest_host = env.get("VPC_REST_HOST", d.rest_host)
        state_dir = env.get("VPC_STATE", d.state_dir)
        auth, admin, admin_file = _auth(env, rest_host, state_dir)
        return cls(rest_host=rest_host, rest_port=port,
                   state_dir=state_dir, underlay_mtu=mtu,
                   log_level=env.get("VPC_LOG_LEVEL", d.log_level).upper(),
                   lldp_interval=lldp_interval, lldp_timeout=lldp_timeout,
                   store=store, etcd_endpoints=endpoints, lease_ttl=lease_ttl,
                   reconcile_parallel=parallel, startup_grace=grace,
                   rest_cert=rest_cert, rest_key=rest_key,
                   auth=auth, admin_token=admin, admin_token_file=admin_file)


def is_loopback(host):
    """Whether a bind address reaches only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _auth(env, rest_host, state_dir):
    """(auth on?, admin token or None, admin token file).  Without a token anyone
    who reaches the REST API owns every tenant, so auth off is allowed on
    loopback only; unset means on as soon as it listens beyond loopback or an
    admin token is given."""
    admin = env.get("VPC_ADMIN_TOKEN", "").strip() or None
    admin_file = env.get("VPC_ADMIN_TOKEN_FILE", "").strip() or None
    mode = env.get("VPC_AUTH", "").strip().lower()
    if mode not in ("", "on", "off"):
        raise ConfigError(f"VPC_AUTH {mode!r} must be on or off")
    local = is_loopback(rest_host)
    if mode == "off" and not local:
        raise ConfigError(f"VPC_REST_HOST {rest_host} is not a loopback address and "
                          f"VPC_AUTH=off: refusing to serve the REST API without tokens "
                          f"beyond this machine. Set VPC_AUTH=on (the admin token is made in "
                          f"<VPC_STATE>/admin.token) or bind to 127.0.0.1.")
    auth = mode == "on" or (mode == "" and (not local or bool(admin or admin_file)))
    if admin is not None and len(admin) < 16:
        raise ConfigError("VPC_ADMIN_TOKEN must be at least 16 characters")
    return auth, admin, admin_file or os.path.join(state_dir, "admin.token")


def _tls_files(env):
    """(cert, key) for HTTPS, or (None, None).  Refused at start, with the
    reason, when only one is given or a file cannot be read: a controller
    that silently fell back to HTTP would send tokens in clear."""
    cert = env.get("VPC_REST_CERT", "").strip() or None
    key = env.get("VPC_REST_KEY", "").strip() or None
    if (cert is None) != (key is None):
        raise ConfigError("VPC_REST_CERT and VPC_REST_KEY go together: give both for HTTPS, "
                          "or neither for HTTP")
    for name, path in (("VPC_REST_CERT", cert), ("VPC_REST_KEY", key)):
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"{name} {path}: no such readable file")
    return cert, key
