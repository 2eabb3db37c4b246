// Errors and bad input, with centrifuge-js where it can send the input and
// a raw Centrifuge-protocol client (node `ws`, JSON lines) where it cannot
// (it prevents duplicate subscriptions and never sends malformed frames).
// Codes: docs/protocol.md (= Centrifuge v0.33 / Centrifugo v5); what
// centrifuge-js reports: its 5.x source (unsubscribed context with the
// reply's error code, `error` event of type "connect" for 109,
// `disconnected` with the WebSocket close code for 3500..3999).
//
// All along, a healthy centrifuge-js pair on the same gateway publishes and
// receives: after every test one more publication must arrive, and at the
// end the healthy client must never have been disconnected.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  RawClient, closeAll, configWith, connToken, connect, mintToken, newClient, nextEvent, now, startGateway,
  subToken, subscribe, subscribeRefused, T, waitUntil, within,
} from './sb.mjs';

let gw;
const clients = [];
let health; // { sub (receiver), pub (publisher subscription), sent }

before(async () => {
  gw = await startGateway({ config: configWith('handshake_timeout = "1s"'), shards: 2 });
  const h = await connect(gw.url, { token: connToken('100') });
  const p = await connect(gw.url, { token: connToken('101') });
  clients.push(h, p);
  health = { client: h, sub: await subscribe(h, 'chat:health'), pub: await subscribe(p, 'chat:health'), sent: 0 };
});

// Bad input never costs another session anything: one more publication
// from the healthy publisher reaches the healthy subscriber.
afterEach(async () => {
  const n = health.sent++;
  await within(health.pub.publish({ health: n }), T, `healthy publish ${n}`);
  await waitUntil(() => health.sub.pubs.length === health.sent, T, `healthy subscriber to receive publication ${n}`,
    () => JSON.stringify(health.sub.pubs.slice(-5)));
});

after(async () => {
  closeAll(clients);
  if (gw) await gw.stop();
});

async function client(user, opts = {}) {
  const c = await connect(gw.url, { token: connToken(user), ...opts });
  clients.push(c);
  return c;
}

// ------------------------------------------------------------ centrifuge-js

test('unknown namespace nope:x: unsubscribed with 102', async () => {
  const c = await client('200');
  const ctx = await subscribeRefused(c, 'nope:x');
  assert.equal(ctx.code, 102, `unsubscribed context: ${JSON.stringify(ctx)}`);
  assert.equal(c.state, 'connected');
});

test('private:x without a subscription token: unsubscribed with 103', async () => {
  const c = await client('201');
  const ctx = await subscribeRefused(c, 'private:x');
  assert.equal(ctx.code, 103, `unsubscribed context: ${JSON.stringify(ctx)}`);
  assert.equal(c.state, 'connected');
});

test('private:x with a valid subscription token: subscribed', async () => {
  const c = await client('202');
  await subscribe(c, 'private:x', { token: subToken('202', 'private:x') });
  let calls = 0;
  await subscribe(c, 'private:y', { getToken: async (ctx) => { calls++; assert.equal(ctx.channel, 'private:y'); return subToken('202', 'private:y'); } });
  assert.equal(calls, 1, 'subscription getToken calls');
});

test('private:x with a subscription token for another channel: disconnected 3500', async () => {
  const c = await client('203');
  const disconnected = nextEvent(c, 'disconnected', 'disconnected');
  c.newSubscription('private:x', { token: subToken('203', 'private:other') }).subscribe();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500, `disconnected context: ${JSON.stringify(ctx)}`);
  assert.equal(c.state, 'disconnected');
});

