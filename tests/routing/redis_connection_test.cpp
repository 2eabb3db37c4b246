// One Redis connection (routing/redis_connection.cpp) against a real
// redis-server (tests/routing/redis_server.hpp): addresses, pipelined
// commands answered in order, every reply kind through the view, fail-fast
// while down and past max_pending, AUTH and SELECT, pub/sub, a server
// killed under pending commands and back on the same port, stop(), and the
// figures. Each connection runs on an io_context driven by the test thread;
// conditions are waited for with generous deadlines, never timed.

#include "routing/redis_connection.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/routing/redis_server.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sb::redis::connection;
using sb::redis::connection_options;
using sb::redis::reply;

// Runs `io` until `cond` holds; false when it did not within `limit`.
bool run_until(asio::io_context& io, const std::function<bool()>& cond, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    if (io.run_for(10ms) == 0) std::this_thread::sleep_for(1ms);  // nothing to do yet: no spin
  }
  return true;
}

// Runs `io` for a while: for checks that something does NOT happen.
void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    io.restart();
    if (io.run_for(10ms) == 0) std::this_thread::sleep_for(1ms);
  }
}

sb::redis::endpoint where(const std::string& url) {
  auto ep = sb::redis::parse_endpoint(url);
  sb::redis::resolve(ep);
  return ep;
}

connection_options quick() {
  connection_options o;
  o.backoff_min = 20ms;  // reconnects within the test's patience
  o.backoff_max = 200ms;
  return o;
}

// A connection with its state changes counted.
struct client {
  std::unique_ptr<connection> c;
  int ups = 0, downs = 0;
  client(asio::io_context& io, const std::string& url, connection_options o = quick(), bool pubsub = false)
      : c(std::make_unique<connection>(io, where(url), o, pubsub)) {
    c->on_state([this](bool up) { ++(up ? ups : downs); });
  }
  connection* operator->() { return c.get(); }
  connection& operator*() { return *c; }
};

// What a command answered, copied out of the view. `null`: failed without a reply.
struct answer {
  bool got = false, null = false;
  reply::kind kind = reply::kind::nil;
  std::string str;
  long long integer = 0;
};

sb::redis::reply_fn into(answer& a) {
  return [&a](const reply* r) {
    a.got = true;
    a.null = r == nullptr;
    if (!r) return;
    a.kind = r->type();
    a.str = std::string(r->str());
    a.integer = r->integer();
  };
}

// Runs one command to its answer.
answer ask(asio::io_context& io, connection& c, std::initializer_list<std::string_view> args) {
  answer a;
  c.command(args, into(a));
  EXPECT_TRUE(run_until(io, [&] { return a.got; })) << "no answer to " << *args.begin();
  return a;
}

std::uint64_t rtt_count(const sb::redis::connection_stats& s) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= sb::redis::rtt_bounds_us.size(); ++i) n += s.rtt_us.bucket(i);
  return n;
}

// ---------------------------------------------------------------------------
// addresses

TEST(redis_endpoint, parses_the_configured_forms) {
  struct form {
    const char *in, *host;
    std::uint16_t port;
    const char *password, *url;
    unsigned db;
  };
  for (const form& f : std::initializer_list<form>{
           {"redis://cache.local:7000", "cache.local", 7000, "", "redis://cache.local:7000", 0},
           {"10.0.0.5:6380", "10.0.0.5", 6380, "", "redis://10.0.0.5:6380", 0},
           {"redis://:pw@h:6390/2", "h", 6390, "pw", "redis://:***@h:6390/2", 2},  // the password never logged
           {"[::1]:6391", "::1", 6391, "", "redis://[::1]:6391", 0},
           {"redis://h", "h", 6379, "", "redis://h", 0},                       // the default port
           {"redis://:p@ss:w@h:1/", "h", 1, "p@ss:w", "redis://:***@h:1", 0},  // the last '@' ends the password
       }) {
    auto ep = sb::redis::parse_endpoint(f.in);
    EXPECT_EQ(ep.host, f.host) << f.in;
    EXPECT_EQ(ep.port, f.port) << f.in;
    EXPECT_EQ(ep.password, f.password) << f.in;
    EXPECT_EQ(ep.db, f.db) << f.in;
    EXPECT_EQ(ep.url, f.url) << f.in;
  }
}

