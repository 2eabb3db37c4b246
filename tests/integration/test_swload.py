#!/usr/bin/env python3
"""swload (bench/swload) against the real gateway, at small sizes: the load
tool that the benchmarks trust must itself keep working. Each scenario runs
with 2 worker processes over 2 shards and must end with exit 0 (no failed
connection, nothing lost) and a JSON summary whose counts add up. The
reconnect scenario runs against a gateway with a history namespace and the
server API (bench/swload/reconnect.toml).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sbtest import Gateway, binary, check, run_tests  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CONFIG = os.path.join(ROOT, "bench", "scenarios", "bench.toml")
SECRET = "switchboard-bench-secret"
RECONNECT_CONFIG = os.path.join(ROOT, "bench", "swload", "reconnect.toml")
API_KEY = "switchboard-bench-api-key"  # = api_key in reconnect.toml


def swload(gw, *args):
    cmd = [binary("swload"), "--port", str(gw.client_port), "--secret", SECRET, "--procs", "2",
           "--timeout", "120", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [l for l in p.stdout.splitlines() if l.startswith('{"swload":')]
    check(p.returncode == 0, f"swload {' '.join(args)} exited {p.returncode}: {p.stdout[-1500:]} {p.stderr[-1500:]}")
    check(len(lines) == 1, f"one JSON summary line expected: {p.stdout[-1500:]}")
    return json.loads(lines[0])


def test_idle_with_personal_channels():
    with Gateway("--config", CONFIG, "--shards", "2") as gw:
        r = swload(gw, "--scenario", "idle", "-n", "600", "--hold", "1", "--personal", "personal:#u{i}")
        check(r["n"] == 600 and r["ready"] == 600 and r["failed"] == 0, f"idle: {r}")
        st = gw.stats()
        connects = sum(s["protocol"]["connects"] for s in st["per_shard"])
        check(connects == 600, f"every client connected once with its token: {connects}")
        # The fleet exited, the kernel reset its sockets: all state is gone.
        gw.wait_for(lambda st: st["connections"] == 0 and all(
            s["protocol"]["clients"] == 0 and s["protocol"]["users"] == 0 and s["routing"]["subscriptions"] == 0
            and s["routing"]["local_channels"] == 0 and s["routing"]["home_channels"] == 0
            for s in st["per_shard"]), "state released after the fleet left", timeout=30)
        check(gw.terminate() == 0, "gateway exit code")


def test_broadcast_all_delivered_in_order():
    with Gateway("--config", CONFIG, "--shards", "2") as gw:
        r = swload(gw, "--scenario", "broadcast", "-n", "400", "--pub-rate", "20", "--duration", "2", "--drain", "10")
        check(r["pubs"] > 0 and r["expected"] == r["pubs"] * 400, f"broadcast counts: {r}")
        check(r["delivered"] == r["expected"] and r["lost"] == 0 and r["dup"] == 0, f"broadcast: {r}")
        check(gw.terminate() == 0, "gateway exit code")


def test_chat_rooms_all_delivered():
    with Gateway("--config", CONFIG, "--shards", "2") as gw:
        r = swload(gw, "--scenario", "chat", "-n", "400", "--room-size", "10", "--msg-rate", "1", "--duration", "2",
                   "--drain", "10")
        check(r["expected"] > 0 and r["lost"] == 0 and r["dup"] == 0, f"chat: {r}")
        check(gw.terminate() == 0, "gateway exit code")


def test_reconnect_recovers_missed():
    n, missed, live = 200, 10, 3
    with Gateway("--config", RECONNECT_CONFIG, "--shards", "2") as gw:
        # before 0: every client leaves a channel nobody has published to
        # yet; the stream (offset 0, epoch) must outlive them all.
        for channel, drop, dropped, before in (("hist:all", "1", n, 0), ("hist:half", "0.5", n // 2, 1)):
            r = swload(gw, "--scenario", "reconnect", "-n", str(n), "--channel", channel, "--drop", drop,
                       "--missed", str(missed), "--live", str(live), "--before", str(before), "--hold", "0.5",
                       "--away", "0.5", "--api-port", str(gw.ops_port), "--api-key", API_KEY)
            rc = r["reconnect"]
            check(r["ready"] == n and r["failed"] == 0 and r["pub_errors"] == 0, f"reconnect {drop}: {r}")
            check(rc["dropped"] == dropped and rc["back"] == dropped and rc["back_failed"] == 0,
                  f"reconnect {drop}: every dropped client came back: {rc}")
            check(rc["recovered"] == dropped * missed and rc["missed_owed"] == dropped * missed
                  and rc["not_recovered"] == 0 and rc["epoch_changes"] == 0,
                  f"reconnect {drop}: every missed publication recovered: {rc}")
            # Every client has every publication once: the dropped ones by
            # recovery, the others live; then the live ones after.
            check(r["lost"] == 0 and rc["lost"] == 0 and r["dup"] == 0
                  and r["delivered"] == n * (before + missed + live), f"reconnect {drop}: {r}")
            check(0 < rc["time_to_all_back_s"] <= rc["time_to_all_back_from_drop_s"]
                  and 0 < rc["time_to_all_recovered_s"], f"reconnect {drop}: times {rc}")
        st = gw.stats()
        recoveries = sum(s["routing"]["recoveries"] for s in st["per_shard"])
        failed = sum(s["routing"]["recoveries_failed"] for s in st["per_shard"])
        check(recoveries == n + n // 2 and failed == 0, f"gateway recoveries {recoveries}, failed {failed}")
        check(gw.terminate() == 0, "gateway exit code")


if __name__ == "__main__":
    run_tests([test_idle_with_personal_channels, test_broadcast_all_delivered_in_order, test_chat_rooms_all_delivered,
               test_reconnect_recovers_missed])
