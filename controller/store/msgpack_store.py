"""Durable state: a msgpack snapshot plus an append-only, fsync'd journal.

Why this shape: every accepted REST change must be on disk before the client
hears 2xx, and a crash at any byte must leave a loadable store.  Appending one
checksummed record per change and fsyncing it is the cheapest way to get both;
the snapshot bounds replay time and is rewritten atomically (write, fsync,
rename, fsync dir) when the journal grows.

Journal record:  u32 length | u32 crc32(payload) | payload (msgpack)
payload:         {"seq": n, "ops": [["put", kind, key, record] | ["del", kind, key], ...]}

A torn or corrupt tail (a crash mid-append) is cut off at the last good
record, with a warning: those bytes were never acknowledged, so nothing that a
client was told about is lost, and nothing is invented.

`Store` (controller/store/base.py) is the interface the etcd backend implements too.
"""
import fcntl
import logging
import os
import struct
import zlib

import msgpack

from controller.model.ops import apply_ops
from controller.store.base import Store, StoreError

LOG = logging.getLogger(__name__)
HEADER = struct.Struct(">II")
MAX_RECORD = 64 * 1024 * 1024


class MsgpackStore(Store):
    SNAPSHOT = "state.snapshot"
    JOURNAL = "state.journal"

    def __init__(self, directory, compact_bytes=4 * 1024 * 1024):
        self.dir = os.path.abspath(directory)
        self.compact_bytes = compact_bytes
        os.makedirs(self.dir, exist_ok=True)
        self._lockfd = os.open(os.path.join(self.dir, "lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lockfd)
            raise StoreError(f"{self.dir} is in use by another controller process") from None
        self._collections = {}
        self._seq = 0
        self._journal = None
        self.stats = {"records_replayed": 0, "bytes_dropped": 0, "compactions": 0}

    @property
    def snapshot_path(self):
        return os.path.join(self.dir, self.SNAPSHOT)

    @property
    def journal_path(self):
        return os.path.join(self.dir, self.JOURNAL)

    def load(self):
        snap_seq = 0
        if os.path.exists(self.snapshot_path):
            with open(self.snapshot_path, "rb") as f:
                try:
                    snap = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
                    snap_seq = snap["seq"]
                    self._collections = snap["collections"]
                except Exception as exc:  # a snapshot is written atomically: this is real damage
                    raise StoreError(f"snapshot {self.snapshot_path} is unreadable: {exc}") from exc
        self._seq = snap_seq
        good_end = 0
        if os.path.exists(self.journal_path):
            with open(self.journal_path, "rb") as f:
                data = f.read()
            good_end = self._replay(data, snap_seq)
            if good_end < len(data):
                dropped = len(data) - good_end
                self.stats["bytes_dropped"] = dropped
                LOG.warning("store: journal has a torn or corrupt tail of %d bytes after "
                            "offset %d; it was never acknowledged and is cut off", dropped, good_end)
                with open(self.journal_path, "r+b") as f:
                    f.truncate(good_end)
                    f.flush()
                    os.fsync(f.fileno())
        self._journal = open(self.journal_path, "ab")
        return self._collections

    def _replay(self, data, snap_seq):
        pos = 0
        while pos + HEADER.size <= len(data):
            length, crc = HEADER.unpack_from(data, pos)
            start, end = pos + HEADER.size, pos + HEADER.size + length
            if length > MAX_RECORD or end > len(data):
                break
            payload = data[start:end]
            if zlib.crc32(payload) != crc:
                break
            try:
                rec = msgpack.unpackb(payload, raw=False, strict_map_key=False)
                seq, ops = rec["seq"], rec["ops"]
            except Exception:
                break
            if seq > snap_seq:
                apply_ops(self._collections, ops)
                self._seq = seq
                self.stats["records_replayed"] += 1
            pos = end
        return pos

    def commit(self, ops):
        if self._journal is None:
            raise StoreError("store not loaded")
        ops = [list(op) for op in ops]
        payload = msgpack.packb({"seq": self._seq + 1, "ops": ops}, use_bin_type=True)
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        start = self._journal.tell()
        try:
            self._journal.write(record)
            self._journal.flush()
            os.fsync(self._journal.fileno())
        except OSError:
            # Leave no half record behind for the next append to follow.
            self._journal.truncate(start)
            raise
        self._seq += 1
        apply_ops(self._collections, ops)
        if self._journal.tell() > self.compact_bytes:
            self.compact()

    def compact(self):
        """Write a snapshot of everything, then start an empty journal."""
        tmp = self.snapshot_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(msgpack.packb({"seq": self._seq, "collections": self._collections},
                                  use_bin_type=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
        _fsync_dir(self.dir)
        # A crash here leaves old records in the journal; their seq is <= the
        # snapshot's, so replay skips them.
        self._journal.close()
        self._journal = open(self.journal_path, "wb")
        os.fsync(self._journal.fileno())
        _fsync_dir(self.dir)
        self.stats["compactions"] += 1

    def close(self):
        if self._journal:
            self._journal.close()
            self._journal = None
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
