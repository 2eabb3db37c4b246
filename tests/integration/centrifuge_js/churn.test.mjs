// Connect/subscribe/publish/disconnect churn over 4 shards: every cycle must
// give back all its routing and protocol state (issue 4: "no leak after a
// million connect/disconnect cycles", here at 16,000 with a state-size
// check). Sessions end three ways: a close frame from the client, a TCP
// reset with no close frame, and a protocol violation the server closes.
// After each round the live-object counters (clients, users, channel
// records on both sides, subscriptions, sessions) must return to zero, and
// the bytes allocated (jemalloc's stats.allocated, from /stats) after the
// last round must not have grown by the state the cycles would have left
// behind. Not RSS: the cross-shard rings are allocated at start and their
// pages become resident as traffic first wraps around them, which looks
// like steady growth for the first ~20,000 cycles (measured).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient, T, connToken, startGateway, within } from './sb.mjs';

const SHARDS = 4;
const ROUNDS = Number(process.env.CHURN_ROUNDS ?? 16);
const PER_ROUND = 1000;
const USERS = 300;  // several connections per user: the user index chains them
const ROOMS = 37;

// Sums of the counters that count live records, over every shard.
function liveState(stats) {
  const sum = (f) => stats.per_shard.reduce((a, s) => a + f(s), 0);
  return {
    connections: stats.connections,
    client_records: sum((s) => s.protocol.client_records),
    clients: sum((s) => s.protocol.clients),
    users: sum((s) => s.protocol.users),
    local_channels: sum((s) => s.routing.local_channels),
    home_channels: sum((s) => s.routing.home_channels),
    subscriptions: sum((s) => s.routing.subscriptions),
  };
}

async function oneSession(url, i, round) {
  const c = await RawClient.open(url);
  const user = `u${(round * PER_ROUND + i) % USERS}`;
  // A personal channel from the token, and a room from a subscribe command.
  await c.connect(connToken(user, { channels: [`dialogs:#${user}`] }));
  const room = `chat:room${i % ROOMS}`;
  const r = await c.command({ subscribe: { channel: room } });
  assert.ok(r.subscribe, `subscribe ${room}: ${JSON.stringify(r)}`);
  if (i % 10 === 0) {
    const p = await c.command({ publish: { channel: room, data: { round, i } } });
    assert.ok(p.publish, `publish: ${JSON.stringify(p)}`);
  }
  return c;
}

async function endSession(c, i) {
  switch (i % 3) {
    case 0: // a clean close frame
      c.ws.close(1000);
      break;
    case 1: // vanish: TCP reset, no close frame
      c.ws._socket.resetAndDestroy();
      break;
    default: // a protocol violation: the server closes 3501
      c.sendRaw('not json');
      break;
  }
  await within(c.closed, T, `session ${i} to end`);
}

test(`${ROUNDS} rounds of ${PER_ROUND} sessions over ${SHARDS} shards release all state`, async () => {
  const gw = await startGateway({ shards: SHARDS });
  const zero = { connections: 0, client_records: 0, clients: 0, users: 0, local_channels: 0, home_channels: 0, subscriptions: 0 };
  let allocatedAfterWarmup = 0;
  let allocatedLast = 0;
  try {
    for (let round = 0; round < ROUNDS; ++round) {
      const clients = [];
      // In batches, so the test's own client stays modest.
      for (let b = 0; b < PER_ROUND; b += 250) {
        const batch = [];
        for (let i = b; i < Math.min(PER_ROUND, b + 250); ++i) batch.push(oneSession(gw.url, i, round));
        clients.push(...await Promise.all(batch));
      }
      const during = liveState(await gw.stats());
      assert.equal(during.clients, PER_ROUND, `round ${round}: connected clients ${JSON.stringify(during)}`);
      assert.ok(during.subscriptions >= 2 * PER_ROUND, `round ${round}: ${JSON.stringify(during)}`);
      await Promise.all(clients.map((c, i) => endSession(c, i)));
      let last;
      const deadline = Date.now() + 20_000;
      for (;;) {
        last = liveState(await gw.stats());
        if (JSON.stringify(last) === JSON.stringify(zero) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(last, zero, `round ${round}: state left after every session ended`);
      const memory = (await gw.stats()).memory;
      assert.ok(memory.jemalloc, `the Release gateway runs on jemalloc: ${JSON.stringify(memory)}`);
      if (round === 1) allocatedAfterWarmup = memory.jemalloc.allocated;
      allocatedLast = memory.jemalloc.allocated;
      if (process.env.CHURN_VERBOSE) console.log(`round ${round + 1}: ${JSON.stringify(memory)}`);
    }
    // Pools keep their slabs for the next wave, so the allocated bytes level
    // off after the first rounds. Half the per-session state (~450 B) left
    // behind by each of the 14 later rounds' 1,000 sessions would add ~6 MiB.
    const growth = allocatedLast - allocatedAfterWarmup;
    console.log(`allocated after round 2: ${allocatedAfterWarmup} B; after round ${ROUNDS}: ${allocatedLast} B (growth ${growth} B)`);
    assert.ok(growth < 2 * 1024 * 1024, `allocated bytes grew ${growth} B over ${ROUNDS - 2} rounds of ${PER_ROUND} sessions`);
    const st = await gw.stats();
    const protocol = st.per_shard.reduce((a, s) => a + s.protocol.connects, 0);
    assert.equal(protocol, ROUNDS * PER_ROUND, 'every session connected once');
  } finally {
    await gw.stop();
  }
});
