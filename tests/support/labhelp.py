"""Helpers the lab tests share: tenants, waiting, pings, flows, servers."""
import contextlib
import subprocess
import time


def make_tenant(api, lab, name, network="vlan", cidr="10.0.0.0/24"):
    a = api(lab.api_url)
    status, tenant = a.post("/v1/tenants", {"name": name, "network": network})
    assert status == 201, tenant
    status, body = a.post(f"/v1/tenants/{name}/subnets", {"cidr": cidr})
    assert status == 201, body
    return tenant


def wait_for(predicate, timeout=10.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def pings(lab, ns, ip, count=3):
    return lab.ping(ns, ip, count=count, interval=0.2, wait=1.0)


def flows_of(lab, host, *args):
    return lab.ovs_ofctl(host, "dump-flows", *args)


@contextlib.contextmanager
def serving(lab, ns, *cmd, log=None):
    """A server process in a namespace for the duration of a block (stopped by pid)."""
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = lab.spawn(ns, *cmd, stdout=out, stderr=out)
    try:
        time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        if log:
            out.close()
