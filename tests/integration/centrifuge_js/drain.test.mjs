// Graceful drain (issue 16, part 4): POST /drain (API key required) or
// SIGTERM stops accepting at once, /readyz turns 503 at once, the sessions
// are closed with 3001 "shutdown" spread over shutdown_drain_period after
// every publication already queued for them, and the node exits 0; a second
// SIGTERM stops at once. With Redis, a rolling restart (a node drains while
// its replacement binds the same port) loses nothing: the clients come back
// to the new process and recover every publication, in order, exactly once.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import {
  RawClient, T, configWith, connToken, connect, nextEvent, sleep, startGateway, waitUntil, within,
} from './sb.mjs';
import { RedisServer, clusterConfig, startNode } from './cluster.mjs';

const KEY = 'drain-api-key';

function drainConfig(period) {
  return configWith(`api_key = "${KEY}"\nshutdown_drain_period = "${period}"`);
}

const post = (gw, path, headers = {}) => within(fetch(`http://127.0.0.1:${gw.opsPort}${path}`, { method: 'POST', headers }),
  T, `POST ${path}`);

async function subscribed(gw, n, channel) {
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = await RawClient.open(gw.url);
    await c.connect(connToken(`d${i}`));
    const r = await c.command({ subscribe: { channel } });
    assert.ok(r.subscribe, JSON.stringify(r));
    clients.push(c);
  }
  return clients;
}

// The `n` of every publication a raw client got on `channel`, in order.
const received = (c, channel) => c.msgs.filter((m) => m.push?.channel === channel && m.push.pub).map((m) => m.push.pub.data.n);

