// History and recovery with centrifuge-js over 4 shards (issue 5): a client
// whose TCP connection dies comes back and gets exactly what it missed, in
// order, with `recovered: true`, then the live stream with no gap or repeat
// — also while publications race its resubscribe; a position the history
// can no longer serve is reported as `recovered: false`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  RawClient, T, configWith, connToken, connect, nextEvent, sleep, startGateway, subscribe, waitUntil,
} from './sb.mjs';

const KEY = 'recovery-api-key';
let gw;

before(async () => {
  gw = await startGateway({
    shards: 4,
    config: configWith(`api_key = "${KEY}"`) + `
[[namespaces]]
name = "hist"
allow_subscribe_for_client = true
history_size = 1000
history_ttl = "300s"
force_recovery = true
allow_history_for_subscriber = true

[[namespaces]]
name = "pos"
allow_subscribe_for_client = true
history_size = 10
history_ttl = "300s"
force_positioning = true

[[namespaces]]
name = "maypos"
allow_subscribe_for_client = true
history_size = 10
history_ttl = "300s"
allow_positioning = true

[[namespaces]]
name = "mayrec"
allow_subscribe_for_client = true
history_size = 10
history_ttl = "300s"
allow_recovery = true

[[namespaces]]
name = "short"
allow_subscribe_for_client = true
history_size = 3
history_ttl = "300s"
force_recovery = true
`,
  });
});
after(async () => { await gw?.stop(); });

async function api(method, params) {
  const r = await fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify(params),
  });
  assert.equal(r.status, 200);
  return r.json();
}

// With history the API's publish reply says where the publication went.
async function publish(channel, data) {
  const body = await api('publish', { channel, data });
  assert.ok(body.result && Number.isInteger(body.result.offset) && typeof body.result.epoch === 'string',
    JSON.stringify(body));
  return body.result;
}

// Kills the client's TCP connection without a close frame (a tunnel, an
// elevator); centrifuge-js reconnects by itself.
function killSocket(c) {
  c._transport._transport._socket.destroy();
}

async function lostAndBack(channel, { during, racing = 0 }) {
  const c = await connect(gw.url, { token: connToken(`rec-${channel}`) });
  try {
    const sub = await subscribe(c, channel);
    const subscribedEvents = [];
    sub.on('subscribed', (ctx) => subscribedEvents.push(ctx));
    let n = 0;
    for (; n < 5; ++n) await publish(channel, n);
    await waitUntil(() => sub.pubs.length === 5, T, 'the first 5 live');
    const disconnected = nextEvent(c, 'disconnected', 'disconnected', () => true).catch(() => null);
    const connecting = nextEvent(c, 'connecting', 'reconnecting');
    killSocket(c);
    await connecting;
    // While it is away (before it could resubscribe): publications it misses.
    const away = during;
    for (let i = 0; i < away; ++i, ++n) await publish(channel, n);
    // Publications racing the resubscribe.
    const racers = [];
    for (let i = 0; i < racing; ++i, ++n) racers.push(n);
    const racer = (async () => { for (const k of racers) { await publish(channel, k); await sleep(2); } })();
    await waitUntil(() => subscribedEvents.length === 1, 3 * T, 'resubscribed after the reconnect');
    await racer;
    for (let i = 0; i < 5; ++i, ++n) await publish(channel, n);
    await waitUntil(() => sub.pubs.length >= n, T, `all ${n} publications`, () => `${sub.pubs.length}`);
    await sleep(100);  // anything extra (a duplicate) would show up by now
    void disconnected;
    return { ctx: subscribedEvents[0], pubs: sub.pubs, total: n };
  } finally {
    c.disconnect();
  }
}

test('socket killed, 20 publications while away: exactly those 20 come back, recovered, then live ones', async () => {
  const r = await lostAndBack('hist:quiet', { during: 20 });
  assert.equal(r.ctx.wasRecovering, true, JSON.stringify(r.ctx));
  assert.equal(r.ctx.recovered, true, JSON.stringify(r.ctx));
  assert.deepEqual(r.pubs, [...Array(r.total).keys()], 'every publication once, in order');
});

test('publications racing the resubscribe: still no gap and no repeat', async () => {
  for (let round = 0; round < 3; ++round) {
    const r = await lostAndBack(`hist:race${round}`, { during: 5, racing: 60 });
    assert.equal(r.ctx.recovered, true, JSON.stringify(r.ctx));
    assert.deepEqual(r.pubs, [...Array(r.total).keys()], `round ${round}: every publication once, in order`);
  }
});

