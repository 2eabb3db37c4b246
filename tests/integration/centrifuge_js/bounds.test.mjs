// History bounds with centrifuge-js (issue 5): history_size keeps the last N
// publications, history_ttl drops them when they expire (an idle channel's
// record goes with them: a new epoch), history_max_bytes evicts whole
// channels least recently published first, and a gateway restart starts new
// streams — each visible through the server API, the client's history, a
// recovery (`recovered: false` where the position can no longer be served)
// and GET /metrics.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  T, configWith, connToken, connect, nextEvent, restartGateway, sleep, startGateway, subscribe, waitUntil, within,
} from './sb.mjs';

const KEY = 'bounds-api-key';
const API_CONFIG = configWith(`api_key = "${KEY}"`);

// The server API and GET /metrics of one gateway.
function ops(gw) {
  const call = async (method, params) => {
    const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
      method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify(params),
    }), T, `POST /api/${method}`);
    assert.equal(r.status, 200, `${method}`);
    return r.json();
  };
  const ok = async (method, params) => {
    const body = await call(method, params);
    assert.ok(body.result, `${method} ${JSON.stringify(params).slice(0, 200)}: ${JSON.stringify(body)}`);
    return body.result;
  };
  return {
    call,
    ok,
    // With history the reply says where the publication went.
    async publish(channel, data) {
      const r = await ok('publish', { channel, data });
      assert.ok(Number.isInteger(r.offset) && typeof r.epoch === 'string' && r.epoch !== '', JSON.stringify(r));
      return r;
    },
    async history(channel, params = { limit: -1 }) {
      const r = await ok('history', { channel, ...params });
      return { offsets: (r.publications ?? []).map((p) => p.offset), data: (r.publications ?? []).map((p) => p.data),
        offset: r.offset ?? 0, epoch: r.epoch };
    },
    // Per-shard samples of every family: { name: [value of shard 0, ...] }.
    async metrics() {
      const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/metrics`), T, 'GET /metrics');
      assert.equal(r.status, 200);
      const out = {};
      for (const line of (await r.text()).split('\n')) {
        const m = line.match(/^(\w+)\{shard="(\d+)"\} (\d+)$/);
        if (m) (out[m[1]] ??= [])[Number(m[2])] = Number(m[3]);
      }
      return out;
    },
  };
}

const HP = 'switchboard_history_publications';
const HB = 'switchboard_history_bytes';
const EV = 'switchboard_history_evictions_total';
const sum = (m, name) => {
  assert.ok(Array.isArray(m[name]), `metric ${name} present`);
  return m[name].reduce((a, v) => a + v, 0);
};

// Calls the async probe() every 100 ms until it returns true; fails after
// `ms` with describe() of what the last call saw.
async function pollUntil(probe, what, describe = () => '', ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; saw ${describe()}`);
    await sleep(100);
  }
}

// Waits until the retained publications and bytes (all shards) are those of
// `m0` again, reading only GET /metrics (a history read would trim).
async function historyMetricsBackTo(o, m0, what) {
  let m;
  await pollUntil(async () => {
    m = await o.metrics();
    return sum(m, HP) === sum(m0, HP) && sum(m, HB) === sum(m0, HB);
  }, what, () => `history publications ${sum(m, HP)} (before: ${sum(m0, HP)}), bytes ${sum(m, HB)} (before: ${sum(m0, HB)})`);
}

// A new client that knew `since` ({offset, epoch}) on `channel` subscribes
// from there: the `subscribed` context and the publications it got back
// ([offset, data]), once `expect` of them arrived (when recovered).
async function recoverFrom(gw, channel, since, expect) {
  const c = await connect(gw.url, { token: connToken('bounds-rec') });
  try {
    const sub = c.newSubscription(channel, { since });
    const pubs = [];
    sub.on('publication', (ctx) => pubs.push([ctx.offset, ctx.data]));
    const subscribed = nextEvent(sub, 'subscribed', `subscribed to ${channel} from ${JSON.stringify(since)}`);
    sub.subscribe();
    const ctx = await subscribed;
    // A failed recovery brings nothing back: the caller's assertions say more.
    await waitUntil(() => pubs.length >= (ctx.recovered ? expect : 0), T, `${expect} recovered publications on ${channel}`, () => JSON.stringify(pubs));
    await sleep(50);  // one too many would have come with them
    return { ctx, pubs };
  } finally {
    c.disconnect();
  }
}

