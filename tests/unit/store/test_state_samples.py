"""State written by an older main loads unchanged: a msgpack state directory
(snapshot + journal) and an etcd keyspace, both captured before the layout
refactor (tests/golden/state-*), give the same collections and the same views.
"""
import base64
import json
import shutil
from pathlib import Path

import pytest

from controller.model.state import State
from controller.service.vpc import VpcService
from controller.store.msgpack_store import MsgpackStore

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def expected():
    return json.loads((GOLDEN / "state-expected.json").read_text())


def plain(collections):
    return json.loads(json.dumps(collections, sort_keys=True, default=list))


def test_a_msgpack_state_dir_of_the_old_layout_loads_unchanged(tmp_path):
    shutil.copytree(GOLDEN / "state-msgpack", tmp_path / "state")
    store = MsgpackStore(tmp_path / "state")
    try:
        collections = store.load()
        assert store.stats["records_replayed"] > 0      # both snapshot and journal were read
        assert plain(collections) == expected()
        svc = VpcService(State(collections), store)
        ports = {p["port"]: p for t in ("red", "blue") for p in svc.list_ports(t)}
        assert ports["v2"]["ip"] == "10.0.1.7" and ports["v2"]["security_groups"] == ["default",
                                                                                      "web"]
        assert ports["v4"]["port_security"] is False
        assert [f["external_port"] for f in svc.list_forwards("red")] == [8080]
    finally:
        store.close()


def test_an_etcd_keyspace_of_the_old_layout_loads_unchanged(tmp_path):
    if shutil.which("etcd") is None:
        pytest.skip("etcd not installed (scripts/setup)")
    from controller.store.etcd_store import EtcdStore
    from vpclab.labmulti import EtcdCluster
    cluster = EtcdCluster(tmp_path / "etcd", members=1)
    cluster.start()
    try:
        store = EtcdStore(cluster.endpoints.split(","))
        keys = json.loads((GOLDEN / "state-etcd.json").read_text())
        for key, value in keys.items():
            store.etcd.post("kv/put", {"key": base64.b64encode(key.encode()).decode(),
                                       "value": value})
        assert plain(store.load()) == expected()
        store.close()
    finally:
        cluster.stop()
