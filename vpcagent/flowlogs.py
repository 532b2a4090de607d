"""The host side of flow logs: OVS bridge IPFIX -> the controller.

    python -m vpcagent.flowlogs --host h1 --api http://CONTROLLER:8080 \
        [--netns NS] [--ovs-rundir DIR] [--bridge br-int] [--port 4739] [--token-file F]

Every `interval` seconds it asks the controller (GET /v1/hosts/{h}/flow-logs)
whether a tenant with ports here has flow logs on.  While one has, br-int's
IPFIX exporter is on (`sampling` 1 = every packet, the flow cache reports each
flow every `interval` s and at its end) towards 127.0.0.1:PORT in the host's
network namespace, where this process listens; the flow records that entered
the bridge (flowDirection ingress: one record per flow, not one per output)
go to the controller in batches (POST /v1/hosts/{h}/flow-logs), which
decides per port whether the connection was accepted or rejected and by
which rule (controller/trace/flowlogs.py).  When none has, IPFIX is off:
flow logs cost nothing until someone turns them on.

It keeps no state: a restart re-reads the setting; what was in the
exporter's cache before is lost, like any sampled record that is not sent.
"""
import argparse
import logging
import socket
import sys
import threading
import time

from vpcagent.flowlogs_ipfix import Decoder, IpfixError
from vpcagent.ovs import Ovs, OvsError

log = logging.getLogger("vpc-agent.flowlogs")
DEFAULT_PORT = 4739          # IANA's IPFIX port
MAX_BATCH = 2000
CACHE_FLOWS = 4096           # the exporter's flow cache: bounds its memory
KEEP = ("src", "dst", "proto", "sport", "dport", "icmp_type", "icmp_code", "src_mac",
        "dst_mac")


def flow_records(export_time, records):
    """Decoded IPFIX records -> what the controller takes: IPv4 flows that
    entered the bridge, with start/end in Unix seconds."""
    out = []
    for r in records:
        if r.get("direction", 0) != 0 or "src" not in r or "proto" not in r:
            continue
        rec = {k: r[k] for k in KEEP if k in r}
        rec["packets"] = r.get("packets", 0)
        rec["bytes"] = r.get("octets", 0)
        rec["start"] = export_time - r.get("start_delta_us", 0) / 1e6
        rec["end"] = export_time - r.get("end_delta_us", 0) / 1e6
        out.append(rec)
    return out


class IpfixSwitch:
    """br-int's IPFIX exporter, on or off (one IPFIX row, cleared when off)."""

    def __init__(self, ovs, port):
        self.ovs, self.port, self.on = ovs, port, None

    def set(self, on, sampling=1, interval=5):
        if on == self.on:
            return
        if on:
            self.ovs.vsctl("--", "set", "Bridge", self.ovs.bridge, "ipfix=@i", "--",
                           "--id=@i", "create", "IPFIX", f'targets="127.0.0.1:{self.port}"',
                           f"sampling={sampling}", f"cache_active_timeout={interval}",
                           f"cache_max_flows={CACHE_FLOWS}")
        else:
            self.ovs.vsctl("clear", "Bridge", self.ovs.bridge, "ipfix")
        self.on = on
        log.info("IPFIX on %s %s", self.ovs.bridge, "on" if on else "off")


def listen(port, netns=None):
    """The collector's UDP socket, in the host's network namespace (the lab's
    emulated hosts are namespaces; the agent stays in the root one)."""
    if netns:
        from pyroute2 import netns as pnetns
        from vpcagent.plumbing import netns_path
        sock = pnetns.create_socket(netns_path(netns), socket.AF_INET, socket.SOCK_DGRAM,
                                    flags=0)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.5)
    return sock


class Exporter:
    """The loop: follow the controller's setting, collect, send batches."""

    def __init__(self, controller, ipfix, sock, clock=time.monotonic):
        self.controller, self.ipfix, self.sock, self.clock = controller, ipfix, sock, clock
        self.decoder = Decoder()
        self.pending = []
        self.sent = 0

    def poll_setting(self):
        want = self.controller.call("GET", f"/v1/hosts/{self.controller.host}/flow-logs")
        self.ipfix.set(bool(want["enabled"]), want.get("sampling", 1), want.get("interval", 5))
        return want.get("interval", 5)

    def receive(self):
        try:
            data = self.sock.recv(65535)
        except socket.timeout:
            return
        try:
            export_time, records = self.decoder.decode(data)
        except IpfixError as exc:
            log.warning("bad IPFIX message: %s", exc)
            return
        self.pending += flow_records(export_time, records)

    def flush(self):
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            self.controller.call("POST", f"/v1/hosts/{self.controller.host}/flow-logs",
                                 {"records": batch})
            self.sent += len(batch)

    def run(self, stop):
        interval, next_poll = 5, 0.0
        while not stop.is_set():
            now = self.clock()
            if now >= next_poll:
                try:
                    self.flush()
                    interval = self.poll_setting()
                except Exception as exc:        # noqa: BLE001 -- the controller may be away
                    log.warning("flow logs: %s", exc)
                    self.pending = self.pending[-10 * MAX_BATCH:]    # bounded while away
                next_poll = now + min(interval, 1.0)
            self.receive()
        self.flush()


def start(controller, bridge="br-int", ovs_rundir=None, netns=None, port=DEFAULT_PORT):
    """The collector in a thread of vpc-agent (`vpc-agent --flow-logs`):
    (thread, stop event); setting the event stops it and turns IPFIX off."""
    ipfix = IpfixSwitch(Ovs(bridge, ovs_rundir), port)
    sock = listen(port, netns)
    exporter = Exporter(controller, ipfix, sock)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(exporter, stop), name="flow-logs",
                              daemon=True)
    thread.start()
    return thread, stop


def serve(exporter, stop):
    """Run the collector until `stop` is set; then IPFIX off and the socket closed,
    whatever ended it (the bridge must not keep exporting to nobody)."""
    try:
        exporter.run(stop)
    finally:
        try:
            exporter.ipfix.set(False)
        except OvsError as exc:
            log.warning("could not clear IPFIX: %s", exc)
        exporter.sock.close()


def main(argv=None):
    from vpcagent.controller import Controller
    from vpcctl.client import token_from
    p = argparse.ArgumentParser(prog="vpc-flowlogs", description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--token-file")
    p.add_argument("--bridge", default="br-int")
    p.add_argument("--ovs-rundir")
    p.add_argument("--netns")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    a = p.parse_args(argv)
    logging.basicConfig(level="INFO", stream=sys.stderr,
                        format="%(asctime)s vpc-flowlogs %(levelname)s %(message)s")
    ovs = Ovs(a.bridge, a.ovs_rundir)
    ipfix = IpfixSwitch(ovs, a.port)
    try:
        sock = listen(a.port, a.netns)
    except OSError as exc:
        print(f"vpc-flowlogs: error: cannot listen on 127.0.0.1:{a.port}: {exc}",
              file=sys.stderr)
        return 1
    controller = Controller(a.api, a.host, token=token_from(token_file=a.token_file))
    exporter = Exporter(controller, ipfix, sock)
    stop = threading.Event()
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve(exporter, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
