"""Interop: Python `websockets` (Debian's python3-websockets, asyncio API)
against `switchboard --mode echo`.

Text and binary messages of 0, 125, 126, 65,535 and 65,536 bytes (the
default max_message_size allows exactly 65,536), a fragmented text and a
fragmented binary message, a ping with a payload answered by a pong, and a
client close with code 4000 that the server echoes. The same exchange
again with permessage-deflate (websockets' default compression="deflate",
the gateway's websocket_compression = true): websockets compresses every
message it sends. Run with Debian's /usr/bin/python3.
"""
import asyncio
import os
import tempfile

import websockets

from sbtest import Gateway, check, run_tests

SIZES = [0, 125, 126, 65535, 65536]
T = 10  # seconds any single step may take


def text_of(n):
    """Exactly n bytes of UTF-8 with multi-byte characters in it, so the
    server's UTF-8 validator sees real sequences."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 bytes
    s = unit * (n // 10)
    return s + "z" * (n - len(s.encode()))


async def exchange(port, compression=None):
    uri = f"ws://127.0.0.1:{port}/connection/websocket"
    ws = await asyncio.wait_for(websockets.connect(uri, max_size=None, compression=compression, close_timeout=T), T)
    if compression:
        ext = [type(e).__name__ for e in ws.extensions]
        check(ext == ["PerMessageDeflate"], f"extensions negotiated: {ext}")
        params = ws.extensions[0]
        check(params.remote_no_context_takeover and params.local_no_context_takeover,
              f"no context takeover on both sides: {params!r}")
    checked = []
    for n in SIZES:
        msg = text_of(n)
        check(len(msg.encode()) == n, f"test bug: text of {n} bytes is {len(msg.encode())}")
        await asyncio.wait_for(ws.send(msg), T)
        got = await asyncio.wait_for(ws.recv(), T)
        check(isinstance(got, str), f"text {n}: came back as {type(got).__name__}")
        check(got == msg, f"text {n}: came back different ({len(got.encode())} bytes)")
        data = os.urandom(n)
        await asyncio.wait_for(ws.send(data), T)
        got = await asyncio.wait_for(ws.recv(), T)
        check(isinstance(got, bytes), f"binary {n}: came back as {type(got).__name__}")
        check(got == data, f"binary {n}: came back different ({len(got)} bytes)")
        checked.append(n)
    print(f"  text and binary echoed: {checked} bytes", flush=True)

    # Fragmented: websockets sends an iterable as one fragmented message.
    parts = ["frag-", "mé€nted ", "x" * 3000, "😀 end"]
    await asyncio.wait_for(ws.send(parts), T)
    got = await asyncio.wait_for(ws.recv(), T)
    check(got == "".join(parts), f"fragmented text came back as {got[:60]!r}...")
    bparts = [os.urandom(100), os.urandom(40000), b"", os.urandom(7)]
    await asyncio.wait_for(ws.send(bparts), T)
    got = await asyncio.wait_for(ws.recv(), T)
    check(got == b"".join(bparts), f"fragmented binary came back different ({len(got)} bytes)")
    print("  fragmented text and binary echoed as one message", flush=True)

    # Ping with a payload: the waiter completes only on a pong with the same payload.
    pong = await asyncio.wait_for(ws.ping(b"are-you-there-123"), T)
    await asyncio.wait_for(pong, T)
    print("  ping answered by a pong with the same payload", flush=True)

    await asyncio.wait_for(ws.close(code=4000, reason="bye"), 3 * T)
    check(ws.close_code == 4000, f"server answered close 4000 with {ws.close_code} {ws.close_reason!r}")
    print(f"  close 4000 echoed ({ws.close_code} {ws.close_reason!r})", flush=True)


def test_python_websockets_echo():
    with Gateway("--mode", "echo", "--shards", "2") as gw:
        asyncio.run(exchange(gw.client_port))
        stats = gw.wait_for(lambda s: s["ended"].get("peer_closed", 0) >= 1, "the session counted as peer_closed",
                            timeout=30)
        upgrades = sum(s["upgrades"] for s in stats["per_shard"])
        check(upgrades == 1, f"upgrades {upgrades}, expected 1")
        check(gw.proc.poll() is None, "gateway still up")
        code = gw.terminate()
        check(code == 0, f"gateway exit code {code}")


def test_python_websockets_echo_compressed():
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "switchboard.toml")
        with open(cfg, "w") as f:
            f.write("websocket_compression = true\n")
        with Gateway("--mode", "echo", "--shards", "2", "--config", cfg) as gw:
            asyncio.run(exchange(gw.client_port, compression="deflate"))
            stats = gw.wait_for(lambda s: s["ended"].get("peer_closed", 0) >= 1, "the session counted as peer_closed",
                                timeout=30)
            deflate = {k: sum(s["deflate"][k] for s in stats["per_shard"]) for k in stats["per_shard"][0]["deflate"]}
            check(deflate["sessions"] == 1, f"permessage-deflate not negotiated: {deflate}")
            check(deflate["inflated"] >= 12 and deflate["messages"] > 0, f"too little compressed: {deflate}")
            print(f"  permessage-deflate: {deflate}", flush=True)
            code = gw.terminate()
            check(code == 0, f"gateway exit code {code}")


if __name__ == "__main__":
    run_tests([test_python_websockets_echo, test_python_websockets_echo_compressed])
