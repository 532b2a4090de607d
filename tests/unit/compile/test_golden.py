"""The compiler emits exactly the flows it emitted before the layout refactor.

tests/golden/flows.json.gz was captured from main before controller/ became
packages (tests/support/golden.py says how); every world there is compiled
again here and compared flow by flow.  An intended change to the flows
regenerates the file in the same commit and names each difference there.
Regenerated once since, for issue 14's one-meaning-per-name fixes (EXT_IN ARP
band 110, SG_LOOKUP cookie kind, NAT owner = tenant id); the flows before it
are kept for the upgrade test (tests/unit/reconcile/test_upgrade_hitless.py).
Regenerated again for issue 16's port security (tests/lab/test_spoofing.py found
tagged frames and DHCP server replies passing): every secured port's two
PORT_SECURITY flows also match vlan_vid=0 (untagged), and one more flow per
secured port drops UDP from port 67 (band DHCP_SERVER 110).
"""
from tests.support import golden


def test_compiled_flows_equal_the_golden_capture():
    differences = golden.diff(golden.load(), golden.capture())
    assert not differences, "\n".join(differences[:40])
