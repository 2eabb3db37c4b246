#pragma once
// The Lua scripts of the Redis engine (routing/redis_engine.hpp): each
// reads and writes a channel's keys in one step on the Redis server, so the
// offset, the stream entry and the pub/sub message of a publication are
// written together, in the same order for every node.
//
// Keys of a channel CH under prefix P (docs/ops.md "Redis key layout"):
//   P.stream.CH          stream: one entry per retained publication, id OFFSET-0, field d = body
//   P.meta.CH            hash: e = epoch, s = last offset
//   P.pub.CH             pub/sub channel every node with subscribers listens to
//   P.presence.CH        hash: client id -> presence value
//   P.presence_exp.CH    sorted set: client id by expiry (ms, Redis's clock)
//
// A stream starts (meta made, an old stream entry dropped) where the meta
// is missing: the first publish, position or history read after a restart
// of Redis that lost its data, or after history_meta_ttl of silence. The
// new epoch (ARGV, drawn by the node) tells clients that knew the old one
// that they cannot recover. Text only: any thread.

namespace sb::routing::redis_scripts {

// Meta preamble shared by the stream scripts: KEYS[1] stream, KEYS[2] meta,
// the epoch candidate in the ARGV given.
#define SB_REDIS_META_PREAMBLE(EPOCH_ARG)                  \
  "local e = redis.call('hget', KEYS[2], 'e')\n"           \
  "if not e then\n"                                        \
  "  e = ARGV[" EPOCH_ARG "]\n"                            \
  "  redis.call('hset', KEYS[2], 'e', e, 's', 0)\n"        \
  "  redis.call('del', KEYS[1])\n"                         \
  "end\n"

/// KEYS stream, meta, pub; ARGV body, history_size, history_ttl_ms,
/// meta_ttl_ms (0: none), epoch candidate. Returns {offset, epoch}.
inline constexpr const char* publish = SB_REDIS_META_PREAMBLE("5")
    "local s = redis.call('hincrby', KEYS[2], 's', 1)\n"
    "redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], s, 'd', ARGV[1])\n"
    "redis.call('pexpire', KEYS[1], ARGV[3])\n"
    "if tonumber(ARGV[4]) > 0 then redis.call('pexpire', KEYS[2], ARGV[4]) end\n"
    "redis.call('publish', KEYS[3], 'p' .. s .. ':' .. e .. ':' .. ARGV[1])\n"
    "return {s, e}\n";

/// KEYS stream, meta; ARGV meta_ttl_ms, epoch candidate. Returns {offset, epoch}.
inline constexpr const char* position = SB_REDIS_META_PREAMBLE("2")
    "if tonumber(ARGV[1]) > 0 then redis.call('pexpire', KEYS[2], ARGV[1]) end\n"
    "return {tonumber(redis.call('hget', KEYS[2], 's')), e}\n";

/// KEYS stream, meta; ARGV meta_ttl_ms, epoch candidate, since (-1: from
/// the start), limit (-1: all, 0: none), reverse ("1"). Returns {offset,
/// epoch, first retained offset (0: none), entries}.
inline constexpr const char* history = SB_REDIS_META_PREAMBLE("2")
    "if tonumber(ARGV[1]) > 0 then redis.call('pexpire', KEYS[2], ARGV[1]) end\n"
    "local s = tonumber(redis.call('hget', KEYS[2], 's'))\n"
    "local first = redis.call('xrange', KEYS[1], '-', '+', 'COUNT', 1)\n"
    "local first_id = 0\n"
    "if #first > 0 then first_id = tonumber(string.match(first[1][1], '^(%d+)')) end\n"
    "local since = tonumber(ARGV[3])\n"
    "local limit = tonumber(ARGV[4])\n"
    "local lo = '-'\n"
    "if since >= 0 then lo = string.format('%d', since + 1) end\n"
    "local entries = {}\n"
    "if limit ~= 0 then\n"
    "  local cmd, a, b = 'xrange', lo, '+'\n"
    "  if ARGV[5] == '1' then cmd, a, b = 'xrevrange', '+', lo end\n"
    "  if limit > 0 then entries = redis.call(cmd, KEYS[1], a, b, 'COUNT', limit)\n"
    "  else entries = redis.call(cmd, KEYS[1], a, b) end\n"
    "end\n"
    "return {s, e, first_id, entries}\n";

#undef SB_REDIS_META_PREAMBLE

// Presence scripts keep the hash and its expiry set together and publish a
// join or leave only when the entry really came or went.

/// KEYS presence, presence_exp, pub; ARGV client id, value, ttl_ms,
/// join_leave ("1"), join message. Returns 1 when the entry is new.
inline constexpr const char* presence_add =
    "local t = redis.call('time')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local added = redis.call('hset', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('zadd', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])\n"
    // The keys live as long as their longest-lived entry (nodes may differ in presence_ttl).
    "if redis.call('pttl', KEYS[1]) < tonumber(ARGV[3]) then\n"
    "  redis.call('pexpire', KEYS[1], ARGV[3])\n"
    "  redis.call('pexpire', KEYS[2], ARGV[3])\n"
    "end\n"
    "if added == 1 and ARGV[4] == '1' then redis.call('publish', KEYS[3], ARGV[5]) end\n"
    "return added\n";

/// KEYS presence, presence_exp, pub; ARGV client id, join_leave ("1"),
/// leave message. Returns 1 when the entry was there.
inline constexpr const char* presence_remove =
    "local n = redis.call('hdel', KEYS[1], ARGV[1])\n"
    "redis.call('zrem', KEYS[2], ARGV[1])\n"
    "if n == 1 and ARGV[2] == '1' then redis.call('publish', KEYS[3], ARGV[3]) end\n"
    "return n\n";

/// KEYS presence, presence_exp. Drops the expired entries (a node that
/// stopped refreshing them), returns the values of the others.
inline constexpr const char* presence_get =
    "local t = redis.call('time')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local gone = redis.call('zrangebyscore', KEYS[2], '-inf', now)\n"
    "for _, c in ipairs(gone) do redis.call('hdel', KEYS[1], c) end\n"
    "if #gone > 0 then redis.call('zremrangebyscore', KEYS[2], '-inf', now) end\n"
    "return redis.call('hvals', KEYS[1])\n";

}  // namespace sb::routing::redis_scripts
