#!/usr/bin/python3
"""Idle memory per WebSocket connection (issue 3's budget: <= 1 KiB user space).

Starts switchboard (echo mode), reads its RSS, opens N upgraded WebSocket
connections with hold_client (which answers pings), waits until the gateway
reports them all open and idle, reads RSS again, and prints
(RSS after - RSS before) / N, plus the kernel's Slab growth per socket pair
(/proc/meminfo; both ends of each loopback connection are on this host).

With MODE "centrifuge" every connection also completes a Centrifuge connect
whose token subscribes it to its personal channel (issue 4's idle figure);
"echo" (default) measures the bare WebSocket session (issue 3's) and then
the cost of a wake-up.

usage: bench/scenarios/idle_memory.py [N] [SHARDS] [MODE]   (default 19000 1 echo)
env SB_GATEWAY_ARGS: more switchboard flags, e.g. "--engine redis --redis-address redis://127.0.0.1:6379".
env SB_EXTRA_CONFIG: more top-level config lines, e.g. "client_publish_rate = 10" (rate limits' idle cost).
env SB_TLS_CERT, SB_TLS_KEY: PEM files; with them the listener is TLS and every connection is wss (issue 15).
env SB_DEFLATE=1: websocket_compression on, and every connection negotiates permessage-deflate (issue 15).
Run from the repo root after `ops/build release`.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 19000
SHARDS = sys.argv[2] if len(sys.argv) > 2 else "1"
MODE = sys.argv[3] if len(sys.argv) > 3 else "echo"
BIN = os.environ.get("SB_BIN_DIR", "build/bin")
SECRET = "bench-secret"
CONFIG = "/tmp/sb_idle_memory.toml"
with open(CONFIG, "w") as f:
    f.write(os.environ.get("SB_EXTRA_CONFIG", "").replace(";", "\n") + "\n")
    if os.environ.get("SB_DEFLATE") == "1":
        f.write("websocket_compression = true\n")
    if os.environ.get("SB_TLS_CERT"):
        f.write(f'tls = true\ntls_cert = "{os.environ["SB_TLS_CERT"]}"\ntls_key = "{os.environ["SB_TLS_KEY"]}"\n')
    f.write(f'token_hmac_secret_key = "{SECRET}"\n[[namespaces]]\nname = "personal"\n'
            'allow_user_limited_channels = true\n')
CLIENT_EXTRA = ["--cf", SECRET] if MODE == "centrifuge" else []
if os.environ.get("SB_TLS_CERT"):
    CLIENT_EXTRA += ["--tls", "1"]
if os.environ.get("SB_DEFLATE") == "1":
    CLIENT_EXTRA += ["--deflate", "1"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def slab_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:
        return json.loads(r.read())


gw = subprocess.Popen([f"{BIN}/switchboard", "--mode", MODE, "--config", CONFIG, "--shards", SHARDS,
                       "--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
                       *os.environ.get("SB_GATEWAY_ARGS", "").split()],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    line = gw.stdout.readline()
    client_port = int(line.split("clients=")[1].split()[0].rsplit(":", 1)[1])
    ops_port = int(line.split("ops=")[1].split()[0].rsplit(":", 1)[1])
    # Warm-up: one connection in and out, so one-off allocations (pools'
    # first slabs, scratch buffers, Asio's per-thread caches) are not
    # charged to the N connections.
    warm = subprocess.run([f"{BIN}/hold_client", "127.0.0.1", str(client_port), "1", "127.0.9.9", "--ws", "1",
                           "--timeout", "5", "--user-base", "9000000", *CLIENT_EXTRA], capture_output=True, text=True)
    time.sleep(0.5)
    rss0, slab0 = rss_kib(gw.pid), slab_kib()
    je0 = stats(ops_port).get("memory", {}).get("jemalloc")
    per_proc = 19000
    procs = []
    left, i = N, 0
    t0 = time.monotonic()
    while left > 0:
        n = min(per_proc, left)
        procs.append(subprocess.Popen([f"{BIN}/hold_client", "127.0.0.1", str(client_port), str(n),
                                       f"127.0.2.{i + 1}", "--ws", "1", "--timeout", "300",
                                       "--user-base", str(i * per_proc), *CLIENT_EXTRA],
                                      stdout=subprocess.PIPE, text=True))
        left -= n
        i += 1
    for p in procs:
        got = p.stdout.readline().strip()
        if not got.startswith("connected"):
            raise SystemExit(f"client failed: {got}")
    connect_s = time.monotonic() - t0
    deadline = time.monotonic() + 60
    while stats(ops_port)["open"] < N and time.monotonic() < deadline:
        time.sleep(0.2)
    s = stats(ops_port)
    # Let the upgrade answers drain and the queues empty; with TLS, also let
    # jemalloc return the handshakes' transient memory (its dirty pages
    # decay over ~10 s), so what is left is what idle sessions hold.
    time.sleep(12 if os.environ.get("SB_TLS_CERT") else 2)
    rss1, slab1 = rss_kib(gw.pid), slab_kib()
    je1 = stats(ops_port).get("memory", {}).get("jemalloc")
    per_conn = (rss1 - rss0) * 1024 / N
    slab_per = (slab1 - slab0) * 1024 / N
    print(f"connections: {s['open']} open of {N} (shards {SHARDS}, mode {MODE}); connected in {connect_s:.1f} s")
    print(f"gateway RSS: {rss0} KiB -> {rss1} KiB; user-space bytes per idle connection: {per_conn:.0f}")
    print(f"kernel Slab: {slab0} KiB -> {slab1} KiB; per connection (both loopback ends): {slab_per:.0f} B")
    if je0 and je1:
        # What the allocator says the sessions hold (live allocations, and
        # the pages they sit in), next to the RSS figure above.
        print(f"jemalloc per connection: allocated {(je1['allocated'] - je0['allocated']) / N:.0f} B, "
              f"active {(je1['active'] - je0['active']) / N:.0f} B, resident {(je1['resident'] - je0['resident']) / N:.0f} B")
    tracked = sum(p.get("protocol", {}).get("rate_limit_tracked", 0) for p in s.get("per_shard", []))
    if os.environ.get("SB_EXTRA_CONFIG"):
        print(f"rate-limit states held for idle connections: {tracked}")
    print(json.dumps({"connections": s["open"], "rss_before_kib": rss0, "rss_after_kib": rss1,
                      "bytes_per_connection": round(per_conn), "slab_bytes_per_connection": round(slab_per)}))
    for p in procs:
        p.kill()
        p.wait()
    if MODE != "echo":
        raise SystemExit(0)

    # Wake-up cost: POKE_CONNS sessions each receive POKE_ROUNDS 1-byte
    # messages (read, decode, echo, corked write); gateway CPU time divided
    # by the number of wake-ups.
    poke_conns, poke_rounds = 5000, 20
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_s(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    time.sleep(1)
    p = subprocess.Popen([f"{BIN}/hold_client", "127.0.0.1", str(client_port), str(poke_conns), "127.0.3.1",
                          "--ws", "1", "--poke", str(poke_rounds), "--timeout", "300"], stdout=subprocess.PIPE, text=True)
    if not p.stdout.readline().startswith("connected"):
        raise SystemExit("poke client failed to connect")
    c0 = cpu_s(gw.pid)
    got = p.stdout.readline().strip()
    c1 = cpu_s(gw.pid)
    p.kill()
    p.wait()
    wakeups = poke_conns * poke_rounds
    print(f"wake-ups: {got}; gateway CPU {c1 - c0:.2f} s -> {(c1 - c0) * 1e9 / wakeups:.0f} ns per wake-up "
          f"(read + decode + echo + write, {poke_conns} sessions x {poke_rounds} rounds)")
finally:
    gw.terminate()
    gw.wait(timeout=60)
