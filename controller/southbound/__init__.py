"""Southbound: every line that builds, packs or parses an os-ken (OpenFlow) message.

flowmod.py    Flow values -> flow-mods (cached bytes), delete by cookie
flowstats.py  flow dumps read for cookies only
session.py    one connected switch: request/reply by xid, atomic bundles, roles, ports
events.py     os-ken events -> plain values (port status, packet-in)
frames.py     ARP frames the controller sends and reads
patches.py    process-wide os-ken adjustments (cookie-only dumps, listen backlog)

Besides apps/, nothing else in the project imports os_ken.
"""
