#pragma once
// A shard's own edge-triggered epoll set for its client sockets (issue 17,
// docs/decisions.md §17).
//
// Asio gives every socket a reactor record (168 bytes, with a mutex and
// three operation queues) and every pending wait an operation object (88
// bytes), and a wake-up walks both. A million idle sessions each wait for
// readability, so that is ~300 B and a completion dispatch per session.
// Here a socket is registered once, for input, output and hang-up,
// edge-triggered, with its session as the event's pointer; the set's own fd
// is the only thing Asio's reactor watches, so the io_context still runs
// the timers, posts and everything else on the shard. Closing a socket
// removes it from the set.
//
// Shard thread only. The set's fd is made in the constructor, so on a
// shard with a private fd table the poller must be built on the shard's
// thread (session_context is).

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>

#include <cstdint>
#include <memory>

struct epoll_event;

namespace sb {

class poller {
 public:
  /// Called for every event: the pointer given to add() and the epoll bits.
  using handler = void (*)(void* target, std::uint32_t events);

  /// Throws std::system_error when the set cannot be made (out of fds).
  poller(boost::asio::io_context& io, handler h);
  ~poller();
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  /// Watches a non-blocking socket for its life (input, output, peer
  /// hang-up; edge-triggered). False (errno set) when epoll refuses it.
  bool add(int fd, void* target) noexcept;
  /// No more events: the set's fd is closed, and the shard's loop may end.
  void stop() noexcept;

 private:
  void arm();
  void dispatch();

  boost::asio::posix::basic_stream_descriptor<boost::asio::io_context::executor_type> _set;
  handler _handler;
  std::unique_ptr<epoll_event[]> _events;
};

}  // namespace sb
