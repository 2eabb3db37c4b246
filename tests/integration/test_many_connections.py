"""One switchboard process holds more connections than one process's fd
limit (shards have private fd tables), and closes them all on SIGTERM.

Default: 4 shards, 30,000 connections from 3 client processes, each from its
own source address. SB_CONNS / SB_CLIENT_PROCS shrink it (the ASan run).
"""
import os
import resource
import subprocess

from sbtest import Gateway, binary, check, run_tests

CONNS = int(os.environ.get("SB_CONNS", "30000"))
PROCS = int(os.environ.get("SB_CLIENT_PROCS", "3"))
SHARDS = os.environ.get("SB_SHARDS", "4")


def test_holds_more_than_one_fd_table_and_closes_all():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"fd hard limit {hard}; {CONNS} connections over {SHARDS} shards, {PROCS} client processes", flush=True)
    with Gateway("--shards", SHARDS) as gw:
        per = CONNS // PROCS
        clients = []
        for i in range(PROCS):
            n = per if i < PROCS - 1 else CONNS - per * (PROCS - 1)
            clients.append(subprocess.Popen(
                [binary("hold_client"), "127.0.0.1", str(gw.client_port), str(n), f"127.0.1.{i + 1}",
                 "--timeout", "600"], stdout=subprocess.PIPE, text=True))
        for c in clients:
            line = c.stdout.readline().strip()
            check(line.startswith("connected"), f"client did not connect all: {line!r}")
        stats = gw.wait_for(lambda s: s["connections"] >= CONNS, f"{CONNS} connections on the server")
        check(stats["connections"] == CONNS, f"server holds {stats['connections']}, expected {CONNS}")
        busy = [s for s in stats["per_shard"] if s["connections"] > 0]
        check(len(busy) == len(stats["per_shard"]), f"every shard holds connections: {stats['per_shard']}")
        if CONNS > 20000:
            check(max(s["connections"] for s in stats["per_shard"]) < hard, "each shard under the fd limit")
        print("per shard:", [s["connections"] for s in stats["per_shard"]], flush=True)
        code = gw.terminate(timeout=120)
        check(code == 0, f"exit code {code}; stderr tail: {''.join(gw.stderr_lines[-10:])}")
        for c in clients:
            out, _ = c.communicate(timeout=120)
            check(out.strip().startswith("closed"), f"client saw: {out!r}")
            check(c.returncode == 0, f"client exit {c.returncode}")


if __name__ == "__main__":
    run_tests([test_holds_more_than_one_fd_table_and_closes_all])
