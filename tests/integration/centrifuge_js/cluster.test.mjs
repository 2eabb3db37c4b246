// A cluster on Redis (issue 14): three gateway nodes on one real
// redis-server, then the same on two Redis shards. centrifuge-js clients
// spread over the nodes get every publication — sent through node A's API
// (publish, broadcast, batch) or published by a client on node B — in
// order, exactly once; a client that leaves node A and comes back on node
// C recovers what it missed with 0 lost and 0 duplicated; presence, info
// and channels answer for the whole cluster from any node; the API's
// user-level commands reach the user's connections on every node; and a
// node killed with -9 leaves presence once its entries' TTL runs out, one
// stopped with SIGTERM takes its clients' presence with it as it goes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  RawClient, T, closeAll, connToken, connect, nextEvent, sleep, subscribe, waitUntil,
} from './sb.mjs';
import { RedisServer, redisCommand, startNode } from './cluster.mjs';

const CHANNELS = ['room:a', 'room:b', 'room:c', 'room:d'];  // client_channel_limit = 4

// The result of an API call, which must not be an error.
async function ok(node, method, params) {
  const body = await node.api(method, params);
  assert.ok(body.result !== undefined && !body.error, `${node.name} ${method}: ${JSON.stringify(body)}`);
  return body.result;
}

// How many subscribers each of CHANNELS has on this Redis server's pub/sub
// (the nodes' connections: docs/ops.md, key layout).
async function redisSubscribers(redis) {
  const raw = await redisCommand(redis.port, 'PUBSUB', 'NUMSUB', ...CHANNELS.map((c) => `switchboard.pub.${c}`));
  return [...raw.matchAll(/\r\n:(\d+)/g)].map((m) => Number(m[1]));
}

