// With --shards 4: 1,000 centrifuge-js clients (4 child processes of 250)
// subscribed to chat:all each receive all 100 publications of one client
// exactly once and in publish order; a personal channel reaches every
// connection of a user whose connections sit on different shards.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeAll, connToken, connect, startGateway, subscribe, T, waitUntil, within } from './sb.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROCS = Number(process.env.SB_CF_PROCS ?? 4);
const PER_PROC = Number(process.env.SB_CF_PER_PROC ?? 250);
const PUBS = 100;

let gw;
const clients = [];
const workers = [];

before(async () => { gw = await startGateway({ shards: 4 }); });

after(async () => {
  for (const w of workers) {
    if (w.connected) w.send({ cmd: 'stop' });
  }
  await Promise.all(workers.map((w) => (w.exitCode === null ? within(once(w, 'exit'), 30_000, 'worker exit').catch(() => w.kill()) : null)));
  closeAll(clients);
  if (gw) await gw.stop();
});

const perShardClients = (stats) => stats.per_shard.map((s) => s.protocol?.clients ?? s.open);

test('personal channel: 8+ connections of user 7 on different shards all receive', async () => {
  const conns = [];
  const subs = [];
  let spread = [];
  // Open 8; if the kernel happened to put them all on one shard, open more
  // (bounded) until at least two shards hold one.
  while (conns.length < 8 || (spread.filter((n) => n > 0).length < 2 && conns.length < 32)) {
    const c = await connect(gw.url, { token: connToken('7') });
    conns.push(c); clients.push(c);
    subs.push(await subscribe(c, 'dialogs:#7'));
    spread = perShardClients(await gw.stats());
  }
  assert.ok(spread.filter((n) => n > 0).length >= 2, `user 7's connections per shard: ${JSON.stringify(spread)}`);

  const u8 = await connect(gw.url, { token: connToken('8') });
  clients.push(u8);
  for (let i = 0; i < 10; i++) {
    await within(u8.publish('dialogs:#7', { from: 8, i }), T, `user 8 publishes ${i} to dialogs:#7`);
  }
  const expected = Array.from({ length: 10 }, (_, i) => ({ from: 8, i }));
  for (let k = 0; k < subs.length; k++) {
    await waitUntil(() => subs[k].pubs.length >= 10, T, `connection ${k} of user 7 to receive 10`, () => JSON.stringify(subs[k].pubs));
    assert.deepEqual(subs[k].pubs, expected, `connection ${k} of user 7 (shards: ${JSON.stringify(spread)})`);
  }
  closeAll(conns);
});

test(`${PROCS * PER_PROC} clients on chat:all receive ${PUBS} publications exactly once, in order`, async () => {
  for (let p = 0; p < PROCS; p++) {
    const w = fork(path.join(here, 'scale_worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    workers.push(w);
  }
  const reply = (w, what, ms) => within(new Promise((resolve, reject) => {
    w.once('message', (m) => (m.error ? reject(new Error(`worker: ${m.error}`)) : resolve(m)));
    w.once('exit', (code) => reject(new Error(`worker exited ${code} during ${what}`)));
  }), ms, what);
  const ready = workers.map((w, p) => reply(w, `worker ${p} to connect ${PER_PROC} clients`, 180_000));
  workers.forEach((w, p) => w.send({ cmd: 'start', url: gw.url, count: PER_PROC, channel: 'chat:all', userBase: 10_000 + p * PER_PROC }));
  const counts = await Promise.all(ready);
  assert.deepEqual(counts.map((m) => m.ready), workers.map(() => PER_PROC));

  const publisher = await connect(gw.url, { token: connToken('9999') });
  clients.push(publisher);
  const psub = await subscribe(publisher, 'chat:all');
  for (let i = 0; i < PUBS; i++) {
    await within(psub.publish({ n: i }), T, `publish ${i}`);
  }
  await within(psub.publish({ end: true }), T, 'publish end marker');

  const expected = Array.from({ length: PUBS }, (_, i) => ({ n: i }));
  const reports = await Promise.all(workers.map((w, p) => {
    const r = reply(w, `worker ${p} report`, 150_000);
    w.send({ cmd: 'collect', expected, ms: 120_000 });
    return r;
  }));
  for (const [p, { report }] of reports.entries()) {
    assert.equal(report.timedOut, '', `worker ${p}: ${JSON.stringify(report)}`);
    assert.equal(report.badCount, 0, `worker ${p}: clients with wrong publications: ${JSON.stringify(report)}`);
    assert.equal(report.disconnects, 0, `worker ${p}: clients that were disconnected: ${JSON.stringify(report)}`);
  }
  await waitUntil(() => psub.pubs.length === PUBS + 1, T, 'publisher to receive its own publications');
  assert.deepEqual(psub.pubs, [...expected, { end: true }]);
  const stats = await gw.stats();
  assert.ok(perShardClients(stats).filter((n) => n > 0).length >= 2, `clients per shard: ${JSON.stringify(perShardClients(stats))}`);
});