// ---------------------------------------------------------------------------
// history_size and history_ttl: one 4-shard gateway; its tests run in order.

let gw;
let api;

before(async () => {
  gw = await startGateway({
    shards: 4,
    config: `${API_CONFIG}
[[namespaces]]
name = "five"
allow_subscribe_for_client = true
history_size = 5
history_ttl = "300s"
force_recovery = true
allow_history_for_subscriber = true

[[namespaces]]
name = "ttl"
allow_subscribe_for_client = true
history_size = 100
history_ttl = "2s"
force_recovery = true
allow_history_for_subscriber = true
`,
  });
  api = ops(gw);
});
after(async () => { await gw?.stop(); });

// Same length for every n: every publication costs the same bytes.
const fixed = (n) => ({ n: String(n).padStart(3, '0') });

test('history_size 5: of 12 publications the last 5 (offsets 8..12) stay; API, client history, recovery, metrics', async () => {
  const ch = 'five:a';
  const m0 = await api.metrics();
  assert.equal(sum(m0, HP), 0, 'a new gateway retains nothing');
  let epoch;
  let one;  // bytes of one publication
  for (let i = 1; i <= 12; ++i) {
    const r = await api.publish(ch, fixed(i));
    assert.equal(r.offset, i);
    if (i === 1) {
      epoch = r.epoch;
      one = sum(await api.metrics(), HB);
      assert.ok(one > 0, 'bytes of one publication');
    }
    assert.equal(r.epoch, epoch, 'one stream');
  }
  const last5 = [8, 9, 10, 11, 12];

  const h = await api.history(ch);
  assert.deepEqual(h, { offsets: last5, data: last5.map(fixed), offset: 12, epoch });
  assert.deepEqual((await api.history(ch, { limit: 2, reverse: true })).offsets, [12, 11]);
  assert.deepEqual((await api.history(ch, { limit: -1, since: { offset: 7, epoch } })).offsets, [8, 9, 10, 11, 12]);
  assert.equal((await api.call('history', { channel: ch, limit: -1, since: { offset: 6, epoch } })).error?.code, 112,
    'offset 7 is gone: since 6 cannot be served');

  // This channel is the only one with history: the metrics hold exactly it,
  // all at its home shard.
  const m = await api.metrics();
  assert.equal(sum(m, HP), 5, JSON.stringify(m[HP]));
  assert.equal(sum(m, HB), 5 * one, JSON.stringify(m[HB]));
  assert.equal(m[HP].filter((v) => v > 0).length, 1, `one home shard: ${JSON.stringify(m[HP])}`);
  assert.equal(sum(m, EV), 0);

  // The client side: a subscriber's history command reads the same.
  const c = await connect(gw.url, { token: connToken('bounds-five') });
  try {
    const sub = await subscribe(c, ch);
    const ctx = sub.log.find((e) => e.ev === 'subscribed').ctx;
    assert.deepEqual([ctx.recoverable, ctx.wasRecovering, ctx.streamPosition], [true, false, { offset: 12, epoch }]);
    const all = await sub.history({ limit: -1 });
    assert.deepEqual(all.publications.map((p) => [p.offset, p.data]), last5.map((n) => [n, fixed(n)]));
    assert.deepEqual([all.offset, all.epoch], [12, epoch]);
    const since = await sub.history({ limit: -1, since: { offset: 9, epoch } });
    assert.deepEqual(since.publications.map((p) => p.offset), [10, 11, 12]);
    await assert.rejects(sub.history({ limit: -1, since: { offset: 6, epoch } }), (e) => e.code === 112);
  } finally {
    c.disconnect();
  }

  // Recovery: from offset 7 everything missed is there; from 6, offset 7 is gone.
  const r7 = await recoverFrom(gw, ch, { offset: 7, epoch }, 5);
  assert.deepEqual([r7.ctx.wasRecovering, r7.ctx.recovered, r7.ctx.streamPosition], [true, true, { offset: 12, epoch }]);
  assert.deepEqual(r7.pubs, last5.map((n) => [n, fixed(n)]));
  const r6 = await recoverFrom(gw, ch, { offset: 6, epoch }, 0);
  assert.deepEqual([r6.ctx.wasRecovering, r6.ctx.recovered, r6.ctx.streamPosition], [true, false, { offset: 12, epoch }]);
  assert.deepEqual(r6.pubs, []);
  const m2 = await api.metrics();
  assert.equal(sum(m2, 'switchboard_recoveries_total') - sum(m, 'switchboard_recoveries_total'), 2);
  assert.equal(sum(m2, 'switchboard_recoveries_failed_total') - sum(m, 'switchboard_recoveries_failed_total'), 1);
  assert.equal(sum(m2, HP), 5, 'still the last 5');
});