// Whether a TCP connection to the client port is refused now.
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('drain', () => {
  const cleanup = [];
  after(async () => { for (const f of cleanup) await f(); });

  test('POST /drain: 503 at once, no new connections, 3001 spread over the period after every queued publication, exit 0', async () => {
    const gw = await startGateway({ shards: 2, config: drainConfig('3s') });
    cleanup.push(() => gw.stop());
    const ch = 'chat:drain';
    const clients = await subscribed(gw, 40, ch);

    // A stream of publications for as long as the API answers.
    let n = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing && n < 5000) {
        const r = await fetch(`http://127.0.0.1:${gw.opsPort}/api/publish`, {
          method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify({ channel: ch, data: { n } }),
        }).catch(() => null);
        if (!r || r.status !== 200) break;
        n++;
      }
    })();
    await waitUntil(() => n >= 20, T, '20 publications before the drain');

    assert.equal((await post(gw, '/drain')).status, 401, 'the API key is required');
    assert.equal((await post(gw, '/drain', { 'X-API-Key': 'wrong' })).status, 401);
    const get = await within(fetch(`http://127.0.0.1:${gw.opsPort}/drain`), T, 'GET /drain');
    assert.equal(get.status, 405);
    const r = await post(gw, '/drain', { 'X-API-Key': KEY });
    assert.equal(r.status, 202);
    const body = await r.json();
    assert.equal(body.result.draining, true);
    assert.equal(body.result.period_ms, 3000);
    assert.ok(body.result.sessions >= 40, JSON.stringify(body));
    const ready = await within(fetch(`http://127.0.0.1:${gw.opsPort}/readyz`), T, '/readyz');
    assert.equal(ready.status, 503, 'not ready from the moment the drain started');
    assert.equal((await post(gw, '/drain', { 'X-API-Key': KEY })).status, 202, 'draining again changes nothing');

    // New connections are refused; the existing ones go a few at a time.
    const deadline = Date.now() + T;
    while (!(await refused(gw.port))) {
      assert.ok(Date.now() < deadline, 'the client port still accepts');
      await sleep(20);
    }
    const counts = [];
    while (clients.some((c) => !c.closeInfo)) {
      counts.push(clients.filter((c) => !c.closeInfo).length);
      await sleep(50);
    }
    assert.ok(counts.some((k) => k > 0 && k < 40), `closed all at once, not spread: ${counts}`);
    publishing = false;
    await publisher;

    for (const [i, c] of clients.entries()) {
      assert.deepEqual({ code: c.closeInfo.code, reason: c.closeInfo.reason }, { code: 3001, reason: 'shutdown' }, `client ${i}`);
      // Everything queued before its close frame was written first: what it
      // got is the stream from the start, no gap.
      const got = received(c, ch);
      assert.deepEqual(got, Array.from({ length: got.length }, (_, k) => k), `client ${i}`);
      assert.ok(got.length >= 20, `client ${i} got ${got.length}`);
    }
    const [code] = await within(once(gw.proc, 'exit'), 6 * T, 'exit after the drain');
    assert.equal(code, 0, gw.stderr().slice(-2000));
    assert.match(gw.stderr(), /draining \(POST \/drain\)/);
  });

  test('SIGTERM drains; a second SIGTERM stops at once', async () => {
    const gw = await startGateway({ shards: 2, config: drainConfig('600s') });
    cleanup.push(() => gw.stop());
    const clients = await subscribed(gw, 20, 'chat:term');
    gw.proc.kill('SIGTERM');
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${gw.opsPort}/readyz`).catch(() => null);
      if (ready?.status === 503) break;
      await sleep(20);
    }
    // 600 s: the first tick closes one of the twenty at most; the rest wait.
    await sleep(300);
    assert.ok(clients.filter((c) => c.closeInfo).length <= 1, 'a 600 s drain closes them slowly');
    gw.proc.kill('SIGTERM');
    const [code] = await within(once(gw.proc, 'exit'), 6 * T, 'exit after the second SIGTERM');
    assert.equal(code, 0, gw.stderr().slice(-2000));
    for (const c of clients) {
      const info = await c.expectClose('shutdown');
      assert.equal(info.code, 3001, JSON.stringify(info));
    }
  });
});

describe('rolling restart on Redis', () => {
  let redis, A, B, A2;
  const clients = [];
  after(async () => {
    for (const c of clients) c.disconnect();
    for (const n of [A2, B]) await n?.stop();
    if (A && A.proc.exitCode === null) A.proc.kill('SIGKILL');
    if (A) rmSync(A.dir, { recursive: true, force: true });
    await redis?.stop();
  });

  test('a node drains while its replacement takes its port: its clients recover there with 0 lost, 0 duplicated', async () => {
    redis = await RedisServer.start();
    A = await startNode('A', [redis.url], { extra: 'shutdown_drain_period = "2s"' });
    B = await startNode('B', [redis.url]);
    const ch = 'hist:roll';
    const subs = [];
    for (let i = 0; i < 10; i++) {
      const c = await connect(A.url, { token: connToken(`roll${i}`) });
      clients.push(c);
      const sub = c.newSubscription(ch);
      sub.seen = [];
      sub.on('publication', (ctx) => sub.seen.push(ctx.data.n));
      const done = nextEvent(sub, 'subscribed', `subscribed ${i}`);
      sub.subscribe();
      await done;
      subs.push(sub);
    }
    let n = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing && n < 3000) {
        const r = await B.api('publish', { channel: ch, data: { n } });
        assert.ok(r.result, JSON.stringify(r));
        n++;
        await sleep(5);
      }
    })();
    await waitUntil(() => n >= 20, T, 'publications before the restart');

    const recovered = subs.map((sub, i) => nextEvent(sub, 'subscribed', `resubscribed ${i}`, (ctx) => ctx.wasRecovering, 6 * T));
    A.proc.kill('SIGTERM');
    // The replacement binds the same client port as soon as A stopped accepting.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        A2 = await startGateway({ config: clusterConfig([redis.url]), shards: 2, args: ['--name', 'A2'], listen: `127.0.0.1:${A.port}` });
        break;
      } catch (e) {
        assert.ok(Date.now() < deadline, `the replacement could not take port ${A.port}: ${e.message}`);
        await sleep(100);
      }
    }
    const [code] = await within(once(A.proc, 'exit'), 6 * T, 'A exits after its drain');
    assert.equal(code, 0, A.stderr().slice(-2000));
    const outcomes = await Promise.all(recovered);
    for (const [i, ctx] of outcomes.entries()) assert.equal(ctx.recovered, true, `client ${i}: ${JSON.stringify(ctx)}`);
    const until = n + 20;
    await waitUntil(() => n >= until, 2 * T, 'publications after the restart');
    publishing = false;
    await publisher;
    await waitUntil(() => subs.every((s) => s.seen.length >= n), 2 * T, `${n} publications on every client`,
      () => subs.map((s) => s.seen.length).join(','));
    await sleep(300);
    for (const [i, s] of subs.entries()) assert.deepEqual(s.seen, Array.from({ length: n }, (_, k) => k), `client ${i}`);
  });
});
