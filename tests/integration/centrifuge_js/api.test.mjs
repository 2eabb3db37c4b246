// The server API (POST /api/<method> on the ops port) with a small Node
// backend client (fetch), against centrifuge-js subscribers over 4 shards:
// every method, every HTTP-level error, and the effects clients see.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  RawClient, T, closeAll, configWith, connToken, connect, nextEvent, sleep, startGateway, subscribe, waitUntil,
} from './sb.mjs';

const KEY = 'test-api-key';
let gw;

before(async () => {
  gw = await startGateway({ shards: 4, config: configWith(`api_key = "${KEY}"\napi_max_body = 4096`) });
});
after(async () => { await gw?.stop(); });

// The backend client: POST /api/<method>, returns { status, body }.
async function api(method, params, { key = KEY, header = 'X-API-Key', raw, httpMethod = 'POST' } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (key !== null) headers[header] = header === 'Authorization' ? `apikey ${key}` : key;
  const r = await fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: httpMethod, headers, body: httpMethod === 'GET' ? undefined : (raw ?? JSON.stringify(params ?? {})),
  });
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body };
}

async function ok(method, params) {
  const r = await api(method, params);
  assert.equal(r.status, 200, `${method}: ${JSON.stringify(r)}`);
  assert.ok(r.body.result, `${method}: ${JSON.stringify(r.body)}`);
  return r.body.result;
}

test('HTTP errors: no key, wrong key 401; apikey header; GET 405; unknown method 404; bad JSON 400; big body 413', async () => {
  assert.equal((await api('info', {}, { key: null })).status, 401);
  assert.equal((await api('info', {}, { key: 'wrong' })).status, 401);
  assert.equal((await api('info', {}, { key: KEY.slice(0, -1) })).status, 401);
  assert.equal((await api('info', {}, { header: 'Authorization' })).status, 200);
  assert.equal((await api('info', {}, { httpMethod: 'GET' })).status, 405);
  const unknown = await api('nope', {});
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 104);
  const bad = await api('publish', null, { raw: '{"channel": "chat:x", ' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 107);
  const big = await api('publish', { channel: 'chat:x', data: 'x'.repeat(5000) });
  assert.equal(big.status, 413);
  // Invalid parameters are a 200 with a Centrifugo error object.
  assert.deepEqual((await api('publish', { channel: 'chat:x' })).body.error.code, 107);
  assert.deepEqual((await api('publish', { channel: 'nope:x', data: 1 })).body.error.code, 102);
  assert.deepEqual((await api('broadcast', { channels: [], data: 1 })).body.error.code, 107);
  assert.deepEqual((await api('disconnect', {})).body.error.code, 107);
  // Server-side subscribe checks the channel as a client's subscribe does
  // (a name with a tab once crashed the `channels` merge).
  assert.deepEqual((await api('subscribe', { user: 'alice', channel: 'nope:y' })).body.error.code, 102);
  assert.deepEqual((await api('subscribe', { user: 'alice', channel: 'chat:x\ty' })).body.error.code, 107);
  assert.deepEqual((await api('subscribe', { user: 'alice', channel: 'has space' })).body.error.code, 107);
  assert.equal((await api('channels', {})).status, 200);
  for (const m of ['presence', 'presence_stats', 'history', 'history_remove']) {
    assert.equal((await api(m, { channel: 'chat:x' })).body.error.code, 108, m);
  }
});

