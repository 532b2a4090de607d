"""The msgpack store: durable, replayable, and calm about a torn journal tail."""
import os

import pytest

from controller.store.base import StoreError
from controller.store.msgpack_store import HEADER, MsgpackStore


def ops(i):
    return [("put", "tenants", f"t{i}", {"name": f"t{i}", "network": "vlan", "segment": i, "id": i})]


def reopen(path, **kw):
    s = MsgpackStore(path, **kw)
    return s, s.load()


def test_round_trip(tmp_path):
    s, data = reopen(tmp_path)
    assert data == {}
    for i in range(1, 4):
        s.commit(ops(i))
    s.commit([("del", "tenants", "t2")])
    s.close()
    s, data = reopen(tmp_path)
    assert sorted(data["tenants"]) == ["t1", "t3"]
    assert s.stats["records_replayed"] == 4
    s.close()


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 3])
def test_torn_tail_is_cut_and_nothing_invented(tmp_path, cut):
    s, _ = reopen(tmp_path)
    s.commit(ops(1))
    s.commit(ops(2))
    s.close()
    journal = tmp_path / MsgpackStore.JOURNAL
    good = journal.read_bytes()
    # A third record, torn mid-write.
    s, _ = reopen(tmp_path)
    s.commit(ops(3))
    s.close()
    full = journal.read_bytes()
    journal.write_bytes(full[: len(good) + cut])
    s, data = reopen(tmp_path)
    assert sorted(data["tenants"]) == ["t1", "t2"]
    assert s.stats["bytes_dropped"] == cut
    assert journal.stat().st_size == len(good)
    # and the store keeps working after the cut
    s.commit(ops(4))
    s.close()
    s, data = reopen(tmp_path)
    assert sorted(data["tenants"]) == ["t1", "t2", "t4"]
    s.close()


def test_corrupt_record_stops_replay(tmp_path):
    s, _ = reopen(tmp_path)
    s.commit(ops(1))
    s.commit(ops(2))
    s.close()
    journal = tmp_path / MsgpackStore.JOURNAL
    data = bytearray(journal.read_bytes())
    data[-2] ^= 0xFF          # flip a byte in the last payload: CRC fails
    journal.write_bytes(bytes(data))
    s, state = reopen(tmp_path)
    assert sorted(state["tenants"]) == ["t1"]
    s.close()


def test_compaction_keeps_everything(tmp_path):
    s, _ = reopen(tmp_path, compact_bytes=300)
    for i in range(1, 30):
        s.commit(ops(i))
    assert s.stats["compactions"] > 0
    s.close()
    assert (tmp_path / MsgpackStore.SNAPSHOT).exists()
    s, data = reopen(tmp_path)
    assert len(data["tenants"]) == 29
    s.close()


def test_crash_between_snapshot_and_journal_reset_replays_nothing_twice(tmp_path):
    s, _ = reopen(tmp_path)
    for i in range(1, 4):
        s.commit(ops(i))
    journal = (tmp_path / MsgpackStore.JOURNAL).read_bytes()
    s.compact()
    s.close()
    # Simulate the crash: the old journal is still there next to the new snapshot.
    (tmp_path / MsgpackStore.JOURNAL).write_bytes(journal)
    s, data = reopen(tmp_path)
    assert len(data["tenants"]) == 3
    assert s.stats["records_replayed"] == 0
    s.close()


def test_second_process_is_refused(tmp_path):
    s, _ = reopen(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        MsgpackStore(tmp_path)
    s.close()


def test_unreadable_snapshot_is_an_error_not_an_empty_store(tmp_path):
    (tmp_path / MsgpackStore.SNAPSHOT).write_bytes(b"\xc1garbage")
    s = MsgpackStore(tmp_path)
    with pytest.raises(StoreError, match="unreadable"):
        s.load()
    s.close()
    assert os.path.exists(tmp_path / MsgpackStore.SNAPSHOT)
