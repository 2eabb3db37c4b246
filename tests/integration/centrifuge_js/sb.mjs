// Helpers for the centrifuge-js integration tests: start the real gateway on
// ephemeral ports with a temporary TOML config, mint HS256 JWTs with node's
// crypto, a raw Centrifuge-protocol client on node `ws`, and bounded waits.
// Every wait here has a deadline; a test that waits too long fails with what
// it saw instead of hanging.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Centrifuge as CentrifugeJson } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';

const here = path.dirname(fileURLToPath(import.meta.url));
export const binDir = process.env.SB_BIN_DIR ?? path.join(here, '..', '..', '..', 'build', 'bin');
export const SECRET = 'test-secret';
export const T = 10_000; // ms any single protocol step may take

// The config of the brief: Centrifugo v5 names (docs/config.md).
export const BASE_CONFIG = `
token_hmac_secret_key = "${SECRET}"
allow_anonymous_connect = false
client_channel_limit = 4
ping_interval = "2s"
pong_timeout = "2s"
allow_subscribe_for_client = true

[[namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true

[[namespaces]]
name = "dialogs"
allow_user_limited_channels = true
allow_publish_for_client = true

[[namespaces]]
name = "private"
`;

export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls cond() until true; fails with describe() of the last state. Both
// may be async (awaited: a pending promise is not "true").
export async function waitUntil(cond, ms, what, describe = () => '') {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(20);
  }
  if (await cond()) return;
  const seen = await describe();
  throw new Error(`timed out after ${ms} ms waiting for ${what}${seen ? `; saw ${seen}` : ''}`);
}

// Resolves with the args of the next `name` event (on an EventEmitter) for
// which pred(...args) holds.
export function nextEvent(emitter, name, what, pred = () => true, ms = T) {
  let handler;
  return within(new Promise((resolve) => {
    handler = (...args) => { if (pred(...args)) resolve(args.length > 1 ? args : args[0]); };
    emitter.on(name, handler);
  }), ms, what).finally(() => emitter.off(name, handler));
}

// ---------------------------------------------------------------- gateway

// Top-level TOML keys go before the first [[namespaces]] table.
export function configWith(extraTopLevel) {
  return `${extraTopLevel}\n${BASE_CONFIG}`;
}

