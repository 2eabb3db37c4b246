// The backend proxy (issue 16, part 3) against a real HTTP backend
// (backend.mjs) with centrifuge-js and raw protocol clients: connect,
// refresh, subscribe, publish and rpc requests carry Centrifugo's proxy
// JSON and the backend's answers take effect; a backend that errs, cuts
// the connection, answers garbage or HTTP 500, is too slow, or is gone
// gives the documented errors (100 temporary; 111 when the pool is full);
// the circuit breaker opens, fails fast, and closes again once the backend
// is back; nothing hangs, other sessions go on, and the gateway exits 0
// (under ASan: nothing leaked).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Backend } from './backend.mjs';
import {
  RawClient, T, closeAll, connToken, connect, metric, newClient, nextEvent, sleep, startGateway, subscribe, waitUntil,
} from './sb.mjs';

const gateways = [];
const backends = [];
after(async () => {
  for (const gw of gateways) await gw.stop();
  for (const b of backends) await b.die();
});

async function backend(answer) {
  const b = await new Backend(answer).start();
  backends.push(b);
  return b;
}

// One shard: one pool and one breaker per endpoint, so counts are exact.
async function gateway(b, extra = '') {
  const config = `
token_hmac_secret_key = "test-secret"
ping_interval = "1s"
pong_timeout = "1s"
allow_subscribe_for_client = true
connect_proxy_endpoint = "${b.url}/connect"
refresh_proxy_endpoint = "${b.url}/refresh"
subscribe_proxy_endpoint = "${b.url}/subscribe"
publish_proxy_endpoint = "${b.url}/publish"
rpc_proxy_endpoint = "${b.url}/rpc"
connect_proxy_timeout = "500ms"
${extra.includes('rpc_proxy_timeout') ? '' : 'rpc_proxy_timeout = "500ms"'}
${extra}

[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_client = true

[[namespaces]]
name = "guarded"
proxy_subscribe = true
proxy_publish = true
history_size = 10
history_ttl = "60s"
`;
  const gw = await startGateway({ shards: 1, config });
  gateways.push(gw);
  return gw;
}

async function rawConnected(gw, data = { user: 'raw' }) {
  const c = await RawClient.open(gw.url);
  const r = await c.command({ connect: { data, name: 'raw', version: '1' } }, 'connect');
  assert.ok(r.connect, `connect reply: ${JSON.stringify(r)}`);
  return c;
}

// The backend's default answers: users named by the connect data.
function standard(kind, body) {
  switch (kind) {
    case 'connect': return { json: { result: { user: body.data?.user ?? 'someone' } } };
    case 'rpc': return { json: { result: { data: { echo: body.data, method: body.method, user: body.user } } } };
    default: return { json: { result: {} } };
  }
}

test('connect proxy: the backend names the user, its info, data and server-side channels; a token skips it', async () => {
  const b = await backend((kind, body) => {
    if (kind === 'connect') {
      return { json: { result: { user: `u-${body.data.who}`, info: { role: 'reader' }, data: { welcome: body.data.who }, channels: ['chat:news'] } } };
    }
    return standard(kind, body);
  });
  const gw = await gateway(b);
  const c = newClient(gw.url, { data: { who: 'alice' }, name: 'js-client', version: '9.9' });
  const connected = nextEvent(c, 'connected', 'centrifuge-js connected through the connect proxy');
  const news = nextEvent(c, 'publication', 'a publication on the server-side channel', (ctx) => ctx.channel === 'chat:news');
  c.connect();
  const ctx = await connected;
  assert.deepEqual(ctx.data, { welcome: 'alice' });
  const req = b.requests.find((r) => r.kind === 'connect');
  assert.equal(req.body.transport, 'websocket');
  assert.equal(req.body.protocol, 'json');
  assert.equal(req.body.encoding, 'json');
  assert.equal(req.body.name, 'js-client');
  assert.equal(req.body.version, '9.9');
  assert.equal(req.body.client, ctx.client);
  assert.equal(req.headers['content-type'], 'application/json');

  // The proxied user and info travel with what it publishes.
  await c.publish('chat:news', { text: 'hello' });
  const pub = await news;
  assert.deepEqual(pub.data, { text: 'hello' });
  assert.equal(pub.info.user, 'u-alice');
  assert.deepEqual(pub.info.connInfo, { role: 'reader' });
  // A client with a token is verified here, not by the backend.
  const writer = await connect(gw.url, { token: connToken('writer') });
  assert.equal(b.count('connect'), 1, 'the token client did not go to the backend');
  const st = await gw.stats();
  assert.equal(st.per_shard[0].protocol.clients, 2);
  assert.equal(st.per_shard[0].protocol.users, 2);
  closeAll([c, writer]);
});

