#include "pool/timer_wheel.hpp"

#include <bit>
#include <cassert>
#include <limits>

namespace sb {

timer_node::~timer_node() {
  // A destroyed session must not leave a dangling node on the wheel.
  if (armed()) _wheel->cancel(*this);
}

timer_wheel::timer_wheel(std::chrono::milliseconds tick, std::size_t slots, clock::time_point start)
    : _tick(tick.count() > 0 ? tick : std::chrono::milliseconds(1)),
      _tick_ns(std::chrono::nanoseconds(_tick).count()),
      _mask(std::bit_ceil(slots < 2 ? std::size_t{2} : slots) - 1),
      _start(start),
      _buckets(new timer_node*[_mask + 1]()) {}

timer_wheel::~timer_wheel() {
  for (std::size_t i = 0; i <= _mask; ++i) {
    while (timer_node* n = _buckets[i]) {
      n->unlink();
      n->_wheel = nullptr;
    }
  }
}

void timer_wheel::schedule(timer_node& n, std::chrono::milliseconds delay) noexcept {
  if (n.armed()) n._wheel->cancel(n);
  const std::int64_t d = delay.count() > 0 ? std::chrono::nanoseconds(delay).count() : 0;
  // Round up so the node never fires before `delay` has passed on our clock;
  // and always at least the next tick, so a callback that re-arms itself
  // with delay 0 cannot loop inside one advance().
  std::uint64_t expiry = static_cast<std::uint64_t>((_now_ns + d + _tick_ns - 1) / _tick_ns);
  if (expiry <= _current) expiry = _current + 1;
  timer_node*& bucket = _buckets[expiry & _mask];
  n._expiry = expiry;
  n._wheel = this;
  n._next = bucket;
  n._pprev = &bucket;
  if (bucket) bucket->_pprev = &n._next;
  bucket = &n;
  ++_size;
}

void timer_wheel::cancel(timer_node& n) noexcept {
  if (!n.armed()) return;
  assert(n._wheel == this && "timer_wheel: cancel of a node armed on another wheel");
  n.unlink();
  n._wheel = nullptr;
  --_size;
}

timer_node** timer_wheel::collect(timer_node*& bucket, std::uint64_t limit, timer_node** tail) noexcept {
  timer_node* n = bucket;
  while (n) {
    timer_node* next = n->_next;
    if (n->_expiry <= limit) {
      n->unlink();
      // Append to the firing list; the node stays armed (and counted) until
      // it fires, so a callback can still cancel or re-arm it before then.
      n->_pprev = tail;
      *tail = n;
      tail = &n->_next;
    }
    n = next;
  }
  return tail;
}

std::size_t timer_wheel::fire_list(timer_node*& list) noexcept {
  // `list` lives on advance()'s stack; a callback that cancels or re-arms a
  // node still on this list unlinks it through its _pprev, which updates
  // `list` or its predecessor, so we only ever pop the current first node.
  // The list is empty when we return, so no node keeps a pointer into the
  // stack.
  std::size_t fired = 0;
  while (timer_node* n = list) {
    n->unlink();
    n->_wheel = nullptr;
    --_size;
    ++fired;
    // Nothing of n is touched after this call: the callback may destroy it.
    if (n->_cb) n->_cb(*n);
  }
  return fired;
}

std::size_t timer_wheel::advance(clock::time_point now) noexcept {
  assert(!_in_advance && "timer_wheel::advance is not reentrant");
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - _start).count();
  if (now_ns <= _now_ns) return 0;
  const std::uint64_t target = static_cast<std::uint64_t>(now_ns / _tick_ns);
  _in_advance = true;
  std::size_t fired = 0;
  if (target - _current > _mask) {
    // Stalled for a revolution or more: every bucket is due for a visit, so
    // visit each once with the final tick as the limit (O(slots + nodes)
    // instead of O(ticks elapsed)).
    _current = target;
    _now_ns = static_cast<std::int64_t>(target) * _tick_ns;
    timer_node* head = nullptr;
    timer_node** tail = &head;
    for (std::size_t i = 0; i <= _mask; ++i) tail = collect(_buckets[i], target, tail);
    fired += fire_list(head);
  } else {
    while (_current < target) {
      ++_current;
      // Callbacks run "at" this tick: a re-arm from one lands on a later tick.
      _now_ns = static_cast<std::int64_t>(_current) * _tick_ns;
      timer_node*& bucket = _buckets[_current & _mask];
      if (!bucket) continue;
      timer_node* head = nullptr;
      collect(bucket, _current, &head);
      fired += fire_list(head);
    }
  }
  _now_ns = now_ns;
  _in_advance = false;
  return fired;
}

timer_wheel::clock::time_point timer_wheel::next_deadline() const noexcept {
  if (_size == 0) return clock::time_point::max();
  for (std::uint64_t t = _current + 1; t <= _current + _mask + 1; ++t) {
    if (_buckets[t & _mask]) return _start + std::chrono::nanoseconds(static_cast<std::int64_t>(t) * _tick_ns);
  }
  // Only nodes in the firing list of an advance() in progress: due now.
  return now();
}

}  // namespace sb
