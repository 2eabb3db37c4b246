// centrifuge-js 5.x against switchboard (Centrifuge mode): connect,
// subscribe, publish and receive in order, unsubscribe/resubscribe,
// server-side subscriptions from the token, personal (user-limited) channels.
//
// run: SB_BIN_DIR=build/bin node --test   (in this folder, after npm ci)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  RawClient, closeAll, connToken, connect, newClient, nextEvent, startGateway, subscribe, subscribeRefused, T, waitUntil,
  within,
} from './sb.mjs';

let gw;
const clients = [];
const within10 = (p, what) => within(p, T, what);

async function client(user, extra) {
  const c = await connect(gw.url, { token: connToken(user, extra) });
  clients.push(c);
  return c;
}

before(async () => { gw = await startGateway({ shards: 2 }); });

after(async () => {
  closeAll(clients);
  if (gw) await gw.stop();
});

test('connect, subscribe chat:room1, 50 publications reach both subscribers in order', async () => {
  const a = await client('1');
  const b = await client('2');
  for (const c of [a, b]) {
    const ctx = c.events('connected')[0];
    assert.equal(typeof ctx.client, 'string');
    assert.ok(ctx.client.length > 0, `connected client id: ${JSON.stringify(ctx)}`);
    assert.equal(ctx.transport, 'websocket');
  }
  assert.notEqual(a.events('connected')[0].client, b.events('connected')[0].client);
  const sa = await subscribe(a, 'chat:room1');
  const sb = await subscribe(b, 'chat:room1');
  for (let i = 0; i < 50; i++) {
    const result = await within10(sa.publish({ n: i }), `publish ${i}`);
    assert.deepEqual(result, {}, `publish result of ${i}`);
  }
  const expected = Array.from({ length: 50 }, (_, i) => ({ n: i }));
  for (const [name, s] of [['A', sa], ['B', sb]]) {
    await waitUntil(() => s.pubs.length >= 50, T, `${name} to receive 50 publications`, () => JSON.stringify(s.pubs));
    assert.deepEqual(s.pubs, expected, `${name}'s publications`);
  }
  sa.unsubscribe(); sb.unsubscribe();
  a.removeSubscription(sa); b.removeSubscription(sb);
});

test('unsubscribe stops publications; resubscribe works', async () => {
  const a = await client('3');
  const b = await client('4');
  const sa = await subscribe(a, 'chat:room2');
  const sb = await subscribe(b, 'chat:room2');
  await sa.publish({ n: 'before' });
  await waitUntil(() => sb.pubs.length === 1, T, 'B to receive "before"', () => JSON.stringify(sb.pubs));

  const unsubscribed = nextEvent(sb, 'unsubscribed', 'B unsubscribed');
  sb.unsubscribe();
  const uctx = await unsubscribed;
  assert.equal(uctx.code, 0, `unsubscribed context: ${JSON.stringify(uctx)}`); // unsubscribeCalled
  // A round trip on B's connection after its unsubscribe command (a publish
  // to B's own personal channel): the server has handled the unsubscribe
  // once this is answered, so A's next publications must not reach B.
  await within10(b.publish('dialogs:#4', { sync: 1 }), 'B round trip after unsubscribe');
  for (let i = 0; i < 5; i++) await sa.publish({ n: `gap${i}` });
  // A (still subscribed) sees its own publications; when it has the last
  // one, the server has routed all five.
  await waitUntil(() => sa.pubs.length === 6, T, 'A to receive its own 5 publications', () => JSON.stringify(sa.pubs));
  assert.deepEqual(sb.pubs, [{ n: 'before' }], 'B got publications after unsubscribe');

  const again = nextEvent(sb, 'subscribed', 'B resubscribed');
  sb.subscribe();
  await again;
  await sa.publish({ n: 'after' });
  await waitUntil(() => sb.pubs.length === 2, T, 'B to receive "after"', () => JSON.stringify(sb.pubs));
  assert.deepEqual(sb.pubs, [{ n: 'before' }, { n: 'after' }]);
});

test('server-side subscriptions from the token channels claim', async () => {
  const c = newServerSideClient('5', ['news', 'chat:srv5']);
  const subscribedEvents = [];
  c.on('subscribed', (ctx) => subscribedEvents.push(ctx));
  const connected = nextEvent(c, 'connected', 'connected');
  c.connect();
  await connected;
  await waitUntil(() => subscribedEvents.length >= 2, T, 'server-side subscribed events for news and chat:srv5',
    () => JSON.stringify(subscribedEvents));
  assert.deepEqual(subscribedEvents.map((e) => e.channel).sort(), ['chat:srv5', 'news']);

  // The connect reply's subs, as the raw protocol sees them.
  const raw = await RawClient.open(gw.url);
  try {
    const reply = await raw.connect(connToken('5', { channels: ['news', 'chat:srv5'] }));
    assert.ok(reply.subs && typeof reply.subs === 'object', `connect reply has subs: ${JSON.stringify(reply)}`);
    assert.deepEqual(Object.keys(reply.subs).sort(), ['chat:srv5', 'news'], `connect reply subs: ${JSON.stringify(reply.subs)}`);
    // Subscribing client side to a channel the server already subscribed: 105.
    const dup = await raw.command({ subscribe: { channel: 'news' } });
    assert.equal(dup.error?.code, 105, `client subscribe to a server-side channel: ${JSON.stringify(dup)}`);
  } finally {
    raw.close();
  }

  // A publication on a server-side channel reaches the client as a
  // Centrifuge-level `publication` event.
  const pub = await client('6');
  const s = await subscribe(pub, 'chat:srv5');
  const got = nextEvent(c, 'publication', 'server-side publication on chat:srv5', (ctx) => ctx.channel === 'chat:srv5');
  await s.publish({ hello: 'server-side' });
  const ctx = await got;
  assert.deepEqual(ctx.data, { hello: 'server-side' });
});

test('personal channels: #user boundary, and every connection of a user receives', async () => {
  const u42 = await client('42');
  const u43 = await client('43');
  await subscribe(u42, 'dialogs:#42');
  const refused = await subscribeRefused(u43, 'dialogs:#42');
  assert.equal(refused.code, 103, `user 43 on dialogs:#42: ${JSON.stringify(refused)}`);

  const u42b = await client('42');
  const s1 = await subscribe(u42, 'dialogs:#42,43');
  const s2 = await subscribe(u42b, 'dialogs:#42,43');
  for (let i = 0; i < 3; i++) {
    const r = await within10(u43.publish('dialogs:#42,43', { from: 43, i }), 'user 43 publishes to dialogs:#42,43');
    assert.deepEqual(r, {});
  }
  const expected = [0, 1, 2].map((i) => ({ from: 43, i }));
  for (const [name, s] of [['first', s1], ['second', s2]]) {
    await waitUntil(() => s.pubs.length >= 3, T, `42's ${name} connection to receive 3`, () => JSON.stringify(s.pubs));
    assert.deepEqual(s.pubs, expected, `42's ${name} connection`);
  }
  // (Publishing is not limited by the #boundary: Centrifugo v5's OnPublish
  // allows any user when allow_publish_for_client is set, so no check here.)
});

function newServerSideClient(user, channels) {
  // Not via connect(): the subscribed events come right after connected.
  const c = newClient(gw.url, { token: connToken(user, { channels }) });
  clients.push(c);
  return c;
}