test('expired connection token: centrifuge-js reports error 109, calls getToken and connects', async () => {
  let calls = 0;
  const c = newClient(gw.url, {
    token: mintToken({ sub: '204', exp: now() - 60 }),
    getToken: async () => { calls++; return connToken('204'); },
  });
  clients.push(c);
  const connected = nextEvent(c, 'connected', 'connected after getToken');
  c.connect();
  await connected.catch((e) => { throw new Error(`${e.message}; events: ${JSON.stringify(c.log)}`); });
  const errors = c.events('error');
  assert.ok(errors.length >= 1, `error events: ${JSON.stringify(c.log)}`);
  assert.equal(errors[0].type, 'connect', `first error: ${JSON.stringify(errors[0])}`);
  assert.equal(errors[0].error.code, 109, `first error: ${JSON.stringify(errors[0])}`);
  assert.equal(calls, 1, 'getToken calls');
  assert.deepEqual(c.events('disconnected'), []);
});

const secretWrong = mintToken({ sub: '205', exp: now() + 3600 }, { secret: 'not-the-secret' });
const tampered = (() => {
  const [h, , s] = connToken('206').split('.');
  const body = Buffer.from(JSON.stringify({ sub: '1', exp: now() + 3600 })).toString('base64url');
  return `${h}.${body}.${s}`;
})();
const algNone = mintToken({ sub: '207', exp: now() + 3600 }, { header: { alg: 'none', typ: 'JWT' } });

for (const [name, token] of [['wrong secret', secretWrong], ['tampered payload', tampered], ['alg none', algNone]]) {
  test(`invalid token (${name}): centrifuge-js disconnected 3500, no reconnect; raw close 3500`, async () => {
    let calls = 0;
    const c = newClient(gw.url, { token, getToken: async () => { calls++; return connToken('208'); } });
    clients.push(c);
    const disconnected = nextEvent(c, 'disconnected', 'disconnected');
    c.connect();
    const ctx = await disconnected.catch((e) => { throw new Error(`${e.message}; events: ${JSON.stringify(c.log)}`); });
    assert.equal(ctx.code, 3500, `disconnected context: ${JSON.stringify(ctx)}`);
    assert.equal(c.state, 'disconnected');
    assert.deepEqual(c.events('connected'), []);
    assert.equal(calls, 0, 'getToken called after an invalid token');

    const raw = await RawClient.open(gw.url);
    try {
      raw.sendRaw(JSON.stringify({ id: 1, connect: { token } }));
      const closed = await raw.expectClose('invalid token');
      assert.equal(closed.code, 3500, `raw close: ${JSON.stringify(closed)}; got ${JSON.stringify(raw.msgs)}`);
      assert.ok(!raw.msgs.some((m) => m.connect), `connect reply to an invalid token: ${JSON.stringify(raw.msgs)}`);
    } finally {
      raw.close();
    }
  });
}

// ------------------------------------------------------------ raw protocol

async function rawConnected(user) {
  const raw = await RawClient.open(gw.url);
  await raw.connect(connToken(user));
  return raw;
}

test('raw: subscribing twice to one channel: 105, the connection stays', async () => {
  const raw = await rawConnected('300');
  try {
    const first = await raw.command({ subscribe: { channel: 'chat:dup' } });
    assert.ok(first.subscribe, `first subscribe: ${JSON.stringify(first)}`);
    const second = await raw.command({ subscribe: { channel: 'chat:dup' } });
    assert.equal(second.error?.code, 105, `second subscribe: ${JSON.stringify(second)}`);
    const ping = await raw.command({ ping: {} });
    assert.ok(ping.ping, `ping after 105: ${JSON.stringify(ping)}`);
  } finally {
    raw.close();
  }
});

test('raw: the 5th channel with client_channel_limit = 4: 106', async () => {
  const raw = await rawConnected('301');
  try {
    for (let i = 0; i < 4; i++) {
      const r = await raw.command({ subscribe: { channel: `chat:lim${i}` } });
      assert.ok(r.subscribe, `subscribe ${i}: ${JSON.stringify(r)}`);
    }
    const fifth = await raw.command({ subscribe: { channel: 'chat:lim4' } });
    assert.equal(fifth.error?.code, 106, `5th subscribe: ${JSON.stringify(fifth)}`);
    // Unsubscribing one frees a slot.
    const u = await raw.command({ unsubscribe: { channel: 'chat:lim0' } });
    assert.ok(u.unsubscribe, `unsubscribe: ${JSON.stringify(u)}`);
    const again = await raw.command({ subscribe: { channel: 'chat:lim4' } });
    assert.ok(again.subscribe, `subscribe after freeing a slot: ${JSON.stringify(again)}`);
  } finally {
    raw.close();
  }
});

