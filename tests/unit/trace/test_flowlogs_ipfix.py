"""The agent's IPFIX decoder and what it hands the controller."""
import struct

import pytest

from vpcagent.flowlogs import flow_records
from vpcagent.flowlogs_ipfix import Decoder, IpfixError, encode

FIELDS = [(61, 1), (56, 6), (80, 6), (4, 1), (8, 4), (12, 4), (7, 2), (11, 2), (158, 4),
          (159, 4), (2, 8), (1, 8)]


def record(direction, sport, packets):
    return [struct.pack("!B", direction), bytes.fromhex("020000000001"),
            bytes.fromhex("020000000002"), struct.pack("!B", 6), bytes([10, 0, 0, 2]),
            bytes([10, 0, 0, 3]), struct.pack("!H", sport), struct.pack("!H", 80),
            struct.pack("!I", 3_000_000), struct.pack("!I", 1_000_000),
            struct.pack("!Q", packets), struct.pack("!Q", packets * 60)]


def test_templates_then_data_and_what_is_sent():
    msg = encode(7, 1000, 300, FIELDS, [record(0, 40000, 5), record(1, 40000, 5)])
    dec = Decoder()
    export_time, recs = dec.decode(msg)
    assert export_time == 1000 and len(recs) == 2
    assert recs[0]["src"] == "10.0.0.2" and recs[0]["src_mac"] == "02:00:00:00:00:01"
    (sent,) = flow_records(export_time, recs)          # egress samples are not sent
    assert sent == {"src": "10.0.0.2", "dst": "10.0.0.3", "proto": 6, "sport": 40000,
                    "dport": 80, "src_mac": "02:00:00:00:00:01",
                    "dst_mac": "02:00:00:00:00:02", "packets": 5, "bytes": 300,
                    "start": 997.0, "end": 999.0}
    # data before its template (here: of another observation domain) is skipped
    data = b"".join(record(0, 1, 1))
    sets = struct.pack("!HH", 300, 4 + len(data)) + data
    assert dec.decode(struct.pack("!HHIII", 10, 16 + len(sets), 1000, 1, 8) + sets)[1] == []


def test_garbage_is_refused():
    with pytest.raises(IpfixError):
        Decoder().decode(b"\x00\x09" + b"\x00" * 30)
    with pytest.raises(IpfixError):
        Decoder().decode(b"\x00\x0a\x00")
