"""Packet trace through the desired flows (`vpcctl trace`, POST /v1/tenants/{t}/trace).

Why a package of its own, beside flowsim: a trace compiles the desired flows
of the hosts a tenant is on (controller/compile), runs a made-up packet
through them with our simulator (controller/flowsim) and explains every
table it passes in words.  The service layer may not compile (tests/unit/
test_layout.py), so the service's `trace` operation (controller/service/
trace.py) hands the state and topology view to this package.  Nothing here
writes: a trace changes nothing, anywhere.

  request.py   the request, checked (400/404 before anything runs)
  simulate.py  the hosts as a flowsim Network, the ARP step, the packet's run
  explain.py   owners from cookies, security-group rules, the verdict's words
  live.py      the same packet through `ovs-appctl ofproto/trace` on the real
               switches, and the comparison with the simulated trace
"""
from controller.trace.simulate import trace

__all__ = ["trace"]
