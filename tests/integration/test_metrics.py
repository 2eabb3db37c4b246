"""GET /metrics (Prometheus text format 0.0.4), /readyz, and the deployment
files in ops/deploy/.

Starts `switchboard --shards 2` in centrifuge mode with a test HMAC secret,
lints the exposition with `promtool check metrics` (any output fails), then
drives a few raw-socket Centrifuge clients (HS256 tokens minted here with
cfclient.py) through connect, subscribe and publish, and checks that the
counters moved by exactly what they did, that the connection figures equal
/stats, and that /readyz is 200. Also: `promtool check config` on
ops/deploy/prometheus.yml, and the Grafana dashboard is valid JSON that
uses only metric names the gateway exports.

Standard library only (Debian's /usr/bin/python3); promtool comes from
Debian's `prometheus` package (ops/install-deps). Every wait is bounded.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from cfclient import Client, hs256_token  # noqa: E402
from sbtest import Gateway, check, run_tests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "ops", "deploy")
SECRET = "metrics-test-secret"
IO_TIMEOUT = 10
CHANNEL = "chat:metrics"
CLIENTS = 4

API_KEY = "metrics-test-api-key"
CONFIG = f"""
token_hmac_secret_key = "{SECRET}"
api_key = "{API_KEY}"
[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
"""


# ---------------------------------------------------------------- promtool


def promtool(*args, stdin=None):
    exe = shutil.which("promtool")
    check(exe, "promtool not found: install Debian's prometheus package (ops/install-deps)")
    p = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def lint(text):
    """promtool check metrics must exit 0 and say nothing (no lint problem)."""
    code, out = promtool("check", "metrics", stdin=text)
    check(code == 0 and out.strip() == "", f"promtool check metrics: exit {code}:\n{out}")


# ---------------------------------------------------------------- exposition


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """{(name, frozenset(labels)): value}; checks every family has HELP and TYPE."""
    samples, helps, types = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line:
            m = SAMPLE.match(line)
            check(m, f"unparsable sample line: {line!r}")
            name, labels, value = m.groups()
            # A histogram's series are <family>_bucket / _sum / _count.
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if types.get(family) != "histogram":
                family = name
            check(family in types and family in helps, f"{name}: sample without HELP/TYPE")
            lab = frozenset(LABEL.findall(labels or ""))
            samples[(name, lab)] = float(value)
    return samples, types


def total(samples, name, **labels):
    """Sum of a family's samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def per_shard(samples, name, **labels):
    out = {}
    want = set(labels.items())
    for (n, lab), v in samples.items():
        if n == name and want <= set(lab):
            shard = int(dict(lab)["shard"])
            out[shard] = out.get(shard, 0) + v
    return out


# ---------------------------------------------------------------- clients


# ---------------------------------------------------------------- tests


def metrics(gw):
    status, text = gw.ops_get("/metrics")
    check(status == 200, f"/metrics answered {status}")
    return text


def check_connections_match_stats(gw, samples):
    st = gw.stats()
    check(total(samples, "switchboard_connections") == st["connections"],
          f"connections: metrics {total(samples, 'switchboard_connections')} vs stats {st['connections']}")
    for state in ("open", "handshaking"):
        got = per_shard(samples, "switchboard_connections", state=state)
        want = {s["id"]: s[state] for s in st["per_shard"]}
        check(got == want, f"connections{{state={state}}} per shard: metrics {got} vs stats {want}")
        check(sum(got.values()) == st[state], f"{state}: metrics {sum(got.values())} vs stats {st[state]}")


def api(gw, method, params, key=API_KEY):
    """POST /api/<method>: (status, parsed JSON body or None)."""
    req = urllib.request.Request(f"http://127.0.0.1:{gw.ops_port}/api/{method}", data=json.dumps(params).encode(),
                                 headers={"X-API-Key": key} if key else {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def test_metrics_lint_counters_and_readiness():
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(CONFIG)
    try:
        with Gateway("--config", f.name, "--shards", "2", "--mode", "centrifuge") as gw:
            status, body = gw.ops_get("/readyz")
            check(status == 200 and body == "ready\n", f"/readyz: {status} {body!r}")
            with urllib.request.urlopen(f"http://127.0.0.1:{gw.ops_port}/metrics") as r:
                ctype = r.headers.get("Content-Type")
            check(ctype == "text/plain; version=0.0.4; charset=utf-8", f"/metrics Content-Type {ctype!r}")

            text = metrics(gw)
            lint(text)
            before, types = parse(text)
            for name in ("switchboard_connections", "switchboard_commands_total", "switchboard_deliveries_total",
                         "switchboard_info", "switchboard_open_fds", "switchboard_fd_capacity"):
                check(name in types, f"{name} missing from /metrics")
            check(set(per_shard(before, "switchboard_fd_capacity")) == {0, 1}, "fd capacity not reported per shard")
            check(before.get(("switchboard_info", frozenset({("version", "0.1.0")}))) == 1, "switchboard_info")
            check(total(before, "switchboard_connections") == 0, "connections before any client")
            check_connections_match_stats(gw, before)

            # One handshake rejection, so that family shows up and is linted.
            with socket.create_connection(("127.0.0.1", gw.client_port), timeout=IO_TIMEOUT) as s:
                s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
                check(s.recv(100).startswith(b"HTTP/1.1 404"), "404 for a wrong path")

            clients = [Client(gw.client_port) for _ in range(CLIENTS)]
            exp = int(time.time()) + 3600
            for i, c in enumerate(clients):
                c.call(1, "connect", {"token": hs256_token({"sub": f"user{i}", "exp": exp}, SECRET)})
                c.call(2, "subscribe", {"channel": CHANNEL})
            clients[0].call(3, "publish", {"channel": CHANNEL, "data": {"n": 1}})
            for c in clients:
                c.wait(lambda m: m.get("push", {}).get("channel") == CHANNEL, "the publication push")
            # Server API: one publish that works, one to an unknown
            # namespace (a Centrifugo error), one without the key.
            check(api(gw, "publish", {"channel": "chat:api", "data": 1}) == (200, {"result": {}}), "API publish")
            status, reply = api(gw, "publish", {"channel": "nope:x", "data": 1})
            check(status == 200 and reply["error"]["code"] == 102, f"API publish to an unknown namespace: {reply}")
            check(api(gw, "info", {}, key="")[0] == 401, "API without the key")

            text = metrics(gw)
            lint(text)
            after, types = parse(text)
            check(types.get("switchboard_handshake_rejections_total") == "counter", "handshake rejections family")
            check(total(after, "switchboard_handshake_rejections_total") == 1, "one handshake rejection")
            check(total(after, "switchboard_connections", state="open") == CLIENTS, "open connections")
            check(total(after, "switchboard_connections", state="handshaking") == 0, "handshaking connections")
            check_connections_match_stats(gw, after)
            moved = {
                ("switchboard_connections_accepted_total", ()): CLIENTS + 1,
                ("switchboard_upgrades_total", ()): CLIENTS,
                ("switchboard_commands_total", (("method", "connect"), ("result", "ok"))): CLIENTS,
                ("switchboard_commands_total", (("method", "subscribe"), ("result", "ok"))): CLIENTS,
                ("switchboard_commands_total", (("method", "publish"), ("result", "ok"))): 1,
                ("switchboard_commands_total", (("result", "error"),)): 0,
                ("switchboard_publications_in_total", ()): 1,
                ("switchboard_publications_home_total", ()): 1,
                ("switchboard_deliveries_total", ()): CLIENTS,
                ("switchboard_api_requests_total", (("method", "publish"), ("outcome", "ok"))): 1,
                ("switchboard_api_requests_total", (("method", "publish"), ("outcome", "error"))): 1,
                ("switchboard_api_requests_total", (("method", "info"),)): 0,
                ("switchboard_api_rejected_total", (("reason", "unauthorized"),)): 1,
            }
            for (name, labels), want in moved.items():
                got = total(after, name, **dict(labels)) - total(before, name, **dict(labels))
                check(got == want, f"{name}{dict(labels)} moved by {got}, expected {want}")
            # Every client read its push, so each frame's write completed and
            # was timed: one publish→write sample per delivery.
            lat = "switchboard_publish_to_write_seconds"
            check(types.get(lat) == "histogram", f"{lat} is a histogram")
            got = total(after, lat + "_count") - total(before, lat + "_count")
            check(got == CLIENTS, f"{lat}_count moved by {got}, expected {CLIENTS}")
            check(total(after, lat + "_bucket", le="+Inf") == total(after, lat + "_count"), "+Inf bucket = count")
            check(types.get("switchboard_outbound_queue_bytes") == "histogram", "queue histogram")
            for name in ("switchboard_clients", "switchboard_users", "switchboard_client_records",
                         "switchboard_subscriptions"):
                check(total(after, name) == CLIENTS, f"{name} = {total(after, name)}, expected {CLIENTS}")
            check(total(after, "switchboard_received_bytes_total") > 0, "received bytes")
            check(total(after, "switchboard_sent_bytes_total") > 0, "sent bytes")

            status, body = gw.ops_get("/readyz")
            check(status == 200, f"/readyz with clients: {status}")

            for c in clients:
                c.close()
            def ended(samples):
                return total(samples, "switchboard_sessions_ended_total") - total(
                    before, "switchboard_sessions_ended_total")

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                end, _ = parse(metrics(gw))
                if (total(end, "switchboard_connections") == 0 and total(end, "switchboard_clients") == 0
                        and ended(end) == CLIENTS + 1):
                    break
                time.sleep(0.1)
            check(total(end, "switchboard_connections") == 0, "connections after the clients left")
            check(total(end, "switchboard_clients") == 0, "clients after the clients left")
            check(ended(end) == CLIENTS + 1, f"sessions ended moved by {ended(end)}, expected {CLIENTS + 1}")
            check_connections_match_stats(gw, end)

            # The dashboard may use only names this gateway exports.
            with open(os.path.join(DEPLOY, "grafana-dashboard.json")) as d:
                dashboard = json.load(d)
            used = set(re.findall(r"switchboard_[a-z0-9_]+", json.dumps(dashboard)))
            check(used, "the dashboard uses no switchboard metric")
            # jemalloc's figures exist only when it is the allocator (not
            # in sanitizer builds).
            has_jemalloc = any(n.startswith("switchboard_jemalloc_") for n in types)
            unknown = sorted(n for n in used if n not in types
                             and (has_jemalloc or not n.startswith("switchboard_jemalloc_")))
            check(not unknown, f"the dashboard uses metrics /metrics does not export: {unknown}")

            code = gw.terminate()
            check(code == 0, f"exit code {code}")
    finally:
        os.unlink(f.name)


def test_deploy_files():
    code, out = promtool("check", "config", os.path.join(DEPLOY, "prometheus.yml"))
    check(code == 0, f"promtool check config: exit {code}:\n{out}")

    # Every dashboard query parses as PromQL: promtool checks them as
    # recording rules, with Grafana's variables replaced.
    with open(os.path.join(DEPLOY, "grafana-dashboard.json")) as d:
        dashboard = json.load(d)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    check(exprs, "no queries in the dashboard")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "1m").replace("$instance", ".*")}
        for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rules, f)  # JSON is YAML
    try:
        code, out = promtool("check", "rules", f.name)
        check(code == 0, f"promtool check rules (dashboard queries): exit {code}:\n{out}")
    finally:
        os.unlink(f.name)

    # Every sysctl the file sets exists on this kernel (read, never written).
    with open(os.path.join(DEPLOY, "sysctl-switchboard.conf")) as f:
        keys = [line.split("=")[0].strip() for line in f if line.strip() and line[0] not in "#;-"]
    check(len(keys) >= 10, f"sysctl keys: {keys}")
    missing = [k for k in keys if not os.path.exists("/proc/sys/" + k.replace(".", "/"))]
    check(not missing, f"unknown sysctl keys: {missing}")


if __name__ == "__main__":
    run_tests([test_metrics_lint_counters_and_readiness, test_deploy_files])
