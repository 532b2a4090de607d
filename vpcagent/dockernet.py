"""A Docker network's vpc options (tenant, network type, pool, DNS), by network id.

CreateNetwork carries them once; every later call carries only the network
id, and Docker does not replay CreateNetwork after a plugin restart.  So the
options seen at CreateNetwork are cached, and a network the agent has not
seen (it was restarted) is read back from dockerd's API (``GET
/networks/ID``): dockerd, not the agent, is where they live.  The cache only
saves that round trip; it is safe to lose.
"""
import threading

from vpcagent.server import ProtocolError

DOCKER_API_VERSION = "1.41"          # dockerd 20.10; the SDK then skips a /version probe


class NetworkOptions:
    def __init__(self, docker_socket=None):
        self.docker_socket = docker_socket
        self._cache = {}
        self._lock = threading.Lock()
        self._client = None

    def remember(self, network_id, opts):
        with self._lock:
            self._cache[network_id] = dict(opts)

    def forget(self, network_id):
        with self._lock:
            self._cache.pop(network_id, None)

    def cached(self, network_id):
        """The options seen at CreateNetwork (or read before), or None."""
        with self._lock:
            hit = self._cache.get(network_id)
        return dict(hit) if hit is not None else None

    def get(self, network_id):
        """{"tenant", "network", "pool", "gateway"} of a vpc network (ProtocolError
        when neither the cache nor dockerd knows it)."""
        if not isinstance(network_id, str) or not network_id:
            raise ProtocolError("NetworkID is missing")
        with self._lock:
            hit = self._cache.get(network_id)
        if hit is not None:
            return dict(hit)
        opts = self._from_docker(network_id)
        self.remember(network_id, opts)
        return opts

    def endpoints(self, network_id):
        """Endpoint ids dockerd lists on a network (its running containers);
        ProtocolError when dockerd cannot say."""
        import docker.errors
        try:
            net = self._docker().inspect_network(network_id)
        except docker.errors.NotFound:
            return set()
        except Exception as e:                                   # noqa: BLE001
            raise ProtocolError(f"cannot ask dockerd about network {network_id[:12]}: "
                                f"{e}") from None
        return {c.get("EndpointID") for c in (net.get("Containers") or {}).values()}

    def _docker(self):
        if self._client is None:
            import docker                            # only needed after a restart
            base = f"unix://{self.docker_socket or '/var/run/docker.sock'}"
            self._client = docker.APIClient(base_url=base, version=DOCKER_API_VERSION,
                                            timeout=10)
        return self._client

    def _from_docker(self, network_id):
        import docker.errors
        try:
            net = self._docker().inspect_network(network_id)
        except docker.errors.NotFound:
            raise ProtocolError(f"dockerd does not know network {network_id[:12]}") from None
        except Exception as e:                                   # noqa: BLE001
            raise ProtocolError(f"cannot read network {network_id[:12]} from dockerd at "
                                f"{self.docker_socket or '/var/run/docker.sock'} ({e}); "
                                f"start vpc-agent with --docker-socket PATH") from None
        return options_of(net)


def options_of(net):
    """The vpc options of a network as dockerd's API shows it."""
    o = net.get("Options") or {}
    configs = (net.get("IPAM") or {}).get("Config") or [{}]
    cfg = next((c for c in configs if ":" not in (c.get("Subnet") or "")), configs[0])
    cfg6 = next((c for c in configs if ":" in (c.get("Subnet") or "")), {})
    ipam_opts = (net.get("IPAM") or {}).get("Options") or {}
    tenant = o.get("vpc.tenant") or ipam_opts.get("vpc.tenant")
    if not tenant:
        raise ProtocolError(f"network {net.get('Name') or net.get('Id', '')[:12]} has no "
                            f"vpc.tenant option")
    return {"tenant": tenant, "network": o.get("vpc.network"), "dns": o.get("vpc.dns"),
            "pool": cfg.get("Subnet"), "gateway": cfg.get("Gateway"),
            "pool6": cfg6.get("Subnet"),
            "ipam": (net.get("IPAM") or {}).get("Driver") == "vpc"}
