"""apps/vpc.py with a small store compaction threshold, for tests/lab/test_crash.py.

The real store compacts its journal into a snapshot at 4 MB, i.e. after some
20,000 writes; a crash test wants that to happen many times within seconds.
VPC_TEST_COMPACT_BYTES (default 16 KiB) replaces the threshold, and each
compaction logs a line ("store compacted at seq N"); everything else is the
real controller:  osken-manager tests/lab/compacting_app.py
"""
import logging
import os

from apps import vpc
from controller.store import msgpack_store as store

LOG = logging.getLogger("controller.store.msgpack_store")
_bytes = int(os.environ.get("VPC_TEST_COMPACT_BYTES", 16 * 1024))
store.MsgpackStore.__init__.__defaults__ = (_bytes,)
_compact = store.MsgpackStore.compact


def _logged_compact(self):
    _compact(self)
    LOG.info("store compacted at seq %d (compaction %d of this process)", self._seq,
             self.stats["compactions"])


store.MsgpackStore.compact = _logged_compact


class CompactingVpcController(vpc.VpcController):
    """os-ken loads the OSKenApp subclass defined in this module."""
