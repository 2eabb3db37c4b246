// permessage-deflate (RFC 7692) against `switchboard --mode echo` with
// websocket_compression on: node ws (perMessageDeflate) round trips, the
// negotiated parameters, frames seen on the wire (RSV1 set, inflatable on
// their own), and bad compressed input from a raw socket: a zip bomb is
// closed with 1009, garbage with 1007, RSV1 where it may not be with 1002,
// each without touching a bystander. Every wait is bounded.
//
// run: SB_BIN_DIR=build/bin node --test deflate.test.mjs   (after npm ci)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { startGateway, within, textOf, nextMessage, T } from './gateway.mjs';

const MIN_SIZE = 64;
const BOTH = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
let gw;
let dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-deflate-'));
  const cfg = path.join(dir, 'switchboard.toml');
  fs.writeFileSync(cfg, `websocket_compression = true\nwebsocket_compression_min_size = ${MIN_SIZE}\n`);
  gw = await startGateway(['--config', cfg, '--mode', 'echo', '--shards', '2']);
});

after(async () => {
  if (gw) await gw.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// A node ws client; `ws.answered` is the server's Sec-WebSocket-Extensions.
async function open(perMessageDeflate = { threshold: 0 }) {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/connection/websocket`, { perMessageDeflate, maxPayload: 0 });
  ws.on('upgrade', (res) => { ws.answered = res.headers['sec-websocket-extensions'] ?? ''; });
  await within(once(ws, 'open'), T, 'open');
  return ws;
}

async function closeWs(ws) {
  ws.close(1000);
  await within(once(ws, 'close'), T, 'close');
}

// A raw client: the upgrade (offering `extensions`), then frames both ways.
class Raw {
  static async connect(extensions) {
    const r = new Raw();
    r.sock = net.connect(gw.port, '127.0.0.1');
    await within(once(r.sock, 'connect'), T, 'tcp connect');
    r.buf = Buffer.alloc(0);
    r.waiters = [];
    r.ended = false;
    r.sock.on('data', (d) => { r.buf = Buffer.concat([r.buf, d]); r.wake(); });
    r.sock.on('close', () => { r.ended = true; r.wake(); });
    r.sock.on('error', () => {});
    const ext = extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '';
    r.sock.write('GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
      `Sec-WebSocket-Version: 13\r\n${ext}\r\n`);
    await r.until(() => r.buf.indexOf('\r\n\r\n') >= 0, 'the 101');
    const end = r.buf.indexOf('\r\n\r\n');
    r.response = r.buf.subarray(0, end).toString();
    r.buf = r.buf.subarray(end + 4);
    assert.match(r.response, /^HTTP\/1.1 101/);
    return r;
  }
  wake() { for (const w of this.waiters.splice(0)) w(); }
  async until(pred, what) {
    await within((async () => {
      while (!pred()) {
        if (this.ended) throw new Error(`connection closed while waiting for ${what}`);
        await new Promise((res) => this.waiters.push(res));
      }
    })(), T, what);
  }
  // Sends one masked frame; rsv1 marks it compressed.
  send(op, payload, { fin = true, rsv1 = false } = {}) {
    const len = payload.length;
    const head = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op];
    if (len < 126) head.push(0x80 | len);
    else if (len < 65536) head.push(0x80 | 126, len >> 8, len & 0xff);
    else { head.push(0x80 | 127, 0, 0, 0, 0); for (let i = 3; i >= 0; --i) head.push((len >>> (8 * i)) & 0xff); }
    const key = randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; ++i) body[i] ^= key[i & 3];
    this.sock.write(Buffer.concat([Buffer.from(head), key, body]));
  }
  // The next server frame: { fin, rsv1, op, payload }.
  async frame(what) {
    let f;
    await this.until(() => (f = this.parse()) !== null, what);
    return f;
  }
  parse() {
    const b = this.buf;
    if (b.length < 2) return null;
    let len = b[1] & 0x7f, at = 2;
    if (len === 126) { if (b.length < 4) return null; len = b.readUInt16BE(2); at = 4; }
    else if (len === 127) { if (b.length < 10) return null; len = Number(b.readBigUInt64BE(2)); at = 10; }
    if (b.length < at + len) return null;
    const f = { fin: (b[0] & 0x80) !== 0, rsv1: (b[0] & 0x40) !== 0, op: b[0] & 0x0f, payload: b.subarray(at, at + len) };
    this.buf = b.subarray(at + len);
    return f;
  }
  async closeCode(what) {
    const f = await this.frame(what);
    assert.equal(f.op, 8, `${what}: expected a close frame, got opcode ${f.op}`);
    return f.payload.readUInt16BE(0);
  }
  destroy() { this.sock.destroy(); }
}

// What a client sends: raw deflate, sync flush, the 00 00 FF FF tail removed.
function deflate(buf) {
  const out = zlib.deflateRawSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual([...out.subarray(out.length - 4)], [0, 0, 0xff, 0xff]);
  return out.subarray(0, out.length - 4);
}
function inflate(buf) {
  return zlib.inflateRawSync(Buffer.concat([buf, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

async function bystanderEchoes(ws, what) {
  const msg = `still here after ${what} `.repeat(10);
  ws.send(msg);
  const m = await nextMessage(ws, `bystander after ${what}`);
  assert.equal(m.data.toString(), msg);
}

test('node ws negotiates permessage-deflate without context takeover on either side', async () => {
  const ws = await open();
  assert.equal(ws.answered, BOTH);
  assert.equal(ws.extensions, 'permessage-deflate');
  await closeWs(ws);
  const plain = await open(false);
  assert.equal(plain.answered, '', 'a client that offers nothing gets nothing');
  await closeWs(plain);
});

test('compressed text and binary of 0..65,536 bytes are echoed', async () => {
  const ws = await open();
  for (const n of [0, 1, 63, 64, 125, 126, 2048, 65535, 65536]) {
    const text = textOf(n);
    ws.send(text);
    let m = await nextMessage(ws, `text ${n}`);
    assert.equal(m.isBinary, false);
    assert.ok(m.data.toString('utf8') === text, `text ${n} came back different (${m.data.length} bytes)`);
    for (const bin of [randomBytes(n), Buffer.alloc(n, 7)]) {
      ws.send(bin);
      m = await nextMessage(ws, `binary ${n}`);
      assert.equal(m.isBinary, true);
      assert.ok(Buffer.compare(m.data, bin) === 0, `binary ${n} came back different (${m.data.length} bytes)`);
    }
  }
  // A compressed message sent in fragments (one deflate stream over them).
  const parts = ['frag-', 'mé€nted '.repeat(500), '😀 end'];
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1, compress: true }));
  const m = await nextMessage(ws, 'fragmented compressed text');
  assert.ok(m.data.toString('utf8') === parts.join(''), 'fragmented compressed text came back different');
  await closeWs(ws);
});

test('on the wire: replies at or over the minimum size are compressed, each inflatable on its own', async () => {
  const raw = await Raw.connect('permessage-deflate; client_max_window_bits');
  assert.match(raw.response, new RegExp(`\r\nSec-WebSocket-Extensions: ${BOTH}(\r\n|$)`));
  const big = Buffer.from(JSON.stringify({ text: 'hello '.repeat(400) }));
  for (let i = 0; i < 2; ++i) {
    raw.send(1, deflate(big), { rsv1: true });
    const f = await raw.frame('compressed echo');
    assert.equal(f.rsv1, true, 'a 2 KiB JSON reply goes out compressed');
    assert.ok(f.payload.length < big.length / 4, `compressed to ${f.payload.length} of ${big.length} bytes`);
    assert.ok(Buffer.compare(inflate(f.payload), big) === 0, 'the frame inflates alone (no context takeover)');
  }
  raw.send(1, Buffer.from('short'));
  const small = await raw.frame('short echo');
  assert.equal(small.rsv1, false, `under websocket_compression_min_size (${MIN_SIZE}) a reply goes plain`);
  assert.equal(small.payload.toString(), 'short');
  const noise = randomBytes(1000);
  raw.send(2, noise);
  const incompressible = await raw.frame('random echo');
  assert.equal(incompressible.rsv1, false, 'deflate does not shrink random bytes: sent plain');
  assert.ok(Buffer.compare(incompressible.payload, noise) === 0);
  raw.destroy();
});

test('a zip bomb is closed with 1009 before it is inflated, and others go on', async () => {
  const bystander = await open();
  const raw = await Raw.connect('permessage-deflate');
  const bomb = deflate(Buffer.alloc(32 << 20));  // 32 MiB of zeros in ~32 KiB
  assert.ok(bomb.length < 65536, `the bomb is ${bomb.length} bytes on the wire`);
  raw.send(2, bomb, { rsv1: true });
  assert.equal(await raw.closeCode('close after the bomb'), 1009);
  raw.destroy();
  await bystanderEchoes(bystander, 'the bomb');
  await closeWs(bystander);
});

test('bad compressed input: 1007 for garbage, 1002 for RSV1 where it may not be', async () => {
  const bystander = await open();
  const cases = [
    ['garbage', 'permessage-deflate', (r) => r.send(1, Buffer.from([0xff, 0xff, 0xff, 0x12, 0x34]), { rsv1: true }), 1007],
    ['compressed invalid UTF-8', 'permessage-deflate', (r) => r.send(1, deflate(Buffer.from([0xc3, 0x28, 0x41])), { rsv1: true }), 1007],
    ['RSV1 on a continuation', 'permessage-deflate', (r) => {
      r.send(1, Buffer.from('a'), { fin: false });
      r.send(0, deflate(Buffer.from('b')), { rsv1: true });
    }, 1002],
    ['RSV1 on a ping', 'permessage-deflate', (r) => r.send(9, Buffer.alloc(0), { rsv1: true }), 1002],
    ['RSV1 without the extension', null, (r) => r.send(1, deflate(Buffer.from('hello')), { rsv1: true }), 1002],
  ];
  for (const [what, ext, act, code] of cases) {
    const r = await Raw.connect(ext);
    act(r);
    assert.equal(await r.closeCode(what), code, what);
    r.destroy();
    await bystanderEchoes(bystander, what);
  }
  await closeWs(bystander);
});

test('the ops endpoint counted compressed sessions and messages', async () => {
  const stats = await gw.stats();
  const sum = (k) => stats.per_shard.reduce((a, s) => a + s.deflate[k], 0);
  assert.ok(sum('sessions') >= 8, `deflate sessions ${sum('sessions')}`);
  assert.ok(sum('messages') > 0 && sum('bytes_out') < sum('bytes_in'), JSON.stringify(stats.per_shard.map((s) => s.deflate)));
  assert.ok(sum('inflated') > 0 && sum('skipped') > 0);
  assert.ok((stats.ended.message_too_big ?? 0) >= 1, `ended ${JSON.stringify(stats.ended)}`);
  assert.ok((stats.ended.invalid_payload ?? 0) >= 2, `ended ${JSON.stringify(stats.ended)}`);
});