// `listen` (default: a free port) is for restartGateway.
export async function startGateway({ config = BASE_CONFIG, shards, args = [], listen = '127.0.0.1:0' } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-cfjs-'));
  const cfg = path.join(dir, 'switchboard.toml');
  writeFileSync(cfg, config);
  const argv = ['--listen', listen, '--ops-listen', '127.0.0.1:0', '--config', cfg];
  if (shards) argv.push('--shards', String(shards));
  // Set by the sanitizer builds' ctest (TSan: --shared-fd-table).
  argv.push(...(process.env.SB_GATEWAY_ARGS ?? '').split(' ').filter(Boolean));
  argv.push(...args);
  const proc = spawn(path.join(binDir, 'switchboard'), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let out = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const ports = await within(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/switchboard listening clients=(\S+):(\d+) ops=(\S+):(\d+)/);
      if (m) resolve({ port: Number(m[2]), opsPort: Number(m[4]) });
    });
    proc.on('exit', (code, sig) => reject(new Error(`switchboard exited (${code ?? sig}) before listening: ${stderr}`)));
    proc.on('error', reject);
  }), 30_000, 'switchboard to start').catch((e) => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); throw e; });
  proc.stdout.resume();
  return {
    proc,
    dir,
    ...ports,
    url: `ws://127.0.0.1:${ports.port}/connection/websocket`,
    stderr: () => stderr,
    async stats() {
      const r = await within(fetch(`http://127.0.0.1:${ports.opsPort}/stats`), T, 'GET /stats');
      return r.json();
    },
    // SIGTERM; the gateway must exit 0.
    async stop() {
      try {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = once(proc, 'exit');
          proc.kill('SIGTERM');
          await within(exited, 60_000, 'switchboard to exit after SIGTERM').catch((e) => {
            proc.kill('SIGKILL');
            throw e;
          });
        }
        assert.equal(proc.exitCode, 0, `switchboard exit code (signal ${proc.signalCode}); stderr: ${stderr.slice(-2000)}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// The sum of a /metrics family's samples whose line contains every string
// of `having` (labels such as 'endpoint="rpc"').
export async function metric(gw, name, having = []) {
  const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/metrics`), T, 'GET /metrics');
  const text = await r.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line[name.length] === '_') continue;
    if (having.every((h) => line.includes(h))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

// Stops `gw` (it must exit 0) and starts a new gateway with `opts` (as
// startGateway) on the same client port, as clients see a restart: they
// reconnect to the same URL. The ops port is a new one.
export async function restartGateway(gw, opts = {}) {
  await gw.stop();
  return startGateway({ ...opts, listen: `127.0.0.1:${gw.port}` });
}

// ---------------------------------------------------------------- JWT

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

export function mintToken(claims, { secret = SECRET, header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const signing = `${b64url(header)}.${b64url(claims)}`;
  const sig = header.alg === 'none' ? '' : createHmac('sha256', secret).update(signing).digest('base64url');
  return `${signing}.${sig}`;
}

export const now = () => Math.floor(Date.now() / 1000);

// Connection token for `user`, valid for `ttl` seconds.
export function connToken(user, extra = {}, ttl = 3600) {
  return mintToken({ sub: String(user), exp: now() + ttl, ...extra });
}

// Subscription token (private channels).
export function subToken(user, channel, ttl = 3600) {
  return mintToken({ sub: String(user), channel, exp: now() + ttl });
}

// ---------------------------------------------------------------- centrifuge-js

// The wire format centrifuge-js clients speak: SB_CF_PROTOCOL=protobuf runs
// the same suites with centrifuge-js's protobuf build (binary frames,
// `centrifuge-protobuf` subprotocol). RawClient always speaks JSON, so
// those suites then mix both formats on one channel.
export const PROTOCOL = process.env.SB_CF_PROTOCOL === 'protobuf' ? 'protobuf' : 'json';

// In Protobuf, payloads are bytes: the tests keep writing and comparing
// JSON values, so values going out are JSON-encoded to bytes and bytes
// coming in are parsed back (left as bytes when they are not JSON).
const toBytes = (v) => (v === undefined || v instanceof Uint8Array ? v : new TextEncoder().encode(JSON.stringify(v)));
function fromBytes(v) {
  if (!(v instanceof Uint8Array)) return v;
  if (v.length === 0) return undefined;
  try { return JSON.parse(new TextDecoder().decode(v)); } catch { return v; }
}
function decodeInfo(info) {
  if (!info) return info;
  const out = { ...info };
  for (const k of ['connInfo', 'chanInfo', 'conn_info', 'chan_info']) if (k in out) out[k] = fromBytes(out[k]);
  return out;
}
function decodeCtx(ctx) {
  if (!ctx || typeof ctx !== 'object') return ctx;
  const out = { ...ctx };
  if ('data' in out) out.data = fromBytes(out.data);
  if (out.info) out.info = decodeInfo(out.info);
  if (Array.isArray(out.publications)) out.publications = out.publications.map(decodeCtx);
  if (out.clients) out.clients = Object.fromEntries(Object.entries(out.clients).map(([k, v]) => [k, decodeInfo(v)]));
  return out;
}
// Wraps an emitter's events and the payload-carrying methods of a client or
// subscription with the conversions above.
function adaptProtobuf(target, methods) {
  const emit = target.emit.bind(target);
  target.emit = (ev, ctx, ...rest) => emit(ev, decodeCtx(ctx), ...rest);
  for (const [name, argIndex] of methods) {
    const orig = target[name].bind(target);
    target[name] = async (...args) => {
      if (argIndex !== null) args[argIndex] = toBytes(args[argIndex]);
      return decodeCtx(await orig(...args));
    };
  }
  return target;
}
function protobufOpts(opts) {
  const out = { ...opts };
  if (out.data !== undefined) out.data = toBytes(out.data);
  return out;
}

// The server API as a backend calls it: POST /api/<method> with X-API-Key;
// asserts HTTP 200 and resolves with the parsed answer.
export async function apiCall(gw, key, method, params) {
  const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': key }, body: JSON.stringify(params),
  }), T, `POST /api/${method}`);
  const text = await r.text();
  assert.equal(r.status, 200, `${method}: ${text}`);
  return JSON.parse(text);
}

// A centrifuge-js client on node `ws`; records its events for assertions.
export function newClient(url, opts = {}) {
  const Centrifuge = PROTOCOL === 'protobuf' ? CentrifugeProtobuf : CentrifugeJson;
  const base = { websocket: WebSocket, minReconnectDelay: 200, maxReconnectDelay: 2000, ...opts };
  const c = new Centrifuge(url, PROTOCOL === 'protobuf' ? protobufOpts(base) : base);
  if (PROTOCOL === 'protobuf') {
    adaptProtobuf(c, [['publish', 1], ['rpc', 1], ['send', 0], ['history', null], ['presence', null], ['presenceStats', null]]);
    const newSubscription = c.newSubscription.bind(c);
    c.newSubscription = (channel, sopts = {}) => adaptProtobuf(newSubscription(channel, protobufOpts(sopts)),
      [['publish', 0], ['history', null], ['presence', null], ['presenceStats', null]]);
  }
  c.log = [];
  for (const ev of ['connecting', 'connected', 'disconnected', 'error', 'subscribed', 'publication']) {
    c.on(ev, (ctx) => c.log.push({ ev, ctx }));
  }
  c.events = (ev) => c.log.filter((e) => e.ev === ev).map((e) => e.ctx);
  return c;
}

export async function connect(url, opts = {}) {
  const c = newClient(url, opts);
  const connected = nextEvent(c, 'connected', 'centrifuge-js connected');
  c.connect();
  try {
    await connected;
  } catch (e) {
    c.disconnect();
    throw new Error(`${e.message}; events: ${JSON.stringify(c.log).slice(0, 1000)}`);
  }
  // The format in use is the one asked for (ws's negotiated subprotocol).
  const negotiated = c._transport?._transport?.protocol ?? '';
  assert.equal(negotiated, PROTOCOL === 'protobuf' ? 'centrifuge-protobuf' : '', 'negotiated subprotocol');
  return c;
}

