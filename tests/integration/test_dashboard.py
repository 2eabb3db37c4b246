"""The operator's dashboard on the ops port (GET /, ops/dashboard/).

Starts `switchboard --shards 2` in centrifuge mode with a test HMAC secret
and an API key, opens CONNS raw WebSocket connections that send a
Centrifuge connect (HS256 tokens from cfclient.py) and
subscribe to one channel, and keeps one of them publishing while headless
Chromium (Debian's `chromium`, as in test_ws_chromium.py) loads
http://127.0.0.1:<ops>/ with --dump-dom and --screenshot after a virtual
time budget, so the page has polled /stats several times. Checks:

- every embedded file is served with its content type, the page exactly as
  in ops/dashboard/ (the build embedded the current files), POST is 405;
- nothing the page loads is external: every src/href in the page is
  relative (or data:), and no http:// or https:// appears in the page, its
  script and stylesheet, nor in uPlot's files outside their licence banner
  (Chromium also runs with every host name but 127.0.0.1 unresolvable);
- the DOM shows the connection count /stats reports (id total-connections),
  the shard count, "live", one chart per panel, the "not measured yet"
  latency panel;
- the screenshot is a PNG of the window's size and not trivially small. It
  is kept (its path is printed) so a person can look at it.

No Chromium -> FAIL, not skip (ops/install-deps installs it). Standard
library only (Debian's /usr/bin/python3). Every wait is bounded.
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from cfclient import Client, hs256_token  # noqa: E402
from sbtest import Gateway, check, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))
DASHBOARD_DIR = os.path.join(HERE, "..", "..", "ops", "dashboard")
CHROMIUM = os.environ.get("SB_CHROMIUM", "/usr/bin/chromium")
SECRET = "dashboard-test-secret"
API_KEY = "dashboard-test-api-key"
CONNS = 37
CHANNEL = "chat:dashboard"
IO_TIMEOUT = 10
BROWSER_TIMEOUT = 120
WINDOW = (1440, 1800)
VIRTUAL_TIME_MS = 8000  # about eight polls of /stats

CONFIG = f"""
token_hmac_secret_key = "{SECRET}"
api_key = "{API_KEY}"
# No protocol ping during the test: these clients do not answer pings.
ping_interval = "300s"
[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
"""

# path -> (content type, file under ops/dashboard/)
ASSETS = {
    "/": ("text/html; charset=utf-8", "index.html"),
    "/dashboard.js": ("text/javascript; charset=utf-8", "dashboard.js"),
    "/dashboard.css": ("text/css; charset=utf-8", "dashboard.css"),
    "/uplot.min.js": ("text/javascript; charset=utf-8", "node_modules/uplot/dist/uPlot.iife.min.js"),
    "/uplot.min.css": ("text/css; charset=utf-8", "node_modules/uplot/dist/uPlot.min.css"),
}


# ---------------------------------------------------------------- clients


# ---------------------------------------------------------------- helpers


def http_get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def strip_banner_comments(text):
    """A minified library without its leading /*! ... */ licence comments."""
    text = text.lstrip()
    while text.startswith("/*"):
        end = text.find("*/")
        check(end >= 0, "unterminated leading comment")
        text = text[end + 2:].lstrip()
    return text


URL = re.compile(r"https?://[^\s\"'`)<>]*")


def check_assets(ops_port):
    served = {}
    for path, (ctype, rel) in ASSETS.items():
        status, headers, body = http_get(ops_port, path)
        check(status == 200, f"GET {path}: {status}")
        check(headers.get("Content-Type") == ctype, f"GET {path}: Content-Type {headers.get('Content-Type')!r}, "
                                                     f"expected {ctype!r}")
        check(headers.get("Cache-Control") == "no-store", f"GET {path}: Cache-Control {headers.get('Cache-Control')!r}")
        with open(os.path.join(DASHBOARD_DIR, rel), "rb") as f:
            check(body == f.read(), f"GET {path} differs from ops/dashboard/{rel}: rebuild (the embedding is stale)")
        served[path] = body.decode()
        print(f"  ok GET {path}: {ctype}, {len(body)} bytes", flush=True)
    status, _, _ = http_get(ops_port, "/", method="POST")
    check(status == 405, f"POST /: {status}, expected 405")

    # Nothing external: every src/href of the page is relative or data:.
    page = served["/"]
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page, re.I)
    check(len(refs) >= 4, f"page references only {refs}")
    for ref in refs:
        check(not re.match(r"^([a-z][a-z0-9+.-]*:|//)", ref, re.I) or ref.startswith("data:"),
              f"page references a non-relative URL: {ref!r}")
    for path in ("/", "/dashboard.js", "/dashboard.css"):
        found = URL.findall(served[path])
        check(not found, f"{path} names external URLs: {found}")
    for path in ("/uplot.min.js", "/uplot.min.css"):
        found = URL.findall(strip_banner_comments(served[path]))
        check(not found, f"{path} names external URLs outside its licence banner: {found}")
    # The script fetches /stats with a relative URL.
    check(re.search(r"""fetch\(\s*["']stats["']""", served["/dashboard.js"]), "dashboard.js does not fetch 'stats'")
    print(f"  ok no external URL; page references {refs}", flush=True)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    check(head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    check(head[12:16] == b"IHDR", f"{path}: no IHDR chunk first")
    return struct.unpack("!II", head[16:24])


def element(dom, elem_id):
    """(attributes, text) of the element with this id in the dumped DOM."""
    m = re.search(r"<[a-z0-9]+\b([^>]*\bid=\"" + re.escape(elem_id) + r"\"[^>]*)>([^<]*)<", dom)
    check(m, f"no element id={elem_id} in the DOM")
    return m.group(1), m.group(2).strip()


def run_chromium(url, shot, tmp):
    profile = os.path.join(tmp, "profile")
    log_path = os.path.join(tmp, "chromium.log")
    with open(log_path, "w+") as log:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
             # Only 127.0.0.1 resolves: an external resource could not load.
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
             f"--screenshot={shot}", "--dump-dom", url],
            stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        try:
            dom, _ = browser.communicate(timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.seek(0)
            raise AssertionError(f"chromium did not finish within {BROWSER_TIMEOUT}s; log tail: {log.read()[-2000:]}")
        finally:
            # Our own process group: chromium and the helpers it started.
            try:
                os.killpg(browser.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            browser.wait(timeout=30)
        log.seek(0)
        log_text = log.read()
    check(browser.returncode == 0, f"chromium exit {browser.returncode}; log tail: {log_text[-2000:]}")
    return dom.decode(errors="replace")


# ---------------------------------------------------------------- test


def test_dashboard():
    check(shutil.which(CHROMIUM) is not None, f"{CHROMIUM} not found: run ops/install-deps (package chromium)")
    out_dir = os.environ.get("SB_DASHBOARD_OUT") or tempfile.mkdtemp(prefix="sb-dashboard-")
    os.makedirs(out_dir, exist_ok=True)
    shot = os.path.join(out_dir, "dashboard.png")
    if os.path.exists(shot):
        os.remove(shot)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "switchboard.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        with Gateway("--config", cfg, "--shards", "2", "--mode", "centrifuge") as gw:
            check_assets(gw.ops_port)

            clients = [Client(gw.client_port) for _ in range(CONNS)]
            exp = int(time.time()) + 3600
            for i, c in enumerate(clients):
                c.call(1, "connect", {"token": hs256_token({"sub": f"user{i}", "exp": exp}, SECRET)})
                c.call(2, "subscribe", {"channel": CHANNEL})
            stats = gw.wait_for(lambda s: s["connections"] == CONNS and s["open"] == CONNS,
                                f"{CONNS} open connections", timeout=30)
            print(f"  {CONNS} clients connected and subscribed: per shard "
                  f"{[s['connections'] for s in stats['per_shard']]}", flush=True)
            # One server API call, so its counters are not all zero.
            req = urllib.request.Request(f"http://127.0.0.1:{gw.ops_port}/api/info", data=b"{}", method="POST",
                                         headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
                check(r.status == 200, f"/api/info: {r.status}")

            # Traffic while the page polls: one client publishes 20 times a
            # second (every subscriber gets each one; nobody reads them, which
            # the sockets' buffers absorb for the test's few seconds).
            stop = threading.Event()

            def publish():
                n = 0
                while not stop.wait(0.05):
                    n += 1
                    clients[0].send({"id": 100 + n, "publish": {"channel": CHANNEL, "data": {"n": n}}})

            publisher = threading.Thread(target=publish, daemon=True)
            publisher.start()
            try:
                dom = run_chromium(f"http://127.0.0.1:{gw.ops_port}/", shot, tmp)
            finally:
                stop.set()
                publisher.join(timeout=10)
            with open(os.path.join(out_dir, "dashboard-dom.html"), "w") as f:
                f.write(dom)

            stats = gw.stats()
            check(stats["connections"] == CONNS, f"/stats connections {stats['connections']}, expected {CONNS}")
            attrs, text = element(dom, "total-connections")
            m = re.search(r'data-value="(\d+)"', attrs)
            check(m and int(m.group(1)) == stats["connections"],
                  f"total-connections data-value {attrs!r}, /stats says {stats['connections']}")
            check(text.replace(",", "") == str(stats["connections"]),
                  f"total-connections shows {text!r}, /stats says {stats['connections']}")
            _, shards = element(dom, "shards")
            check(shards == "2", f"shards shows {shards!r}")
            _, capacity = element(dom, "connection-capacity")
            check(capacity.replace(",", "") == str(stats["connection_capacity"]),
                  f"connection-capacity shows {capacity!r}, /stats says {stats['connection_capacity']}")
            _, status = element(dom, "status")
            check(status == "live", f"status shows {status!r}")
            _, rss = element(dom, "rss")
            check(re.match(r"^[\d.]+ (KiB|MiB|GiB)$", rss), f"rss shows {rss!r}")
            charts = len(re.findall(r'class="uplot', dom))
            panels = len(re.findall(r'id="panel-(?!latency-unmeasured)', dom))
            check(panels >= 12 and charts == panels, f"{charts} charts in {panels} chart panels")
            check("NOT MEASURED YET" in dom, "no 'not measured yet' latency panel")
            print(f"  ok DOM: {text} connections (= /stats), 2 shards, capacity {capacity}, RSS {rss}, "
                  f"{charts} charts, status {status}", flush=True)

            width, height = png_size(shot)
            size = os.path.getsize(shot)
            check((width, height) == WINDOW, f"screenshot is {width}x{height}, expected {WINDOW[0]}x{WINDOW[1]}")
            check(size > 30_000, f"screenshot only {size} bytes: a blank page?")
            print(f"  screenshot: {shot} ({width}x{height}, {size} bytes)", flush=True)

            for c in clients:
                c.close()
            code = gw.terminate()
            check(code == 0, f"gateway exit code {code}")


if __name__ == "__main__":
    run_tests([test_dashboard])
