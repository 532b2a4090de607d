"""The controller's services view, indexed for the responder, and kept on disk.

The agent answers DHCP and DNS from this view only: the controller sends it
(GET /v1/hosts/{host}/services, see sync.py) and the agent keeps the last one
in memory and in ``<state-dir>/services-<host>.json``, so a container renews
its lease and resolves its peers while the controller is down or the agent
restarts without it.  The file is written atomically (temporary file, fsync,
rename): a crash leaves the old view or the new one, never half of one.

``View`` is immutable once built and swapped as a whole (``Store.set``), so
the receive loop and the forwarding workers read it without locks.  Bad
entries (a port without a MAC, a record with an unparsable address) are
skipped with a warning instead of failing the whole view: one broken port
must not take DHCP away from the others.
"""
import ipaddress
import itertools
import json
import logging
import os
import tempfile
import threading

log = logging.getLogger("vpc-agent.services")

DEFAULT_TTL = 5
DEFAULT_LEASE = 3600


def _addr(value, version):
    if not value:
        return None
    a = ipaddress.ip_address(value)
    if a.version != version:
        raise ValueError(f"{value} is not an IPv{version} address")
    return a


class Port:
    """One container port on this host."""

    __slots__ = ("serial", "id", "tenant", "mac", "name", "ip", "prefixlen", "gateway",
                 "ip6", "prefixlen6", "gateway6", "mtu")

    def __init__(self, d):
        self.serial = int(d["serial"])
        self.id = d.get("id")
        self.tenant = d["tenant"]
        self.mac = d["mac"].lower()
        self.name = d.get("name") or None
        self.ip = _addr(d.get("ip"), 4)
        self.prefixlen = int(d["prefixlen"]) if self.ip else None
        self.gateway = _addr(d.get("gateway"), 4) if self.ip else None
        if self.ip and self.gateway is None:
            raise ValueError("an IPv4 address without a gateway")
        self.ip6 = _addr(d.get("ip6"), 6)
        self.prefixlen6 = int(d.get("prefixlen6") or 64) if self.ip6 else None
        self.gateway6 = _addr(d.get("gateway6"), 6) if self.ip6 else None
        self.mtu = int(d["mtu"]) if d.get("mtu") else None


class Tenant:
    """A tenant with a port here: its DHCP/DNS settings and its names."""

    def __init__(self, name, d):
        self.name = name
        self.router_mac = d["router_mac"].lower()
        self.router_ll6 = _addr(d.get("router_ll6"), 6)
        dom = (d.get("domain") or "").strip().strip(".").lower()
        self.domain = dom or None
        self.resolvers = list(d.get("resolvers") or [])
        self.lease_time = int(d.get("lease_time") or DEFAULT_LEASE)
        ttl = d.get("ttl")
        self.ttl = int(DEFAULT_TTL if ttl is None else ttl)
        self.subnets = [ipaddress.ip_network(s, strict=False) for s in d.get("subnets") or []]
        self.names = {}         # lowercase name -> [(ip4, ip6)] in the controller's order
        self.by_addr = {}       # ip_address -> first name (for PTR)
        for r in d.get("records") or []:
            try:
                names = [str(n).strip().strip(".").lower() for n in r.get("names") or []]
                names = [n for n in names if n]
                ip4, ip6 = _addr(r.get("ip"), 4), _addr(r.get("ip6"), 6)
            except (ValueError, TypeError, AttributeError) as exc:
                log.warning("services view: tenant %s: record %r skipped: %s", name, r, exc)
                continue
            if not names:
                continue
            for n in dict.fromkeys(names):
                self.names.setdefault(n, []).append((ip4, ip6))
            for a in (ip4, ip6):
                if a is not None:
                    self.by_addr.setdefault(a, names[0])
        self._rr = {}
        self._rr_lock = threading.Lock()

    def rotation(self, key, n):
        """How far to rotate an answer of ``n`` records for ``key``: one step
        more per query (round robin over the members of a name)."""
        with self._rr_lock:
            c = self._rr.setdefault(key, itertools.count())
            return next(c) % n if n else 0

    def in_subnets(self, addr):
        return any(addr.version == s.version and addr in s for s in self.subnets)


class View:
    """The whole view: ports by serial, tenants by name; ``raw`` is the dict
    as the controller sent it (what is saved)."""

    def __init__(self, raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("ports", []), list) or \
                not isinstance(raw.get("tenants", {}), dict):
            raise ValueError("the services view is not an object with ports and tenants")
        self.raw = raw
        self.host = raw.get("host")
        self.etag = raw.get("etag")
        self.service_port = raw.get("service_port") or "vpc-svc"
        self.tenants = {}
        for name, t in (raw.get("tenants") or {}).items():
            try:
                self.tenants[name] = Tenant(name, t)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                log.warning("services view: tenant %s skipped: %s", name, exc)
        self.ports = {}
        for p in raw.get("ports") or []:
            try:
                port = Port(p)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                log.warning("services view: port %r skipped: %s", p, exc)
                continue
            if port.tenant not in self.tenants:
                log.warning("services view: port %s of tenant %s without its tenant; "
                            "skipped", port.serial, port.tenant)
                continue
            self.ports[port.serial] = port

    def port(self, serial):
        return self.ports.get(serial)

    def tenant(self, name):
        return self.tenants.get(name)


EMPTY = View({"ports": [], "tenants": {}})


class Store:
    """The current view (memory) and its file (``path``; None: memory only)."""

    def __init__(self, path=None):
        self.path = path
        self.view = EMPTY
        self.loaded = False          # True once a view came from the controller or disk

    def set(self, raw, persist=True):
        """Build and install a view from the controller's dict (ValueError
        when it is not a view); saved when ``persist``."""
        view = View(raw)
        self.view = view
        self.loaded = True
        if persist and self.path:
            try:
                save(self.path, raw)
            except OSError as exc:
                log.warning("services view: cannot save %s: %s", self.path, exc)
        return view

    def load(self, host=None):
        """Install the saved view; True when there was one (of ``host``)."""
        if not self.path:
            return False
        try:
            with open(self.path) as f:
                raw = json.load(f)
            if host and raw.get("host") not in (None, host):
                log.warning("services view: %s is host %s's, not %s; ignored", self.path,
                            raw.get("host"), host)
                return False
            self.set(raw, persist=False)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            log.warning("services view: cannot load %s: %s", self.path, exc)
            return False
        return True


def state_path(state_dir, host):
    return os.path.join(state_dir, f"services-{host}.json")


def save(path, raw):
    """Write ``raw`` as JSON to ``path`` atomically (and durably)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".services-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(raw, f, separators=(",", ":"), sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
