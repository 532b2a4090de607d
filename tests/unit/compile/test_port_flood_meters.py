"""Per-port flood meters: a secured port's broadcast/multicast/ARP and unknown
unicast go through that port's own meter; its unicast to known MACs does not.

Why: head-end replication makes every flooded frame cost the shared
datapath one copy per local port and per remote host, so one container
blasting broadcasts would slow every other tenant on the host (issue 16,
item 3).  The meter must sit on every path a port's frames take towards
FLOOD, and on none of the paths of ordinary unicast, which it would throttle
for no reason.  Checked by running frames through the simulated switches
and looking at the flows they hit on the sender's host."""
import pytest

from controller.compile.meters import (PORT_METER_BASE, PORT_METER_MAX, MeterId, meters_for,
                                       port_meter)
from controller.compile.pipeline import MAX_PORT_SERIAL
from controller.reconcile.plan import SwitchSync, plan
from tests.support.fake_switch import FakeSwitch, run
from tests.support.worlds import World

PORTS = [("a", 1, "10.0.0.2"), ("a", 1, "10.0.0.3"), ("a", 2, "10.0.0.4"),
         ("b", 1, "10.0.0.2"), ("b", 2, "10.0.0.3")]


def world(**kw):
    return World(tenants=[("a", "vxlan", 5), ("b", "vlan", 6)], ports=PORTS, **kw)


def meters_hit(w):
    """Meter ids of the flows the last frame hit on its own (first) switch."""
    first = w.net.hops[0]
    return [f.meter for f in first.result.trace if f.meter is not None]


def frames(w, pid):
    """A secured port's flooding frames: (what, deliveries, meters hit)."""
    p = w.port(pid)
    out = []
    got = w.arp_request(pid, "10.0.0.99")                       # nobody has it
    out.append(("arp for an unknown ip", got, meters_hit(w)))
    got = w.send(pid, eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0800, ipv4_src=p.ip,
                 ipv4_dst="255.255.255.255", ip_proto=17, udp_src=40000, udp_dst=9)
    out.append(("broadcast udp", got, meters_hit(w)))
    got = w.ipv4(pid, "02:99:00:00:00:01", "10.0.0.77")         # a MAC nobody has
    out.append(("unknown unicast", got, meters_hit(w)))
    return out


@pytest.mark.parametrize("pid", ["p1", "p2", "p3", "p4", "p5"])
def test_every_secured_ports_flooding_frames_pass_its_own_meter(pid):
    w = world()
    serial = w.port(pid).serial
    for what, got, meters in frames(w, pid):
        assert meters == [PORT_METER_BASE + serial], (pid, what, meters)
    assert w.arp_request(pid, "10.0.0.99")                       # still flooded
    assert meters_hit(w) == [port_meter(serial).meter_id]


def test_unicast_to_known_macs_is_not_metered():
    w = world()
    for src, dst in (("p1", "p2"), ("p1", "p3"), ("p4", "p5")):   # same host, other host
        d = w.port(dst)
        got = w.ipv4(src, d.mac, d.ip)
        assert [pid for pid, _ in got] == [dst] and meters_hit(w) == [], (src, dst)
    # answered in place: metered (a broadcast), but never flooded
    assert w.arp_request("p1", "10.0.0.4")[0][0] == "p1"


def test_a_port_without_port_security_has_no_flood_meter():
    """Routers and appliances may send for others, at their own rate."""
    w = world(insecure=("p2",))
    assert all(meters == [] for _, _, meters in frames(w, "p2"))
    assert PORT_METER_BASE + 2 not in meters_for(w.flows["h1"])


def test_port_meters_are_compiled_as_desired_state_without_clashes():
    w = world()
    on_h1 = {w.port(p).serial for p, (h, _) in w.ofport.items() if h == "h1"}
    meters = meters_for(w.flows["h1"])
    assert set(meters) == {PORT_METER_BASE + s for s in on_h1}
    assert all(m == port_meter(m.meter_id - PORT_METER_BASE) for m in meters.values())
    assert max(MeterId) < PORT_METER_BASE
    assert port_meter(MAX_PORT_SERIAL).meter_id <= PORT_METER_MAX
    for bad in (0, MAX_PORT_SERIAL + 1):
        with pytest.raises(ValueError):
            port_meter(bad)


def test_a_ports_meter_goes_away_with_the_port():
    """p2's OVS port is gone (detached): its flows and then its meter leave h1."""
    before = world().flows["h1"]
    after = World(tenants=[("a", "vxlan", 5), ("b", "vlan", 6)],
                  ports=PORTS, missing=("p2",)).flows["h1"]
    installed = meters_for(before)
    p = plan(after, [f.cookie for f in before], installed)
    assert p.meter_deletes == [PORT_METER_BASE + 2] and not p.meter_adds
    assert not any(f.meter == PORT_METER_BASE + 2 for f in after)

    sw = FakeSwitch()
    desired = before
    sync = SwitchSync(sw, lambda dpid: desired)
    try:
        sync.request(full=True)
        run(sync)
        assert set(sw.meters) == set(installed) and len(installed) == 3
        desired = after
        sync.request()
        run(sync)
        assert set(sw.meters) == set(installed) - {PORT_METER_BASE + 2}
        assert set(sw.flows) == {f.cookie for f in after}
    finally:
        sync.stop()