TEST(redis_endpoint, rejects_what_it_cannot_use) {
  for (const char* bad : {"", "redis://", ":6379", "redis://:pw@:6379", "[]:6379",     // no host
                          "h:0", "h:65536", "h:x", "h:63 79", "h:-1",                  // port
                          "h:6379/x", "h:6379/-1", "h:6379/2x", "h:6379/99999999999",  // db
                          "[::1:6379"}) {
    EXPECT_THROW(sb::redis::parse_endpoint(bad), std::invalid_argument) << '"' << bad << '"';
  }
}

TEST(redis_endpoint, resolves_loopback) {
  auto ep = where("redis://127.0.0.1:6399");
  EXPECT_TRUE(ep.resolved.address().is_loopback());
  EXPECT_EQ(ep.resolved.port(), 6399);
  auto bad = sb::redis::parse_endpoint("redis://no-such-host.invalid:1");
  EXPECT_THROW(sb::redis::resolve(bad), std::runtime_error);
}

// ---------------------------------------------------------------------------
// commands

TEST(redis_connection, ten_thousand_pipelined_commands_answer_in_order) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  EXPECT_EQ(c.ups, 1);

  // All queued in one turn: one pipeline, replies matched in order.
  constexpr int n = 10'000;
  std::vector<long long> seen;
  seen.reserve(n);
  int nulls = 0;
  for (int i = 0; i < n; ++i) {
    c->command({"INCR", "counter"}, [&seen, &nulls](const reply* r) {
      if (!r) return void(++nulls);
      seen.push_back(r->integer());
    });
  }
  EXPECT_EQ(c->stats().pending.get(), static_cast<std::uint64_t>(n));
  ASSERT_TRUE(run_until(io, [&] { return seen.size() + nulls == n; }));
  EXPECT_EQ(nulls, 0);
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i + 1) << "reply " << i;
  EXPECT_EQ(ask(io, *c, {"GET", "counter"}).str, std::to_string(n));

  const auto& s = c->stats();
  EXPECT_EQ(s.up.get(), 1u);
  EXPECT_EQ(s.connects.get(), 1u);
  EXPECT_EQ(s.failures.get(), 0u);
  EXPECT_EQ(s.commands.get(), n + 1u);
  EXPECT_EQ(s.failed.get(), 0u);
  EXPECT_EQ(s.errors.get(), 0u);
  EXPECT_EQ(s.pending.get(), 0u);
  EXPECT_EQ(rtt_count(s), n + 1u);        // the handshake's own commands are not counted
  EXPECT_GT(s.bytes_out.get(), n * 20u);  // "*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n" each
  EXPECT_GT(s.bytes_in.get(), n * 4u);
}

