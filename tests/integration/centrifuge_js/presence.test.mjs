// Presence and join/leave over 4 shards (issue 5): 1,000 clients join a
// channel and 500 leave — 250 by unsubscribing, 150 by closing, 100 by
// vanishing without a close frame — and the presence kept by the channel's
// home shard is exact after each step, through the client command and the
// server API; a watcher gets every join and leave push exactly once. As in
// Centrifugo v5, join/leave pushes go to subscriptions that ask for them
// (`join_leave: true`, centrifuge-js `joinLeave`) unless the namespace sets
// force_push_join_leave.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  RawClient, T, configWith, connToken, connect, sleep, startGateway, subscribe, waitUntil, within,
} from './sb.mjs';

const KEY = 'presence-api-key';
const CH = 'room:p';
const N = 1000;
const USERS = 700;  // some users have two connections: num_users counts users
let gw;

before(async () => {
  gw = await startGateway({
    shards: 4,
    // 1,000 clients in one node process: on a busy machine it may answer a
    // 2 s protocol ping late, and a no-pong disconnect would be an extra leave.
    config: configWith(`api_key = "${KEY}"`).replace('ping_interval = "2s"', 'ping_interval = "60s"')
      .replace('pong_timeout = "2s"', 'pong_timeout = "30s"') + `
[[namespaces]]
name = "room"
allow_subscribe_for_client = true
presence = true
join_leave = true
allow_presence_for_subscriber = true

[[namespaces]]
name = "forced"
allow_subscribe_for_client = true
presence = true
join_leave = true
force_push_join_leave = true
`,
  });
});
after(async () => { await gw?.stop(); });

async function api(method, params) {
  const r = await fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify(params),
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.ok(body.result, JSON.stringify(body));
  return body.result;
}

async function joined(i) {
  const c = await RawClient.open(gw.url);
  const r = await c.connect(connToken(`pu${i % USERS}`));
  c.id = r.client;
  assert.ok((await c.command({ subscribe: { channel: CH } })).subscribe);
  return c;
}

