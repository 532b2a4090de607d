"""Roles: what the controller says to a switch, leader or not (no etcd needed)."""
from controller.ha.roles import Roles, _gen_ahead
from controller.runtime.switches import Switches


class FakeSession:
    """The southbound session's role() as a switch answers it."""

    def __init__(self, bridge_gen, refuse_master=False):
        self.dpid = 1
        self.bridge_gen = bridge_gen
        self.refuse_master = refuse_master
        self.sent = []

    def role(self, role, generation=0):
        self.sent.append((role, generation))
        if role == "master" and self.refuse_master:
            raise RuntimeError("type=11 code=0")          # stale generation
        return self.bridge_gen


class FakeElection:
    def __init__(self, leader, generation, can_bump=True):
        self.is_leader, self.generation, self.can_bump = leader, generation, can_bump
        self.bumped = None

    def bump_generation(self, at_least):
        if not self.can_bump:
            return False
        self.bumped = at_least
        self.generation = at_least + 1
        return True


def roles(election):
    r = Roles.__new__(Roles)
    r.election, r.started, r.store_kind = election, {}, "etcd"
    r.switches = Switches()
    return r


def test_follower_sends_slave_with_the_bridges_generation():
    s = FakeSession(bridge_gen=7)
    assert roles(FakeElection(False, 0)).switch_ready(s) is False
    assert s.sent == [("nochange", 0), ("slave", 7)]


def test_leader_claims_master_with_its_generation():
    s = FakeSession(bridge_gen=2)
    assert roles(FakeElection(True, 3)).switch_ready(s) is True
    assert s.sent[-1] == ("master", 3)


def test_undefined_bridge_generation_is_not_ahead():
    s = FakeSession(bridge_gen=0xFFFF_FFFF_FFFF_FFFF)
    assert roles(FakeElection(True, 1)).switch_ready(s) is True
    assert s.sent[-1] == ("master", 1)


def test_bridge_ahead_bumps_only_while_leading():
    s = FakeSession(bridge_gen=40)
    e = FakeElection(True, 3)
    assert roles(e).switch_ready(s) is True and e.bumped == 40
    assert s.sent[-1] == ("master", 41)
    s = FakeSession(bridge_gen=40)
    assert roles(FakeElection(True, 3, can_bump=False)).switch_ready(s) is False
    assert all(role != "master" for role, _ in s.sent)


def test_stale_master_claim_means_no_reconcile():
    s = FakeSession(bridge_gen=2, refuse_master=True)
    assert roles(FakeElection(True, 5)).switch_ready(s) is False


def test_standalone_needs_no_role_request():
    r = roles(None)
    s = FakeSession(bridge_gen=0)
    assert r.switch_ready(s) is True and s.sent == []
    assert r.health()["role"] == "standalone" and r.is_leader


def test_generation_wraps_like_openflow():
    assert _gen_ahead(5, 3) and not _gen_ahead(3, 5) and not _gen_ahead(4, 4)
    assert _gen_ahead(1, 0xFFFF_FFFF_FFFF_FFFF)