TEST(redis_connection, every_reply_kind_reads_through_the_view) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));

  auto set = ask(io, *c, {"SET", "k", "42"});
  EXPECT_EQ(set.kind, reply::kind::status);
  EXPECT_EQ(set.str, "OK");
  auto get = ask(io, *c, {"GET", "k"});
  EXPECT_EQ(get.kind, reply::kind::string);
  EXPECT_EQ(get.str, "42");
  EXPECT_EQ(get.integer, 42);  // a string holding an integer reads as one
  auto missing = ask(io, *c, {"GET", "nope"});
  EXPECT_FALSE(missing.null);
  EXPECT_EQ(missing.kind, reply::kind::nil);
  EXPECT_EQ(missing.str, "");
  auto incr = ask(io, *c, {"INCRBY", "n", "-7"});
  EXPECT_EQ(incr.kind, reply::kind::integer);
  EXPECT_EQ(incr.integer, -7);
  EXPECT_EQ(incr.str, "");
  auto err = ask(io, *c, {"NO-SUCH-COMMAND"});
  EXPECT_EQ(err.kind, reply::kind::error);
  EXPECT_EQ(err.str.rfind("ERR", 0), 0u) << err.str;
  ask(io, *c, {"SET", "text", "abc"});
  EXPECT_EQ(ask(io, *c, {"INCR", "text"}).kind, reply::kind::error);  // not an integer
  EXPECT_EQ(c->stats().errors.get(), 2u);

  // Arrays, a nil inside one, and nesting (a script's table of tables).
  bool checked = false;
  c->command({"MGET", "k", "nope", "text"}, [&checked](const reply* r) {
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->type(), reply::kind::array);
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ(r->at(0).str(), "42");
    EXPECT_EQ(r->at(1).type(), reply::kind::nil);
    EXPECT_EQ(r->at(2).str(), "abc");
    EXPECT_EQ(r->str(), "");
    EXPECT_EQ(r->integer(), 0);
    checked = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return checked; }));
  checked = false;
  c->command({"EVAL", "return {1, {'x', {2, 'y'}}, {}}", "0"}, [&checked](const reply* r) {
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ(r->at(0).integer(), 1);
    ASSERT_EQ(r->at(1).size(), 2u);
    EXPECT_EQ(r->at(1).at(0).str(), "x");
    EXPECT_EQ(r->at(1).at(1).at(0).integer(), 2);
    EXPECT_EQ(r->at(1).at(1).at(1).str(), "y");
    EXPECT_EQ(r->at(2).type(), reply::kind::array);
    EXPECT_EQ(r->at(2).size(), 0u);
    checked = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return checked; }));
  auto pong = ask(io, *c, {"PING"});
  EXPECT_EQ(pong.kind, reply::kind::status);
  EXPECT_EQ(pong.str, "PONG");
}

TEST(redis_connection, arguments_and_replies_are_binary_safe_and_may_be_large) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  const std::string odd("a\0b\r\n$3\r\n*1\r\n:c\xff", 17);  // NUL, CRLF and RESP markers inside
  const std::string key("k\0\r\n", 4);
  ask(io, *c, {"SET", key, odd});
  EXPECT_EQ(ask(io, *c, {"GET", key}).str, odd);
  EXPECT_EQ(ask(io, *c, {"SET", "", ""}).str, "OK");  // empty arguments
  EXPECT_EQ(ask(io, *c, {"GET", ""}).str, "");
  EXPECT_EQ(ask(io, *c, {"STRLEN", ""}).integer, 0);
  // Larger than the read buffer and the write of one turn: several reads.
  std::string big(3 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>(i);
  ask(io, *c, {"SET", "big", big});
  auto got = ask(io, *c, {"GET", "big"});
  EXPECT_EQ(got.str.size(), big.size());
  EXPECT_TRUE(got.str == big);
  EXPECT_EQ(c->stats().pending.get(), 0u);
}

