"""State's port indexes carried over by apply() give what a rebuild from the
records gives, after any sequence of port puts and deletes (moves between
hosts and tenants, renames, several ops at once); a snapshot taken before
keeps what it saw."""
import random

from controller.model.state import Port, State, record


def rebuilt(state):
    fresh = State(state.to_collections())
    return fresh


def views(state, tenants, hosts):
    return ({t: [p.id for p in state.ports_of(t)] for t in tenants},
            {h: [p.id for p in state.ports_on(h)] for h in hosts})


def test_indexes_after_random_port_changes_equal_a_rebuild():
    rng = random.Random(7)
    tenants, hosts = ["a", "b", "c"], ["h1", "h2", "h3"]
    state = State()
    serial = 0
    for step in range(600):
        views(state, tenants, hosts)              # the indexes exist before each change
        snap = state.snapshot()
        seen = views(snap, tenants, hosts)
        ops = []
        for _ in range(rng.choice([1, 1, 2, 3, 70])):   # 70: more than carried over
            key = f"p{rng.randrange(40)}"
            if rng.random() < 0.3 and key in state.ports:
                ops.append(["del", "ports", key])
            else:
                old = state.ports.get(key)
                serial += 1
                port = Port(key, rng.choice(tenants), rng.choice(hosts), key, "10.0.0.2",
                            "02:00:00:00:00:01", "10.0.0.0/24",
                            old.serial if old and rng.random() < 0.7 else serial,
                            name=rng.choice([None, "web"]))
                ops.append(["put", "ports", key, record(port)])
        state.apply(ops)
        assert views(state, tenants, hosts) == views(rebuilt(state), tenants, hosts), step
        assert views(snap, tenants, hosts) == seen
