// TLS on the client listener (issue 15, part 1): centrifuge-js, node `ws`,
// Python `websockets` and openssl's s_client speak wss to the real binary
// with a self-signed ECDSA P-256 certificate. TLS 1.3 (our record layer
// after OpenSSL's handshake, KeyUpdate both ways) and TLS 1.2 (OpenSSL's)
// carry messages larger than a record; bad input on the TLS port (plain
// HTTP, a plain upgrade, garbage, a truncated ClientHello, renegotiation)
// closes that connection only; a bad certificate stops the start with exit
// code 2; SIGHUP loads a new certificate for new connections while open
// ones stay. With ops_tls the ops/API listener is HTTPS with the same
// certificate.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { RawClient, SECRET, T, binDir, connToken, connect, metric, startGateway, subscribe, waitUntil, within } from './sb.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const certDir = mkdtempSync(path.join(os.tmpdir(), 'sb-tls-'));
const certFile = path.join(certDir, 'cert.pem');
const keyFile = path.join(certDir, 'key.pem');
const API_KEY = 'tls-test-key';

function makeCert(cert, key, cn, before = -1, after = 30) {
  execFileSync('/usr/bin/python3', [path.join(here, 'make_cert.py'), cert, key, cn, String(before), String(after)]);
}

const config = (extra = '') => `
token_hmac_secret_key = "${SECRET}"
api_key = "${API_KEY}"
handshake_timeout = "2s"
ping_interval = "2s"
pong_timeout = "2s"
tls = true
tls_cert = "${certFile}"
tls_key = "${keyFile}"
${extra}

[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
`;

let gw;
let ca;  // the certificate new connections should see
let wss;

// node `ws` with the test's CA: centrifuge-js takes the class.
const wsWithCa = () => class extends WebSocket {
  constructor(url, protocols, opts = {}) { super(url, protocols, { ...opts, ca }); }
};

async function api(method, params) {
  const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(params),
  }), T, `api ${method}`);
  return r.json();
}

async function rawTls(user) {
  const c = new RawClient(wss, { wsOptions: { ca } });
  await within(once(c.ws, 'open'), T, 'wss open');
  const r = await c.command({ connect: { token: connToken(user) } });
  assert.ok(r.connect, JSON.stringify(r));
  return c;
}

// The certificate a fresh TLS connection is shown, and how it went.
async function peek(opts = {}) {
  const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca, ...opts });
  try {
    await within(once(s, 'secureConnect'), T, 'TLS handshake');
    return { cn: s.getPeerCertificate().subject.CN, version: s.getProtocol(), alpn: s.alpnProtocol };
  } finally {
    s.destroy();
  }
}