TEST(redis_connection, callbacks_may_queue_commands_and_stop_the_connection) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  // A chain: each answer queues the next command.
  int chain = 0;
  std::function<void(const reply*)> next = [&](const reply* r) {
    ASSERT_NE(r, nullptr);
    if (++chain < 100) c->command({"INCR", "chain"}, [&next](const reply* again) { next(again); });
  };
  c->command({"INCR", "chain"}, [&next](const reply* r) { next(r); });
  ASSERT_TRUE(run_until(io, [&] { return chain == 100; }));
  EXPECT_EQ(ask(io, *c, {"GET", "chain"}).str, "100");

  // The tenth of a hundred pipelined answers stops the connection: the
  // rest fail (null), none runs twice, and the loop survives it.
  std::vector<int> answered(100, 0);
  int nulls = 0;
  for (int i = 0; i < 100; ++i) {
    c->command({"INCR", "x"}, [&, i](const reply* r) {
      ++answered[i];
      if (!r) return void(++nulls);
      if (i == 9) c->stop();
    });
  }
  ASSERT_TRUE(run_until(io, [&] { return answered[99] == 1; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(answered[i], 1) << i;
  EXPECT_EQ(nulls, 90);
  EXPECT_FALSE(c->up());
  EXPECT_EQ(c.downs, 1);
  EXPECT_EQ(c->stats().pending.get(), 0u);
  EXPECT_EQ(c->stats().failed.get(), 90u);
}

// ---------------------------------------------------------------------------
// faults and bounds

TEST(redis_connection, fails_at_once_while_down_and_comes_up_when_redis_does) {
  sb::test::redis_server redis;
  redis.stop();  // the port is known but nothing listens
  asio::io_context io;
  client c(io, redis.url());
  // Before start(), while connecting, and after refused attempts: always
  // inside the call.
  for (int round = 0; round < 3; ++round) {
    answer a;
    c->command({"PING"}, into(a));
    EXPECT_TRUE(a.got && a.null) << "round " << round;
    if (round == 0) c->start();
    if (round == 1) {
      ASSERT_TRUE(run_until(io, [&] { return c->stats().failures.get() >= 3; }));
    }
  }
  EXPECT_FALSE(c->up());
  EXPECT_EQ(c.ups, 0);
  EXPECT_EQ(c.downs, 0);  // never up, so never lost
  EXPECT_STREQ(c->last_error(), "connect");
  EXPECT_EQ(c->stats().failed.get(), 3u);
  EXPECT_EQ(c->stats().commands.get(), 0u);
  EXPECT_EQ(c->stats().connects.get(), 0u);

  redis.start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  EXPECT_EQ(c.ups, 1);
  EXPECT_EQ(ask(io, *c, {"PING"}).str, "PONG");
  EXPECT_EQ(c->stats().connects.get(), 1u);
}

TEST(redis_connection, past_max_pending_a_command_fails_at_once) {
  sb::test::redis_server redis;
  asio::io_context io;
  auto o = quick();
  o.max_pending = 4;
  client c(io, redis.url(), o);
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  std::vector<answer> a(10);
  for (auto& x : a) c->command({"INCR", "n"}, into(x));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a[i].got, i >= 4) << i;  // the excess, inside the call
  for (int i = 4; i < 10; ++i) EXPECT_TRUE(a[i].null) << i;
  EXPECT_EQ(c->stats().pending.get(), 4u);
  ASSERT_TRUE(run_until(io, [&] { return a[3].got; }));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a[i].integer, i + 1) << i;
  EXPECT_EQ(c->stats().failed.get(), 6u);
  EXPECT_EQ(c->stats().commands.get(), 4u);
  EXPECT_EQ(c->stats().pending.get(), 0u);
  // The bound is on what waits, not on the total: room again once answered.
  std::vector<answer> b(4);
  for (auto& x : b) c->command({"INCR", "n"}, into(x));
  ASSERT_TRUE(run_until(io, [&] { return b[3].got; }));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b[i].integer, 5 + i) << i;
  EXPECT_TRUE(c->up());  // a full queue is not a fault
}

