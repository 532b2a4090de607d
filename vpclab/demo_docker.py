"""The demo's Docker part: a Docker network across two hosts, no script between.

Run by vpclab/demo.py when Docker is installed (``labdocker.docker_missing()``
is None).  Each of h1 and h2 gets its own dockerd (vpclab.labdocker: the
host's network namespace, its own plugin directory) and a ``vpc-agent``
serving it; then exactly what a user types on two real hosts -- ``docker
network create -d vpc`` on each, ``docker run --network`` on each -- and the
cross-host ping.  The tenant reuses the demo's CIDR, so the isolation check
is against another tenant's address; the last check reaches a container
on the other host by its name (the tenant's DNS, answered by h1's agent).  Everything it starts is found again by
pid file and stopped by ``Lab.down()`` (labdocker.down_lab), so
``scripts/demo --down`` and ``scripts/lab down`` clean it up.
"""
import shutil
import time

from vpclab import labdocker

HOSTS = (1, 2)
TENANT = "teal"
NETWORK = "teal"


def _say(host, argv):
    print(f"      h{host}$ {' '.join(argv)}", flush=True)


def _ping(d, container, ip, tries):
    for _ in range(tries):
        p = d.cli("exec", container, "ping", "-c", "2", "-W", "1", ip, check=False, timeout=20)
        if p.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def start_hosts(lab, url):
    """{i: Dockerd} with an agent each and the busybox image imported."""
    docker = {}
    rootfs = labdocker.busybox_rootfs()
    try:
        for i in HOSTS:
            d = labdocker.Dockerd(lab, i)
            docker[i] = d
            d.start()
            labdocker.Agent(lab, i, d, url).start()
            labdocker.import_busybox(d, rootfs=rootfs)
            _say(i, ["vpc-agent", "--host", lab.host_name(i), "--api", url, "&"])
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    print("      (in the lab also --netns, --ovs-rundir, --plugin-dir: its hosts are "
          "namespaces)")
    return docker


def run(lab, url, cidr, blocked_ip):
    """The Docker network demo; returns (checks as expected, checks, lines
    for the closing 'poke at it' text).  Docker that will not start counts as
    failed checks, with the reason."""
    try:
        docker = start_hosts(lab, url)
    except Exception as e:                                   # noqa: BLE001
        print(f"      FAILED   Docker did not start: {e}")
        return 0, 3, []
    create = ["network", "create", "-d", "vpc", "--ipam-driver", "vpc", "--subnet", cidr,
              "-o", f"vpc.tenant={TENANT}", "-o", "vpc.network=vxlan",
              "--ipam-opt", f"vpc.tenant={TENANT}", NETWORK]
    ips = {}
    try:
        for i, d in docker.items():
            _say(i, ["docker"] + create)
            d.cli(*create)
        for i, d in docker.items():
            name = f"{TENANT}{i}"
            argv = ["run", "-d", "--network", NETWORK, "--name", name, labdocker.IMAGE,
                    "sleep", "86400"]
            _say(i, ["docker"] + argv)
            d.cli(*argv)
            ips[i] = d.cli("inspect", "-f",
                           "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           name).stdout.strip()
    except Exception as e:                                   # noqa: BLE001
        print(f"      FAILED   {e}")
        return 0, 3, []
    print("      " + "  ".join(f"{TENANT}{i}@h{i}={ip}" for i, ip in ips.items()))
    good = 0
    for src, dst, expected, why in (
            (1, ips[2], True, f"{TENANT}1@h1 -> {TENANT}2@h2 (Docker, VXLAN)"),
            (1, blocked_ip, False, f"{TENANT} -> another tenant's {blocked_ip}"),
            (1, f"{TENANT}2", True, f"{TENANT}1@h1 -> {TENANT}2 by name (DNS at the gateway)")):
        _say(1, ["docker", "exec", f"{TENANT}{src}", "ping", "-c", "2", dst])
        ok = _ping(docker[src], f"{TENANT}{src}", dst, tries=10 if expected else 1)
        good += ok == expected
        print(f"      {'reaches ' if ok else 'blocked '} {why:62} "
              f"{'as expected' if ok == expected else 'UNEXPECTED'}")
    sock = docker[1].sock
    return good, 3, [f"{labdocker.DOCKER} -H unix://{sock} ps        (h1's dockerd)",
                     f"{labdocker.DOCKER} -H unix://{sock} exec {TENANT}1 ping {TENANT}2",
                     f"{labdocker.DOCKER} -H unix://{sock} exec {TENANT}1 nslookup {TENANT}2"]
