// swload worker, the Centrifuge protocol (and the raw one's few words): the
// connect and subscribe commands after the upgrade, the replies to them and
// to publications, deliveries with their latency and order checks (per
// publisher, per chat room), and in the reconnect scenario the subscribe
// replies with their recovered publications and the offsets each client
// has. The worker class is in worker.hpp; the frames come from
// worker_io.cpp.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "worker.hpp"

namespace swload::in_worker {

void worker::on_upgraded(long i) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (_o.proto == protocol::centrifuge) {
    long g = global(i);
    std::string personal = _o.personal.empty() ? std::string() : wire::expand(_o.personal, g);
    k.st = state::connecting_cf;
    send_text(i, wire::connect_command(_o.secret, wire::expand(_o.user, g), personal));
  } else if (subscribes(i)) {
    k.st = state::subscribing;
    send_text(i, "sub " + channel_for(i));
  } else {
    mark_ready(i);
  }
}

void worker::on_text(long i, std::string_view text, std::int64_t now) {
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (_o.proto == protocol::raw) {
    if (k.st == state::subscribing && text == "ok") return mark_ready(i);
    return on_delivery(i, text, now);
  }
  // Centrifuge: one JSON object per line; look only at what swload needs.
  while (!text.empty() && k.st != state::dead) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line == "{}") {
      send_text(i, "{}");  // protocol ping
    } else if (line.starts_with(R"({"push":)")) {
      if (_reconnect) {
        std::uint64_t offset = 0;
        std::string_view pub = wire::member(wire::member(line, "push"), "pub");
        if (wire::to_u64(wire::member(pub, "offset"), offset)) on_offset(i, offset, true, now);
        continue;
      }
      auto pos = line.find(R"("pub":)");
      if (pos != std::string_view::npos) on_delivery(i, line.substr(pos), now);
    } else if (line.starts_with(R"({"id":)")) {
      on_reply(i, line, now);
    }
  }
}

// id 1: connect, id 2: subscribe, higher: publications.
void worker::on_reply(long i, std::string_view line, std::int64_t now) {
  std::uint64_t id = 0;
  wire::find_number(line, "id", id);
  bool error = line.find(R"("error":)") != std::string_view::npos;
  conn& k = _conns[static_cast<std::size_t>(i)];
  if (id == 1 && k.st == state::connecting_cf) {
    if (error) return fail(i, r_connect_error);
    if (!subscribes(i)) return mark_ready(i);
    k.st = state::subscribing;
    std::string recover;
    if (_reconnecting) {
      recover = R"(,"recover":true,"offset":)" + std::to_string(_offsets[static_cast<std::size_t>(i)]) +
                R"(,"epoch":")" + _epoch + '"';
    }
    send_text(i, R"({"id":2,"subscribe":{"channel":")" + channel_for(i) + '"' + recover + "}}");
  } else if (id == 2 && k.st == state::subscribing) {
    if (error) return fail(i, r_subscribe_error);
    if (_reconnect && !on_subscribed(i, line, now)) return;
    mark_ready(i);
  } else if (error) {
    ++_c.pub_errors;
  }
}

// A publication {"t":<ns>,"s":<seq>,"p":<publisher>}, possibly inside a push.
void worker::on_delivery(long i, std::string_view text, std::int64_t now) {
  std::uint64_t t = 0, s = 0, p = 0;
  if (!wire::find_number(text, "t", t) || !wire::find_number(text, "s", s)) return;
  wire::find_number(text, "p", p);
  ++_c.delivered;
  if (_o.scen == scenario::api && s != static_cast<std::uint64_t>(_round)) {
    ++_c.dup;  // a publication of another round
    return;
  }
  _c.last_delivery_ns = now;
  _hist.add(static_cast<std::uint64_t>(now) > t ? (static_cast<std::uint64_t>(now) - t) / 1000 : 0);
  std::uint32_t* last = &_conns[static_cast<std::size_t>(i)].last_seq;
  if (_chat) {
    // The publisher's slot in the receiver's room; a stray publication counts as a duplicate.
    long room_first = global(i) / _o.room_size * _o.room_size;
    auto slot = static_cast<long>(p) - room_first;
    if (slot < 0 || slot >= _o.room_size) {
      ++_c.dup;
      return;
    }
    last = &_room_seq[static_cast<std::size_t>(i * _o.room_size + slot)];
  }
  if (s <= *last) {
    ++_c.dup;
  } else {
    *last = static_cast<std::uint32_t>(s);
  }
}

