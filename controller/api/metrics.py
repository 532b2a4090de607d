"""Prometheus metrics of the controller, served as GET /metrics.

`Metrics` owns a private CollectorRegistry (never prometheus_client's global
one, so two controllers in one process -- the unit tests -- do not share
counters).  The app records events on it (a reconcile ran, a packet-in came)
and hands it callables for what is read at scrape time (counts from the
state, flows per switch).  `Metrics.wsgi(app, ...)` wraps the REST WSGI app:
it answers /metrics itself, passes mounted prefixes (/ui) to their apps and
everything else to the REST API, and counts and times every request by
method, route template and status code.

Metric names (all prefixed vpc_):

  controller_info{store,version}                       1, what runs
  switches_connected                                   OpenFlow sessions up
  hosts, tenants, ports                                objects in the model
  flows_desired{dpid}, flows_installed{dpid}           per connected switch
  flow_mods_total{dpid}                                flow-mods sent in bundles
  reconcile_runs_total{dpid}                           successful reconciles
  reconcile_failures_total{dpid}                       failed ones (retried)
  reconcile_duration_seconds                           histogram
  reconcile_flows_total{dpid,action=added|removed|kept}
  packet_ins_total{reason}
  rest_requests_total{method,route,code}
  rest_request_duration_seconds{method,route}          histogram
"""
import time
from importlib import metadata

