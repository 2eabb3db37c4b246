// The Protobuf format (centrifuge-protobuf) next to JSON: centrifuge-js's
// protobuf build and JSON clients on one channel get the same publications
// (each encoded once per format per shard), ?cf_protocol=protobuf picks the
// format too, Protobuf with permessage-deflate, and bad binary input from a
// raw client: each is disconnected with 3501 and nobody else is touched.
// The other suites (pubsub, recovery, presence, refresh) run again with
// SB_CF_PROTOCOL=protobuf (tests/integration/CMakeLists.txt).
//
// run: SB_BIN_DIR=build/bin node --test protobuf.test.mjs   (in this folder, after npm ci)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { Centrifuge as CentrifugeJson } from 'centrifuge';
import { apiCall, closeAll, configWith, connToken, metric, nextEvent, startGateway, T, waitUntil, within } from './sb.mjs';

const KEY = 'protobuf-api-key';
const SHARDS = 2;
let gw;
const clients = [];

before(async () => {
  gw = await startGateway({
    shards: SHARDS,
    config: configWith([
      `api_key = "${KEY}"`, 'websocket_compression = true',
      'allow_publish_for_subscriber = true', 'allow_history_for_subscriber = true', 'history_size = 10',
      'history_ttl = "300s"', 'presence = true', 'allow_presence_for_subscriber = true',
    ].join('\n')),
  });
});

after(async () => {
  closeAll(clients);
  if (gw) await gw.stop();
});

const api = (method, params) => apiCall(gw, KEY, method, params);

const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b) => JSON.parse(new TextDecoder().decode(b));

// A centrifuge-js client of either build, connected; `url` may carry a query.
async function cf(Build, user, { url = gw.url, wsOptions = {} } = {}) {
  class Ws extends WebSocket {
    constructor(u, protocols, opts) { super(u, protocols, { ...opts, ...wsOptions }); }
  }
  const c = new Build(url, { websocket: Ws, token: connToken(user), minReconnectDelay: 200 });
  clients.push(c);
  const connected = nextEvent(c, 'connected', `${user} connected`);
  c.connect();
  await connected;
  return c;
}

async function sub(c, channel) {
  const s = c.newSubscription(channel);
  s.pubs = [];
  s.on('publication', (ctx) => s.pubs.push(ctx.data));
  const done = nextEvent(s, 'subscribed', `subscribed to ${channel}`);
  s.subscribe();
  await done;
  return s;
}

test('Protobuf and JSON subscribers of one channel get every publication, encoded once per format per shard', async () => {
  const pbSubs = [];
  const jsonSubs = [];
  for (let i = 0; i < 4; i++) pbSubs.push(await sub(await cf(CentrifugeProtobuf, `pb${i}`, { wsOptions: { perMessageDeflate: false } }), 'mixed'));
  for (let i = 0; i < 4; i++) jsonSubs.push(await sub(await cf(CentrifugeJson, `js${i}`, { wsOptions: { perMessageDeflate: false } }), 'mixed'));
  assert.equal(await metric(gw, 'switchboard_clients_protobuf'), 4);
  const encodedBefore = await metric(gw, 'switchboard_push_frames_encoded_total');
  const sent = [];
  for (let n = 0; n < 10; n++) {
    const data = { n, text: `héllo ${n}` };
    sent.push(data);
    await api('publish', { channel: 'mixed', data });
  }
  // A Protobuf client publishes too: its bytes reach the JSON subscribers as JSON.
  const fromPb = { from: 'protobuf', ok: true };
  sent.push(fromPb);
  await pbSubs[0].publish(enc(fromPb));
  for (const [name, subs, read] of [['protobuf', pbSubs, dec], ['json', jsonSubs, (d) => d]]) {
    for (const [i, s] of subs.entries()) {
      await waitUntil(() => s.pubs.length >= sent.length, T, `${name} subscriber ${i}`, () => `${s.pubs.length} received`);
      assert.deepEqual(s.pubs.map(read), sent, `${name} subscriber ${i}'s publications`);
    }
  }
  // At most one frame per publication per format per shard (2 formats).
  const encoded = await metric(gw, 'switchboard_push_frames_encoded_total') - encodedBefore;
  assert.ok(encoded >= 2 * sent.length && encoded <= 2 * SHARDS * sent.length, `${encoded} frames for ${sent.length} publications`);

  // History, and presence with the client's info, in Protobuf.
  const h = await pbSubs[1].history({ limit: 10 });
  assert.deepEqual(h.publications.map((p) => dec(p.data)), sent.slice(-10));
  const p = await pbSubs[1].presence();
  assert.equal(Object.keys(p.clients).length, 8);
  assert.ok(Object.values(p.clients).some((c) => c.user === 'pb2'));
});