test('history_ttl 2s, nobody subscribed: recovered while fresh; then swept (metrics back), a new epoch, recovered false', async () => {
  const ch = 'ttl:idle';
  const m0 = await api.metrics();
  const published = Date.now();
  let epoch;
  for (let i = 1; i <= 3; ++i) {
    const r = await api.publish(ch, fixed(i));
    assert.equal(r.offset, i);
    epoch ??= r.epoch;
    assert.equal(r.epoch, epoch);
  }
  // Fresh: a client that got offset 1 gets 2 and 3 back.
  const fresh = await recoverFrom(gw, ch, { offset: 1, epoch }, 2);
  assert.deepEqual([fresh.ctx.wasRecovering, fresh.ctx.recovered, fresh.ctx.streamPosition], [true, true, { offset: 3, epoch }],
    `recovered ${Date.now() - published} ms after the first publication (history_ttl 2 s)`);
  assert.deepEqual(fresh.pubs, [[2, fixed(2)], [3, fixed(3)]]);
  const m1 = await api.metrics();
  assert.equal(sum(m1, HP) - sum(m0, HP), 3, 'the 3 retained');

  // The client left: the home shard's sweep drops the expired publications
  // and the record.
  await historyMetricsBackTo(api, m0, `the sweep to drop ${ch}'s 3 expired publications`);

  const h = await api.history(ch);
  assert.deepEqual(h.offsets, []);
  assert.equal(h.offset, 0, 'a new stream');
  assert.notEqual(h.epoch, epoch, 'a new epoch');
  for (const since of [{ offset: 1, epoch }, { offset: 3, epoch }]) {
    const r = await recoverFrom(gw, ch, since, 0);
    assert.deepEqual([r.ctx.wasRecovering, r.ctx.recovered], [true, false], `from ${JSON.stringify(since)}`);
    assert.equal(r.ctx.streamPosition.offset, 0);
    assert.notEqual(r.ctx.streamPosition.epoch, epoch);
    assert.deepEqual(r.pubs, []);
  }
  assert.equal(sum(await api.metrics(), HP), sum(m0, HP));
});

// A subscriber keeps the channel's record (and epoch). Subscribes to `ch`,
// publishes 3, and returns what is needed to look at it after the TTL.
async function subscribedTtlChannel(ch) {
  const m0 = await api.metrics();
  const c = await connect(gw.url, { token: connToken('bounds-ttl') });
  const sub = await subscribe(c, ch);
  let epoch;
  for (let i = 1; i <= 3; ++i) epoch = (await api.publish(ch, fixed(i))).epoch;
  await waitUntil(() => sub.pubs.length === 3, T, 'the 3 live');
  assert.equal(sum(await api.metrics(), HP) - sum(m0, HP), 3);
  return { c, sub, epoch, m0 };
}

