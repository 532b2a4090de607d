"""Flow-log operations of the service (controller/trace/flowlogs.py keeps them).

Tenants switch their flow logs on and off and read them; hosts' agents ask
whether to export IPFIX and hand in what their bridge exported.  None of it
is desired state: it lives in memory, nothing is committed (the routes are
read_only in routes.py), and flow logs are off again after a restart.
"""
import os

from controller.service import validate as v
from controller.service.errors import bad_request, not_found
from controller.trace.flowlogs import FlowLogBook

MAX_BATCH = 5000
EXPORT_INTERVAL = 5     # seconds: the exporter's active timeout, the agent's poll


def sampling():
    """VPC_FLOW_LOG_SAMPLING: 1 (default) samples every packet, exact counters;
    N samples one packet in N (counters are then N times the sampled ones, an
    estimate) and costs the data path less (docs/user-guide.md, flow logs)."""
    try:
        return max(1, min(int(os.environ.get("VPC_FLOW_LOG_SAMPLING", "1")), 1 << 24))
    except ValueError:
        return 1
RECORD_FIELDS = {"src": str, "dst": str, "proto": int, "sport": int, "dport": int,
                 "icmp_type": int, "icmp_code": int, "packets": int, "bytes": int,
                 "start": (int, float), "end": (int, float), "src_mac": str, "dst_mac": str}


class FlowLogOperations:
    _flow_book = None

    @property
    def flow_book(self):
        """The flow logs; a deleted tenant's go with it (the tenant routes do
        not tell this mixin, so it is checked on each use)."""
        if self._flow_book is None:
            self._flow_book = FlowLogBook()
        self._flow_book.prune(self.state.tenants)
        return self._flow_book

    def set_flow_logs(self, tenant_name, body):
        """Turn a tenant's flow logs on or off (off: its records are dropped)."""
        v.body_fields(body, required=("enabled",))
        on = v.boolean(body["enabled"], "enabled")
        tenant = self._tenant(tenant_name)
        self.flow_book.set_enabled(tenant_name, on, tenant.id)
        return self._flow_logs_view(tenant_name, with_records=False)

    def get_flow_logs(self, tenant_name):
        self._tenant(tenant_name)
        return self._flow_logs_view(tenant_name, with_records=True)

    def _flow_logs_view(self, tenant_name, with_records):
        book = self.flow_book
        out = {"tenant": tenant_name, "enabled": tenant_name in book.enabled,
               "since": book.enabled.get(tenant_name)}
        if with_records:
            out["records"] = sorted(book.records(tenant_name), key=lambda r: r["start"])
        return out

    def host_flow_logs(self, host_name):
        """What the host's agent is to export now."""
        if host_name not in self.state.hosts:
            raise not_found(f"host {host_name!r} does not exist")
        return {"host": host_name, "enabled": self.flow_book.host_wanted(self.state, host_name),
                "sampling": sampling(), "interval": EXPORT_INTERVAL}

    def post_host_flow_logs(self, host_name, body):
        """IPFIX flow records the host's bridge exported."""
        v.body_fields(body, required=("records",))
        records = body["records"]
        if not isinstance(records, list) or len(records) > MAX_BATCH:
            raise bad_request(f"records must be a list of at most {MAX_BATCH} flow records")
        for r in records:
            if not isinstance(r, dict) or not {"src", "dst", "proto"} <= set(r) or any(
                    k not in RECORD_FIELDS or not isinstance(val, RECORD_FIELDS[k])
                    or isinstance(val, bool) for k, val in r.items()):
                raise bad_request(f"a flow record has fields {sorted(RECORD_FIELDS)} "
                                  f"(src, dst, proto required); got {r!r}"[:300])
        if host_name not in self.state.hosts:
            raise not_found(f"host {host_name!r} does not exist")
        state = self.state.snapshot()
        taken, ignored = self.flow_book.ingest(state, self.topology_view(state), host_name,
                                               records, scale=sampling())
        return {"host": host_name, "taken": taken, "ignored": ignored}
