// Interop: the node `ws` client (8.x) against `switchboard --mode echo`.
// Starts the gateway itself (SB_BIN_DIR, like the Python tests), on
// ephemeral ports, and checks: text and binary messages of 0, 125, 126,
// 65,535 and 65,536 bytes come back as sent; a message sent in fragments
// ({fin: false}) comes back as one; a ping with a payload gets a pong with
// that payload; close 4000 is echoed. Every wait is bounded.
//
// run: SB_BIN_DIR=build/bin node --test   (in this folder, after npm ci)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const binDir = process.env.SB_BIN_DIR ?? path.join(here, '..', '..', '..', 'build', 'bin');
const SIZES = [0, 125, 126, 65535, 65536];
const T = 10_000; // ms any single step may take

let gw;
let port;
let opsPort;
let stderr = '';

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// n bytes of UTF-8 with 1- to 4-byte characters.
function textOf(n) {
  const unit = 'aé€😀'; // 10 bytes
  const s = unit.repeat(Math.floor(n / 10));
  return s + 'z'.repeat(n - Buffer.byteLength(s));
}

// Resolves with the next message as { data, isBinary }.
function nextMessage(ws, what) {
  return within(new Promise((resolve, reject) => {
    const onMsg = (data, isBinary) => { cleanup(); resolve({ data, isBinary }); };
    const onClose = (code) => { cleanup(); reject(new Error(`closed (${code}) while waiting for ${what}`)); };
    const cleanup = () => { ws.off('message', onMsg); ws.off('close', onClose); };
    ws.on('message', onMsg);
    ws.on('close', onClose);
  }), T, what);
}

async function open() {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`, { perMessageDeflate: false, maxPayload: 0 });
  await within(once(ws, 'open'), T, 'open');
  return ws;
}

before(async () => {
  gw = spawn(path.join(binDir, 'switchboard'),
    ['--mode', 'echo', '--shards', '2', '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  gw.stderr.on('data', (d) => { stderr += d; });
  let out = '';
  await within(new Promise((resolve, reject) => {
    gw.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/switchboard listening clients=\S+:(\d+) ops=\S+:(\d+)/);
      if (m) { port = Number(m[1]); opsPort = Number(m[2]); resolve(); }
    });
    gw.on('exit', (code) => reject(new Error(`switchboard exited ${code}: ${stderr}`)));
  }), 30_000, 'switchboard to start');
});

after(async () => {
  if (gw && gw.exitCode === null) {
    gw.kill('SIGTERM');
    const [code] = await within(once(gw, 'exit'), 60_000, 'switchboard to exit').catch((e) => {
      gw.kill('SIGKILL');
      throw e;
    });
    assert.equal(code, 0, `switchboard exit code; stderr: ${stderr}`);
  }
});

test('text and binary of 0..65,536 bytes are echoed with their type', async () => {
  const ws = await open();
  for (const n of SIZES) {
    const text = textOf(n);
    assert.equal(Buffer.byteLength(text), n);
    ws.send(text);
    let m = await nextMessage(ws, `text ${n}`);
    assert.equal(m.isBinary, false, `text ${n} came back binary`);
    assert.ok(m.data.toString('utf8') === text, `text ${n} came back different (${m.data.length} bytes)`);

    const bin = randomBytes(n);
    ws.send(bin);
    m = await nextMessage(ws, `binary ${n}`);
    assert.equal(m.isBinary, true, `binary ${n} came back text`);
    assert.ok(Buffer.compare(m.data, bin) === 0, `binary ${n} came back different (${m.data.length} bytes)`);
  }
  ws.close(1000);
  await within(once(ws, 'close'), T, 'close');
});

test('a fragmented message comes back as one message', async () => {
  const ws = await open();
  const parts = ['frag-', 'mé€nted ', 'x'.repeat(30000), '😀 end'];
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
  let m = await nextMessage(ws, 'fragmented text');
  assert.equal(m.isBinary, false);
  assert.ok(m.data.toString('utf8') === parts.join(''), 'fragmented text came back different');

  const bparts = [randomBytes(10), randomBytes(50000), randomBytes(3)];
  bparts.forEach((p, i) => ws.send(p, { binary: true, fin: i === bparts.length - 1 }));
  m = await nextMessage(ws, 'fragmented binary');
  assert.equal(m.isBinary, true);
  assert.ok(Buffer.compare(m.data, Buffer.concat(bparts)) === 0, 'fragmented binary came back different');
  ws.close(1000);
  await within(once(ws, 'close'), T, 'close');
});

test('a ping with a payload is answered by a pong with that payload', async () => {
  const ws = await open();
  const payload = Buffer.from('node-ws-ping-7');
  const pong = within(once(ws, 'pong'), T, 'pong');
  ws.ping(payload);
  const [data] = await pong;
  assert.ok(Buffer.compare(data, payload) === 0, `pong payload ${data}`);
  ws.close(1000);
  await within(once(ws, 'close'), T, 'close');
});

test('close 4000 is echoed by the server', async () => {
  const ws = await open();
  const closed = within(once(ws, 'close'), T, 'close');
  ws.close(4000, 'bye');
  const [code] = await closed;
  assert.equal(code, 4000, `server answered close 4000 with ${code}`);
});

test('the ops endpoint counted the sessions', async () => {
  const res = await within(fetch(`http://127.0.0.1:${opsPort}/stats`), T, '/stats');
  const stats = await res.json();
  const upgrades = stats.per_shard.reduce((a, s) => a + s.upgrades, 0);
  assert.equal(upgrades, 4, `upgrades ${upgrades}`);
  assert.ok((stats.ended.peer_closed ?? 0) >= 1, `ended ${JSON.stringify(stats.ended)}`);
});
