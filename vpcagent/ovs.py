"""OVS ports on the integration bridge, through ovs-vsctl.

OVSDB is not netlink, so this is the one place the agent runs a command.
Each port the agent adds carries external_ids that make OVSDB a durable index
the agent can read back after a restart:

    vpc-port-id      the controller's port id
    vpc-tenant       the tenant
    vpc-owner        who plumbed it ("docker", "cni", "attach")
    vpc-endpoint-id  Docker's endpoint id (Docker ports only)

Docker's Join/Leave/EndpointOperInfo carry only the endpoint id; finding the
port through OVSDB (not through the agent's memory) is what lets a killed and
restarted agent carry on.
"""
import json
import os
import subprocess

for _d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _d


class OvsError(Exception):
    """ovs-vsctl failed; the message is its last stderr line."""


class Ovs:
    def __init__(self, bridge="br-int", rundir=None, timeout=10):
        self.bridge = bridge
        self.rundir = rundir
        self.timeout = timeout

    def vsctl(self, *args, check=True):
        cmd = ["ovs-vsctl", f"--timeout={self.timeout}"]
        env = None
        if self.rundir:
            cmd.append(f"--db=unix:{os.path.join(self.rundir, 'db.sock')}")
            env = dict(os.environ, OVS_RUNDIR=self.rundir)
        cmd += [str(a) for a in args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                               timeout=self.timeout + 5)
        except FileNotFoundError:
            raise OvsError("ovs-vsctl not found: install openvswitch-switch") from None
        except subprocess.TimeoutExpired:
            raise OvsError(f"ovs-vsctl did not answer within {self.timeout}s "
                           f"(is ovsdb-server running?)") from None
        if check and p.returncode != 0:
            lines = (p.stderr or p.stdout).strip().splitlines()
            raise OvsError(f"ovs-vsctl {' '.join(map(str, args[:3]))}: "
                           f"{lines[-1] if lines else 'exit ' + str(p.returncode)}")
        return p

    def check(self):
        """OvsError with a sentence unless the database answers and the bridge exists."""
        p = self.vsctl("--no-wait", "br-exists", self.bridge, check=False)
        if p.returncode == 2:
            raise OvsError(f"bridge {self.bridge} does not exist (run host-join first)")
        if p.returncode != 0:
            raise OvsError(f"cannot reach OVSDB{' in ' + self.rundir if self.rundir else ''}: "
                           f"{(p.stderr or '').strip()}")

    def add_port(self, name, external_ids):
        """Add (or keep) port ``name`` on the bridge and (re)set its external_ids."""
        args = ["--may-exist", "add-port", self.bridge, name, "--", "set", "interface", name]
        args += [f'external_ids:{k}="{v}"' for k, v in sorted(external_ids.items())]
        self.vsctl(*args)

    def del_port(self, name):
        """Idempotent: a missing port is fine."""
        self.vsctl("--if-exists", "del-port", self.bridge, name)

    def find(self, **external_ids):
        """Interfaces whose external_ids contain all the given pairs:
        a list of {"name", "external_ids", "link_state"}."""
        conds = [f'external_ids:{k}="{v}"' for k, v in external_ids.items()]
        p = self.vsctl("--format=json", "--columns=name,external_ids,link_state",
                       "find", "interface", *conds)
        return [_row(r) for r in json.loads(p.stdout or "{}").get("data", [])]

    def ports(self):
        """Names of the bridge's ports."""
        return self.vsctl("list-ports", self.bridge).stdout.split()


def _row(r):
    name, ids, state = r
    return {"name": name, "external_ids": dict(ids[1]) if ids and ids[0] == "map" else {},
            "link_state": state if isinstance(state, str) else None}
