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


API = ["--host", "h1", "--api", "https://127.0.0.1:8080"]


@pytest.fixture
def no_token_env(monkeypatch):
    monkeypatch.delenv("VPC_TOKEN", raising=False)
    monkeypatch.delenv("VPC_TOKEN_FILE", raising=False)


def test_token_file_is_read_at_start(tmp_path, no_token_env):
    f = tmp_path / "h1.token"
    f.write_text("vpc_h_0123456789ab_secret\n")
    a = parse_args(API + ["--token-file", str(f)])
    assert a.token == "vpc_h_0123456789ab_secret" and a.ssl_context is None


def test_without_token_flag_the_environment_still_counts(tmp_path, no_token_env, monkeypatch):
    assert parse_args(API).token is None            # a controller without authentication
    monkeypatch.setenv("VPC_TOKEN", "from-env")
    assert parse_args(API).token == "from-env"


@pytest.mark.parametrize("content,words", [(None, "No such file"), ("", "empty")])
def test_an_unreadable_or_empty_token_file_exits_2(tmp_path, no_token_env, capsys,
                                                   content, words):
    f = tmp_path / "h1.token"
    if content is not None:
        f.write_text(content)
    with pytest.raises(SystemExit) as e:
        parse_args(API + ["--token-file", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--token-file {f}" in err and words in err


def test_a_broken_token_file_from_the_environment_exits_2(tmp_path, no_token_env,
                                                          monkeypatch, capsys):
    monkeypatch.setenv("VPC_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as e:
        parse_args(API)
    assert e.value.code == 2 and "VPC_TOKEN_FILE" in capsys.readouterr().err


def test_ca_file_makes_the_context_and_a_bad_one_exits_2(tmp_path, no_token_env, capsys):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    for path in (bad, tmp_path / "missing.pem"):
        with pytest.raises(SystemExit) as e:
            parse_args(API + ["--ca-file", str(path)])
        assert e.value.code == 2 and f"--ca-file {path}" in capsys.readouterr().err


def test_a_good_ca_file_verifies_the_controller(tmp_path, no_token_env):
    import subprocess
    import sys
    from pathlib import Path
    pki = Path(__file__).resolve().parents[3] / "scripts" / "pki"
    subprocess.run([sys.executable, str(pki), "init", str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    a = parse_args(API + ["--ca-file", str(tmp_path / "ca-cert.pem")])
    assert a.ssl_context is not None and a.ssl_context.verify_mode.name == "CERT_REQUIRED"
    assert a.ssl_context.get_ca_certs()