TEST(redis_connection, authenticates_and_a_wrong_password_never_comes_up) {
  sb::test::redis_server redis("s3cret:p@ss");
  const std::string hostport = "127.0.0.1:" + std::to_string(redis.port());
  asio::io_context io;
  client good(io, "redis://:s3cret:p@ss@" + hostport);
  client wrong(io, "redis://:guess@" + hostport);
  client none(io, "redis://" + hostport);
  good->start();
  wrong->start();
  none->start();
  ASSERT_TRUE(run_until(io, [&] { return good->up(); }));
  EXPECT_EQ(ask(io, *good.c, {"SET", "a", "1"}).str, "OK");
  // The others connect, are refused in the handshake, and keep trying.
  ASSERT_TRUE(run_until(io, [&] { return wrong->stats().failures.get() >= 3 && none->stats().failures.get() >= 3; }));
  for (client* c : {&wrong, &none}) {
    EXPECT_FALSE((*c)->up());
    EXPECT_EQ(c->ups, 0);
    EXPECT_GE((*c)->stats().connects.get(), 3u);  // TCP worked, the handshake did not
    answer a;
    (*c)->command({"GET", "a"}, into(a));
    EXPECT_TRUE(a.got && a.null);
  }
  EXPECT_STREQ(wrong->last_error(), "AUTH refused");
  EXPECT_STREQ(none->last_error(), "handshake");  // PING answered NOAUTH
  EXPECT_TRUE(good->up());
  EXPECT_EQ(good->stats().failures.get(), 0u);
}

TEST(redis_connection, selects_its_database_and_names_itself) {
  sb::test::redis_server redis;
  asio::io_context io;
  auto named = quick();
  named.name = "sb-test-conn";
  client db2(io, redis.url() + "/2", named);
  client db0(io, redis.url());
  client bad(io, redis.url() + "/99");  // the server has 16
  db2->start();
  db0->start();
  bad->start();
  ASSERT_TRUE(run_until(io, [&] { return db2->up() && db0->up(); }));
  ask(io, *db2.c, {"SET", "where", "two"});
  EXPECT_EQ(ask(io, *db2.c, {"GET", "where"}).str, "two");
  EXPECT_EQ(ask(io, *db0.c, {"GET", "where"}).kind, reply::kind::nil);
  EXPECT_NE(ask(io, *db2.c, {"CLIENT", "INFO"}).str.find(" db=2 "), std::string::npos);
  EXPECT_EQ(ask(io, *db2.c, {"CLIENT", "GETNAME"}).str, "sb-test-conn");
  EXPECT_EQ(ask(io, *db0.c, {"CLIENT", "GETNAME"}).kind, reply::kind::nil);
  ASSERT_TRUE(run_until(io, [&] { return bad->stats().failures.get() >= 2; }));
  EXPECT_FALSE(bad->up());
  EXPECT_EQ(bad.ups, 0);
  EXPECT_STREQ(bad->last_error(), "SELECT refused");
}

TEST(redis_connection, a_killed_server_fails_pending_commands_and_the_connection_comes_back) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  int failed_before_down = -1;  // pending commands failed when on_state(false) ran
  int nulls = 0;
  c->on_state([&](bool up) {
    ++(up ? c.ups : c.downs);
    if (!up) failed_before_down = nulls;
  });
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  EXPECT_EQ(ask(io, *c, {"INCR", "n"}).integer, 1);

  // One command the server holds (a blocking pop), then a hundred queued
  // in the same turn as the crash.
  answer blocked;
  c->command({"BLPOP", "never", "0"}, into(blocked));
  ASSERT_TRUE(
      run_until(io, [&] { return redis.command("INFO clients").find("blocked_clients:1") != std::string::npos; }));
  std::vector<answer> queued(100);
  for (auto& a : queued) {
    c->command({"INCR", "n"}, [&a, &nulls](const reply* r) {
      a.got = true;
      a.null = !r;
      if (!r) ++nulls;
    });
  }
  redis.stop(SIGKILL);
  ASSERT_TRUE(run_until(io, [&] { return c.downs == 1; }));
  EXPECT_TRUE(blocked.got && blocked.null);
  for (auto& a : queued) EXPECT_TRUE(a.got && a.null);
  EXPECT_EQ(failed_before_down, 100);  // "after the pending commands failed"
  EXPECT_FALSE(c->up());
  EXPECT_EQ(c->stats().up.get(), 0u);
  EXPECT_EQ(c->stats().pending.get(), 0u);
  EXPECT_STRNE(c->last_error(), "");

  // Down: fail fast, while it keeps trying in the background.
  answer down;
  c->command({"PING"}, into(down));
  EXPECT_TRUE(down.got && down.null);
  auto failures = c->stats().failures.get();
  ASSERT_TRUE(run_until(io, [&] { return c->stats().failures.get() >= failures + 2; }));  // refused attempts

  redis.start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  EXPECT_EQ(c.ups, 2);
  EXPECT_EQ(c.downs, 1);
  EXPECT_EQ(ask(io, *c, {"INCR", "n"}).integer, 1);  // a fresh server: the data went with the old one
  const auto& s = c->stats();
  EXPECT_EQ(s.connects.get(), 2u);
  EXPECT_EQ(s.failed.get(), 102u);  // the blocked one, the hundred, the one while down
  EXPECT_EQ(s.pending.get(), 0u);
  EXPECT_EQ(s.up.get(), 1u);
  EXPECT_GE(rtt_count(s), 2u);
}

