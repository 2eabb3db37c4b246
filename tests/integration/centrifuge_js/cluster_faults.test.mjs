// A cluster's faults (issue 14), with real processes: Redis unreachable at
// start is a clear error and exit code 3; Redis killed with -9 in the middle
// of a stream of publications and started again, empty: no node crashes,
// calls that need Redis answer error 100 at once while it is away (they do
// not hang), the figures say it is down, the nodes come back by themselves,
// and every centrifuge-js subscriber on both nodes gets each publication at
// most once, in order, and is told `recovered: false` (or recovered) when it
// next recovers — never handed a wrong stream.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  T, binDir, closeAll, connToken, connect, nextEvent, sleep, subscribe, waitUntil, within,
} from './sb.mjs';
import { RedisServer, clusterConfig, freePort, startNode } from './cluster.mjs';

test('Redis unreachable at start: a clear error and exit code 3', async () => {
  const port = await freePort();  // nothing listens there
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-cluster-'));
  try {
    const cfg = path.join(dir, 'switchboard.toml');
    writeFileSync(cfg, clusterConfig([`redis://127.0.0.1:${port}`], 'redis_connect_timeout = "1s"'));
    const proc = spawn(path.join(binDir, 'switchboard'),
      ['--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const [code] = await within(once(proc, 'exit'), 6 * T, 'switchboard to give up on Redis');
    assert.equal(code, 3, out);
    assert.match(out, new RegExp(`redis.*127\\.0\\.0\\.1:${port}`, 'i'), 'the log names the server it could not reach');
    assert.doesNotMatch(out, /switchboard listening/, 'it never accepted clients');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Kills the client's TCP connection without a close frame; centrifuge-js
// reconnects by itself and recovers from its last position.
function killSocket(c) {
  c._transport._transport._socket.destroy();
}

describe('Redis killed with -9 during a stream of publications', () => {
  let redis, A, B;
  const clients = [];
  before(async () => {
    redis = await RedisServer.start();
    [A, B] = await Promise.all(['A', 'B'].map((n) => startNode(n, [redis.url])));
  });
  after(async () => {
    closeAll(clients);
    await A?.stop();  // each must exit 0: nothing crashed, nothing leaked (ASan builds)
    await B?.stop();
    await redis?.stop();
  });

  const redisUp = async (node) => {
    const s = await node.stats();
    return s.redis.servers.every((r) => r.up === r.connections);
  };

  test('no node crashes, 100 while it is away, nothing delivered twice, recovery says what it can', async (t) => {
    const ch = 'hist:stream';
    const subs = [];
    for (const [i, node] of [A, B, A, B].entries()) {
      const c = await connect(node.url, { token: connToken(`s${i}`) });
      clients.push(c);
      const sub = await subscribe(c, ch);
      sub.seen = [];
      sub.on('publication', (ctx) => sub.seen.push(ctx.data.n));
      subs.push({ where: `${node.name}/s${i}`, c, sub });
    }
    let n = 0;
    const publish = async (node) => node.api('publish', { channel: ch, data: { n: n++ } });

    // Before: all delivered.
    for (let i = 0; i < 30; i++) assert.ok((await publish(i % 2 ? B : A)).result, 'publish while Redis is up');
    await waitUntil(() => subs.every((s) => s.sub.seen.length === 30), 2 * T, '30 publications everywhere',
      () => subs.map((s) => s.sub.seen.length).join(','));

    await redis.stop('SIGKILL');
    // Away: the nodes answer error 100 at once (within the API helper's
    // deadline, not after a Redis timeout), for publish, history and presence.
    for (let i = 0; i < 5; i++) {
      const r = await publish(i % 2 ? B : A);
      assert.equal(r.error?.code, 100, JSON.stringify(r));
    }
    assert.equal((await A.api('history', { channel: ch, limit: 10 })).error?.code, 100);
    assert.equal((await B.api('presence_stats', { channel: 'room:any' })).error?.code, 100);
    const fromClient = await subs[1].sub.publish({ n: -1 }).then(() => null, (e) => e);
    assert.equal(fromClient?.code, 100, `a client's publish on B: ${JSON.stringify(fromClient)}`);
    for (const node of [A, B]) assert.equal(await redisUp(node), false, `${node.name} reports Redis down`);
    const metrics = await (await fetch(`http://127.0.0.1:${A.opsPort}/metrics`)).text();
    assert.match(metrics, /switchboard_redis_connections_up\{server="[^"]+"\} 0\n/);
    // The clients are still connected to both nodes.
    for (const s of subs) assert.equal(s.c.state, 'connected', s.where);

    await redis.start();  // the same port, empty: every stream starts again with a new epoch
    const deadline = Date.now() + 60_000;
    while (!(await redisUp(A) && await redisUp(B))) {
      assert.ok(Date.now() < deadline, 'the nodes did not reconnect to Redis');
      await sleep(100);
    }
    // Publish until every subscriber has one from the new stream (the nodes
    // SUBSCRIBE again as they reconnect), then a stream of 30 more.
    const firstAfter = n;
    for (;;) {
      const r = await publish(A);
      if (r.result && subs.every((s) => s.sub.seen.some((x) => x >= firstAfter))) break;
      assert.ok(Date.now() < deadline, `not delivered after Redis returned: ${subs.map((s) => s.sub.seen.at(-1))}`);
      await sleep(100);
    }
    const streamFrom = n;
    for (let i = 0; i < 30; i++) assert.ok((await publish(i % 2 ? B : A)).result, 'publish after Redis returned');
    await waitUntil(() => subs.every((s) => s.sub.seen.filter((x) => x >= streamFrom).length === 30), 2 * T,
      '30 publications after the restart everywhere', () => subs.map((s) => s.sub.seen.length).join(','));

    // Each client's connection dies; it recovers from where it was.
    const recovered = [];
    for (const s of subs) {
      const again = nextEvent(s.sub, 'subscribed', `${s.where} resubscribed`, (ctx) => ctx.wasRecovering, 3 * T);
      killSocket(s.c);
      recovered.push(again);
    }
    const outcomes = await Promise.all(recovered);
    t.diagnostic(`recovered: ${subs.map((s) => `${s.where}=${s.sub.log.filter((e) => e.ev === 'subscribed')
      .map((e) => e.ctx.recovered).join('/')}`).join(' ')}`);
    for (const [i, ctx] of outcomes.entries()) assert.equal(typeof ctx.recovered, 'boolean', `${subs[i].where}: ${JSON.stringify(ctx)}`);
    const lastFrom = n;
    for (let i = 0; i < 10; i++) assert.ok((await publish(i % 2 ? B : A)).result, 'publish after the recoveries');
    await waitUntil(() => subs.every((s) => s.sub.seen.filter((x) => x >= lastFrom).length === 10), 2 * T,
      'the last 10 everywhere', () => subs.map((s) => s.sub.seen.length).join(','));
    await sleep(300);

    for (const [i, s] of subs.entries()) {
      // Every (re)subscription in order. Redis lost the stream, so its epoch
      // changed: the nodes told the client (insufficient state, it
      // resubscribed) and that recovery said recovered: false. A recovery
      // may say recovered: true only within the epoch the client knew.
      const positions = s.sub.log.filter((e) => e.ev === 'subscribed').map((e) => e.ctx);
      const epochs = new Set(positions.map((ctx) => ctx.streamPosition.epoch));
      assert.equal(epochs.size, 2, `${s.where}: one epoch before the crash, one after: ${JSON.stringify(positions)}`);
      for (let k = 1; k < positions.length; k++) {
        const [was, now] = [positions[k - 1], positions[k]];
        assert.equal(now.wasRecovering, true, `${s.where}: ${JSON.stringify(positions)}`);
        if (now.streamPosition.epoch !== was.streamPosition.epoch) {
          assert.equal(now.recovered, false, `${s.where}: a new epoch reported as recovered: ${JSON.stringify(positions)}`);
        }
      }
      const seen = s.sub.seen;
      assert.equal(new Set(seen).size, seen.length, `${s.where} got something twice: ${seen}`);
      for (let k = 1; k < seen.length; k++) assert.ok(seen[k] > seen[k - 1], `${s.where} out of order at ${k}: ${seen}`);
      assert.deepEqual(seen.slice(0, 30), Array.from({ length: 30 }, (_, k) => k), `${s.where} before the crash`);
      assert.ok(!seen.some((x) => x >= 30 && x < firstAfter), `${s.where} got a publication refused while Redis was away`);
      if (outcomes[i].recovered) {
        // Told recovered: nothing of the current stream may be missing.
        const tail = seen.filter((x) => x >= streamFrom);
        assert.deepEqual(tail, Array.from({ length: n - streamFrom }, (_, k) => streamFrom + k), s.where);
      }
    }
    assert.equal(A.proc.exitCode, null, 'A is up');
    assert.equal(B.proc.exitCode, null, 'B is up');
  });
});