// reconnect: a subscribe reply {"id":2,"subscribe":{"recoverable":true,
// "epoch":"…","publications":[{"data":…,"offset":K},…],"recovered":true,
// "offset":K,…}} (offset 0 is left out). The first one sets the client's
// offset; a recovery's publications are deliveries, and its offset is the
// stream's position: whatever the client still misses up to it is lost. A
// client not recovered lost what it missed and starts over at the position.
// Every client recovers with the epoch of the first subscribe (all clients
// subscribed before the drop); another epoch in a reply is counted.
// False when the client failed.
bool worker::on_subscribed(long i, std::string_view line, std::int64_t now) {
  std::string_view sub = wire::member(line, "subscribe"), epoch;
  if (wire::member(sub, "recoverable") != "true" || !wire::to_str(wire::member(sub, "epoch"), epoch)) {
    fail(i, r_unrecoverable);
    return false;
  }
  if (_epoch.empty())
    _epoch = epoch;
  else if (epoch != _epoch)
    ++_c.epoch_changes;
  std::uint64_t offset = 0;
  wire::to_u64(wire::member(sub, "offset"), offset);
  std::uint64_t& last = _offsets[static_cast<std::size_t>(i)];
  if (!_reconnecting) {
    last = offset;
    return true;
  }
  if (wire::member(sub, "recovered") != "true") {
    ++_c.not_recovered;
    if (_target > last) _c.lost += _target - last;
    last = offset;
    return true;
  }
  std::string_view pubs = wire::member(sub, "publications"), pub;
  for (std::size_t pos = 0; wire::next_element(pubs, pos, pub);) {
    std::uint64_t o = 0;
    if (!wire::to_u64(wire::member(pub, "offset"), o)) continue;
    ++_c.recovered;
    on_offset(i, o, true, now);
  }
  on_offset(i, offset, false, now);
  return true;
}

// reconnect: client i has offset `offset`, in a publication (delivery) or
// as a position. The next offset is due; an older one is a duplicate, a
// later one means the ones between are lost.
void worker::on_offset(long i, std::uint64_t offset, bool delivery, std::int64_t now) {
  std::uint64_t& last = _offsets[static_cast<std::size_t>(i)];
  if (delivery) {
    ++_c.delivered;
    _c.last_delivery_ns = now;
  }
  if (offset <= last) {
    if (delivery) ++_c.dup;
    return;
  }
  _c.lost += offset - last - (delivery ? 1 : 0);
  bool crossed = last < _target && offset >= _target;
  last = offset;
  if (crossed && (!_target_dropped_only || dropped_client(_o.drop, global(i))) && ++_reached == _relevant &&
      _target_dropped_only) {
    _c.all_recovered_ns = now;
  }
}

// reconnect: from now on count the clients (the dropped ones, or all live
// ones) whose offset reaches `offset`.
void worker::set_target(std::uint64_t offset, bool dropped_only, std::int64_t now) {
  _target = offset;
  _target_dropped_only = dropped_only;
  _reached = _relevant = 0;
  for (long i = 0; i < _clients; ++i) {
    auto st = _conns[static_cast<std::size_t>(i)].st;
    if (dropped_only ? st == state::dead || !dropped_client(_o.drop, global(i)) : st != state::ready) continue;
    ++_relevant;
    std::uint64_t last = _offsets[static_cast<std::size_t>(i)];
    if (last >= offset)
      ++_reached;
    else if (dropped_only)
      _c.missed += offset - last;
  }
  if (dropped_only && _reached == _relevant) _c.all_recovered_ns = now;
}

}  // namespace swload::in_worker
