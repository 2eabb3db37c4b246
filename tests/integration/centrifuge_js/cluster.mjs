// Helpers for the cluster tests (issue 14): a real redis-server on a free
// loopback port, started and stopped by PID (killed with -9 and started
// again on the same port for the fault tests), and a cluster of gateway
// nodes on it, each with its own client, ops and API ports.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { T, configWith, sleep, startGateway, within } from './sb.mjs';

export const API_KEY = 'cluster-api-key';

// A port nothing listens on right now (the kernel's choice, then closed).
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// One RESP command over a fresh TCP connection; resolves with the raw reply.
export function redisCommand(port, ...args) {
  return within(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d) => {
      got += d;
      if (got.endsWith('\r\n')) { sock.end(); resolve(got); }
    });
    sock.on('error', reject);
  }), T, `redis ${args.join(' ')}`);
}

export class RedisServer {
  static async start() {
    const r = new RedisServer(await freePort());
    await r.start();
    return r;
  }

  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.proc = null;
  }

  // (Again) on the same port, empty: no save, no append-only file.
  async start() {
    this.proc = spawn('/usr/bin/redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if ((await redisCommand(this.port, 'PING')).startsWith('+PONG')) return;
      } catch {
        // not listening yet
      }
      assert.ok(Date.now() < deadline, `redis-server on ${this.port} did not answer PING`);
      assert.equal(this.proc.exitCode, null, `redis-server on ${this.port} exited`);
      await sleep(50);
    }
  }

  // By PID; SIGKILL is the crash the fault tests need.
  async stop(signal = 'SIGTERM') {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill(signal);
    await within(exited, 20_000, `redis-server ${signal}`);
  }
}

// The namespaces every cluster test uses, with the Redis engine's keys.
export function clusterConfig(redisUrls, extra = '', presenceTtl = '3s') {
  const addresses = redisUrls.map((u) => `"${u}"`).join(', ');
  return configWith(`api_key = "${API_KEY}"
engine = "redis"
redis_address = [${addresses}]
presence_ttl = "${presenceTtl}"
${extra}`) + `
[[namespaces]]
name = "room"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
presence = true
join_leave = true
allow_presence_for_subscriber = true

[[namespaces]]
name = "hist"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
history_size = 1000
history_ttl = "300s"
force_recovery = true
allow_history_for_subscriber = true
`;
}

// Starts one node; `node.api(method, params)` calls its server API.
export async function startNode(name, redisUrls, { shards = 2, extra = '', presenceTtl } = {}) {
  const gw = await startGateway({ config: clusterConfig(redisUrls, extra, presenceTtl), shards, args: ['--name', name] });
  gw.name = name;
  gw.api = async (method, params = {}) => {
    const r = await within(fetch(`http://127.0.0.1:${gw.opsPort}/api/${method}`, {
      method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(params),
    }), T, `${name} API ${method}`);
    assert.equal(r.status, 200, `${name} API ${method}`);
    return r.json();
  };
  // Killed with -9: no leave, no goodbye, its presence entries stay in Redis.
  gw.kill = async () => {
    const exited = once(gw.proc, 'exit');
    gw.proc.kill('SIGKILL');
    await within(exited, T, `${name} SIGKILL`);
    rmSync(gw.dir, { recursive: true, force: true });
  };
  return gw;
}
