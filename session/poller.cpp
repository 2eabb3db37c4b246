#include "session/poller.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace sb {

namespace {
// Events taken per epoll_wait. What is left stays ready in the set: the next
// wait's EPOLL_CTL_MOD (Asio re-arms the set's fd on every wait) finds it
// ready again, after the posts this batch queued (the cork's flush) ran.
constexpr int batch = 256;
}  // namespace

poller::poller(boost::asio::io_context& io, handler h)
    : _set(io.get_executor()), _handler(h), _events(new epoll_event[batch]) {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  boost::system::error_code ec;
  _set.assign(fd, ec);
  if (ec) {
    ::close(fd);
    throw std::system_error(ec.value(), std::generic_category(), "watching the shard's epoll set");
  }
  arm();
}

poller::~poller() = default;  // the descriptor closes the set

bool poller::add(int fd, void* target) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = target;
  return ::epoll_ctl(_set.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void poller::stop() noexcept {
  boost::system::error_code ignored;
  _set.close(ignored);  // the pending wait ends with operation_aborted
}

void poller::arm() {
  // The handler must not touch `this` when aborted: the poller may be gone.
  _set.async_wait(decltype(_set)::wait_read, [this](boost::system::error_code ec) {
    if (!ec) dispatch();
  });
}

void poller::dispatch() {
  int n = ::epoll_wait(_set.native_handle(), _events.get(), batch, 0);
  for (int i = 0; i < n; ++i) _handler(_events[i].data.ptr, _events[i].events);
  if (_set.is_open()) arm();  // a handler may have stopped the poller
}

}  // namespace sb