TEST(redis_connection, stop_fails_pending_commands_and_does_not_reconnect) {
  sb::test::redis_server redis;
  asio::io_context io;
  client c(io, redis.url());
  c->start();
  ASSERT_TRUE(run_until(io, [&] { return c->up(); }));
  answer blocked;
  c->command({"BLPOP", "never", "0"}, into(blocked));
  ASSERT_TRUE(
      run_until(io, [&] { return redis.command("INFO clients").find("blocked_clients:1") != std::string::npos; }));
  std::vector<answer> queued(10);
  for (auto& a : queued) c->command({"INCR", "n"}, into(a));
  c->stop();
  // Inside stop(): every pending answer, then the state change.
  EXPECT_TRUE(blocked.got && blocked.null);
  for (auto& a : queued) EXPECT_TRUE(a.got && a.null);
  EXPECT_EQ(c.downs, 1);
  EXPECT_FALSE(c->up());
  answer after;
  c->command({"PING"}, into(after));
  EXPECT_TRUE(after.got && after.null);
  c->start();  // stopped is for good
  c->stop();   // and twice is harmless
  EXPECT_EQ(c.downs, 1);
  // Many backoff periods later it has not come back, and Redis saw it go.
  run_for(io, 600ms);
  EXPECT_FALSE(c->up());
  EXPECT_EQ(c.ups, 1);
  EXPECT_EQ(c->stats().connects.get(), 1u);
  EXPECT_EQ(c->stats().failures.get(), 0u);  // stopping is not a failure
  EXPECT_EQ(c->stats().failed.get(), 12u);
  EXPECT_TRUE(run_until(io, [&] {
    return redis.command("INFO clients").find("connected_clients:1\r") != std::string::npos;  // only this probe
  }));
}

// ---------------------------------------------------------------------------
// pub/sub

struct subscriber final : sb::redis::pubsub_handler {
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<std::string> subscribed, unsubscribed;
  void on_message(std::string_view ch, std::string_view payload) override {
    messages.emplace_back(std::string(ch), std::string(payload));
  }
  void on_subscribed(std::string_view ch) override { subscribed.emplace_back(ch); }
  void on_unsubscribed(std::string_view ch) override { unsubscribed.emplace_back(ch); }
};