// Subscribes (client side) and waits for `subscribed`; collects publications in sub.pubs.
export async function subscribe(c, channel, opts = {}) {
  const sub = c.newSubscription(channel, opts);
  sub.pubs = [];
  sub.log = [];
  sub.on('publication', (ctx) => sub.pubs.push(ctx.data));
  for (const ev of ['subscribing', 'subscribed', 'unsubscribed', 'error']) {
    sub.on(ev, (ctx) => sub.log.push({ ev, ctx }));
  }
  const done = nextEvent(sub, 'subscribed', `subscribed to ${channel}`);
  sub.subscribe();
  try {
    await done;
  } catch (e) {
    throw new Error(`${e.message}; subscription events: ${JSON.stringify(sub.log)}`);
  }
  return sub;
}

// Subscribes and expects the server to refuse: resolves with the
// `unsubscribed` context centrifuge-js reports.
export async function subscribeRefused(c, channel, opts = {}) {
  const sub = c.newSubscription(channel, opts);
  const log = [];
  for (const ev of ['subscribing', 'subscribed', 'unsubscribed', 'error']) sub.on(ev, (ctx) => log.push({ ev, ctx }));
  const refused = nextEvent(sub, 'unsubscribed', `unsubscribed (refused) for ${channel}`);
  sub.subscribe();
  let ctx;
  try {
    ctx = await refused;
  } catch (e) {
    throw new Error(`${e.message}; subscription events: ${JSON.stringify(log)}`);
  } finally {
    c.removeSubscription(sub);
  }
  assert.ok(!log.some((e) => e.ev === 'subscribed'), `${channel}: subscribed before refused: ${JSON.stringify(log)}`);
  return ctx;
}

export function closeAll(clients) {
  for (const c of clients) {
    if (c) c.disconnect();
  }
}

// ---------------------------------------------------------------- raw protocol

// A raw Centrifuge protocol v2 JSON client on node `ws`. Splits every text
// frame into newline-separated JSON objects; answers the server's `{}` ping
// with `{}` when autoPong is set.
export class RawClient {
  constructor(url, { autoPong = true, wsOptions = {} } = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...wsOptions });
    this.autoPong = autoPong;
    this.frames = [];    // raw text of each frame
    this.msgs = [];      // parsed objects, in arrival order
    this.pings = 0;
    this.nextId = 1;
    this.waiters = [];
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        // 1006 is ws's own code for "no close frame"; error says why
        // (e.g. an invalid frame from the server).
        this.closeInfo = { code, reason: reason.toString(), ...(this.error ? { clientError: String(this.error.message) } : {}) };
        resolve(this.closeInfo);
        this._poke();
      });
    });
    this.ws.on('error', (e) => { this.error = e; });
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      this.frames.push(isBinary ? `<binary ${data.length}>` : text);
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let obj;
        try { obj = JSON.parse(line); } catch { obj = { unparsable: line }; }
        if (Object.keys(obj).length === 0) {
          this.pings++;
          if (this.autoPong && this.ws.readyState === WebSocket.OPEN) this.ws.send('{}');
        }
        this.msgs.push(obj);
      }
      this._poke();
    });
  }

  static async open(url, opts) {
    const c = new RawClient(url, opts);
    await within(once(c.ws, 'open'), T, 'raw ws open');
    return c;
  }

  _poke() {
    for (const w of this.waiters.slice()) w();
  }

  // Waits for the first message (from index `from`) matching pred.
  async waitFor(pred, what, ms = T, from = 0) {
    let waiter;
    try {
      return await within(new Promise((resolve, reject) => {
        waiter = () => {
          const m = this.msgs.slice(from).find(pred);
          if (m) resolve(m);
          else if (this.closeInfo) reject(new Error(`closed ${JSON.stringify(this.closeInfo)} while waiting for ${what}; got ${JSON.stringify(this.msgs).slice(0, 800)}`));
        };
        this.waiters.push(waiter);
        waiter();
      }), ms, `${what}; got ${JSON.stringify(this.msgs).slice(0, 800)}`);
    } finally {
      this.waiters = this.waiters.filter((w) => w !== waiter);
    }
  }

  sendRaw(data) { this.ws.send(data); }

  // Sends one command (id assigned unless given) and returns its reply.
  async command(cmd, what = JSON.stringify(cmd).slice(0, 100)) {
    const id = cmd.id ?? this.nextId++;
    this.ws.send(JSON.stringify({ id, ...cmd }));
    return this.waitFor((m) => m.id === id, `reply to ${what}`);
  }

  async connect(token) {
    const r = await this.command({ connect: { token, name: 'raw', version: '0' } }, 'connect');
    assert.ok(r.connect, `connect reply: ${JSON.stringify(r)}`);
    return r.connect;
  }

  async expectClose(what, ms = T) {
    return within(this.closed, ms, `close: ${what}; got ${JSON.stringify(this.msgs).slice(0, 500)}`);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}
