// Child process of scale.test.mjs: holds `count` centrifuge-js clients
// subscribed to one channel and reports what each received. Driven over
// the IPC channel: {cmd:'start', url, count, channel, userBase} → {ready} or
// {error}; {cmd:'collect', expected, ms} → {report}; {cmd:'stop'} → exits.

import { connToken, connect, subscribe, waitUntil } from './sb.mjs';

const clients = [];
const subs = [];

async function start({ url, count, channel, userBase }) {
  const CHUNK = 50;
  for (let i = 0; i < count; i += CHUNK) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + CHUNK); j++) {
      batch.push((async () => {
        const c = await connect(url, { token: connToken(String(userBase + j)), timeout: 30_000 });
        clients.push(c);
        subs.push(await subscribe(c, channel));
      })());
    }
    await Promise.all(batch);
  }
}

// Waits (bounded) until every client has the end marker, then compares
// each client's publications with the expected list.
async function collect({ expected, ms }) {
  const done = (s) => s.pubs.some((d) => d && d.end === true);
  let timedOut = '';
  try {
    await waitUntil(() => subs.every(done), ms, 'every client to receive the end marker');
  } catch (e) {
    timedOut = e.message;
  }
  const want = JSON.stringify([...expected, { end: true }]);
  const bad = [];
  for (let i = 0; i < subs.length; i++) {
    const got = JSON.stringify(subs[i].pubs);
    if (got !== want) bad.push({ client: i, count: subs[i].pubs.length, head: got.slice(0, 300) });
  }
  const disconnects = clients.filter((c) => c.events('disconnected').length > 0 || c.events('connecting').some((e) => e.code !== 0)).length;
  return { clients: subs.length, bad: bad.slice(0, 5), badCount: bad.length, disconnects, timedOut };
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'start') {
      await start(msg);
      process.send({ ready: clients.length });
    } else if (msg.cmd === 'collect') {
      process.send({ report: await collect(msg) });
    } else if (msg.cmd === 'stop') {
      for (const c of clients) c.disconnect();
      process.disconnect();
    }
  } catch (e) {
    process.send({ error: String(e && e.stack || e) });
  }
});
