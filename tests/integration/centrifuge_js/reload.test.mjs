// Hot reload (issue 16, part 5): the config file is rewritten and the
// process gets SIGHUP. What can change while running changes on every
// shard — token key, API key, namespaces, rate limits, admission, log
// level — while the connected centrifuge-js clients stay connected and
// subscribed and keep receiving; a file that does not parse or validate is
// rejected with a log line and the running config stays; a key only a
// restart can change is reported and left as it runs. /stats and /metrics
// show the generation.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RawClient, T, connect, mintToken, now, startGateway, subscribe, waitUntil, within } from './sb.mjs';

const config = ({ secret, key, extraTop = '', extraNs = '' }) => `
token_hmac_secret_key = "${secret}"
api_key = "${key}"
ping_interval = "2s"
pong_timeout = "2s"
${extraTop}

[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_client = true
${extraNs}
`;

const tokenWith = (secret, user) => mintToken({ sub: user, exp: now() + 3600 }, { secret });
let gw;
let file;

before(async () => {
  gw = await startGateway({ shards: 2, config: config({ secret: 'first-secret', key: 'first-key' }) });
  file = path.join(gw.dir, 'switchboard.toml');
});
after(async () => { await gw?.stop(); });

async function api(method, params, key) {
  const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': key }, body: JSON.stringify(params),
  }), T, `api ${method}`);
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function metric(name) {
  const text = await (await within(fetch(`http://127.0.0.1:${gw.opsPort}/metrics`), T, 'metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

// Rewrites the file, sends SIGHUP, waits until /stats shows `generation`
// on every shard (or, for a rejected file, the rejection).
async function reload(text, { expectGeneration, expectRejected } = {}) {
  writeFileSync(file, text);
  gw.proc.kill('SIGHUP');
  await waitUntil(async () => {
    const c = (await gw.stats()).config;
    if (expectRejected !== undefined) return c.reloads_rejected === expectRejected;
    return c.generation === expectGeneration && c.shard_generations.every((g) => g === expectGeneration);
  }, T, `reload to ${expectGeneration ?? 'rejected'}`, async () => JSON.stringify((await gw.stats()).config));
  return (await gw.stats()).config;
}

test('a reload changes keys, namespaces and limits on every shard without dropping anyone', async () => {
  assert.deepEqual((await gw.stats()).config.shard_generations, [1, 1]);
  assert.equal(await metric('switchboard_config_generation'), 1);
  // Clients on both shards (the kernel spreads them), connected with the first key.
  const clients = [];
  const subs = [];
  for (let i = 0; i < 6; i++) {
    const c = await connect(gw.url, { token: tokenWith('first-secret', `u${i}`) });
    clients.push(c);
    subs.push(await subscribe(c, 'chat:room'));
  }
  const raw = await RawClient.open(gw.url);
  await raw.connect(tokenWith('first-secret', 'raw'));

  const c2 = await reload(config({
    secret: 'second-secret', key: 'second-key',
    extraTop: 'client_publish_rate = 0.01\nclient_publish_burst = 1\nlog_level = "warn"',
    extraNs: '[[namespaces]]\nname = "news"\nallow_subscribe_for_client = true',
  }), { expectGeneration: 2 });
  assert.equal(c2.reloads, 1);
  assert.deepEqual(c2.restart_needed_for, []);
  assert.equal(await metric('switchboard_config_generation'), 2);
  assert.equal(await metric('switchboard_config_reloads_total{outcome="applied"}'), 1);

  // Nobody was dropped, and a publication through the API with the new key reaches all.
  for (const c of clients) assert.equal(c.state, 'connected');
  assert.equal((await api('publish', { channel: 'chat:room', data: { n: 1 } }, 'first-key')).status, 401);
  const ok = await api('publish', { channel: 'chat:room', data: { n: 1 } }, 'second-key');
  assert.equal(ok.status, 200, JSON.stringify(ok));
  await waitUntil(() => subs.every((s) => s.pubs.length === 1), T, 'every subscriber got the publication');
  for (const c of clients) assert.equal(c.events('disconnected').length, 0);

  // The new token key: a new client with the old one is refused, with the new one it connects,
  // and the new namespace exists.
  const stale = await RawClient.open(gw.url);
  stale.sendRaw(JSON.stringify({ id: 1, connect: { token: tokenWith('first-secret', 'late') } }));
  assert.equal((await stale.expectClose('old token key')).code, 3500);
  const fresh = await connect(gw.url, { token: tokenWith('second-secret', 'late') });
  await subscribe(fresh, 'news:today');

  // The new rate limit holds for a connection that was there before the reload.
  const first = await raw.command({ publish: { channel: 'chat:raw', data: {} } });
  const second = await raw.command({ publish: { channel: 'chat:raw', data: {} } });
  assert.ok(first.publish, JSON.stringify(first));
  assert.equal(second.error?.code, 111, JSON.stringify(second));

  // log_level = "warn": the reload's own line is a warning, info lines are gone from here on.
  assert.match(gw.stderr(), /WARN.*config reloaded \(SIGHUP\): generation 2/);
  raw.close();
  fresh.disconnect();
  for (const c of clients) c.disconnect();
});

test('a config that does not parse or validate is rejected and the running one stays', async () => {
  const before = (await gw.stats()).config;
  const good = config({ secret: 'second-secret', key: 'second-key' });
  let c = await reload('this is = = not toml\n', { expectRejected: before.reloads_rejected + 1 });
  assert.equal(c.generation, before.generation);
  assert.ok(c.last_error.length > 0);
  c = await reload(good + 'client_publish_rate = -5\n', { expectRejected: before.reloads_rejected + 2 });
  assert.match(c.last_error, /client_publish_rate/);
  // A key that does not load (a broken PEM) is a rejection too, not a crash.
  c = await reload(good.replace('token_hmac_secret_key', 'token_rsa_public_key = "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"\ntoken_hmac_secret_key'),
    { expectRejected: before.reloads_rejected + 3 });
  assert.equal(c.generation, before.generation);
  assert.equal(await metric('switchboard_config_reloads_total{outcome="rejected"}'), 3);
  assert.match(gw.stderr(), /config reload \(SIGHUP\) rejected, generation \d+ stays in force/);
  // Still serving with the running config.
  const c2 = await connect(gw.url, { token: tokenWith('second-secret', 'after-bad') });
  assert.equal((await api('publish', { channel: 'chat:x', data: {} }, 'second-key')).status, 200);
  c2.disconnect();
});

test('keys only a restart can change are reported and keep their running values', async () => {
  const before = (await gw.stats()).config;
  const c = await reload(config({ secret: 'second-secret', key: 'second-key', extraTop: 'max_message_size = 1024\nmax_queued_bytes = 4096' }),
    { expectGeneration: before.generation + 1 });
  assert.deepEqual(c.restart_needed_for.sort(), ['max_message_size', 'max_queued_bytes']);
  assert.match(gw.stderr(), /max_message_size, max_queued_bytes changed but take effect only after a restart/);
  // A 2 KiB message is still allowed (the running max_message_size stays 65536).
  const raw = await RawClient.open(gw.url);
  await raw.connect(tokenWith('second-secret', 'big'));
  const r = await raw.command({ publish: { channel: 'chat:big', data: { pad: 'x'.repeat(2048) } } });
  assert.ok(r.publish, JSON.stringify(r));
  raw.close();
});