test('connect proxy answers an error or a disconnect: the client gets it as the backend said', async () => {
  const b = await backend((kind, body) => {
    if (kind !== 'connect') return standard(kind, body);
    if (body.data.mode === 'error') return { json: { error: { code: 1000, message: 'not today' } } };
    if (body.data.mode === 'ban') return { json: { disconnect: { code: 4501, reason: 'banned' } } };
    if (body.data.mode === 'temporary') return { json: { error: { code: 1001, message: 'later', temporary: true } } };
    return standard(kind, body);
  });
  const gw = await gateway(b);
  const e = await RawClient.open(gw.url);
  const r = await e.command({ connect: { data: { mode: 'error' } } });
  assert.deepEqual(r.error, { code: 1000, message: 'not today' });
  // It may try again on the same connection.
  const again = await e.command({ connect: { data: { mode: 'temporary' } } });
  assert.deepEqual(again.error, { code: 1001, message: 'later', temporary: true });
  const ok = await e.command({ connect: { data: { user: 'eve' } } });
  assert.ok(ok.connect, JSON.stringify(ok));

  const d = await RawClient.open(gw.url);
  d.sendRaw(JSON.stringify({ id: 1, connect: { data: { mode: 'ban' } } }));
  assert.deepEqual(await d.expectClose('banned by the backend'), { code: 4501, reason: 'banned' });
  e.close();
});

test('subscribe and publish proxies decide in proxy_subscribe / proxy_publish namespaces; rpc goes to the backend', async () => {
  const b = await backend((kind, body) => {
    if (kind === 'subscribe') {
      if (body.channel === 'guarded:secret') return { json: { error: { code: 103, message: 'permission denied' } } };
      return { json: { result: { data: { motd: `welcome to ${body.channel}` } } } };
    }
    if (kind === 'publish') {
      if (body.data?.bad) return { json: { error: { code: 1002, message: 'rejected' } } };
      return { json: { result: { data: { ...body.data, checked_by: 'backend', user: body.user } } } };
    }
    return standard(kind, body);
  });
  const gw = await gateway(b);
  const c = await rawConnected(gw, { user: 'bob' });
  const sub = await c.command({ subscribe: { channel: 'guarded:room' } });
  assert.deepEqual(sub.subscribe.data, { motd: 'welcome to guarded:room' }, JSON.stringify(sub));
  const sreq = b.requests.find((r) => r.kind === 'subscribe');
  assert.equal(sreq.body.user, 'bob');
  assert.equal(sreq.body.channel, 'guarded:room');
  const denied = await c.command({ subscribe: { channel: 'guarded:secret' } });
  assert.deepEqual(denied.error, { code: 103, message: 'permission denied' });
  // chat: no proxy flags, the namespace's own rules; the backend is not asked.
  const plain = await c.command({ subscribe: { channel: 'chat:plain' } });
  assert.ok(plain.subscribe, JSON.stringify(plain));
  assert.equal(b.count('subscribe'), 2);

  const pub = await c.command({ publish: { channel: 'guarded:room', data: { text: 'hi' } } });
  assert.deepEqual(pub, { id: pub.id, publish: {} });
  const push = await c.waitFor((m) => m.push?.pub, 'the publication, as the backend rewrote it');
  assert.deepEqual(push.push.pub.data, { text: 'hi', checked_by: 'backend', user: 'bob' });
  const refused = await c.command({ publish: { channel: 'guarded:room', data: { bad: true } } });
  assert.deepEqual(refused.error, { code: 1002, message: 'rejected' });

  const rpc = await c.command({ rpc: { method: 'sum', data: { a: 1 } } });
  assert.deepEqual(rpc.rpc.data, { echo: { a: 1 }, method: 'sum', user: 'bob' });
  c.close();
});