test('history_ttl 2s with a subscriber: the history expires (read trims), the stream and epoch stay', async () => {
  const ch = 'ttl:watched';
  const { c, epoch, m0 } = await subscribedTtlChannel(ch);
  try {
    let h;
    await pollUntil(async () => {
      h = await api.history(ch);
      assert.deepEqual(h.offsets, [1, 2, 3].slice(3 - h.offsets.length), 'the oldest expire first');
      return h.offsets.length === 0;
    }, `${ch}'s history to expire`, () => JSON.stringify(h));
    assert.deepEqual([h.offset, h.epoch], [3, epoch], 'the same stream, nothing retained');
    const m = await api.metrics();
    assert.deepEqual([sum(m, HP), sum(m, HB)], [sum(m0, HP), sum(m0, HB)], 'back to the earlier values');
    const r1 = await recoverFrom(gw, ch, { offset: 1, epoch }, 0);
    assert.deepEqual([r1.ctx.wasRecovering, r1.ctx.recovered, r1.ctx.streamPosition], [true, false, { offset: 3, epoch }]);
    // A client that had everything lost nothing.
    const r3 = await recoverFrom(gw, ch, { offset: 3, epoch }, 0);
    assert.deepEqual([r3.ctx.wasRecovering, r3.ctx.recovered, r3.ctx.streamPosition], [true, true, { offset: 3, epoch }]);
    assert.deepEqual([...r1.pubs, ...r3.pubs], []);
  } finally {
    c.disconnect();
  }
});

// Without any publish or read on the channel, the home shard's sweep must
// drop a subscribed channel's expired publications (memory, the metrics,
// history_max_bytes' budget).
test('history_ttl 2s with a subscriber: the sweep drops the expired publications (metrics back without any read)', {
}, async () => {
  const ch = 'ttl:swept';
  const { c, sub, m0 } = await subscribedTtlChannel(ch);
  try {
    await historyMetricsBackTo(api, m0, `the sweep to drop ${ch}'s 3 expired publications`);
    assert.equal(sub.pubs.length, 3);
  } finally {
    c.disconnect();
  }
});

// ---------------------------------------------------------------------------
// history_max_bytes