test('positioning: forced, asked for where allowed, implied by recovery, never without history', async () => {
  // A positioned subscription is told (disconnect 3010 "insufficient state")
  // when its shard finds a gap in the stream — the router test
  // shed_forwards_show_positioned_subscribers_a_gap provokes that; here the
  // subscribe replies say who is positioned.
  const c = await RawClient.open(gw.url);
  try {
    await c.connect(connToken('pos-reader'));
    // client_channel_limit is 4 here: one channel at a time.
    const sub = async (req) => {
      const reply = await c.command({ subscribe: req });
      assert.ok(reply.subscribe, JSON.stringify(reply));
      await c.command({ unsubscribe: { channel: req.channel } });
      return reply.subscribe;
    };
    const forced = await sub({ channel: 'pos:a' });
    assert.equal(forced.positioned, true, JSON.stringify(forced));
    assert.ok(!forced.recoverable, JSON.stringify(forced));
    assert.equal(typeof forced.epoch, 'string');
    assert.ok(!(await sub({ channel: 'maypos:a' })).positioned, 'allowed but not asked for');
    assert.equal((await sub({ channel: 'maypos:b', positioned: true })).positioned, true, 'asked for');
    const recovering = await sub({ channel: 'hist:pos' });
    assert.deepEqual([recovering.positioned, recovering.recoverable], [true, true]);
    assert.ok(!(await sub({ channel: 'chat:pos', positioned: true })).positioned, 'no history: no positioning');
    // allow_recovery: recoverable (and so positioned) only when asked for.
    const notAsked = await sub({ channel: 'mayrec:a' });
    assert.deepEqual([!!notAsked.recoverable, !!notAsked.positioned], [false, false], JSON.stringify(notAsked));
    const asked = await sub({ channel: 'mayrec:b', recoverable: true });
    assert.deepEqual([asked.recoverable, asked.positioned], [true, true], JSON.stringify(asked));
  } finally {
    c.close();
  }
  // centrifuge-js reports it in its subscribed context.
  const cf = await connect(gw.url, { token: connToken('pos-cf') });
  try {
    const s = cf.newSubscription('pos:cf');
    const ctx = nextEvent(s, 'subscribed', 'subscribed to pos:cf');
    s.subscribe();
    assert.equal((await ctx).positioned, true);
  } finally {
    cf.disconnect();
  }
});

test('history too short for the position: recovered false (the app reloads)', async () => {
  const c = await connect(gw.url, { token: connToken('rec-short') });
  try {
    const sub = await subscribe(c, 'short:x');
    const again = [];
    sub.on('subscribed', (ctx) => again.push(ctx));
    await publish('short:x', 0);
    await waitUntil(() => sub.pubs.length === 1, T, 'first publication');
    const connecting = nextEvent(c, 'connecting', 'reconnecting');
    killSocket(c);
    await connecting;
    for (let i = 1; i <= 10; ++i) await publish('short:x', i);  // history keeps only the last 3
    await waitUntil(() => again.length === 1, 3 * T, 'resubscribed');
    assert.equal(again[0].wasRecovering, true, JSON.stringify(again[0]));
    assert.equal(again[0].recovered, false, JSON.stringify(again[0]));
    await publish('short:x', 11);
    await waitUntil(() => sub.pubs.includes(11), T, 'live after the failed recovery');
  } finally {
    c.disconnect();
  }
});

test('history counts are visible in /stats', async () => {
  const st = await gw.stats();
  const sum = (f) => st.per_shard.reduce((a, s) => a + s.routing[f], 0);
  assert.ok(sum('recoveries') >= 5, `recoveries ${sum('recoveries')}`);
  assert.ok(sum('recoveries_failed') >= 1, `failed ${sum('recoveries_failed')}`);
  assert.ok(sum('history_publications') > 0 && sum('history_bytes') > 0, 'history held');
});

test('history: the command (subscribers allowed) and the server API, with limit, since, reverse, remove', async () => {
  const c = await RawClient.open(gw.url);
  try {
    await c.connect(connToken('hist-reader'));
    // Not subscribed yet: allow_history_for_subscriber only.
    assert.equal((await c.command({ history: { channel: 'hist:h1', limit: -1 } })).error.code, 103);
    assert.ok((await c.command({ subscribe: { channel: 'hist:h1' } })).subscribe);
    for (let i = 1; i <= 5; ++i) assert.equal((await publish('hist:h1', { i })).offset, i);
    const all = (await c.command({ history: { channel: 'hist:h1', limit: -1 } })).history;
    assert.deepEqual(all.publications.map((p) => [p.offset, p.data.i]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
    assert.equal(all.offset, 5);
    assert.equal(typeof all.epoch, 'string');
    const since = (await c.command({ history: { channel: 'hist:h1', limit: -1, since: { offset: 2, epoch: all.epoch } } })).history;
    assert.deepEqual(since.publications.map((p) => p.offset), [3, 4, 5]);
    const rev = (await c.command({ history: { channel: 'hist:h1', limit: 2, reverse: true } })).history;
    assert.deepEqual(rev.publications.map((p) => p.offset), [5, 4]);
    const pos = (await c.command({ history: { channel: 'hist:h1' } })).history;
    assert.deepEqual([pos.publications ?? [], pos.offset, pos.epoch], [[], 5, all.epoch], 'limit 0: position only');
    const wrong = await c.command({ history: { channel: 'hist:h1', limit: -1, since: { offset: 2, epoch: 'other' } } });
    assert.equal(wrong.error.code, 112);
    assert.equal((await c.command({ history: { channel: 'chat:nohistory', limit: -1 } })).error.code, 108);

    // The server API reads the same stream.
    const viaApi = (await api('history', { channel: 'hist:h1', limit: -1 })).result;
    assert.deepEqual(viaApi.publications.map((p) => p.offset), [1, 2, 3, 4, 5]);
    assert.equal(viaApi.epoch, all.epoch);
    assert.equal((await api('history', { channel: 'hist:h1', limit: -1, since: { offset: 9, epoch: all.epoch } })).error.code, 112);
    assert.deepEqual(await api('history_remove', { channel: 'hist:h1' }), { result: {} });
    const after = (await api('history', { channel: 'hist:h1', limit: -1 })).result;
    assert.deepEqual([after.publications, after.offset, after.epoch], [[], 5, all.epoch], 'removed; the position stays');
    assert.equal((await api('history', { channel: 'chat:x', limit: -1 })).error.code, 108);
  } finally {
    c.close();
  }
});