test('presence is exact after 1,000 join and 500 leave (unsubscribe, close, vanish); join/leave pushed once each', async () => {
  const watcher = await RawClient.open(gw.url);
  const clients = [];
  // centrifuge-js as a second watcher (subscribed first; its own join may
  // come before the listener): its join/leave events and presence calls.
  const cf = await connect(gw.url, { token: connToken('cf-watcher') });
  const cfSub = await subscribe(cf, CH, { joinLeave: true });
  const cfJoins = [];
  const cfLeaves = [];
  cfSub.on('join', (ctx) => cfJoins.push(ctx.info.client));
  cfSub.on('leave', (ctx) => cfLeaves.push(ctx.info.client));
  try {
    const w = await watcher.connect(connToken('watcher'));
    assert.ok((await watcher.command({ subscribe: { channel: CH, join_leave: true } })).subscribe);
    const events = (kind) => watcher.msgs.filter((m) => m.push?.channel === CH && m.push[kind]).map((m) => m.push[kind].info.client);
    for (let b = 0; b < N; b += 250) {
      const batch = [];
      for (let i = b; i < b + 250; ++i) batch.push(joined(i));
      clients.push(...await Promise.all(batch));
    }
    await waitUntil(() => events('join').length >= N + 1, 2 * T, 'every join pushed', () => {
      const seen = new Set(events('join'));
      const missing = clients.filter((c) => !seen.has(c.id)).map((c) => c.id);
      return `${events('join').length}; watcher saw itself: ${seen.has(w.client)}; clients missing: ${JSON.stringify(missing)}`;
    });
    const joins = events('join');
    assert.equal(new Set(joins).size, joins.length, 'no join pushed twice');
    // The raw watcher subscribed after centrifuge-js: it sees its own join
    // and the 1,000 that followed.
    assert.deepEqual(new Set(joins), new Set([w.client, ...clients.map((c) => c.id)]), 'the joins are exactly the clients');
    const cfId = Object.keys((await api('presence', { channel: CH })).presence).find((id) => id !== w.client && !clients.some((c) => c.id === id));

    let stats = await api('presence_stats', { channel: CH });
    assert.deepEqual(stats, { num_clients: N + 2, num_users: USERS + 2 });
    let presence = (await api('presence', { channel: CH })).presence;
    assert.equal(Object.keys(presence).length, N + 2);
    assert.equal(presence[clients[5].id].user, 'pu5');
    assert.equal(presence[clients[5].id].client, clients[5].id);

    // 500 leave: 250 unsubscribe, 150 close cleanly, 100 vanish without a close frame.
    const leaving = clients.slice(0, 500);
    await Promise.all(leaving.slice(0, 250).map((c) => c.command({ unsubscribe: { channel: CH } })));
    for (const c of leaving.slice(250, 400)) c.ws.close(1000);
    for (const c of leaving.slice(400, 500)) c.ws._socket.destroy();
    await waitUntil(() => events('leave').length >= 500, 2 * T, 'every leave pushed', () => `${events('leave').length}`);
    await sleep(200);  // a duplicate would have arrived by now
    const leaves = events('leave');
    assert.equal(leaves.length, 500, 'each leave once');
    assert.deepEqual(new Set(leaves), new Set(leaving.map((c) => c.id)));

    const staying = clients.slice(500);
    stats = await api('presence_stats', { channel: CH });
    const stayingUsers = new Set([...staying.map((c) => c.id)].map((_, k) => `pu${(500 + k) % USERS}`));
    assert.deepEqual(stats, { num_clients: staying.length + 2, num_users: stayingUsers.size + 2 });
    presence = (await api('presence', { channel: CH })).presence;
    assert.deepEqual(new Set(Object.keys(presence)), new Set([w.client, cfId, ...staying.map((c) => c.id)]));

    // The client command (subscribers may ask) sees the same.
    const byCommand = await watcher.command({ presence: { channel: CH } });
    assert.deepEqual(new Set(Object.keys(byCommand.presence.presence)), new Set(Object.keys(presence)));
    const countsByCommand = await watcher.command({ presence_stats: { channel: CH } });
    assert.deepEqual(countsByCommand.presence_stats, stats);
    // centrifuge-js saw every join after its own and every leave, once each,
    // and its presence calls agree.
    await waitUntil(() => cfJoins.length >= N + 1 && cfLeaves.length >= 500, T, 'centrifuge-js join/leave events');
    assert.equal(new Set(cfJoins).size, cfJoins.length);
    assert.ok(cfJoins.includes(w.client) && clients.every((c) => cfJoins.includes(c.id)), 'centrifuge-js saw every later join');
    assert.deepEqual(new Set(cfLeaves), new Set(leaving.map((c) => c.id)));
    const cfStats = await cfSub.presenceStats();
    assert.deepEqual(cfStats, { numClients: stats.num_clients, numUsers: stats.num_users });
    const cfPresence = await cfSub.presence();
    assert.equal(Object.keys(cfPresence.clients).length, stats.num_clients);
    // Not a subscriber: refused.
    const outsider = await RawClient.open(gw.url);
    await outsider.connect(connToken('outsider'));
    assert.equal((await outsider.command({ presence: { channel: CH } })).error.code, 103);
    outsider.close();
  } finally {
    watcher.close();
    cf.disconnect();
    for (const c of clients) c.close();
  }
  // Everyone gone: the presence is empty again.
  await within((async () => {
    for (;;) {
      const s = await api('presence_stats', { channel: CH });
      if (s.num_clients === 0) return;
      await sleep(50);
    }
  })(), T, 'presence empty after everyone left');
});

