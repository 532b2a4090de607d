"""The CNI plugin ``vpc``: a thin client of the host's vpc-agent.

    /opt/cni/bin/vpc  ->  .venv/bin/vpc-cni  (this module's main)

The runtime (containerd, CRI-O, kubelet) execs it with CNI_COMMAND,
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH in the environment
and the network configuration on stdin.  It checks both (so a bad config is
refused with the spec's code before anything is asked), answers VERSION
itself, and forwards every other command as one JSON POST over the agent's
unix socket -- as Antrea, Kube-OVN and ovn-kubernetes do -- because the
agent owns the host side (netlink, OVSDB, the controller client) and the
plugin should be small, fast to start and standard-library only.

Socket: ``agentSocket`` in the network config, else $VPC_CNI_SOCKET, else
/run/vpc/cni.sock (vpc-agent's --cni-socket default).

Output: the result (ADD) or nothing (DEL, CHECK, STATUS, GC) on stdout with
exit 0; an error ``{"cniVersion","code","msg","details"}`` on stdout with
exit 1.  No agent answering is code 11 (try again later) -- code 50 for
STATUS -- so the runtime retries instead of giving up on the pod.
"""
import http.client
import json
import os
import socket
import sys

from vpcagent import cni_config as cc

TIMEOUT = float(os.environ.get("VPC_CNI_TIMEOUT", "60"))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def call_agent(sock, command, env, conf, timeout=TIMEOUT):
    """POST /cni/<COMMAND> {"env": the CNI_* variables, "config": the network
    configuration as received} -> the agent's reply object.
    CniError(11) when nobody answers on ``sock``."""
    body = json.dumps({"env": env, "config": conf}).encode()
    conn = _UnixConnection(sock, timeout)
    try:
        conn.request("POST", f"/cni/{command}", body,
                     {"Content-Type": "application/json", "Content-Length": str(len(body))})
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise cc.CniError(cc.E_TRY_AGAIN, f"vpc-agent is not answering on {sock}: {why} "
                          f"(is vpc-agent running with --cni-socket {sock}?)",
                          type(e).__name__) from None
    finally:
        conn.close()
    try:
        reply = json.loads(raw or b"{}")
    except ValueError:
        raise cc.CniError(cc.E_INTERNAL, f"vpc-agent answered HTTP {resp.status} with "
                          f"something that is not JSON", raw[:200].decode(errors="replace"))
    if not isinstance(reply, dict):
        raise cc.CniError(cc.E_INTERNAL, "vpc-agent answered with a non-object")
    err = reply.get("error")
    if isinstance(err, dict):
        raise cc.CniError(err.get("code", cc.E_INTERNAL), err.get("msg") or "vpc-agent error",
                          err.get("details") or "")
    if err:                         # the router's own string error (an agent bug)
        raise cc.CniError(cc.E_INTERNAL, str(err))
    return reply


def version_reply(conf):
    return {"cniVersion": conf.get("cniVersion") or cc.LATEST,
            "supportedVersions": list(cc.SUPPORTED_VERSIONS)}


def _peek_version(raw):
    """The config's cniVersion for the error reply's own cniVersion field, which
    the runtime expects to match -- even when the environment is what is wrong."""
    try:
        v = json.loads(raw).get("cniVersion")
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return cc.LATEST
    return v if isinstance(v, str) and v in cc.SUPPORTED_VERSIONS else cc.LATEST


def run(environ, stdin_bytes):
    """(exit status, object to print or None).  Pure apart from the socket call."""
    version = _peek_version(stdin_bytes)
    try:
        env = cc.parse_env(environ)
        if env["command"] == "VERSION":
            conf = {}
            if stdin_bytes and stdin_bytes.strip():
                conf = cc.decode(stdin_bytes)
            return 0, version_reply(conf)
        conf = cc.decode(stdin_bytes)
        cfg = cc.parse_config(conf, env["command"])
        if env["command"] == "ADD":
            cc.requested_address(cfg, env)
        try:
            raw_env = {k: v for k, v in environ.items() if k.startswith("CNI_")}
            reply = call_agent(cc.socket_path(cfg, environ), env["command"], raw_env, conf)
        except cc.CniError as e:
            if env["command"] == "STATUS" and e.code == cc.E_TRY_AGAIN:
                raise cc.CniError(cc.E_UNAVAILABLE, e.msg, e.details) from None
            raise
        return 0, reply.get("result")
    except cc.CniError as e:
        return 1, e.to_json(version)


def main(argv=None):
    """Console script ``vpc-cni``.  Arguments are ignored, as the spec says."""
    try:
        data = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    except OSError:
        data = None
    status, out = run(os.environ, data)
    if out is not None:
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
