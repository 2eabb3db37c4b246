"""Bad input on the client port gets its documented answer and costs no
other session anything.

Raw sockets, standard library only (Debian's /usr/bin/python3). Each test
starts its own `switchboard --mode echo --shards 1`, opens a healthy echo
session first (same shard), sends one kind of bad input on a second
connection, and checks: the HTTP status or the close code the contract
documents (docs/config.md, DESIGN.md), that the matching /stats counter
moved, that the healthy session still echoes during and after, and that
the process is up and exits 0 on SIGTERM (under ASan: no leak). Every wait
is bounded; nothing asserts a duration.
"""
import base64
import contextlib
import hashlib
import os
import queue
import socket
import struct
import tempfile
import threading
import time

from sbtest import Gateway, check, run_tests

WS_PATH = "/connection/websocket"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IO_TIMEOUT = 10  # seconds any single read may block
CLOSE_WAIT = 30  # seconds to see the server close a connection


# ---------------------------------------------------------------- frames


def client_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame. rsv: the three RSV bits as a number 0-7 (placed in
    bits 6-4); length: a length to put in the header instead of the real one
    (the payload is still appended as given)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 1 << 16:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class Closed(Exception):
    """The server closed the TCP connection (EOF or reset)."""


class Conn:
    """A raw TCP connection to the client port with a frame reader."""

    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.port = port
        self.buf = b""
        self.send_lock = threading.Lock()

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def _fill(self, timeout=IO_TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError as e:
            raise Closed("reset") from e
        if not chunk:
            raise Closed("eof")
        self.buf += chunk

    def read_http_response(self):
        """Status, headers (lower-case names) of the server's HTTP answer."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        check(len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"not an HTTP status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def upgrade(self, extra_headers=()):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        req += "".join(f"{h}\r\n" for h in extra_headers) + "\r\n"
        self.send(req.encode())
        status, headers = self.read_http_response()
        check(status == 101, f"upgrade answered {status} {headers}")
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        check(headers.get("sec-websocket-accept") == accept,
              f"Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}, expected {accept!r}")
        return self

    def read_frame(self, timeout=IO_TIMEOUT):
        """(fin, opcode, payload) of the next server frame; checks the
        server frame is unmasked and has no RSV bits."""
        while len(self.buf) < 2:
            self._fill(timeout)
        b0, b1 = self.buf[0], self.buf[1]
        check(b1 & 0x80 == 0, f"server frame is masked: {self.buf[:2].hex()}")
        check(b0 & 0x70 == 0, f"server frame has RSV bits: {self.buf[:2].hex()}")
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill(timeout)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill(timeout)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill(timeout)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def expect_close(self, expected_code, what, answer=True):
        """Reads frames (skipping data and pings) until the server's close
        frame; checks its code, answers it like a polite client, and waits
        for the TCP close. Returns the reason bytes."""
        seen = []
        deadline = time.monotonic() + CLOSE_WAIT
        while True:
            check(time.monotonic() < deadline, f"{what}: no close frame within {CLOSE_WAIT}s; saw {seen}")
            try:
                fin, op, payload = self.read_frame()
            except Closed as e:
                raise AssertionError(f"{what}: TCP closed ({e}) without a close frame; frames seen {seen}") from e
            except socket.timeout as e:
                raise AssertionError(f"{what}: nothing from the server in {IO_TIMEOUT}s; frames seen {seen}") from e
            if op == CLOSE:
                break
            seen.append((op, len(payload)))
        check(fin, f"{what}: close frame without FIN")
        check(len(payload) >= 2, f"{what}: close frame payload {payload.hex()!r} has no code")
        code = struct.unpack("!H", payload[:2])[0]
        check(code == expected_code,
              f"{what}: server closed with {code} {payload[2:]!r}, expected {expected_code}")
        if answer:
            with contextlib.suppress(OSError):
                self.send(client_frame(CLOSE, payload[:2]))
        self.expect_tcp_close(what)
        return payload[2:]

    def expect_tcp_close(self, what, timeout=CLOSE_WAIT):
        """Discards whatever arrives until EOF or reset (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._fill(timeout=max(0.1, min(IO_TIMEOUT, deadline - time.monotonic())))
                self.buf = b""
            except Closed:
                return
            except socket.timeout:
                continue
        raise AssertionError(f"{what}: server did not close the TCP connection within {timeout}s")

    def http_answer(self, request, what):
        """Sends raw bytes, returns (status, headers) and checks the server
        then closes the connection."""
        self.send(request)
        try:
            status, headers = self.read_http_response()
        except Closed as e:
            raise AssertionError(f"{what}: connection closed ({e}) before an HTTP answer; got {self.buf[:200]!r}") from e
        except socket.timeout as e:
            raise AssertionError(f"{what}: no HTTP answer within {IO_TIMEOUT}s; got {self.buf[:200]!r}") from e
        self.expect_tcp_close(what)
        return status, headers

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


class Healthy:
    """A well-behaved echo session: a reader thread answers pings and hands
    data messages to echo()."""

    def __init__(self, port):
        self.conn = Conn(port).upgrade()
        self.messages = queue.Queue()
        self.close_code = None
        self.error = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            while True:
                try:
                    fin, op, payload = self.conn.read_frame(timeout=3600)
                except socket.timeout:
                    continue
                if op == PING:
                    self.conn.send(client_frame(PONG, payload))
                elif op == CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.messages.put(("close", payload))
                    return
                elif op in (TEXT, BINARY) and fin:
                    self.messages.put((op, payload))
                elif op == PONG:
                    continue
                else:
                    self.messages.put(("unexpected", (fin, op, payload)))
        except Exception as e:  # noqa: BLE001 - reported by echo()
            self.error = e
            self.messages.put(("error", repr(e)))

    def echo(self, text):
        payload = text.encode()
        self.conn.send(client_frame(TEXT, payload))
        try:
            got = self.messages.get(timeout=IO_TIMEOUT)
        except queue.Empty as e:
            raise AssertionError(f"healthy session: no echo of {text!r} within {IO_TIMEOUT}s") from e
        check(got == (TEXT, payload), f"healthy session sent {text!r}, got {got!r}")

    def close(self):
        self.conn.send(client_frame(CLOSE, close_payload(1000)))
        try:
            got = self.messages.get(timeout=IO_TIMEOUT)
        except queue.Empty as e:
            raise AssertionError("healthy session: no close answer") from e
        check(got[0] == "close" and got[1][:2] == close_payload(1000),
              f"healthy session closed with 1000, server answered {got!r}")
        self._thread.join(timeout=IO_TIMEOUT)
        self.conn.expect_tcp_close("healthy session close")
        self.conn.close()


# ---------------------------------------------------------------- scenario


def toml_value(v):
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def ended(stats, reason):
    return stats["ended"].get(reason, 0)


def rejected(stats, label):
    return sum(s.get("handshake_rejected", {}).get(label, 0) for s in stats["per_shard"])


@contextlib.contextmanager
def scenario(**config):
    """Gateway (1 shard, echo, given config keys) + a healthy session opened
    first. Yields (gateway, healthy, stats before the bad input); afterwards
    checks the healthy session still echoes, closes it cleanly, and checks a
    clean exit."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--mode", "echo", "--shards", "1"]
        if config:
            path = os.path.join(tmp, "switchboard.toml")
            with open(path, "w") as f:
                for k, v in config.items():
                    f.write(f"{k} = {toml_value(v)}\n")
            args += ["--config", path]
        with Gateway(*args) as gw:
            healthy = Healthy(gw.client_port)
            healthy.echo("before")
            gw.wait_for(lambda s: s["open"] >= 1, "the healthy session counted open", timeout=30)
            before = gw.stats()
            yield gw, healthy, before
            check(gw.proc.poll() is None, f"gateway died: exit {gw.proc.returncode}; {''.join(gw.stderr_lines[-10:])}")
            healthy.echo("after")
            healthy.close()
            code = gw.terminate()
            check(code == 0, f"gateway exit code {code}; stderr tail: {''.join(gw.stderr_lines[-10:])}")


def wait_counter(gw, before, reason, label=None):
    """Waits until ended[reason] (and handshake_rejected[label]) moved past
    the figures in `before`."""
    def moved(s):
        ok = ended(s, reason) > ended(before, reason)
        if label is not None:
            ok = ok and rejected(s, label) > rejected(before, label)
        return ok
    what = f"ended.{reason}" + (f" and handshake_rejected.{label}" if label else "") + " to move"
    return gw.wait_for(moved, what, timeout=CLOSE_WAIT)


# ---------------------------------------------------------------- HTTP


def upgrade_request(port, method="GET", path=WS_PATH, version="13", key="dGhlIHNhbXBsZSBub25jZQ==",
                    upgrade=True, extra=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_case(request_fn, status, label, what, config=None, check_headers=None):
    with scenario(**(config or {})) as (gw, healthy, before):
        conn = Conn(gw.client_port)
        got, headers = conn.http_answer(request_fn(gw.client_port), what)
        conn.close()
        check(got == status, f"{what}: answered {got} {headers}, expected {status}")
        if check_headers:
            check_headers(headers)
        healthy.echo("during")
        wait_counter(gw, before, "handshake_rejected", label)


def test_not_http_400():
    http_case(lambda p: b"\x00\x01\x02\x03 this is not http\r\n\r\n", 400, "not_http", "binary garbage")


def test_headers_too_large_431():
    http_case(lambda p: upgrade_request(p, extra=[f"X-Filler-{i}: " + "a" * 1000 for i in range(9)]),
              431, "headers_too_large", "9 KiB of headers")


def test_method_not_get_405():
    http_case(lambda p: upgrade_request(p, method="POST", extra=["Content-Length: 0"]), 405, "bad_method", "POST")


def test_wrong_path_404():
    http_case(lambda p: upgrade_request(p, path="/not/here"), 404, "not_found", "GET /not/here")


def test_no_upgrade_426():
    http_case(lambda p: upgrade_request(p, upgrade=False), 426, "not_upgrade", "GET without Upgrade/Connection")


def test_bad_version_426():
    def headers_ok(h):
        check(h.get("sec-websocket-version") == "13", f"426 for version 8 lacks Sec-WebSocket-Version: 13: {h}")
    http_case(lambda p: upgrade_request(p, version="8"), 426, "bad_version", "Sec-WebSocket-Version: 8",
              check_headers=headers_ok)


def test_missing_key_400():
    http_case(lambda p: upgrade_request(p, key=None), 400, "bad_key", "no Sec-WebSocket-Key")


def test_invalid_key_400():
    http_case(lambda p: upgrade_request(p, key="not-a-16-byte-key"), 400, "bad_key", "Sec-WebSocket-Key not 16 bytes")


def test_cross_origin_403_same_origin_101():
    http_case(lambda p: upgrade_request(p, extra=["Origin: http://evil.example"]), 403, "origin",
              "Origin http://evil.example, default allowed_origins")
    with scenario() as (gw, healthy, before):
        Conn(gw.client_port).upgrade([f"Origin: http://127.0.0.1:{gw.client_port}"]).close()


def test_allowed_origins_pattern():
    cfg = {"allowed_origins": ["http://*.example.com"]}
    http_case(lambda p: upgrade_request(p, extra=["Origin: http://example.org"]), 403, "origin",
              "Origin http://example.org not matching http://*.example.com", config=cfg)
    with scenario(**cfg) as (gw, healthy, before):
        c = Conn(gw.client_port).upgrade(["Origin: http://chat.example.com"])
        c.send(client_frame(TEXT, b"hi"))
        check(c.read_frame() == (True, TEXT, b"hi"), "echo on a session with an allowed Origin")
        c.close()


def test_unfinished_request_handshake_timeout():
    with scenario(handshake_timeout="1s") as (gw, healthy, before):
        conn = Conn(gw.client_port)
        conn.send(f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{gw.client_port}\r\n".encode())
        silent = Conn(gw.client_port)  # connects and sends nothing at all
        healthy.echo("during")
        conn.expect_tcp_close("request that never finishes")
        silent.expect_tcp_close("connection that never sends")
        conn.close()
        silent.close()
        gw.wait_for(lambda s: ended(s, "handshake_timeout") >= ended(before, "handshake_timeout") + 2,
                    "ended.handshake_timeout to count both", timeout=CLOSE_WAIT)


# ---------------------------------------------------------------- frames


def frame_case(frames, code, reason_counter, what, config=None):
    with scenario(**(config or {})) as (gw, healthy, before):
        conn = Conn(gw.client_port).upgrade()
        for f in frames:
            conn.send(f)
        healthy.echo("during")
        conn.expect_close(code, what)
        conn.close()
        wait_counter(gw, before, reason_counter)


def test_unmasked_frame_1002():
    frame_case([client_frame(TEXT, b"hello", mask=False)], 1002, "protocol_error", "unmasked text frame")


def test_rsv_bits_1002():
    for rsv in (4, 2, 1):
        frame_case([client_frame(TEXT, b"hello", rsv=rsv)], 1002, "protocol_error", f"RSV bits {rsv:03b}")


def test_reserved_opcodes_1002():
    for op in (0x3, 0x7, 0xB, 0xF):
        frame_case([client_frame(op, b"x")], 1002, "protocol_error", f"opcode {op:#x}")


def test_control_frame_too_long_1002():
    frame_case([client_frame(PING, b"p" * 126)], 1002, "protocol_error", "ping with 126-byte payload")


def test_fragmented_control_frame_1002():
    frame_case([client_frame(PING, b"ping", fin=False)], 1002, "protocol_error", "ping with FIN=0")


def test_continuation_without_start_1002():
    frame_case([client_frame(CONT, b"orphan")], 1002, "protocol_error", "continuation with no message")


def test_new_message_inside_fragmented_1002():
    frame_case([client_frame(TEXT, b"first", fin=False), client_frame(TEXT, b"second")], 1002, "protocol_error",
               "text frame while a fragmented message is open")


def test_length_msb_set_1002():
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + os.urandom(4)
    frame_case([head + b"xxxx"], 1002, "protocol_error", "64-bit length with the MSB set")


def test_close_one_byte_payload_1002():
    frame_case([client_frame(CLOSE, b"\x03")], 1002, "protocol_error", "close frame with 1-byte payload")


def test_invalid_close_codes_1002():
    for code in (999, 1005, 1006, 1015, 5000):
        frame_case([client_frame(CLOSE, close_payload(code))], 1002, "protocol_error", f"close code {code}")


def test_invalid_utf8_1007():
    frame_case([client_frame(TEXT, b"ok \xff\xfe")], 1007, "invalid_payload", "text with 0xFF 0xFE")


def test_invalid_utf8_across_fragments_1007():
    # "€" is E2 82 AC: the first fragment ends inside it, the next breaks it.
    frame_case([client_frame(TEXT, b"price \xe2\x82", fin=False), client_frame(CONT, b"(")], 1007,
               "invalid_payload", "UTF-8 sequence broken across fragments")


def test_valid_utf8_across_fragments_echoed():
    with scenario() as (gw, healthy, before):
        c = Conn(gw.client_port).upgrade()
        c.send(client_frame(TEXT, b"price \xe2\x82", fin=False))
        c.send(client_frame(PING, b"between"))
        c.send(client_frame(CONT, b"\xac 5"))
        got = [c.read_frame(), c.read_frame()]
        check(got == [(True, PONG, b"between"), (True, TEXT, "price € 5".encode())],
              f"fragments with a ping between: got {got}")
        c.send(client_frame(CLOSE, close_payload(4000, b"bye")))
        c.expect_close(4000, "client close 4000", answer=False)
        c.close()


def test_message_too_big_1009():
    frame_case([client_frame(BINARY, b"b" * 65537)], 1009, "message_too_big", "one 65,537-byte binary frame")


def test_fragmented_message_too_big_1009():
    frame_case([client_frame(TEXT, b"a" * 40000, fin=False), client_frame(CONT, b"a" * 40000)], 1009,
               "message_too_big", "two 40,000-byte fragments")


def test_message_limit_configured_1009():
    frame_case([client_frame(BINARY, b"b" * 1025)], 1009, "message_too_big", "1,025 bytes over max_message_size 1024",
               config={"max_message_size": 1024})


# ---------------------------------------------------------------- slow and dead peers


def test_slow_consumer_closed():
    with scenario(max_queued_bytes=65536) as (gw, healthy, before):
        conn = Conn(gw.client_port, rcvbuf=4096).upgrade()
        msg = client_frame(BINARY, b"s" * 60 * 1024)
        sent = 0
        conn.sock.settimeout(2)
        # Send until the server stops taking bytes or cuts us off; never read.
        while sent < 4096:
            try:
                conn.sock.sendall(msg)
            except socket.timeout:
                break
            except OSError:
                break
            sent += 1
            if sent % 64 == 0:
                healthy.echo(f"during {sent}")
                if ended(gw.stats(), "slow_consumer") > ended(before, "slow_consumer"):
                    break
        healthy.echo("while the slow client is stuck")
        wait_counter(gw, before, "slow_consumer")
        # Now read: queued echoes, maybe a 1008 close, then EOF or reset.
        close_codes = []
        deadline = time.monotonic() + CLOSE_WAIT
        while True:
            check(time.monotonic() < deadline, f"slow client: server did not close within {CLOSE_WAIT}s")
            try:
                fin, op, payload = conn.read_frame()
            except (Closed, socket.timeout) as e:
                check(isinstance(e, Closed), "slow client: nothing arrives, connection not closed")
                break
            if op == CLOSE:
                close_codes.append((struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None, payload[2:]))
        if close_codes:
            check(close_codes[0][0] == 1008, f"slow consumer close frame {close_codes}, expected 1008")
        print(f"  slow client sent {sent} messages of 60 KiB; close frames seen: {close_codes}", flush=True)
        conn.close()


def test_no_pong_closed():
    with scenario(websocket_ping_interval="1s", websocket_pong_timeout="1s") as (gw, healthy, before):
        conn = Conn(gw.client_port).upgrade()
        healthy.echo("during")
        # Read nothing and answer nothing until the server gives up on us.
        wait_counter(gw, before, "no_pong")
        healthy.echo("after the dead peer was closed")
        ops = []
        try:
            while True:
                fin, op, payload = conn.read_frame()
                ops.append(op)
        except Closed:
            pass
        except socket.timeout as e:
            raise AssertionError(f"dead peer: connection still open; frames seen {ops}") from e
        check(PING in ops, f"dead peer: the server never pinged; frames seen {ops}")
        conn.close()


if __name__ == "__main__":
    run_tests([
        test_not_http_400,
        test_headers_too_large_431,
        test_method_not_get_405,
        test_wrong_path_404,
        test_no_upgrade_426,
        test_bad_version_426,
        test_missing_key_400,
        test_invalid_key_400,
        test_cross_origin_403_same_origin_101,
        test_allowed_origins_pattern,
        test_unfinished_request_handshake_timeout,
        test_unmasked_frame_1002,
        test_rsv_bits_1002,
        test_reserved_opcodes_1002,
        test_control_frame_too_long_1002,
        test_fragmented_control_frame_1002,
        test_continuation_without_start_1002,
        test_new_message_inside_fragmented_1002,
        test_length_msb_set_1002,
        test_close_one_byte_payload_1002,
        test_invalid_close_codes_1002,
        test_invalid_utf8_1007,
        test_invalid_utf8_across_fragments_1007,
        test_valid_utf8_across_fragments_echoed,
        test_message_too_big_1009,
        test_fragmented_message_too_big_1009,
        test_message_limit_configured_1009,
        test_slow_consumer_closed,
        test_no_pong_closed,
    ])