test('publish through the API reaches centrifuge-js subscribers on every shard, in order', async () => {
  const clients = [];
  const subs = [];
  try {
    for (let i = 0; i < 24; ++i) {
      const c = await connect(gw.url, { token: connToken(`apiu${i}`) });
      clients.push(c);
      subs.push(await subscribe(c, 'chat:api'));
    }
    const st = await gw.stats();
    const shardsWithClients = st.per_shard.filter((s) => s.protocol.clients > 0).length;
    assert.ok(shardsWithClients >= 2, `clients spread over shards: ${shardsWithClients}`);
    for (let n = 0; n < 50; ++n) assert.deepEqual(await ok('publish', { channel: 'chat:api', data: { n } }), {});
    await waitUntil(() => subs.every((s) => s.pubs.length === 50), T, 'all 50 publications everywhere',
      () => subs.map((s) => s.pubs.length).join(','));
    for (const s of subs) assert.deepEqual(s.pubs.map((p) => p.n), [...Array(50).keys()]);
    // broadcast: one call, several channels.
    const other = await subscribe(clients[0], 'chat:api2');
    const r = await ok('broadcast', { channels: ['chat:api', 'chat:api2'], data: { b: 1 } });
    assert.deepEqual(r.responses, [{ result: {} }, { result: {} }]);
    await waitUntil(() => other.pubs.length === 1 && subs.every((s) => s.pubs.length === 51), T, 'broadcast');
    // A run of 2,000 '*' is one '*' (a long run once cost a shard
    // |pattern| per channel); other patterns past 1024 bytes are refused.
    assert.ok((await ok('channels', { pattern: '*'.repeat(2000) })).channels['chat:api']);
    assert.equal((await api('channels', { pattern: 'a*'.repeat(600) })).body.error.code, 107);
    // channels: counts across shards, pattern filter.
    const ch = await ok('channels', {});
    assert.equal(ch.channels['chat:api'].num_clients, 24);
    assert.equal(ch.channels['chat:api2'].num_clients, 1);
    assert.deepEqual(Object.keys((await ok('channels', { pattern: '*api2' })).channels), ['chat:api2']);
    const info = await ok('info', {});
    assert.equal(info.nodes.length, 1);
    assert.equal(info.nodes[0].num_clients, 24);
    assert.equal(info.nodes[0].shards.length, 4);
  } finally {
    closeAll(clients);
  }
});

test('subscribe / unsubscribe a user server-side: every connection of the user, pushes seen by centrifuge-js', async () => {
  const a = await connect(gw.url, { token: connToken('alice') });
  const b = await connect(gw.url, { token: connToken('alice') });
  const bob = await connect(gw.url, { token: connToken('bob') });
  try {
    const subscribed = [a, b].map((c) => nextEvent(c, 'subscribed', 'server-side subscribed', (ctx) => ctx.channel === 'chat:srv'));
    assert.deepEqual(await ok('subscribe', { user: 'alice', channel: 'chat:srv' }), {});
    await Promise.all(subscribed);
    const pubs = [a, b].map((c) => nextEvent(c, 'publication', 'server-side publication', (ctx) => ctx.channel === 'chat:srv'));
    await ok('publish', { channel: 'chat:srv', data: { hi: 1 } });
    for (const ctx of await Promise.all(pubs)) assert.deepEqual(ctx.data, { hi: 1 });
    assert.equal(bob.events('publication').length, 0, 'bob is not subscribed');
    const unsubscribed = [a, b].map((c) => nextEvent(c, 'unsubscribed', 'server-side unsubscribed', (ctx) => ctx.channel === 'chat:srv'));
    await ok('unsubscribe', { user: 'alice', channel: 'chat:srv' });
    await Promise.all(unsubscribed);
    const ch = await ok('channels', { pattern: 'chat:srv' });
    assert.deepEqual(ch.channels, {});
  } finally {
    closeAll([a, b, bob]);
  }
});

test('disconnect a user (one client or all) with a code; refresh expired closes 3005', async () => {
  const c1 = await RawClient.open(gw.url);
  const r1 = await c1.connect(connToken('carol'));
  const c2 = await RawClient.open(gw.url);
  await c2.connect(connToken('carol'));
  try {
    // Only c1, by client id.
    await ok('disconnect', { user: 'carol', client: r1.client, disconnect: { code: 4501, reason: 'go away' } });
    const info = await c1.expectClose('disconnect by client id');
    assert.equal(info.code, 4501);
    assert.equal(info.reason, 'go away');
    await sleep(200);
    assert.equal(c2.closeInfo, undefined, 'the other connection of carol stays');
    await ok('refresh', { user: 'carol', expired: true });
    assert.equal((await c2.expectClose('refresh expired')).code, 3005);
    // Nobody left: still a success (Centrifugo does not report a count).
    assert.deepEqual(await ok('disconnect', { user: 'carol' }), {});
  } finally {
    c1.close();
    c2.close();
  }
});

