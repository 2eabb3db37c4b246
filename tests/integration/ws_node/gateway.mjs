// Shared by the node ws tests: starts `switchboard` (SB_BIN_DIR) on
// ephemeral ports and stops it; bounded waits; test payloads.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const binDir = process.env.SB_BIN_DIR ?? path.join(here, '..', '..', '..', 'build', 'bin');
export const T = 10_000; // ms any single step may take

export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// n bytes of UTF-8 with 1- to 4-byte characters.
export function textOf(n) {
  const unit = 'aé€😀'; // 10 bytes
  const s = unit.repeat(Math.floor(n / 10));
  return s + 'z'.repeat(n - Buffer.byteLength(s));
}

// Resolves with the next message as { data, isBinary }.
export function nextMessage(ws, what) {
  return within(new Promise((resolve, reject) => {
    const onMsg = (data, isBinary) => { cleanup(); resolve({ data, isBinary }); };
    const onClose = (code) => { cleanup(); reject(new Error(`closed (${code}) while waiting for ${what}`)); };
    const cleanup = () => { ws.off('message', onMsg); ws.off('close', onClose); };
    ws.on('message', onMsg);
    ws.on('close', onClose);
  }), T, what);
}

// Starts the gateway with `args` (ports are added); resolves with
// { port, opsPort, stats(), stop() }. stop() sends SIGTERM and asserts exit 0.
export async function startGateway(args) {
  const gw = spawn(path.join(binDir, 'switchboard'),
    [...args, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  gw.stderr.on('data', (d) => { stderr += d; });
  let out = '';
  const ports = await within(new Promise((resolve, reject) => {
    gw.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/switchboard listening clients=\S+:(\d+) ops=\S+:(\d+)/);
      if (m) resolve({ port: Number(m[1]), opsPort: Number(m[2]) });
    });
    gw.on('exit', (code) => reject(new Error(`switchboard exited ${code}: ${stderr}`)));
  }), 30_000, 'switchboard to start');
  return {
    ...ports,
    proc: gw,
    async stats() {
      const res = await within(fetch(`http://127.0.0.1:${ports.opsPort}/stats`), T, '/stats');
      return res.json();
    },
    async stop() {
      if (gw.exitCode !== null) return;
      gw.kill('SIGTERM');
      const [code] = await within(once(gw, 'exit'), 60_000, 'switchboard to exit').catch((e) => {
        gw.kill('SIGKILL');
        throw e;
      });
      assert.equal(code, 0, `switchboard exit code; stderr: ${stderr}`);
    },
  };
}