test('join/leave pushes: only to subscriptions that ask, or to all with force_push_join_leave', async () => {
  const asks = await RawClient.open(gw.url);
  const silent = await RawClient.open(gw.url);
  const forced = await RawClient.open(gw.url);
  const comer = await RawClient.open(gw.url);
  try {
    await asks.connect(connToken('jl-asks'));
    await silent.connect(connToken('jl-silent'));
    await forced.connect(connToken('jl-forced'));
    const comerId = (await comer.connect(connToken('jl-comer'))).client;
    assert.ok((await asks.command({ subscribe: { channel: 'room:jl', join_leave: true } })).subscribe);
    assert.ok((await silent.command({ subscribe: { channel: 'room:jl' } })).subscribe);
    assert.ok((await forced.command({ subscribe: { channel: 'forced:jl' } })).subscribe);
    // The comer joins and leaves both channels; then a publication on each
    // marks the end of the stream for every watcher.
    for (const ch of ['room:jl', 'forced:jl']) {
      assert.ok((await comer.command({ subscribe: { channel: ch } })).subscribe);
      assert.ok(await comer.command({ unsubscribe: { channel: ch } }));
      await api('publish', { channel: ch, data: { end: true } });
    }
    // The comer's joins and leaves and the end mark (the watchers also see
    // each other's joins).
    const stream = (c, ch) => c.msgs.filter((m) => m.push?.channel === ch)
      .map((m) => (m.push.join ? `join ${m.push.join.info.client}` : m.push.leave ? `leave ${m.push.leave.info.client}` : 'pub'))
      .filter((e) => e === 'pub' || e.endsWith(comerId));
    await waitUntil(() => [asks, silent].every((c) => stream(c, 'room:jl').includes('pub')) &&
      stream(forced, 'forced:jl').includes('pub'), T, 'the end marks');
    assert.deepEqual(stream(asks, 'room:jl'), [`join ${comerId}`, `leave ${comerId}`, 'pub']);
    assert.deepEqual(stream(silent, 'room:jl'), ['pub']);
    assert.deepEqual(stream(forced, 'forced:jl'), [`join ${comerId}`, `leave ${comerId}`, 'pub']);
  } finally {
    for (const c of [asks, silent, forced, comer]) c.close();
  }
});

test('a client that stops answering pings is timed out by the server: its leave is pushed and presence drops it', async () => {
  // BASE_CONFIG pings every 2 s and waits 2 s for the pong.
  const g = await startGateway({
    shards: 2,
    config: configWith(`api_key = "${KEY}"`) + `
[[namespaces]]
name = "room"
allow_subscribe_for_client = true
presence = true
join_leave = true
`,
  });
  const watcher = await RawClient.open(g.url);
  const silent = await RawClient.open(g.url, { autoPong: false });
  try {
    await watcher.connect(connToken('pt-watcher'));
    assert.ok((await watcher.command({ subscribe: { channel: 'room:pt', join_leave: true } })).subscribe);
    const silentId = (await silent.connect(connToken('pt-silent'))).client;
    assert.ok((await silent.command({ subscribe: { channel: 'room:pt' } })).subscribe);
    await watcher.waitFor((m) => m.push?.join?.info.client === silentId, 'the silent client joins');
    const closed = await silent.expectClose('no-pong disconnect', 3 * T);
    assert.equal(closed.code, 3012, JSON.stringify(closed));  // Centrifuge "no pong"
    await watcher.waitFor((m) => m.push?.leave?.info.client === silentId, 'its leave');
    const r = await fetch(`http://127.0.0.1:${g.opsPort}/api/presence_stats`, {
      method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify({ channel: 'room:pt' }),
    });
    assert.deepEqual((await r.json()).result, { num_clients: 1, num_users: 1 });
  } finally {
    watcher.close();
    silent.close();
    await g.stop();
  }
});

test('presence on a namespace without it: 108', async () => {
  const r = await fetch(`http://127.0.0.1:${gw.opsPort}/api/presence`, {
    method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify({ channel: 'chat:x' }),
  });
  assert.equal((await r.json()).error.code, 108);
});