before(async () => {
  makeCert(certFile, keyFile, 'first');
  ca = readFileSync(certFile);
  gw = await startGateway({ shards: 2, config: config() });
  wss = `wss://localhost:${gw.port}/connection/websocket`;
});
after(async () => {
  await gw?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

test('centrifuge-js over wss: connect, subscribe, publications larger than a record both ways', async () => {
  const c = await connect(wss, { token: connToken('alice'), websocket: wsWithCa() });
  const sub = await subscribe(c, 'chat:tls');
  const big = 'x'.repeat(40_000);  // three records of ciphertext
  const r = await api('publish', { channel: 'chat:tls', data: { big } });
  assert.ok(r.result, JSON.stringify(r));
  await sub.publish({ small: 1 });
  await sub.publish({ fromClient: big.slice(0, 30_000) });
  await waitUntil(() => sub.pubs.length === 3, T, 'three publications over wss');
  assert.equal(sub.pubs[0].big, big);
  assert.equal(sub.pubs[2].fromClient.length, 30_000);
  c.disconnect();
  assert.ok(await metric(gw, 'switchboard_tls_handshakes_total') >= 1);
});

test('TLS 1.3 by default, TLS 1.2 served too, ALPN http/1.1, nothing older', async () => {
  const v13 = await peek({ ALPNProtocols: ['h2', 'http/1.1'] });
  assert.deepEqual(v13, { cn: 'first', version: 'TLSv1.3', alpn: 'http/1.1' });
  assert.equal((await peek({ maxVersion: 'TLSv1.2' })).version, 'TLSv1.2');
  await assert.rejects(peek({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
  // A whole session over TLS 1.2 (OpenSSL's record layer): 200 commands in
  // one frame, 200 replies.
  const c = new RawClient(wss, { wsOptions: { ca, maxVersion: 'TLSv1.2' } });
  await within(once(c.ws, 'open'), T, 'wss (TLS 1.2) open');
  assert.ok((await c.command({ connect: { token: connToken('tls12') } })).connect);
  const cmds = [];
  for (let i = 0; i < 200; i++) cmds.push(JSON.stringify({ id: 100 + i, presence_stats: { channel: `chat:p${i}` } }));
  c.sendRaw(cmds.join('\n'));
  await c.waitFor((m) => m.id === 299, 'the 200th reply over TLS 1.2');
  assert.equal(c.msgs.filter((m) => m.id >= 100).length, 200);
  c.ws.close();
});

test('Python websockets over wss', async () => {
  const script = `
import asyncio, json, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[1])
    async with websockets.connect(sys.argv[2], ssl=ctx) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": sys.argv[3]}}))
        print(await ws.recv())
asyncio.run(main())
`;
  const out = execFileSync('/usr/bin/python3', ['-c', script, certFile, wss, connToken('py')], { timeout: T }).toString();
  assert.match(out, /"connect":\{"client":/);
});

// openssl s_client, interactive: lines are sent as data, "K" asks for a
// KeyUpdate that the peer must answer with its own, "R" renegotiates.
function sClient(args, lines) {
  const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${gw.port}`, '-servername', 'localhost', '-crlf', ...args],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const exited = once(p, 'exit');
  return {
    out: () => out,
    async run() {
      await waitUntil(() => out.includes('Verify return code'), T, `s_client handshake: ${out.slice(-300)}`);
      // One write per entry (s_client takes a command from the start of
      // what it reads).
      for (const l of lines) {
        p.stdin.write(l + '\n');
        await new Promise((r) => setTimeout(r, 300));
      }
    },
    async end() {
      p.stdin.end();
      await within(exited, T, 's_client exit').catch(() => p.kill('SIGKILL'));
    },
  };
}

const upgradeLines = ['GET /connection/websocket HTTP/1.1', 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ''];
const upgradeText = upgradeLines.join('\n');  // one write: s_client's -crlf makes the line ends

test('KeyUpdate from the client, asking for ours: the session goes on under the new keys', async () => {
  const s = sClient(['-tls1_3'], ['K', 'k', upgradeText]);
  await s.run();
  await waitUntil(() => s.out().includes('HTTP/1.1 101'), T, `101 after two KeyUpdates: ${s.out().slice(-500)}`);
  assert.match(s.out(), /KEYUPDATE/);
  await s.end();
});

test('bad input on the TLS port closes that connection only; the process and a bystander go on', async () => {
  const bystander = await rawTls('bystander');
  await bystander.command({ subscribe: { channel: 'chat:bystander' } });
  const failedBefore = await metric(gw, 'switchboard_sessions_ended_total', ['reason="tls_error"']);

  async function sendRaw(bytes, what) {
    const s = net.connect(gw.port, '127.0.0.1');
    let got = Buffer.alloc(0);
    s.on('data', (d) => { got = Buffer.concat([got, d]); });
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(bytes);
    await within(new Promise((r) => s.on('close', r)), T, `${what}: closed by the gateway`);
    return got;
  }
  const http = await sendRaw('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'plain HTTP');
  assert.ok(!http.toString('latin1').includes('HTTP/1.1'), 'nothing answered in the clear');
  await sendRaw(upgradeLines.join('\r\n') + '\r\n', 'a plain WebSocket upgrade');
  await sendRaw(Buffer.from('16030300ff' + 'ab'.repeat(300), 'hex'), 'garbage in a handshake record');
  // A ClientHello's first bytes only: closed at handshake_timeout.
  await sendRaw(Buffer.from('160301020001000200fc0303' + '11'.repeat(40), 'hex'), 'a truncated ClientHello');
  // Renegotiation (TLS 1.2): refused, the connection ends.
  const reneg = sClient(['-tls1_2'], ['R']);
  await reneg.run();
  await reneg.end();
  assert.match(reneg.out(), /RENEGOTIATING/);
  assert.doesNotMatch(reneg.out(), /HTTP\/1.1 101/);

  await waitUntil(async () => (await metric(gw, 'switchboard_sessions_ended_total', ['reason="tls_error"'])) >= failedBefore + 4,
    T, 'the failures counted as tls_error');
  assert.equal(gw.proc.exitCode, null, 'the gateway is up');
  const r = await api('publish', { channel: 'chat:bystander', data: { still: 'here' } });
  assert.ok(r.result, JSON.stringify(r));
  await bystander.waitFor((m) => m.push?.pub?.data?.still === 'here', 'the bystander still served');
  bystander.ws.close();
});

test('a bad certificate stops the start with exit code 2 and says why', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-tls-bad-'));
  try {
    const expired = [path.join(dir, 'exp.pem'), path.join(dir, 'exp.key')];
    makeCert(...expired, 'old', -10, -1);
    const other = [path.join(dir, 'other.pem'), path.join(dir, 'other.key')];
    makeCert(...other, 'other');
    const cases = [
      { cert: expired[0], key: expired[1], why: /expired/ },
      { cert: certFile, key: other[1], why: /does not match/ },
      { cert: path.join(dir, 'missing.pem'), key: keyFile, why: /missing\.pem/ },
    ];
    for (const c of cases) {
      const cfg = path.join(dir, 'sb.toml');
      writeFileSync(cfg, `tls = true\ntls_cert = "${c.cert}"\ntls_key = "${c.key}"\n`);
      const p = spawn(path.join(binDir, 'switchboard'), ['--config', cfg, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0'],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      const [code] = await within(once(p, 'exit'), T, 'switchboard to refuse the certificate');
      assert.equal(code, 2, err);
      assert.match(err, c.why);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP loads the new certificate for new connections; open ones stay; a bad one is refused', async () => {
  const open = await rawTls('stays');
  await open.command({ subscribe: { channel: 'chat:reload' } });
  makeCert(certFile, keyFile, 'second');
  ca = readFileSync(certFile);
  gw.proc.kill('SIGHUP');
  await waitUntil(async () => (await gw.stats()).config.generation === 2, T, 'reload applied');
  assert.equal((await peek()).cn, 'second');
  await api('publish', { channel: 'chat:reload', data: { n: 1 } });
  await open.waitFor((m) => m.push?.pub?.data?.n === 1, 'the open session, made under the old certificate, still served');

  // An expired certificate in the files: the reload is refused, the
  // running one stays.
  makeCert(certFile, keyFile, 'expired', -10, -1);
  gw.proc.kill('SIGHUP');
  await waitUntil(async () => (await gw.stats()).config.reloads_rejected === 1, T, 'reload refused');
  assert.match((await gw.stats()).config.last_error, /expired/);
  assert.equal((await peek()).cn, 'second');
  open.ws.close();
});

test('ops_tls: the ops/API listener over HTTPS, plain HTTP there closed, its certificate reloaded', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-ops-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  makeCert(cert, key, 'ops-first');
  const ops = await startGateway({ config: `api_key = "${API_KEY}"\nops_tls = true\ntls_cert = "${cert}"\ntls_key = "${key}"\n` });
  const get = (p, opts = {}) => within(new Promise((resolve, reject) => {
    // agent: false, a new connection each time (a kept one would keep its certificate).
    const req = https.request({ host: '127.0.0.1', port: ops.opsPort, path: p, servername: 'localhost', ca: readFileSync(cert),
      agent: false, ...opts }, (res) => {
      const cn = res.socket.getPeerCertificate().subject?.CN;
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, cn }));
    });
    req.on('error', reject);
    if (opts.method === 'POST') req.end('{}'); else req.end();
  }), T, `https ${p}`);
  try {
    const health = await get('/healthz');
    assert.deepEqual([health.status, health.body, health.cn], [200, 'ok\n', 'ops-first']);
    const info = await get('/api/info', { method: 'POST', headers: { 'X-API-Key': API_KEY } });
    assert.equal(info.status, 200);
    assert.ok(JSON.parse(info.body).result.nodes.length === 1);
    // Plain HTTP on the HTTPS port: closed, and the port still serves.
    await assert.rejects(within(fetch(`http://127.0.0.1:${ops.opsPort}/healthz`), T, 'plain HTTP to the https port'));
    makeCert(cert, key, 'ops-second');
    ops.proc.kill('SIGHUP');
    await waitUntil(async () => (await get('/healthz').catch(() => ({}))).cn === 'ops-second', T, 'the reloaded ops certificate');
  } finally {
    await ops.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
