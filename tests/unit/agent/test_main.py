"""vpc-agent's command line: bad flags exit 2 with a sentence, before anything starts."""
import pytest

from vpcagent.main import parse_args


@pytest.mark.parametrize("argv,words", [
    ([], "required"),
    (["--host", "h1"], "--api"),
    (["--host", "bad name", "--api", "http://127.0.0.1:8080"], "--host"),
    (["--host", "h1", "--api", "ftp://x"], "--api"),
    (["--host", "h1", "--api", "127.0.0.1:8080", "--netns", "no-such-ns-xyz"], "--netns"),
    (["--host", "h1", "--api", "127.0.0.1:8080", "--ovs-rundir", "/no/such/dir"],
     "--ovs-rundir"),
    (["--host", "h1", "--api", "127.0.0.1:8080", "--bridge", "a" * 16], "--bridge"),
    (["--host", "h1", "--api", "127.0.0.1:8080", "--timeout", "0"], "--timeout"),
])
def test_bad_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_good_flags():
    a = parse_args(["--host", "h1", "--api", "127.0.0.1:8080"])
    assert a.api == "http://127.0.0.1:8080"
    assert (a.bridge, a.plugin_dir, a.cni_socket) == ("br-int", "/run/docker/plugins",
                                                      "/run/vpc/cni.sock")
