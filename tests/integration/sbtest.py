"""Helpers for integration tests that start the real switchboard binary.

Standard library only; run with Debian's /usr/bin/python3 (the one that can
import Debian's python3-* packages). Every wait is bounded; a test that
waits too long fails with the state it saw instead of hanging.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

BIN_DIR = os.environ.get("SB_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))


def binary(name):
    return os.path.join(BIN_DIR, name)


class Gateway:
    """A switchboard process on ephemeral ports; use as a context manager."""

    def __init__(self, *args, timeout=30):
        extra = os.environ.get("SB_GATEWAY_ARGS", "").split()
        self.args = [binary("switchboard"), "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0", *extra, *args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr_lines = []
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()
        self.client_port = self.ops_port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(r"switchboard listening clients=(\S+):(\d+) ops=(\S+):(\d+)", line)
            if m:
                self.client_port = int(m.group(2))
                self.ops_port = int(m.group(4))
                break
        if self.client_port is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("switchboard did not start: " + "".join(self.stderr_lines[-20:]))

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def ops_get(self, path, timeout=10):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()

    def stats(self):
        return json.loads(self.ops_get("/stats")[1])

    def wait_for(self, predicate, what, timeout=120, interval=0.2):
        """Polls predicate(stats) until true; fails with the last stats seen."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.stats()
            if predicate(last):
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last stats: {json.dumps(last)[:2000]}")

    def terminate(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("switchboard did not exit after SIGTERM")
        self._err_thread.join(timeout=5)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_tests(tests):
    """Runs test functions; prints a plain 'N passed, N failed' line."""
    passed = failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {t.__name__}: {e}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