test('a failing backend gives documented errors, nothing hangs, other sessions go on', async () => {
  let mode = 'ok';
  const b = await backend((kind, body) => {
    if (kind !== 'rpc' || body.method !== 'fragile') return standard(kind, body);
    switch (mode) {
      case 'slow': return { delay: 2000, json: { result: {} } };
      case 'hang': return { hang: true };
      case 'cut': return { destroy: true };
      case 'garbage': return { text: 'this is not json' };
      case 'html500': return { status: 500, text: '<h1>oops</h1>' };
      case 'shape': return { json: { result: 42 } };
      default: return { json: { result: { data: 'fine' } } };
    }
  });
  // A breaker that does not open here: the failures are counted, not refused.
  const gw = await gateway(b, 'proxy_breaker_min_requests = 1000');
  const c = await rawConnected(gw, { user: 'carol' });
  const bystander = await rawConnected(gw, { user: 'dave' });
  await bystander.command({ subscribe: { channel: 'chat:side' } });
  for (const m of ['slow', 'hang', 'cut', 'garbage', 'html500', 'shape']) {
    mode = m;
    const r = await c.command({ rpc: { method: 'fragile', data: {} } }, `rpc with the backend ${m}`);
    assert.deepEqual(r.error, { code: 100, message: 'internal server error', temporary: true }, `${m}: ${JSON.stringify(r)}`);
    // The bystander is served meanwhile.
    const p = await bystander.command({ publish: { channel: 'chat:side', data: { after: m } } });
    assert.ok(p.publish, `${m}: ${JSON.stringify(p)}`);
  }
  mode = 'ok';
  const fine = await c.command({ rpc: { method: 'fragile', data: {} } });
  assert.equal(fine.rpc?.data, 'fine', JSON.stringify(fine));
  assert.equal(await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="timeout"']), 2);
  assert.equal(await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="bad_response"']), 3);
  assert.equal(await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="unavailable"']), 1);
  await waitUntil(async () => (await metric(gw, 'switchboard_proxy_in_flight', ['endpoint="rpc"'])) === 0, T, 'nothing in flight');

  // The backend is gone: connection refused, at once.
  await b.die();
  const gone = await c.command({ rpc: { method: 'fragile', data: {} } });
  assert.equal(gone.error?.code, 100, JSON.stringify(gone));
  // A new connect with the backend gone: a temporary error, the session stays.
  const late = await RawClient.open(gw.url);
  const lr = await late.command({ connect: { data: { user: 'late' } } });
  assert.deepEqual(lr.error, { code: 100, message: 'internal server error', temporary: true });
  for (const x of [c, bystander, late]) x.close();
});

test('the circuit breaker opens on failures, fails fast while open, and closes once the backend is back', async () => {
  const b = await backend(standard);
  const gw = await gateway(b, `proxy_breaker_min_requests = 3
proxy_breaker_failure_ratio = 0.5
proxy_breaker_window = "30s"
proxy_breaker_open_time = "1500ms"`);
  const c = await rawConnected(gw, { user: 'erin' });
  const ok = await c.command({ rpc: { method: 'm', data: 1 } });
  assert.ok(ok.rpc, JSON.stringify(ok));
  await b.die();
  for (let i = 0; i < 3; i++) {
    const r = await c.command({ rpc: { method: 'm', data: i } });
    assert.equal(r.error?.code, 100, JSON.stringify(r));
  }
  assert.equal(await metric(gw, 'switchboard_proxy_breaker_state', ['endpoint="rpc"']), 1, 'open');
  assert.equal(await metric(gw, 'switchboard_proxy_breaker_opened_total', ['endpoint="rpc"']), 1);
  // While open: refused without a request (the backend is back already,
  // and sees none of these).
  await b.start();
  const before = b.count('rpc');
  const refusedBefore = await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="breaker_open"']);
  for (let i = 0; i < 5; i++) {
    const r = await c.command({ rpc: { method: 'm', data: i } });
    assert.deepEqual(r.error, { code: 100, message: 'internal server error', temporary: true });
  }
  assert.equal(b.count('rpc'), before);
  assert.equal(await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="breaker_open"']), refusedBefore + 5);
  // After the open time one probe goes through; it succeeds and closes it.
  let answered;
  await waitUntil(async () => {
    const r = await c.command({ rpc: { method: 'probe', data: 'p' } });
    answered = r;
    return r.rpc !== undefined;
  }, 3 * T, 'the breaker half-opens and the probe succeeds', () => JSON.stringify(answered));
  assert.equal(await metric(gw, 'switchboard_proxy_breaker_state', ['endpoint="rpc"']), 0, 'closed again');
  const r = await c.command({ rpc: { method: 'm', data: 'after' } });
  assert.deepEqual(r.rpc.data.echo, 'after');

  // The connect endpoint has its own breaker, and centrifuge-js reconnects
  // through a refusal on its own once the backend answers.
  await b.die();
  const js = newClient(gw.url, { data: { user: 'frank' } });
  js.connect();
  await waitUntil(() => js.events('error').length >= 2, 3 * T, 'centrifuge-js retries the connect', () => JSON.stringify(js.log).slice(0, 500));
  await b.start();
  await nextEvent(js, 'connected', 'centrifuge-js connected once the backend is back', () => true, 4 * T);
  c.close();
  js.disconnect();
});

test('with proxy_max_connections busy and no room to wait, a request is refused with 111', async () => {
  const b = await backend((kind, body) => (kind === 'rpc' && body.method === 'slow' ? { delay: 1500, json: { result: { data: 'slow' } } } : standard(kind, body)));
  const gw = await gateway(b, 'proxy_max_connections = 1\nproxy_max_pending = 0\nrpc_proxy_timeout = "5s"');
  const c = await rawConnected(gw, { user: 'gina' });
  const first = c.command({ rpc: { method: 'slow', data: 1 } }, 'slow rpc');
  await waitUntil(() => b.count('rpc') === 1, T, 'the first rpc reached the backend');
  const second = await c.command({ rpc: { method: 'slow', data: 2 } }, 'second rpc');
  assert.deepEqual(second.error, { code: 111, message: 'too many requests', temporary: true });
  assert.equal((await first).rpc?.data, 'slow');
  assert.equal(await metric(gw, 'switchboard_proxy_requests_total', ['endpoint="rpc"', 'outcome="overloaded"']), 1);
  c.close();
});

test('refresh proxy: a proxied connection with expire_at is extended by the backend, or closed 3005 when expired', async () => {
  const b = await backend((kind, body) => {
    if (kind === 'connect') return { json: { result: { user: body.data.user, expire_at: Math.floor(Date.now() / 1000) + 1 } } };
    if (kind === 'refresh') {
      if (body.user === 'expiring') return { json: { result: { expired: true } } };
      return { json: { result: { expire_at: Math.floor(Date.now() / 1000) + 3600, info: { refreshed: true } } } };
    }
    return standard(kind, body);
  });
  const gw = await gateway(b);
  const keeps = await RawClient.open(gw.url);
  const k = await keeps.command({ connect: { data: { user: 'keeper' } } });
  assert.ok(k.connect, JSON.stringify(k));
  assert.equal(k.connect.expires, undefined, 'the server refreshes it: the client is not asked to');
  const goes = await RawClient.open(gw.url);
  await goes.command({ connect: { data: { user: 'expiring' } } });
  assert.deepEqual(await goes.expectClose('expired by the refresh proxy', 3 * T), { code: 3005, reason: 'connection expired' });
  await waitUntil(() => b.requests.some((r) => r.kind === 'refresh' && r.body.user === 'keeper'), 3 * T, 'keeper refreshed');
  const req = b.requests.find((r) => r.kind === 'refresh' && r.body.user === 'keeper');
  assert.equal(req.body.client, k.connect.client);
  // Still served, and not refreshed again (an hour to go).
  await sleep(2500);
  const p = await keeps.command({ subscribe: { channel: 'chat:still-here' } });
  assert.ok(p.subscribe, JSON.stringify(p));
  assert.equal(b.requests.filter((r) => r.kind === 'refresh' && r.body.user === 'keeper').length, 1);
  keeps.close();
});