test('publish data reaches subscribers as the backend wrote it (numbers, escapes), whitespace aside', async () => {
  const c = await RawClient.open(gw.url);
  try {
    await c.connect(connToken('raw-data'));
    assert.ok((await c.command({ subscribe: { channel: 'chat:rawdata' } })).subscribe);
    const data = '{"price": 1.10, "big": 1e2, "text": "caf\\u00e9 \\"q\\"", "list": [ 1.0 , -0.0 ]}';
    const written = '{"price":1.10,"big":1e2,"text":"caf\\u00e9 \\"q\\"","list":[1.0,-0.0]}';
    assert.equal((await api('publish', null, { raw: `{ "channel": "chat:rawdata",\n  "data": ${data} }` })).status, 200);
    assert.equal((await api('batch', null, {
      raw: `{"commands": [ {"publish": {"data": ${data}, "channel": "chat:rawdata"}}, {"info": {}} ]}`,
    })).status, 200);
    const pushes = () => c.frames.filter((f) => f.includes('"chat:rawdata"') && f.includes('"pub"'));
    await waitUntil(() => pushes().length === 2, T, 'both publications');
    for (const f of pushes()) assert.ok(f.includes(`"data":${written}`), f);
  } finally {
    c.close();
  }
});

test('batch: sequential replies in order, keyed by method; parallel too; counts in /stats', async () => {
  const c = await connect(gw.url, { token: connToken('dave') });
  try {
    const s = await subscribe(c, 'chat:batch');
    const before = (await gw.stats()).api;
    const r = await ok('batch', {
      commands: [
        { publish: { channel: 'chat:batch', data: 1 } },
        { publish: { channel: 'nope:x', data: 2 } },
        { publish: { channel: 'chat:batch', data: 3 } },
        { bogus: {} },
      ],
    });
    assert.deepEqual(r.replies, [
      { publish: {} }, { error: { code: 102, message: 'unknown channel' } }, { publish: {} },
      { error: { code: 107, message: 'unknown method bogus' } },
    ]);
    const p = await ok('batch', { parallel: true, commands: [{ publish: { channel: 'chat:batch', data: 4 } }, { info: {} }] });
    assert.deepEqual(p.replies[0], { publish: {} });
    assert.ok(p.replies[1].info.nodes);
    await waitUntil(() => s.pubs.length === 3, T, 'batch publications', () => JSON.stringify(s.pubs));
    assert.deepEqual(s.pubs, [1, 3, 4]);
    const st = await gw.stats();
    assert.ok(st.api.batch.ok >= 2 && st.api.publish.ok >= 50 && st.api.unauthorized >= 3, JSON.stringify(st.api));
    // The commands inside the batches count under their own methods too
    // (nothing else ran meanwhile: the tests of this file run one at a time).
    assert.deepEqual([st.api.publish.ok - before.publish.ok, st.api.publish.error - before.publish.error,
      st.api.info.ok - before.info.ok, st.api.batch.ok - before.batch.ok], [3, 1, 1, 2], JSON.stringify(st.api));
    assert.equal(st.api.pending, 0);
  } finally {
    closeAll([c]);
  }
});

test('no api_key: the API is off (404) and the log says so', async () => {
  const off = await startGateway({});
  try {
    const r = await fetch(`http://127.0.0.1:${off.opsPort}/api/info`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 404);
    await waitUntil(() => off.stderr().includes('server API off'), T, 'the warning', () => off.stderr());
  } finally {
    await off.stop();
  }
});
