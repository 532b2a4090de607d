"""vpc-agent: the host side of the VPC controller.

One agent per host owns what only the host can do -- veth pairs, OVS ports on
``br-int``, MTU and checksum offload, container addresses -- and serves the
Docker remote network + IPAM driver protocol (and, later, the CNI plugin's
requests).  It keeps no state of its own: everything it needs after a
restart comes back from the controller (ports), OVSDB (which OVS port belongs
to which Docker endpoint) and dockerd (network options).

Modules, in the order a request flows through them:
  server.py          HTTP on a unix socket, JSON in/out, protocol error shapes
  docker_ipam.py     IpamDriver.* handlers
  docker_driver.py   NetworkDriver.* handlers
  controller.py      the controller lookups both drivers share (vpcctl's client)
  dockernet.py       a Docker network's options, from dockerd's API
  plumbing.py        veth, MTU, tx off, container addressing (pyroute2)
  ovs.py             OVS ports through ovs-vsctl (OVSDB is not netlink)
  main.py            the command line
"""
