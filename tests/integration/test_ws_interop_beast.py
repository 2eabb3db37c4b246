"""Interop: Boost.Beast's websocket::stream (tests/tools/beast_ws_client)
against `switchboard --mode echo`: sizes 0-65,536 as text and binary, a
fragmented message, ping/pong with a payload, close 4000 echoed."""
import subprocess

from sbtest import Gateway, binary, check, run_tests


def test_beast_client_echo():
    with Gateway("--mode", "echo", "--shards", "2") as gw:
        try:
            r = subprocess.run([binary("beast_ws_client"), "127.0.0.1", str(gw.client_port)],
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"beast_ws_client did not finish in 120s; output so far: {e.stdout!r}") from e
        print(r.stdout, end="", flush=True)
        check(r.returncode == 0, f"beast_ws_client exit {r.returncode}: {r.stdout.strip().splitlines()[-1:]} "
                                 f"{r.stderr.strip()}")
        check("all checks passed" in r.stdout, "beast_ws_client did not report success")
        gw.wait_for(lambda s: s["ended"].get("peer_closed", 0) >= 1, "the session counted as peer_closed", timeout=30)
        check(gw.proc.poll() is None, "gateway still up")
        code = gw.terminate()
        check(code == 0, f"gateway exit code {code}")


if __name__ == "__main__":
    run_tests([test_beast_client_echo])
