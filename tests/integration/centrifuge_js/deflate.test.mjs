// permessage-deflate in Centrifuge mode: centrifuge-js on node ws with
// compression (ws's default) and without it, subscribed to one channel.
// Publications from the server API reach both kinds of subscriber intact
// and in order; each is compressed once per shard, not once per compressed
// subscriber (switchboard_ws_compressed_messages_total against the
// deliveries). Under ASan as well as Release.
//
// run: SB_BIN_DIR=build/bin node --test deflate.test.mjs   (in this folder, after npm ci)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { apiCall, closeAll, configWith, connToken, connect, metric, startGateway, subscribe, T, waitUntil } from './sb.mjs';

const KEY = 'deflate-api-key';
const SHARDS = 2;
let gw;
const clients = [];

// centrifuge-js calls new WebSocket(url, protocols): this one never offers
// permessage-deflate.
class PlainWebSocket extends WebSocket {
  constructor(url, protocols, opts) {
    super(url, protocols, { ...opts, perMessageDeflate: false });
  }
}

before(async () => {
  gw = await startGateway({
    shards: SHARDS,
    config: configWith([
      `api_key = "${KEY}"`, 'websocket_compression = true', 'websocket_compression_min_size = 64',
      // channels without a namespace ("mixed"): publish and history
      'allow_publish_for_subscriber = true', 'allow_history_for_subscriber = true', 'history_size = 10', 'history_ttl = "300s"',
    ].join('\n')),
  });
});

after(async () => {
  closeAll(clients);
  if (gw) await gw.stop();
});

const api = (method, params) => apiCall(gw, KEY, method, params);

test('a channel with compressed and plain subscribers: every publication reaches both, compressed once per shard', async () => {
  const compressed = [];
  const plain = [];
  for (let i = 0; i < 6; i++) {
    const c = await connect(gw.url, { token: connToken(`z${i}`) });
    clients.push(c);
    compressed.push(await subscribe(c, 'mixed'));
  }
  for (let i = 0; i < 3; i++) {
    const c = await connect(gw.url, { token: connToken(`p${i}`), websocket: PlainWebSocket });
    clients.push(c);
    plain.push(await subscribe(c, 'mixed'));
  }
  const sessions = await metric(gw, 'switchboard_ws_deflate_sessions_total');
  assert.equal(sessions, 6, 'the six ws clients negotiated permessage-deflate, the three plain ones did not');

  const before = await metric(gw, 'switchboard_ws_compressed_messages_total');
  const N = 20;
  const sent = [];
  for (let n = 0; n < N; n++) {
    // A 2 KiB chat message: compressible JSON, as chat is.
    const data = { n, text: `message ${n}: ${'the quick brown fox jumps over the lazy dog '.repeat(45)}` };
    sent.push(data);
    await api('publish', { channel: 'mixed', data });
  }
  for (const [name, subs] of [['compressed', compressed], ['plain', plain]]) {
    for (const [i, s] of subs.entries()) {
      await waitUntil(() => s.pubs.length >= N, T, `${name} subscriber ${i} to receive ${N} publications`,
        () => `${s.pubs.length} received`);
      assert.deepEqual(s.pubs, sent, `${name} subscriber ${i}'s publications`);
    }
  }
  const compressedNow = await metric(gw, 'switchboard_ws_compressed_messages_total');
  const made = compressedNow - before;
  // 120 deliveries to compressed subscribers; at most one compression per
  // publication per shard (SHARDS * N), at least one per publication.
  assert.ok(made >= N && made <= SHARDS * N, `${made} compressions for ${N} publications on ${SHARDS} shards`);
  const inBytes = await metric(gw, 'switchboard_ws_compression_input_bytes_total');
  const outBytes = await metric(gw, 'switchboard_ws_compression_output_bytes_total');
  assert.ok(outBytes * 4 < inBytes, `compressed ${inBytes} bytes to ${outBytes}`);
});

test('a compressed client publishes and gets its history in compressed replies', async () => {
  const c = await connect(gw.url, { token: connToken('hist') });
  clients.push(c);
  const s = await subscribe(c, 'mixed');
  const data = { text: 'from a compressed client '.repeat(60) };
  const inflatedBefore = await metric(gw, 'switchboard_ws_inflated_messages_total');
  await s.publish(data);
  await waitUntil(() => s.pubs.length >= 1, T, 'its own publication');
  assert.deepEqual(s.pubs.at(-1), data);
  const h = await s.history({ limit: 10 });
  assert.equal(h.publications.length, 10, 'history_size is 10');
  assert.deepEqual(h.publications.at(-1).data, data, 'the newest publication is last');
  // ws compresses what it sends too (its threshold is 1 KiB): the publish
  // command was inflated on the way in.
  const inflated = await metric(gw, 'switchboard_ws_inflated_messages_total');
  assert.ok(inflated > inflatedBefore, `inflated ${inflatedBefore} → ${inflated}`);
});
