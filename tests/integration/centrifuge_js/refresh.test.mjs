// Connection token refresh with centrifuge-js: a token that expires ~3 s
// after connect, a getToken that returns fresh ones; the client refreshes
// and stays connected past the first exp. The gateway closes expired
// connections 3 s after exp (client_expired_close_delay), and a raw client
// that never refreshes shows that it does (close 3005), so staying
// connected is the refresh's doing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  RawClient, closeAll, configWith, connToken, connect, nextEvent, sleep, startGateway, subscribe, T, waitUntil,
} from './sb.mjs';

let gw;
const clients = [];
const ended = async () => JSON.stringify((await gw.stats()).ended);

before(async () => { gw = await startGateway({ config: configWith('client_expired_close_delay = "3s"'), shards: 2 }); });

after(async () => {
  closeAll(clients);
  if (gw) await gw.stop();
});

test('token refresh: getToken is called and the client stays connected past exp', async () => {
  let calls = 0;
  const getToken = async () => { calls++; return connToken('10', {}, 3); };
  const firstExp = Math.floor(Date.now() / 1000) + 3;
  const c = await connect(gw.url, { token: connToken('10', {}, 3), getToken });
  clients.push(c);
  const sub = await subscribe(c, 'chat:refresh');
  const other = await connect(gw.url, { token: connToken('11') });
  clients.push(other);
  const osub = await subscribe(other, 'chat:refresh');

  // Bounded wait until well past the first exp and the close delay after it
  // (exp + 3 s): an unrefreshed connection would be closed by then.
  await waitUntil(() => Date.now() / 1000 > firstExp + 5, 9_000, 'time to pass the first exp + close delay');
  assert.ok(calls >= 1, `getToken calls: ${calls}`);
  assert.equal(c.state, 'connected', `state after exp; events: ${JSON.stringify(c.log.filter((e) => e.ev !== 'publication'))}`);
  assert.deepEqual(c.events('disconnected'), [], 'disconnected events');
  assert.deepEqual(c.events('connecting').filter((e) => e.code !== 0), [], 'connecting events other than the first connect() (a reconnect)');
  assert.equal(c.events('connected').length, 1, 'connected once');
  await osub.publish({ after: 'exp' });
  await waitUntil(() => sub.pubs.length === 1, T, 'a publication after exp', () => JSON.stringify(sub.pubs));
  assert.deepEqual(sub.pubs, [{ after: 'exp' }]);
});

test('control: a connection that never refreshes is closed 3005 (connection expired)', async () => {
  const raw = await RawClient.open(gw.url);
  try {
    const reply = await raw.connect(connToken('12', {}, 2));
    assert.equal(reply.expires, true, `connect reply: ${JSON.stringify(reply)}`);
    assert.ok(reply.ttl >= 1 && reply.ttl <= 2, `ttl: ${JSON.stringify(reply)}`);
    const closed = await raw.expectClose('expired connection', 15_000);
    assert.equal(closed.code, 3005, `close: ${JSON.stringify(closed)}; gateway ended counters: ${await ended()}`);
  } finally {
    raw.close();
  }
});

test('raw refresh command extends the connection', async () => {
  const raw = await RawClient.open(gw.url);
  try {
    await raw.connect(connToken('13', {}, 2));
    const r = await raw.command({ refresh: { token: connToken('13', {}, 3600) } });
    assert.ok(r.refresh, `refresh reply: ${JSON.stringify(r)}`);
    assert.equal(r.refresh.expires, true);
    assert.ok(r.refresh.ttl > 3000, `refresh ttl: ${JSON.stringify(r)}`);
    await sleep(6_000); // past the first exp + close delay
    assert.equal(raw.closeInfo, undefined, `closed after refresh: ${JSON.stringify(raw.closeInfo)}; frames ${JSON.stringify(raw.frames)}; gateway ended counters: ${await ended()}`);
    const p = await raw.command({ ping: {} });
    assert.deepEqual(p, { id: p.id, ping: {} });
  } finally {
    raw.close();
  }
});