test('history_max_bytes: whole channels evicted least recently published first; bytes within the bound; recovered false', async (t) => {
  const SHARDS = 4;
  const SHARE = 15_000;  // bytes per shard: 3 publications of ~4.2 kB
  const g = await startGateway({
    shards: SHARDS,
    config: configWith(`api_key = "${KEY}"\nhistory_max_bytes = ${SHARDS * SHARE}`) + `
[[namespaces]]
name = "big"
allow_subscribe_for_client = true
history_size = 2
history_ttl = "300s"
force_recovery = true
allow_history_for_subscriber = true
`,
  });
  const a = ops(g);
  const data = 'x'.repeat(4000);
  // Every channel name is as long as 'big:keep': every publication costs B bytes.
  const name = (i) => `big:c${String(i).padStart(3, '0')}`;
  // The model: per shard, channels with retained history, least recently
  // published first; records with nobody subscribed go with their history.
  const shards = [...Array(SHARDS)].map(() => ({ lru: [], evictions: 0 }));
  const chans = new Map();  // name -> { home, offset, epoch, kept: [offsets], subscribed }
  let B = 0;
  let k = 0;  // publications a shard's share holds
  let last;   // metrics after the last publish
  const watcher = await connect(g.url, { token: connToken('bounds-watcher') });
  try {
    const keep = await subscribe(watcher, 'big:keep');  // its record stays while it is subscribed
    chans.set('big:keep', { offset: 0, kept: [], subscribed: true });

    const publish = async (ch) => {
      const before = last ?? await a.metrics();
      const r = await a.publish(ch, data);
      const m = await a.metrics();
      const moved = m.switchboard_publications_home_total.map((v, s) => v - before.switchboard_publications_home_total[s]);
      const home = moved.indexOf(1);
      assert.deepEqual(moved.filter((d) => d !== 0), [1], `one home shard ordered ${ch}: ${moved}`);
      if (B === 0) {
        B = sum(m, HB);
        k = Math.floor(SHARE / B);
        assert.ok(k >= 2 && k < 6, `bytes of a publication ${B}: the share holds ${k}`);
      }
      let st = chans.get(ch);
      if (!st) chans.set(ch, st = { offset: 0, kept: [], subscribed: false });
      if (st.epoch === undefined) {
        assert.notEqual(r.epoch, st.evicted, `${ch}: a new record, a new stream`);
        st.epoch = r.epoch;
      } else {
        assert.equal(r.epoch, st.epoch, `${ch}: the same stream`);
      }
      st.home = home;
      st.offset += 1;
      assert.equal(r.offset, st.offset, `${ch}: offset`);
      st.kept = [...st.kept, st.offset].slice(-2);
      const sh = shards[home];
      sh.lru = [...sh.lru.filter((x) => x !== ch), ch];
      const held = () => sh.lru.reduce((n, x) => n + chans.get(x).kept.length, 0);
      while (held() * B > SHARE) {
        const victim = chans.get(sh.lru.shift());
        victim.kept = [];
        sh.evictions += 1;
        if (!victim.subscribed) Object.assign(victim, { offset: 0, epoch: undefined, evicted: victim.epoch });
      }
      for (let s = 0; s < SHARDS; ++s) {
        const n = shards[s].lru.reduce((x, c) => x + chans.get(c).kept.length, 0);
        const what = `after ${ch} on shard ${s}: model ${JSON.stringify(shards[s])}`;
        assert.equal(m[HP][s], n, `history publications ${what}`);
        assert.equal(m[HB][s], n * B, `history bytes ${what}`);
        assert.ok(m[HB][s] <= SHARE, `history bytes within the bound ${what}`);
        assert.equal(m[EV][s], shards[s].evictions, `evictions ${what}`);
      }
      last = m;
      return r;
    };

    await publish('big:keep');
    const keepEpoch = chans.get('big:keep').epoch;
    const keepHome = chans.get('big:keep').home;
    // Channels until every shard evicted (each has had more than its share).
    let i = 0;
    for (; shards.some((s) => s.evictions === 0); ++i) {
      assert.ok(i < 200, 'channels spread over every shard');
      await publish(name(i));
    }
    assert.deepEqual(chans.get('big:keep').kept, [], 'big:keep, published first, was evicted from its shard');
    // big:keep again, then its shard's other channels until it is evicted again.
    await publish('big:keep');
    assert.equal(chans.get('big:keep').epoch, keepEpoch, 'subscribed: the record and its epoch stayed');
    while (chans.get('big:keep').kept.length > 0) {
      assert.ok(i < 400, 'channels on big:keep\'s shard');
      const ch = name(i++);
      await publish(ch);
      if (chans.get(ch).home !== keepHome) continue;
      await publish(ch);  // two each: big:keep goes sooner
    }
    await waitUntil(() => keep.pubs.length === 2, T, 'big:keep live publications reached its watcher');
    const total = shards.reduce((n, s) => n + s.evictions, 0);
    assert.ok(total >= SHARDS + 1, `evictions ${total}`);
    assert.equal(sum(last, EV), total);
    t.diagnostic(`${chans.size} channels, ${B} bytes a publication, ${k} a shard, evictions per shard ${shards.map((s) => s.evictions)}`);

    // Every channel's history as the model says. Evicted, unsubscribed:
    // the record went (a new stream on the next read); big:keep's stayed.
    for (const [ch, st] of chans) {
      const h = await a.history(ch);
      if (st.epoch === undefined) {
        assert.deepEqual([h.offsets, h.offset], [[], 0], `${ch} evicted: ${JSON.stringify(h)}`);
        assert.notEqual(h.epoch, st.evicted, `${ch}: a new epoch`);
      } else {
        assert.deepEqual([h.offsets, h.offset, h.epoch], [st.kept, st.offset, st.epoch], `${ch}: ${JSON.stringify(st)}`);
      }
    }
    const m = await a.metrics();
    assert.deepEqual([m[HP], m[HB], m[EV]], [last[HP], last[HB], last[EV]], 'reading changed nothing');

    // Recovery: big:keep from offset 1 (missed 2, evicted) → false, same stream.
    const rk = await recoverFrom(g, 'big:keep', { offset: 1, epoch: keepEpoch }, 0);
    assert.deepEqual([rk.ctx.wasRecovering, rk.ctx.recovered, rk.ctx.streamPosition], [true, false, { offset: 2, epoch: keepEpoch }]);
    // An evicted channel nobody subscribed: from before its only publication → false, new epoch.
    const [gone, goneSt] = [...chans].find(([, st]) => st.epoch === undefined);
    const rg = await recoverFrom(g, gone, { offset: 0, epoch: goneSt.evicted }, 0);
    assert.deepEqual([rg.ctx.wasRecovering, rg.ctx.recovered], [true, false], gone);
    assert.notEqual(rg.ctx.streamPosition.epoch, goneSt.evicted);
    // The last channel published still has its history: recovered.
    const lastCh = name(i - 1);
    const lastSt = chans.get(lastCh);
    assert.ok(lastSt.kept.length > 0);
    const rl = await recoverFrom(g, lastCh, { offset: lastSt.kept[0] - 1, epoch: lastSt.epoch }, lastSt.kept.length);
    assert.deepEqual([rl.ctx.wasRecovering, rl.ctx.recovered], [true, true], lastCh);
    assert.deepEqual(rl.pubs, lastSt.kept.map((o) => [o, data]));
    assert.deepEqual(rk.pubs.concat(rg.pubs), []);
  } finally {
    watcher.disconnect();
    await g.stop();
  }
});

