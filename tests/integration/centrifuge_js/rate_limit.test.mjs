// Per-connection rate limits (issue 16, part 1) with raw protocol clients:
// over its budget a command gets error 111 "too many requests" and the
// rest of the connection goes on; the buckets refill; the bytes a client
// sends have a budget of their own; a client that floods past
// client_rate_disconnect_after refusals in a second is closed with 3013;
// and through all of it a neighbour on the same shard is answered as usual,
// the process stays up and /stats and /metrics count what happened.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawClient, T, configWith, connToken, sleep, startGateway, within } from './sb.mjs';

let gw;
before(async () => {
  gw = await startGateway({
    shards: 1,  // every client on the same shard: the neighbour shares it with the flooder
    config: configWith(`client_publish_rate = 5
client_publish_burst = 5
client_subscribe_rate = 2
client_subscribe_burst = 2
client_history_rate = 1
client_read_bytes_rate = 20000
client_read_bytes_burst = 65536
client_rate_disconnect_after = 30`) + `
[[namespaces]]
name = "rl"
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 10
history_ttl = "60s"
allow_history_for_client = true
`,
  });
});
after(async () => { await gw?.stop(); });

async function client(user) {
  const c = await RawClient.open(gw.url);
  await c.connect(connToken(user));
  return c;
}

// Sends `cmds` in one frame (newline-delimited JSON, as the protocol
// allows) and waits for one reply per command; returns them by id order.
async function batch(c, cmds) {
  const ids = cmds.map(() => c.nextId++);
  c.sendRaw(cmds.map((cmd, i) => JSON.stringify({ id: ids[i], ...cmd })).join('\n'));
  const replies = [];
  for (const id of ids) replies.push(await c.waitFor((m) => m.id === id, `reply ${id}`));
  return replies;
}

const outcome = (r) => (r.error ? r.error.code : 'ok');

test('over its budget a command is refused with 111, the connection and its neighbour go on, and the bucket refills', async () => {
  const flooder = await client('flooder');
  const neighbour = await client('neighbour');
  const pubs = await batch(flooder, Array.from({ length: 8 }, (_, n) => ({ publish: { channel: 'rl:a', data: { n } } })));
  assert.deepEqual(pubs.map(outcome), ['ok', 'ok', 'ok', 'ok', 'ok', 111, 111, 111]);
  assert.equal(pubs[5].error.message, 'too many requests');
  assert.equal(pubs[5].error.temporary, true, 'centrifuge-js retries a temporary error');

  // Other kinds have their own buckets: two subscribes, then 111.
  const subs = await batch(flooder, ['rl:s1', 'rl:s2', 'rl:s3'].map((channel) => ({ subscribe: { channel } })));
  assert.deepEqual(subs.map(outcome), ['ok', 'ok', 111]);
  const hist = await batch(flooder, [{ history: { channel: 'rl:a', limit: 1 } }, { history: { channel: 'rl:a', limit: 1 } }]);
  assert.deepEqual(hist.map(outcome), ['ok', 111]);
  // Unlimited commands go through.
  const ping = await flooder.command({ ping: {} });
  assert.ok('ping' in ping && !ping.error, JSON.stringify(ping));

  // The neighbour's budget is its own.
  const theirs = await batch(neighbour, [{ publish: { channel: 'rl:a', data: { n: 'x' } } }]);
  assert.deepEqual(theirs.map(outcome), ['ok']);

  // 5 per second: after 400 ms two are back.
  await sleep(450);
  const again = await batch(flooder, Array.from({ length: 3 }, (_, n) => ({ publish: { channel: 'rl:a', data: { n } } })));
  assert.deepEqual(again.map(outcome), ['ok', 'ok', 111]);
  assert.equal(flooder.closeInfo, undefined, 'still connected');
  flooder.close();
  neighbour.close();
});

test('the bytes a client sends have their budget: a frame over it has each of its commands refused', async () => {
  const c = await client('bytes');
  const big = 'x'.repeat(40_000);
  const first = await batch(c, [{ rpc: { method: 'm', data: { big } } }]);
  assert.deepEqual(first.map(outcome), [108], 'within the budget the command runs (rpc: not available)');
  // 64 KiB at once, 40 KB spent: a second 40 KB frame does not fit.
  const second = await batch(c, [{ rpc: { method: 'm', data: { big } } }, { ping: {} }]);
  assert.deepEqual(second.map(outcome), [111, 111]);
  c.close();
});

test('flooding past client_rate_disconnect_after refusals in a second closes the client with 3013; the process and its neighbour stay', async () => {
  const flooder = await client('flood2');
  const neighbour = await client('neighbour2');
  const cmds = Array.from({ length: 60 }, (_, n) => ({ publish: { channel: 'rl:f', data: { n } } }));
  flooder.sendRaw(cmds.map((cmd, i) => JSON.stringify({ id: 1000 + i, ...cmd })).join('\n'));
  const closed = await flooder.expectClose('flooding');
  assert.deepEqual({ code: closed.code, reason: closed.reason }, { code: 3013, reason: 'too many requests' });
  const refused = flooder.msgs.filter((m) => m.error?.code === 111).length;
  assert.equal(refused, 30, 'every refusal up to the threshold was answered');

  const r = await neighbour.command({ publish: { channel: 'rl:f', data: { still: 'here' } } });
  assert.ok(r.publish !== undefined && !r.error, JSON.stringify(r));
  const stats = await gw.stats();
  const p = stats.per_shard[0].protocol;
  assert.ok(p.rate_limited >= 3 + 1 + 1 + 1 + 2 + 30, JSON.stringify(p));
  assert.equal(p.rate_limit_disconnects, 1);
  const metrics = await (await within(fetch(`http://127.0.0.1:${gw.opsPort}/metrics`), T, '/metrics')).text();
  assert.match(metrics, /switchboard_rate_limit_disconnects_total\{shard="0"\} 1\n/);
  neighbour.close();
});