test('?cf_protocol=protobuf picks the format as the subprotocol does', async () => {
  // A raw ws client asking for no subprotocol but with the query: its
  // frames are binary Protobuf replies.
  const ws = new WebSocket(`${gw.url}?cf_protocol=protobuf`, { perMessageDeflate: false });
  await within(once(ws, 'open'), T, 'open');
  const got = within(once(ws, 'message'), T, 'connect reply');
  ws.send(connectCommand(1, connToken('query-user')));
  const [data, isBinary] = await got;
  assert.equal(isBinary, true);
  // Reply {id: 1 (08 01), connect: {...} (2a ..)}, varint-delimited.
  const len = data[0];
  assert.equal(data.length, 1 + len);
  assert.deepEqual([...data.subarray(1, 4)], [0x08, 0x01, 0x2a], 'Reply.id = 1, then Reply.connect');
  ws.close();
});

test('Protobuf with permessage-deflate: publications arrive compressed and intact', async () => {
  const c = await cf(CentrifugeProtobuf, 'pbz');  // node ws offers permessage-deflate by default
  assert.equal(c._transport._transport.extensions, 'permessage-deflate');
  const s = await sub(c, 'mixed-z');
  const before = await metric(gw, 'switchboard_ws_compressed_messages_total');
  const data = { text: 'compressible '.repeat(100) };
  await api('publish', { channel: 'mixed-z', data });
  await waitUntil(() => s.pubs.length >= 1, T, 'the compressed publication');
  assert.deepEqual(dec(s.pubs[0]), data);
  assert.ok(await metric(gw, 'switchboard_ws_compressed_messages_total') > before);
});

// ---- bad input from a raw Protobuf client ---------------------------------

function varint(n) {
  const out = [];
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
const field = (num, wireType, bytes) => [...varint(num * 8 + wireType), ...(wireType === 2 ? varint(bytes.length) : []), ...bytes];
const str = (s) => [...new TextEncoder().encode(s)];
const delimited = (msg) => Buffer.from([...varint(msg.length), ...msg]);
function connectCommand(id, token) {
  return delimited([...field(1, 0, varint(id)), ...field(4, 2, field(1, 2, str(token)))]);
}

test('bad Protobuf input is a 3501 disconnect and leaves others alone', async () => {
  const bystander = await sub(await cf(CentrifugeProtobuf, 'bystander', { wsOptions: { perMessageDeflate: false } }), 'calm');
  const cases = [
    ['garbage', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a length past the frame', Buffer.from([0x20, 0x08, 0x01])],
    ['a truncated varint', Buffer.from([0x02, 0x08, 0x80])],
    ['two requests in one command', delimited([...field(1, 0, [2]), ...field(4, 2, []), ...field(7, 2, field(1, 2, str('x')))])],
    ['a command without an id', delimited(field(5, 2, field(1, 2, str('calm'))))],
    ['an invalid UTF-8 channel', delimited([...field(1, 0, [2]), ...field(5, 2, field(1, 2, [0xc3, 0x28]))])],
    ['a group (wire type 3)', delimited([...field(1, 0, [2]), 0x1b])],
    ['a text frame', 'not protobuf'],
  ];
  for (const [what, bytes] of cases) {
    const ws = new WebSocket(gw.url, 'centrifuge-protobuf', { perMessageDeflate: false });
    await within(once(ws, 'open'), T, `open (${what})`);
    const replied = within(once(ws, 'message'), T, `connect reply (${what})`);
    ws.send(connectCommand(1, connToken(`bad-${what.length}`)));
    await replied;
    const closed = within(once(ws, 'close'), T, `close after ${what}`);
    ws.send(bytes);
    const [code] = await closed;
    assert.equal(code, 3501, `${what}: closed with ${code}`);
    await api('publish', { channel: 'calm', data: { after: what } });
    await waitUntil(() => bystander.pubs.length >= cases.indexOf(cases.find((c) => c[0] === what)) + 1, T, `bystander after ${what}`);
  }
  assert.deepEqual(bystander.pubs.map(dec), cases.map(([what]) => ({ after: what })));
});