for (const shards of [1, 2]) {
  describe(`3 nodes on ${shards} Redis server${shards > 1 ? 's' : ''}`, () => {
    const redis = [];
    let A, B, C;
    const clients = [];

    before(async () => {
      for (let i = 0; i < shards; i++) redis.push(await RedisServer.start());
      const urls = redis.map((r) => r.url);
      [A, B, C] = await Promise.all(['A', 'B', 'C'].map((n) => startNode(n, urls)));
    });
    after(async () => {
      closeAll(clients);
      for (const n of [A, B, C]) await n?.stop();
      for (const r of redis) await r.stop();
    });

    test('publications through A and from a client on B reach every subscriber on every node in order, exactly once', async () => {
      // Three clients on each node, each subscribed to all four channels.
      const subs = [];
      for (const [i, node] of [A, B, C, A, B, C, A, B, C].entries()) {
        const c = await connect(node.url, { token: connToken(`fan${i}`) });
        clients.push(c);
        for (const ch of CHANNELS) subs.push({ where: `${node.name}/fan${i}/${ch}`, ch, sub: await subscribe(c, ch) });
      }
      const publisher = clients[1];  // on B
      const onB = new Map(subs.filter((s) => s.where.startsWith('B/fan1/')).map((s) => [s.ch, s.sub]));

      if (shards > 1) {
        // The channels are spread over both servers: each has some of them.
        for (const r of redis) {
          const counts = await redisSubscribers(r);
          assert.equal(counts.length, CHANNELS.length);
          assert.ok(counts.some((n) => n > 0), `Redis ${r.port} carries none of ${CHANNELS}: ${counts}`);
        }
      }

      const expected = new Map(CHANNELS.map((ch) => [ch, []]));
      const sent = (ch, data) => expected.get(ch).push(data);
      for (let n = 0; n < 20; n++) {
        for (const ch of CHANNELS) {
          const data = { src: 'api', ch, n };
          await ok(A, 'publish', { channel: ch, data });
          sent(ch, data);
        }
      }
      for (let n = 0; n < 5; n++) {
        const data = { src: 'broadcast', n };
        const r = await ok(A, 'broadcast', { channels: CHANNELS, data });
        assert.equal(r.responses.length, CHANNELS.length, JSON.stringify(r));
        for (const ch of CHANNELS) sent(ch, data);
      }
      const batch = [];
      for (let n = 0; n < 5; n++) {
        for (const ch of CHANNELS) {
          const data = { src: 'batch', ch, n };
          batch.push({ publish: { channel: ch, data } });
          sent(ch, data);
        }
      }
      const br = await ok(A, 'batch', { commands: batch });
      assert.equal(br.replies.length, batch.length, JSON.stringify(br));
      for (const rep of br.replies) assert.ok(!rep.error, JSON.stringify(rep));
      for (let n = 0; n < 10; n++) {
        for (const ch of CHANNELS) {
          const data = { src: 'client', ch, n };
          await onB.get(ch).publish(data);
          sent(ch, data);
        }
      }

      const want = expected.get(CHANNELS[0]).length;
      await waitUntil(() => subs.every((s) => s.sub.pubs.length >= want), 4 * T, `${want} publications on every subscription`,
        () => subs.filter((s) => s.sub.pubs.length < want).map((s) => `${s.where}: ${s.sub.pubs.length}`).join(', '));
      await sleep(300);  // anything delivered twice would have arrived by now
      for (const s of subs) assert.deepEqual(s.sub.pubs, expected.get(s.ch), s.where);
    });

    test('a client that leaves A and comes back on C recovers what it missed: 0 lost, 0 duplicated', async () => {
      const ch = 'hist:move';
      const seen = [];
      let pos;
      const first = await connect(A.url, { token: connToken('mover') });
      const sub = first.newSubscription(ch);
      sub.on('publication', (ctx) => { seen.push(ctx.data.n); pos = { offset: ctx.offset, epoch: sub._epoch }; });
      const subscribed = nextEvent(sub, 'subscribed', `subscribed to ${ch} on A`);
      sub.subscribe();
      const onA = await subscribed;
      assert.equal(onA.recoverable, true, JSON.stringify(onA));
      for (let n = 0; n < 10; n++) await ok(B, 'publish', { channel: ch, data: { n } });
      await waitUntil(() => seen.length === 10, T, '10 live publications on A', () => JSON.stringify(seen));
      first.disconnect();

      for (let n = 10; n < 25; n++) await ok(A, 'publish', { channel: ch, data: { n } });
      const hist = await ok(C, 'history', { channel: ch, limit: -1 });
      assert.equal(hist.publications.length, 25);
      assert.equal(hist.epoch, pos.epoch, 'the same epoch on every node');
      assert.equal(hist.offset, 25);

      const again = await connect(C.url, { token: connToken('mover') });
      clients.push(again);
      const sub2 = again.newSubscription(ch, { since: pos });
      sub2.on('publication', (ctx) => seen.push(ctx.data.n));
      const resubscribed = nextEvent(sub2, 'subscribed', `subscribed to ${ch} on C`);
      sub2.subscribe();
      const onC = await resubscribed;
      assert.equal(onC.wasRecovering, true, JSON.stringify(onC));
      assert.equal(onC.recovered, true, JSON.stringify(onC));
      for (let n = 25; n < 30; n++) await ok(B, 'publish', { channel: ch, data: { n } });
      await waitUntil(() => seen.length >= 30, T, '30 publications', () => JSON.stringify(seen));
      await sleep(300);
      assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i));
    });

    test('presence, presence_stats, info and channels answer for the whole cluster from any node', async () => {
      const ch = 'room:present';
      const watcher = await connect(A.url, { token: connToken('watcher') });
      clients.push(watcher);
      const wsub = await subscribe(watcher, ch, { joinLeave: true });
      const joins = [];
      // Its own join may arrive before this handler or after: not counted.
      wsub.on('join', (ctx) => { if (ctx.info.user !== 'watcher') joins.push(ctx.info.user); });
      const ids = new Map([['watcher', watcher._client]]);
      // Users p0..p4 on B and C; p0 twice (num_users counts users).
      for (const [i, node] of [B, C, B, C, B, C].entries()) {
        const user = `p${i % 5}`;
        const c = await connect(node.url, { token: connToken(user) });
        clients.push(c);
        await subscribe(c, ch);
        ids.set(`${user}@${node.name}${i}`, c._client);
      }
      await waitUntil(() => joins.length === 6, T, '6 join pushes on A', () => JSON.stringify(joins));
      assert.deepEqual(joins.sort(), ['p0', 'p0', 'p1', 'p2', 'p3', 'p4']);
      for (const node of [A, B, C]) {
        const p = await ok(node, 'presence', { channel: ch });
        assert.deepEqual(Object.keys(p.presence).sort(), [...ids.values()].sort(), `presence on ${node.name}`);
        const st = await ok(node, 'presence_stats', { channel: ch });
        assert.deepEqual(st, { num_clients: 7, num_users: 6 }, `presence_stats on ${node.name}`);
      }

      // Each node's registry entry carries its own counts (heartbeats: wait for them).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const info = await ok(B, 'info', {});
        const byName = Object.fromEntries(info.nodes.map((n) => [n.name, n]));
        const counts = [A, B, C].map((n) => byName[n.name]?.num_clients);
        const stats = await Promise.all([A, B, C].map((n) => n.stats()));
        const local = stats.map((s) => s.per_shard.reduce((n, sh) => n + sh.protocol.clients, 0));
        if (info.nodes.length === 3 && counts.every((x, i) => x === local[i] && x > 0)) break;
        assert.ok(Date.now() < deadline, `info counts ${counts} vs each node's own ${local}: ${JSON.stringify(info)}`);
        await sleep(500);
      }

      const all = await ok(C, 'channels', {});
      assert.equal(all.channels[ch]?.num_clients, 7, JSON.stringify(all));
      for (const c of CHANNELS) assert.equal(all.channels[c]?.num_clients, 9, `${c}: ${JSON.stringify(all)}`);
      const some = await ok(A, 'channels', { pattern: 'room:p*' });
      assert.deepEqual(Object.keys(some.channels), [ch]);
    });

    test("the API's subscribe, unsubscribe, disconnect and refresh reach the user's connections on every node", async () => {
      const raws = [];
      for (const node of [B, C]) {
        const r = await RawClient.open(node.url);
        await r.connect(connToken('everywhere'));
        raws.push(r);
      }
      const bystander = await RawClient.open(C.url);
      await bystander.connect(connToken('someone-else'));

      await ok(A, 'subscribe', { user: 'everywhere', channel: 'room:pushed' });
      for (const r of raws) await r.waitFor((m) => m.push?.channel === 'room:pushed' && m.push.subscribe, 'server-side subscribe push');
      await ok(A, 'publish', { channel: 'room:pushed', data: { hello: 1 } });
      for (const r of raws) {
        const m = await r.waitFor((x) => x.push?.channel === 'room:pushed' && x.push.pub, 'publication on the pushed channel');
        assert.deepEqual(m.push.pub.data, { hello: 1 });
      }
      await ok(A, 'unsubscribe', { user: 'everywhere', channel: 'room:pushed' });
      for (const r of raws) await r.waitFor((m) => m.push?.channel === 'room:pushed' && m.push.unsubscribe, 'unsubscribe push');

      await ok(A, 'disconnect', { user: 'everywhere' });
      for (const r of raws) await r.expectClose('disconnected through A');
      // refresh with expired: the user's connections on both nodes are closed as expired.
      const expiring = [];
      for (const node of [B, C]) {
        const r = await RawClient.open(node.url);
        await r.connect(connToken('expiring'));
        expiring.push(r);
      }
      await ok(A, 'refresh', { user: 'expiring', expired: true });
      for (const r of expiring) {
        const closed = await r.expectClose('expired through A');
        assert.equal(closed.code, 3005, JSON.stringify(closed));  // token expired
      }
      assert.equal(bystander.closeInfo, undefined, 'another user stays connected');
      const pong = await bystander.command({ rpc: { method: 'none' } }).catch((e) => e);
      assert.ok(!(pong instanceof Error), String(pong));
      bystander.close();
    });

    test('a node stopped with SIGTERM removes its presence as it goes, announced as leaves', async () => {
      const ch = 'room:bye';
      // Its entries would live a minute: only its goodbye can remove them now.
      const E = await startNode('E', redis.map((r) => r.url), { presenceTtl: '60s' });
      const watcher = await connect(A.url, { token: connToken('bye-watcher') });
      clients.push(watcher);
      const wsub = await subscribe(watcher, ch, { joinLeave: true });
      const left = [];
      wsub.on('leave', (ctx) => left.push(ctx.info.user));
      const leaving = [];
      for (let i = 0; i < 3; i++) {
        const c = await connect(E.url, { token: connToken(`bye${i}`) });
        await subscribe(c, ch);
        leaving.push(c);
      }
      assert.deepEqual(await ok(B, 'presence_stats', { channel: ch }), { num_clients: 4, num_users: 4 });
      const deadline = Date.now() + 30_000;  // its first heartbeat registers it
      while (!(await ok(B, 'info', {})).nodes.some((n) => n.name === 'E')) {
        assert.ok(Date.now() < deadline, 'E never appeared in info');
        await sleep(200);
      }
      await E.stop();  // exit 0 after its removals were answered
      closeAll(leaving);
      assert.deepEqual(await ok(B, 'presence_stats', { channel: ch }), { num_clients: 1, num_users: 1 });
      const info = await ok(B, 'info', {});
      assert.deepEqual(info.nodes.map((n) => n.name).sort(), ['A', 'B', 'C'], 'E left the registry as it stopped');
      await waitUntil(() => left.length === 3, T, '3 leave pushes on A', () => JSON.stringify(left));
      assert.deepEqual(left.sort(), ['bye0', 'bye1', 'bye2']);
    });

    test('a node killed with -9 leaves presence after the TTL', async () => {
      const ch = 'room:doomed';
      const D = await startNode('D', redis.map((r) => r.url));
      try {
        const stay = await connect(A.url, { token: connToken('stays') });
        clients.push(stay);
        await subscribe(stay, ch);
        const gone = await connect(D.url, { token: connToken('goes') });
        await subscribe(gone, ch);
        let st = await ok(B, 'presence_stats', { channel: ch });
        assert.deepEqual(st, { num_clients: 2, num_users: 2 });
        await D.kill();
        gone.disconnect();
        st = await ok(B, 'presence_stats', { channel: ch });
        assert.ok(st.num_clients >= 1, JSON.stringify(st));
        const deadline = Date.now() + 30_000;  // presence_ttl = 3 s
        for (;;) {
          st = await ok(B, 'presence_stats', { channel: ch });
          if (st.num_clients === 1) break;
          assert.ok(Date.now() < deadline, `D's client still present: ${JSON.stringify(st)}`);
          await sleep(250);
        }
        const p = await ok(C, 'presence', { channel: ch });
        assert.deepEqual(Object.values(p.presence).map((x) => x.user), ['stays']);
      } finally {
        if (D.proc.exitCode === null && D.proc.signalCode === null) await D.kill();
      }
    });
  });
}
