// Node admission (issue 16, part 2) with node `ws` and centrifuge-js: past
// connect_rate_limit, or with max_handshakes_in_flight sessions upgraded
// and not yet connected, a valid upgrade is answered 503 with a Retry-After
// drawn from [1 s, admission_retry_after_max] (before any JWT work), the
// sessions already admitted go on, the counts appear in /stats and
// /metrics, and a centrifuge-js client refused at first connects once there
// is room again.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { RawClient, T, configWith, connToken, connect, metric, newClient, nextEvent, startGateway, subscribe, waitUntil, within } from './sb.mjs';

const gateways = [];
after(async () => {
  for (const gw of gateways) await gw.stop();
});

async function gateway(extra) {
  const gw = await startGateway({ shards: 1, config: configWith(extra) });
  gateways.push(gw);
  return gw;
}

// Opens a WebSocket and expects the HTTP answer to be a refusal.
async function refused(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const got = within(new Promise((resolve, reject) => {
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body }));
    });
    ws.on('open', () => reject(new Error('upgrade was accepted; expected a 503')));
    ws.on('error', (e) => reject(e));
  }), T, 'a refused upgrade');
  try {
    return await got;
  } finally {
    ws.terminate();
  }
}

test('past connect_rate_limit an upgrade gets 503 with a jittered Retry-After; the admitted sessions go on', async () => {
  // 3 at once, then one per 100 s: nothing refills while the test runs.
  const gw = await gateway('connect_rate_limit = 0.01\nconnect_rate_burst = 3\nadmission_retry_after_max = "7s"');
  const admitted = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawClient.open(gw.url);
    await c.connect(connToken(`rate-${i}`));
    admitted.push(c);
  }
  const answers = [];
  for (let i = 0; i < 12; i++) answers.push(await refused(gw.url));
  for (const a of answers) {
    assert.equal(a.status, 503, JSON.stringify(a));
    const s = Number(a.retryAfter);
    assert.ok(Number.isInteger(s) && s >= 1 && s <= 7, `Retry-After ${a.retryAfter}`);
    assert.match(a.body, /busy/);
  }
  assert.ok(new Set(answers.map((a) => a.retryAfter)).size > 1, `Retry-After is jittered: ${answers.map((a) => a.retryAfter)}`);

  // The admitted ones are served as before.
  for (const c of admitted) {
    const r = await c.command({ subscribe: { channel: `chat:${c.nextId}` } });
    assert.ok(r.subscribe, JSON.stringify(r));
  }
  const st = await gw.stats();
  assert.equal(st.open, 3);
  assert.equal(st.per_shard[0].handshake_rejected.admission_rate, 12);
  assert.equal(await metric(gw, 'switchboard_handshake_rejections_total{shard="0",reason="admission_rate"}'), 12);
  for (const c of admitted) c.close();
});

test('max_handshakes_in_flight counts upgraded sessions until their connect is answered', async () => {
  const gw = await gateway('max_handshakes_in_flight = 2');
  const a = await RawClient.open(gw.url);
  const b = await RawClient.open(gw.url);
  await waitUntil(async () => (await gw.stats()).connecting === 2, T, 'two sessions in flight');
  assert.equal(await metric(gw, 'switchboard_connections_connecting{shard="0"}'), 2);
  const r = await refused(gw.url);
  assert.equal(r.status, 503);
  assert.ok(Number(r.retryAfter) >= 1 && Number(r.retryAfter) <= 10, `Retry-After ${r.retryAfter}`);

  // A connect answered frees its place: one more is admitted, then full again.
  await a.connect(connToken('a'));
  assert.equal((await gw.stats()).connecting, 1);
  const c = await RawClient.open(gw.url);
  assert.equal((await refused(gw.url)).status, 503);

  // A session that leaves before connecting frees its place too.
  b.close();
  await waitUntil(async () => (await gw.stats()).connecting === 1, T, 'b gone');
  const d = await RawClient.open(gw.url);
  // So does one refused at connect (a bad token): its session ends.
  d.sendRaw(JSON.stringify({ id: 1, connect: { token: 'not-a-jwt' } }));
  await d.expectClose('bad token');
  await waitUntil(async () => (await gw.stats()).connecting === 1, T, 'd gone');

  // centrifuge-js is admitted once there is room, and works.
  const cf = await connect(gw.url, { token: connToken('cf') });
  const sub = await subscribe(cf, 'chat:room');
  assert.equal(sub.state, 'subscribed');
  const st = await gw.stats();
  assert.equal(st.connecting, 1);  // c only
  assert.equal(st.per_shard[0].handshake_rejected.admission_in_flight, 2);
  cf.disconnect();
  for (const x of [a, c]) x.close();
});

test('a centrifuge-js client refused at first keeps retrying and connects when a place frees up', async () => {
  const gw = await gateway('max_handshakes_in_flight = 1\nadmission_retry_after_max = "1s"');
  const holder = await RawClient.open(gw.url);  // takes the only place
  await waitUntil(async () => (await gw.stats()).connecting === 1, T, 'the place taken');
  const cf = newClient(gw.url, { token: connToken('cf'), minReconnectDelay: 100, maxReconnectDelay: 300 });
  // (not events.once: the refusals come as 'error' events, which it would throw)
  const connected = nextEvent(cf, 'connected', 'centrifuge-js connected after the place freed', () => true, 3 * T);
  cf.connect();
  await waitUntil(async () => (await gw.stats()).per_shard[0].handshake_rejected.admission_in_flight >= 2, T,
    'refused twice');
  assert.equal(cf.state, 'connecting');
  holder.close();
  await connected;
  cf.disconnect();
});
