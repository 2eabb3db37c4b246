"""Interop: headless Chromium's WebSocket against `switchboard --mode echo`.

The test serves tests/integration/chromium/interop.html from its own
http.server on 127.0.0.1 (so the gateway is configured with
allowed_origins = ["http://127.0.0.1:*"]); the page does the exchange (text
and binary of 0, 125, 126, 65,535, 65,536 bytes, close 4000) and POSTs its
result to /result. The test waits (bounded) for that POST, then kills the
Chromium process group it started. The same exchange runs a second time over
wss (tls = true, a self-signed P-256 certificate that Chromium is told to
accept with --ignore-certificate-errors), and a third time with
permessage-deflate on (websocket_compression = true): Chromium offers it,
compresses every message it sends, and the gateway's replies of 128 bytes
or more go back compressed. No Chromium → FAIL, not skip (ops/install-deps
installs it).
"""
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.parse

from sbtest import Gateway, check, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_DIR = os.path.join(HERE, "chromium")
CHROMIUM = os.environ.get("SB_CHROMIUM", "/usr/bin/chromium")
RESULT_TIMEOUT = 120


def serve(results):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=PAGE_DIR, **kw)

        def do_POST(self):  # noqa: N802 - http.server's naming
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            self.send_response(204)
            self.end_headers()
            if self.path == "/result":
                results.put(body.decode(errors="replace"))

        def log_message(self, fmt, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_echo(tls, compress=False):
    check(shutil.which(CHROMIUM) is not None, f"{CHROMIUM} not found: run ops/install-deps (package chromium)")
    results = queue.Queue()
    server = serve(results)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "switchboard.toml")
        with open(cfg, "w") as f:
            f.write('allowed_origins = ["http://127.0.0.1:*"]\n')
            if compress:
                f.write("websocket_compression = true\n")
            if tls:
                cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
                subprocess.run(["/usr/bin/python3", os.path.join(HERE, "centrifuge_js", "make_cert.py"), cert, key,
                                "localhost"], check=True, timeout=60)
                f.write(f'tls = true\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
        profile = os.path.join(tmp, "profile")
        with Gateway("--mode", "echo", "--shards", "2", "--config", cfg) as gw:
            ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{gw.client_port}/connection/websocket"
            page = f"http://127.0.0.1:{server.server_address[1]}/interop.html?ws={urllib.parse.quote(ws_url, safe='')}"
            log = open(os.path.join(tmp, "chromium.log"), "w+")
            browser = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 *(["--ignore-certificate-errors"] if tls else []), page],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                try:
                    body = results.get(timeout=RESULT_TIMEOUT)
                except queue.Empty:
                    log.seek(0)
                    raise AssertionError(f"no result from the page within {RESULT_TIMEOUT}s "
                                         f"(chromium {'exited ' + str(browser.poll()) if browser.poll() is not None else 'running'});"
                                         f" chromium log tail: {log.read()[-2000:]}")
            finally:
                # Our own process group: chromium and the helpers it started.
                try:
                    os.killpg(browser.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                browser.wait(timeout=30)
                log.close()
                server.shutdown()
            result = json.loads(body)
            for c in result.get("checks", []):
                print(f"  ok {c}", flush=True)
            check(result.get("ok") is True, f"page reported failure: {json.dumps(result)[:2000]}")
            print(f"  {result.get('userAgent')}", flush=True)
            stats = gw.wait_for(lambda s: s["ended"].get("peer_closed", 0) >= 1, "the session counted as peer_closed",
                                timeout=30)
            upgrades = sum(s["upgrades"] for s in stats["per_shard"])
            check(upgrades == 1, f"upgrades {upgrades}, expected 1")
            if tls:
                handshakes = sum(s["tls_handshakes"] for s in stats["per_shard"])
                check(handshakes >= 1, f"tls_handshakes {handshakes}")
            deflate = {k: sum(s["deflate"][k] for s in stats["per_shard"]) for k in stats["per_shard"][0]["deflate"]}
            if compress:
                check(deflate["sessions"] == 1, f"permessage-deflate not negotiated: {deflate}")
                check(deflate["inflated"] > 0 and deflate["messages"] > 0, f"nothing compressed: {deflate}")
                print(f"  permessage-deflate: {deflate}", flush=True)
            else:
                check(deflate["sessions"] == 0, f"negotiated without websocket_compression: {deflate}")
            code = gw.terminate()
            check(code == 0, f"gateway exit code {code}")


def test_chromium_websocket_echo():
    run_echo(tls=False)


def test_chromium_websocket_echo_over_tls():
    run_echo(tls=True)


def test_chromium_websocket_echo_compressed():
    run_echo(tls=False, compress=True)


if __name__ == "__main__":
    run_tests([test_chromium_websocket_echo, test_chromium_websocket_echo_over_tls,
               test_chromium_websocket_echo_compressed])
