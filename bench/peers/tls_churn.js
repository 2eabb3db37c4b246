// Full TLS handshakes per second from Bun (BoringSSL), a cheaper generator
// than OpenSSL 3.0's client (bench/tls_handshake): K connections at once,
// each handshakes, sends the WebSocket upgrade and waits for the 101 (the
// client's handshake ends before the server's: the answer shows the
// server's is done too), is closed at once, and starts again.
// usage: bun bench/peers/tls_churn.js PORT [SECONDS=10] [INFLIGHT=64]
const port = Number(process.argv[2]);
const seconds = Number(process.argv[3] ?? 10);
const inflight = Number(process.argv[4] ?? 64);
const UPGRADE = 'GET /connection/websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
let done = 0, failed = 0, firstError = '';
const end = performance.now() + seconds * 1000;
function one() {
  if (performance.now() > end) return;
  Bun.connect({
    hostname: '127.0.0.1', port,
    tls: { rejectUnauthorized: false, serverName: 'localhost' },
    socket: {
      handshake(s, ok) {
        if (!ok) { failed++; s.terminate(); return; }
        s.write(UPGRADE);
      },
      data(s, d) {
        if (d.toString('latin1').startsWith('HTTP/1.1 101')) done++; else failed++;
        s.terminate();
      },
      close() { one(); },
      error(s, e) { failed++; firstError ||= String(e); },
      connectError(s, e) { failed++; firstError ||= String(e); one(); },
    },
  }).catch((e) => { failed++; firstError ||= String(e); one(); });
}
const t0 = performance.now();
for (let i = 0; i < inflight; i++) one();
setTimeout(() => {
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ generator: 'bun', inflight, seconds: +s.toFixed(1), handshakes: done, per_second: Math.round(done / s), failed, ...(firstError ? { firstError } : {}) }));
  process.exit(0);
}, seconds * 1000 + 50);