TEST(redis_connection, pubsub_delivers_acknowledgements_and_messages_in_order) {
  sb::test::redis_server redis;
  asio::io_context io;
  client pub(io, redis.url());
  client sub(io, redis.url(), quick(), true);
  subscriber h;
  sub->set_pubsub_handler(&h);
  const std::vector<std::string> channels = {"ch.a", std::string("ch\0b\r\n", 6)};
  // As the engine does: (re)subscribe whenever the connection is ready.
  sub->on_state([&](bool up) {
    ++(up ? sub.ups : sub.downs);
    if (up) sub->subscribe(channels);
  });
  sub->subscribe(channels);  // ignored while down
  pub->start();
  sub->start();
  ASSERT_TRUE(run_until(io, [&] { return pub->up() && h.subscribed.size() == 2; }));
  EXPECT_EQ(h.subscribed, channels);
  EXPECT_EQ(sub.ups, 1);

  // A command on a pub/sub connection fails at once.
  answer refused;
  sub->command({"PING"}, into(refused));
  EXPECT_TRUE(refused.got && refused.null);

  constexpr int n = 2000;
  std::vector<answer> receivers(n);
  for (int i = 0; i < n; ++i) {
    std::string payload = "m" + std::to_string(i) + std::string("\0:", 2);
    pub->command({"PUBLISH", channels[i % 2], payload}, into(receivers[i]));
  }
  ASSERT_TRUE(run_until(io, [&] { return h.messages.size() == n; }));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(h.messages[i].first, channels[i % 2]) << i;
    ASSERT_EQ(h.messages[i].second, "m" + std::to_string(i) + std::string("\0:", 2)) << i;
    ASSERT_EQ(receivers[i].integer, 1) << i;
  }
  EXPECT_EQ(sub->stats().messages.get(), static_cast<std::uint64_t>(n));

  // Unsubscribe one: acknowledged, and it no longer receives.
  sub->subscribe(std::span<const std::string>(channels.data(), 1), false);
  ASSERT_TRUE(run_until(io, [&] { return h.unsubscribed.size() == 1; }));
  EXPECT_EQ(h.unsubscribed[0], "ch.a");
  EXPECT_EQ(ask(io, *pub.c, {"PUBLISH", "ch.a", "late"}).integer, 0);
  EXPECT_EQ(ask(io, *pub.c, {"PUBLISH", channels[1], "last"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return h.messages.size() == n + 1; }));
  EXPECT_EQ(h.messages.back().second, "last");
  EXPECT_TRUE(sub->up());
  EXPECT_EQ(sub->stats().failures.get(), 0u);
}

TEST(redis_connection, pubsub_subscribes_thousands_and_again_after_a_crash) {
  sb::test::redis_server redis;
  asio::io_context io;
  client pub(io, redis.url());
  client sub(io, redis.url(), quick(), true);
  subscriber h;
  sub->set_pubsub_handler(&h);
  std::vector<std::string> channels;
  for (int i = 0; i < 1300; ++i) channels.push_back("many." + std::to_string(i));  // more than one batch
  sub->on_state([&](bool up) {
    ++(up ? sub.ups : sub.downs);
    if (up) sub->subscribe(channels);
  });
  pub->start();
  sub->start();
  ASSERT_TRUE(run_until(io, [&] { return pub->up() && h.subscribed.size() == channels.size(); }));
  EXPECT_EQ(h.subscribed, channels);
  bool counted = false;
  pub->command({"PUBSUB", "NUMSUB", "many.0", "many.1299"}, [&counted](const reply* r) {
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->size(), 4u);
    EXPECT_EQ(r->at(1).integer(), 1);
    EXPECT_EQ(r->at(3).integer(), 1);
    counted = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return counted; }));

  redis.stop(SIGKILL);
  ASSERT_TRUE(run_until(io, [&] { return sub.downs == 1 && pub.downs == 1; }));
  redis.start();
  ASSERT_TRUE(run_until(io, [&] { return pub->up() && h.subscribed.size() == 2 * channels.size(); }));
  EXPECT_EQ(sub.ups, 2);
  EXPECT_EQ(ask(io, *pub.c, {"PUBLISH", "many.700", "back"}).integer, 1);
  ASSERT_TRUE(run_until(io, [&] { return h.messages.size() == 1; }));
  EXPECT_EQ(h.messages[0].first, "many.700");
  EXPECT_EQ(h.messages[0].second, "back");
  EXPECT_EQ(sub->stats().connects.get(), 2u);
}

}  // namespace
