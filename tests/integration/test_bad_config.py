"""Bad configuration ends the process at once with one line naming the
problem on stderr and exit code 2."""
import os
import socket
import subprocess
import tempfile

from sbtest import binary, check, run_tests


def run(args, timeout=30):
    p = subprocess.run([binary("switchboard"), *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr.strip().splitlines()


def expect_exit_2(args, needle):
    code, lines = run(args)
    check(code == 2, f"{args}: exit {code}, stderr {lines}")
    errors = [l for l in lines if "error" in l]
    check(len(errors) == 1, f"{args}: expected one error line, got {lines}")
    check(needle in errors[0], f"{args}: {errors[0]!r} does not name {needle!r}")


def config_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return f.name


def test_malformed_toml():
    path = config_file("shards = [1,\n")
    expect_exit_2(["--config", path], os.path.basename(path))


def test_unknown_key():
    expect_exit_2(["--config", config_file("shards = 1\nlisen = \"127.0.0.1:0\"\n")], "unknown key 'lisen'")


def test_bad_port():
    expect_exit_2(["--listen", "127.0.0.1:70000"], "--listen")
    expect_exit_2(["--ops-listen", "127.0.0.1:http"], "--ops-listen")


def test_zero_shards():
    expect_exit_2(["--shards", "0"], "shards")


def test_missing_config_file():
    expect_exit_2(["--config", "/nonexistent/sb.toml"], "/nonexistent/sb.toml")


def expect_busy_port_refused(make_args):
    """A plain listener (no SO_REUSEPORT) holds a port; switchboard must refuse it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        expect_exit_2(make_args(f"127.0.0.1:{port}"), f"127.0.0.1:{port}")
    finally:
        s.close()


def test_client_port_in_use():
    expect_busy_port_refused(lambda ep: ["--shards", "2", "--listen", ep, "--ops-listen", "127.0.0.1:0"])


def test_ops_port_in_use():
    expect_busy_port_refused(lambda ep: ["--shards", "1", "--listen", "127.0.0.1:0", "--ops-listen", ep])


def test_help_documents_every_option():
    p = subprocess.run([binary("switchboard"), "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"--help exit {p.returncode}")
    for opt in ["--shards", "--listen", "--ops-listen", "--config", "--max-connections"]:
        check(opt in p.stdout, f"--help does not mention {opt}")


if __name__ == "__main__":
    run_tests([test_malformed_toml, test_unknown_key, test_bad_port, test_zero_shards, test_missing_config_file,
               test_client_port_in_use, test_ops_port_in_use, test_help_documents_every_option])