for (const [name, cmd] of [
  ['subscribe', { id: 1, subscribe: { channel: 'chat:x' } }],
  ['publish', { id: 1, publish: { channel: 'chat:x', data: { a: 1 } } }],
  ['ping', { id: 1, ping: {} }],
]) {
  test(`raw: ${name} before connect: close 3501`, async () => {
    const raw = await RawClient.open(gw.url);
    try {
      raw.sendRaw(JSON.stringify(cmd));
      const closed = await raw.expectClose(`${name} before connect`);
      assert.equal(closed.code, 3501, `close: ${JSON.stringify(closed)}; got ${JSON.stringify(raw.msgs)}`);
    } finally {
      raw.close();
    }
  });
}

const nested = (depth) => `{"id":2,"publish":{"channel":"chat:deep","data":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
const BAD_INPUT = [
  ['random bytes (binary frame)', randomBytes(512), true],
  ['random printable text', randomBytes(256).toString('base64'), false],
  ['invalid JSON (truncated)', '{"id":2,"ping":{}', false],
  ['invalid JSON (syntax)', '{"id":2,,"ping":{}}', false],
  ['not an object', '[1,2,3]', false],
  ['deeply nested JSON (30,000 levels)', nested(30_000), false],
  ['huge id (30 digits)', '{"id":123456789012345678901234567890,"ping":{}}', false],
  ['id above 2^32-1', '{"id":4294967296,"ping":{}}', false],
  ['negative id', '{"id":-1,"ping":{}}', false],
  ['missing id', '{"ping":{}}', false],
];

for (const [name, payload, binary] of BAD_INPUT) {
  test(`raw: ${name} after connect: close 3501`, async () => {
    const raw = await rawConnected('302');
    try {
      raw.ws.send(payload, { binary });
      const closed = await raw.expectClose(name);
      assert.equal(closed.code, 3501, `close: ${JSON.stringify(closed)}; got ${JSON.stringify(raw.msgs).slice(0, 300)}`);
    } finally {
      raw.close();
    }
  });
}

test('raw: random bytes before connect: close 3501', async () => {
  const raw = await RawClient.open(gw.url);
  try {
    raw.ws.send(randomBytes(512), { binary: true });
    const closed = await raw.expectClose('random bytes before connect');
    assert.equal(closed.code, 3501, `close: ${JSON.stringify(closed)}`);
  } finally {
    raw.close();
  }
});

test('raw: unknown fields in a command are ignored', async () => {
  const raw = await RawClient.open(gw.url);
  try {
    raw.sendRaw(JSON.stringify({ id: 1, connect: { token: connToken('303'), zzz: [1, { a: null }] }, extra: 'x' }));
    const c = await raw.waitFor((m) => m.id === 1, 'connect reply');
    assert.ok(c.connect, `connect with unknown fields: ${JSON.stringify(c)}`);
    raw.sendRaw('{"id":2,"subscribe":{"channel":"chat:unk","unknown_option":{"deep":[1,2,{"x":true}]}},"foo":42}');
    const s = await raw.waitFor((m) => m.id === 2, 'subscribe reply');
    assert.ok(s.subscribe, `subscribe with unknown fields: ${JSON.stringify(s)}`);
    raw.sendRaw('{"bar":"baz","id":3,"publish":{"channel":"chat:unk","data":{"v":1},"what":"ever"}}');
    const p = await raw.waitFor((m) => m.id === 3, 'publish reply');
    assert.deepEqual(p, { id: 3, publish: {} });
    const pub = await raw.waitFor((m) => m.push?.pub, 'own publication');
    assert.equal(pub.push.channel, 'chat:unk');
    assert.deepEqual(pub.push.pub.data, { v: 1 });
    assert.equal(raw.closeInfo, undefined);
  } finally {
    raw.close();
  }
});

test('raw: a batch of 3 commands in one frame gets 3 replies', async (t) => {
  const raw = await rawConnected('304');
  try {
    const before = raw.frames.length;
    raw.sendRaw([
      JSON.stringify({ id: 10, subscribe: { channel: 'chat:batch' } }),
      JSON.stringify({ id: 11, publish: { channel: 'chat:batch', data: { b: 1 } } }),
      JSON.stringify({ id: 12, ping: {} }),
    ].join('\n'));
    await waitUntil(() => [10, 11, 12].every((id) => raw.msgs.some((m) => m.id === id)), T, 'replies 10, 11, 12',
      () => JSON.stringify(raw.frames.slice(before)));
    // Replies are matched by id (centrifuge-js does too); their order is
    // not part of the protocol, so only each reply is checked.
    const reply = (id) => raw.msgs.find((m) => m.id === id);
    assert.equal(raw.msgs.filter((m) => m.id >= 10).length, 3, `replies: ${JSON.stringify(raw.frames.slice(before))}`);
    assert.ok(reply(10).subscribe, JSON.stringify(reply(10)));
    assert.deepEqual(reply(11), { id: 11, publish: {} });
    assert.deepEqual(reply(12), { id: 12, ping: {} });
    // The publish followed the subscribe in the same frame: the publisher
    // was subscribed when it published, so it receives its publication.
    const pub = await raw.waitFor((m) => m.push?.channel === 'chat:batch' && m.push.pub, 'publication from the batch');
    assert.deepEqual(pub.push.pub.data, { b: 1 });
    t.diagnostic(`frames after the batch: ${JSON.stringify(raw.frames.slice(before))}`);
  } finally {
    raw.close();
  }
});

test('raw: protocol ping: a client answering {} stays, a silent one is closed 3012', async () => {
  const good = await RawClient.open(gw.url);
  const silent = await RawClient.open(gw.url, { autoPong: false });
  try {
    const g = await good.connect(connToken('305'));
    assert.equal(g.ping, 2, `connect reply ping: ${JSON.stringify(g)}`);
    assert.equal(g.pong, true, `connect reply pong: ${JSON.stringify(g)}`);
    await silent.connect(connToken('306'));
    const closed = await silent.expectClose('silent client (no pong)', 15_000);
    assert.equal(closed.code, 3012, `silent client close: ${JSON.stringify(closed)}`);
    assert.ok(silent.pings >= 1, `silent client saw ${silent.pings} pings before the close`);
    // By now the answering client has had at least as long: it saw pings,
    // answered them, and is still open.
    await waitUntil(() => good.pings >= 3, 15_000, 'three pings to the answering client', () => `${good.pings} pings, close ${JSON.stringify(good.closeInfo)}`);
    assert.equal(good.closeInfo, undefined, `answering client closed: ${JSON.stringify(good.closeInfo)}`);
    const p = await good.command({ ping: {} });
    assert.ok(p.ping, JSON.stringify(p));
  } finally {
    good.close();
    silent.close();
  }
});

test('raw: no connect command within handshake_timeout (1s): close 3502 (stale)', async () => {
  const raw = await RawClient.open(gw.url);
  try {
    const closed = await raw.expectClose('stale connection', 15_000);
    assert.equal(closed.code, 3502, `close: ${JSON.stringify(closed)}; got ${JSON.stringify(raw.msgs)}`);
  } finally {
    raw.close();
  }
});

test('the healthy client was never disconnected and got every publication in order', () => {
  const h = health.client;
  assert.equal(h.state, 'connected');
  assert.deepEqual(h.events('disconnected'), [], 'disconnected events');
  assert.deepEqual(h.events('connecting').filter((e) => e.code !== 0), [], 'connecting events other than the first connect()');
  assert.deepEqual(health.sub.log.map((e) => e.ev), ['subscribing', 'subscribed'], `subscription events: ${JSON.stringify(health.sub.log)}`);
  // afterEach of this test adds the last one.
  assert.deepEqual(health.sub.pubs, Array.from({ length: health.sent }, (_, i) => ({ health: i })));
});
