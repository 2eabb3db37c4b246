"""A raw-socket Centrifuge (JSON over WebSocket) client and HS256 tokens for
the Python integration tests: standard library only, no client library in
between, so a test sees exactly the frames the gateway sends.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import time

from sbtest import check

WS_PATH = "/connection/websocket"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IO_TIMEOUT = 10


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(claims, secret):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


class Client:
    """A raw-socket WebSocket client speaking Centrifuge JSON."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buf = b""
        self.inbox = []
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        check(head.startswith(b"HTTP/1.1 101"), f"upgrade refused: {head[:200]!r}")
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        check(accept in head, "bad Sec-WebSocket-Accept")

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("server closed the connection")
        self.buf += data

    def send(self, obj):
        payload = json.dumps(obj).encode()
        n = len(payload)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(c ^ mask[i & 3] for i, c in enumerate(payload)))

    def _frame(self):
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill()
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        check(b0 & 0x0F == 0x1, f"unexpected frame opcode {b0 & 0x0F}: {payload[:100]!r}")
        return payload

    def wait(self, pred, what):
        """The first message (a frame may hold several, one per line) matching pred."""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            for i, msg in enumerate(self.inbox):
                if pred(msg):
                    return self.inbox.pop(i)
            for line in self._frame().decode().split("\n"):
                if line.strip():
                    self.inbox.append(json.loads(line))
        raise AssertionError(f"timed out waiting for {what}; got {self.inbox}")

    def call(self, cmd_id, method, params):
        self.send({"id": cmd_id, method: params})
        reply = self.wait(lambda m: m.get("id") == cmd_id, f"reply to {method}")
        check("error" not in reply, f"{method} failed: {reply}")
        return reply

    def close(self):
        self.sock.close()
