#pragma once
// A real redis-server for the tests of the Redis engine: started on a free
// loopback port with nothing persisted, stopped (or killed, to test faults)
// by its PID, and restarted on the same port. Debian's /usr/bin/redis-server
// (ops/install-deps installs it). Never a mock.

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace sb::test {

class redis_server {
 public:
  redis_server() : redis_server(std::string()) {}
  /// `password`: started with --requirepass; command() and the start-up
  /// PING authenticate with it.
  explicit redis_server(std::string password) : _port(free_port()), _password(std::move(password)) { start(); }
  ~redis_server() { stop(SIGTERM); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const noexcept { return _port; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(_port); }
  const std::string& password() const noexcept { return _password; }
  bool running() const noexcept { return _pid > 0; }

  /// Starts it (again) on the same port and waits until it answers PING.
  void start() {
    // The argument vector is built before fork: the child only execs.
    std::string port = std::to_string(_port);
    std::vector<const char*> argv = {"redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"};
    if (!_password.empty()) {
      argv.push_back("--requirepass");
      argv.push_back(_password.c_str());
    }
    argv.push_back(nullptr);
    _pid = ::fork();
    if (_pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) {
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      ::execv("/usr/bin/redis-server", const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    ASSERT_GT(_pid, 0) << "fork";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ping()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "redis-server did not answer on port " << _port;
  }

  /// Stops it (SIGKILL: as a crash; SIGTERM: as an operator) and reaps it.
  void stop(int sig = SIGKILL) {
    if (_pid <= 0) return;
    ::kill(_pid, sig);
    int status = 0;
    ::waitpid(_pid, &status, 0);
    _pid = -1;
  }

  /// A command on a fresh connection; the reply as text ("" on failure).
  std::string command(const std::string& cmd) const {
    redisContext* c = redisConnect("127.0.0.1", _port);
    if (!c || c->err) {
      if (c) redisFree(c);
      return {};
    }
    if (!_password.empty()) {
      auto* a = static_cast<redisReply*>(redisCommand(c, "AUTH %s", _password.c_str()));
      if (a) freeReplyObject(a);
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, cmd.c_str()));
    std::string out;
    if (r) {
      if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
      else if (r->str) out.assign(r->str, r->len);
      freeReplyObject(r);
    }
    redisFree(c);
    return out;
  }

 private:
  bool ping() const { return command("PING") == "PONG"; }

  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  std::uint16_t _port;
  std::string _password;
  pid_t _pid = -1;
};

}  // namespace sb::test