// ---------------------------------------------------------------------------
// Restart

test('gateway restarted on the same port: centrifuge-js resubscribes, recovered false with a new epoch, then live', async () => {
  const config = `${API_CONFIG}
[[namespaces]]
name = "hist"
allow_subscribe_for_client = true
history_size = 100
history_ttl = "300s"
force_recovery = true
`;
  let g = await startGateway({ shards: 2, config });
  const c = await connect(g.url, { token: connToken('bounds-restart') });
  try {
    const sub = c.newSubscription('hist:r');
    const subscribed = [];
    const pubs = [];
    sub.on('subscribed', (ctx) => subscribed.push(ctx));
    sub.on('publication', (ctx) => pubs.push([ctx.offset, ctx.data]));
    sub.subscribe();
    await waitUntil(() => subscribed.length === 1, T, 'subscribed');
    const first = subscribed[0];
    assert.deepEqual([first.recoverable, first.wasRecovering, first.streamPosition.offset], [true, false, 0]);
    const epoch = first.streamPosition.epoch;
    for (let n = 1; n <= 3; ++n) assert.deepEqual(await ops(g).publish('hist:r', { n }), { offset: n, epoch });
    await waitUntil(() => pubs.length === 3, T, 'the 3 live', () => JSON.stringify(pubs));

    g = await restartGateway(g, { shards: 2, config });
    await waitUntil(() => subscribed.length === 2, 3 * T, 'resubscribed to the new gateway',
      () => JSON.stringify(c.log.map((e) => e.ev)));
    assert.equal(c.events('connected').length, 2, 'reconnected by itself');
    // The stopping gateway said why: Centrifuge's 3001 "shutdown" (reconnect).
    const why = c.log.filter((e) => e.ev === 'connecting').map((e) => [e.ctx.code, e.ctx.reason]);
    assert.deepEqual(why.at(-1), [3001, 'shutdown'], JSON.stringify(why));
    const again = subscribed[1];
    assert.deepEqual([again.wasRecovering, again.recovered, again.streamPosition.offset], [true, false, 0]);
    assert.notEqual(again.streamPosition.epoch, epoch, 'a new stream');
    assert.equal(pubs.length, 3, 'nothing recovered');
    const r = await ops(g).publish('hist:r', { n: 4 });
    assert.deepEqual(r, { offset: 1, epoch: again.streamPosition.epoch });
    await waitUntil(() => pubs.length === 4, T, 'a live publication after the restart', () => JSON.stringify(pubs));
    assert.deepEqual(pubs, [[1, { n: 1 }], [2, { n: 2 }], [3, { n: 3 }], [1, { n: 4 }]]);
  } finally {
    c.disconnect();
    await g.stop();
  }
});