from prometheus_client import (CollectorRegistry, Counter, Histogram, Info,
                               disable_created_metrics, generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "unmatched"     # the route label of a 404: never the raw path (cardinality)


def _version():
    try:
        return metadata.version("vpc-controller")
    except metadata.PackageNotFoundError:
        return "unknown"


def dpid_label(dpid):
    return f"{dpid:016x}"


class _ScrapeTime:
    """Gauges computed when scraped, from the callables the app gave."""

    def __init__(self, counts, switches, flows):
        self.counts = counts        # () -> {"hosts": n, "tenants": n, "ports": n}
        self.switches = switches    # () -> n
        self.flows = flows          # () -> {dpid: (desired, installed or None)}

    def describe(self):
        # Names only, so registering does not call the callables.
        return list(self._families())

    def collect(self):
        return self._families(fill=True)

    def _families(self, fill=False):
        sw = GaugeMetricFamily("vpc_switches_connected",
                               "OpenFlow switches with a live session")
        if fill:
            sw.add_metric([], self.switches())
        yield sw
        counts = self.counts() if fill else {}
        for key, text in (("hosts", "registered hosts"), ("tenants", "tenants (VPCs)"),
                          ("ports", "tenant ports")):
            g = GaugeMetricFamily(f"vpc_{key}", f"Number of {text} in the model")
            if fill:
                g.add_metric([], counts.get(key, 0))
            yield g
        desired = GaugeMetricFamily("vpc_flows_desired",
                                    "Flows the last compile wanted on the switch",
                                    labels=["dpid"])
        installed = GaugeMetricFamily("vpc_flows_installed",
                                      "Flows the reconciler believes the switch holds",
                                      labels=["dpid"])
        if fill:
            for dpid, (want, have) in sorted(self.flows().items()):
                if want is not None:
                    desired.add_metric([dpid_label(dpid)], want)
                if have is not None:
                    installed.add_metric([dpid_label(dpid)], have)
        yield desired
        yield installed


class Metrics:
    def __init__(self, store="msgpack", counts=None, switches=None, flows=None):
        # No *_created series (a timestamp per counter child): noise for an
        # operator, and the process start time says the same.  Process-wide.
        disable_created_metrics()
        self.registry = r = CollectorRegistry(auto_describe=True)
        Info("vpc_controller", "What runs: the state store backend, the version",
             registry=r).info({"store": store, "version": _version()})
        self.flow_mods = Counter("vpc_flow_mods", "Flow-mods sent to switches (in bundles)",
                                 ["dpid"], registry=r)
        self.reconcile_runs = Counter("vpc_reconcile_runs", "Reconciles that completed",
                                      ["dpid"], registry=r)
        self.reconcile_failures = Counter("vpc_reconcile_failures",
                                          "Reconciles that failed (the switch is re-read "
                                          "and the reconcile retried)", ["dpid"], registry=r)
        self.reconcile_seconds = Histogram("vpc_reconcile_duration_seconds",
                                           "Time of one reconcile: read, compile, diff, send",
                                           buckets=RECONCILE_BUCKETS, registry=r)
        self.reconcile_flows = Counter("vpc_reconcile_flows",
                                       "Flows added, removed or kept by reconciles",
                                       ["dpid", "action"], registry=r)
        self.packet_in_count = Counter("vpc_packet_ins", "Packet-ins by reason",
                                       ["reason"], registry=r)
        self.requests = Counter("vpc_rest_requests", "HTTP requests served",
                                ["method", "route", "code"], registry=r)
        self.request_seconds = Histogram("vpc_rest_request_duration_seconds",
                                         "Time to answer an HTTP request",
                                         ["method", "route"], buckets=REST_BUCKETS, registry=r)
        r.register(_ScrapeTime(counts or (lambda: {}), switches or (lambda: 0),
                               flows or (lambda: {})))

    # --- events the app reports ---------------------------------------------
    def reconciled(self, dpid, plan, seconds):
        d = dpid_label(dpid)
        self.reconcile_runs.labels(d).inc()
        self.reconcile_seconds.observe(seconds)
        self.flow_mods.labels(d).inc(len(plan.adds) + len(plan.deletes))
        self.reconcile_flows.labels(d, "added").inc(len(plan.adds))
        self.reconcile_flows.labels(d, "removed").inc(len(plan.deletes))
        self.reconcile_flows.labels(d, "kept").inc(plan.kept)

    def reconcile_failed(self, dpid):
        self.reconcile_failures.labels(dpid_label(dpid)).inc()

    def packet_in(self, reason):
        self.packet_in_count.labels(reason).inc()

    def packet_ins(self):
        """{reason: count} (for /v1/health)."""
        return {s.labels["reason"]: int(s.value)
                for fam in self.packet_in_count.collect() for s in fam.samples
                if s.name == "vpc_packet_ins_total"}

    def value(self, name, labels=None):
        """One sample's value, or None (for tests and tools)."""
        return self.registry.get_sample_value(name, labels or {})

    def exposition(self):
        return generate_latest(self.registry)

    # --- serving --------------------------------------------------------------
    def wsgi(self, api, route_of=None, mounts=None):
        return Instrumented(self, api, route_of=route_of, mounts=mounts)


class Instrumented:
    """The WSGI app the server runs: /metrics, mounted apps, the REST API;
    every request counted and timed."""

    def __init__(self, metrics, api, route_of=None, mounts=None):
        self.metrics = metrics
        self.api = api
        # RestApi names the route of a request itself (RestApi.route_of)
        self.route_of = route_of or getattr(api, "route_of", None) or (lambda environ: None)
        # With authentication on, /metrics is the admin's (RestApi.metrics_guard)
        self.guard = getattr(api, "metrics_guard", None) or (lambda environ: None)
        self.mounts = sorted((mounts or {}).items(), key=lambda kv: -len(kv[0]))

    def __call__(self, environ, start_response):
        start = time.perf_counter()
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        status = {}

        def recording_start_response(status_line, headers, exc_info=None):
            status["code"] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        app, route = self._route(path, environ)
        try:
            result = app(environ, recording_start_response)
        except Exception:
            self._record(method, route, "500", start)
            raise
        self._record(method, route, status.get("code", "500"), start)
        return result

    def _route(self, path, environ):
        if path == "/metrics":
            return self._serve_metrics, "/metrics"
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return app, prefix
        return self.api, self.route_of(environ) or UNMATCHED

    def _record(self, method, route, code, start):
        if method not in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            method = "other"
        self.metrics.requests.labels(method, route, code).inc()
        self.metrics.request_seconds.labels(method, route).observe(time.perf_counter() - start)

    def _serve_metrics(self, environ, start_response):
        if environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD"):
            body = b"GET /metrics only\n"
            start_response("405 Method Not Allowed",
                           [("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD"),
                            ("Content-Length", str(len(body)))])
            return [body]
        denied = self.guard(environ)
        if denied is not None:
            return denied(environ, start_response)
        body = self.metrics.exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [] if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD" else [body]
