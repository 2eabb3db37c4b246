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
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startGateway, within, textOf, nextMessage, T } from './gateway.mjs';

const SIZES = [0, 125, 126, 65535, 65536];

let gw;
let port;
let opsPort;

async function open() {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`, { perMessageDeflate: false, maxPayload: 0 });
  await within(once(ws, 'open'), T, 'open');
  return ws;
}

before(async () => {
  gw = await startGateway(['--mode', 'echo', '--shards', '2']);
  ({ port, opsPort } = gw);
});

after(async () => {
  if (gw) await gw.stop();
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
