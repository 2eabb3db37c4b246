#include "gateway/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

std::string write_temp(const std::string& text) {
  std::string path = testing::TempDir() + "sb_config_test.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(host_port, parses_v4_v6_and_names) {
  auto a = sb::parse_host_port("127.0.0.1:8000", "x");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8000);
  auto b = sb::parse_host_port("[::1]:0", "x");
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 0);
  EXPECT_EQ(b.str(), "[::1]:0");
  auto c = sb::parse_host_port("localhost:65535", "x");
  EXPECT_EQ(c.port, 65535);
}

TEST(host_port, rejects_bad_ports_naming_the_flag) {
  for (const char* bad : {"127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:80x", "127.0.0.1", ":80", "[::1]80", "h:-1"}) {
    try {
      sb::parse_host_port(bad, "--listen");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const sb::config_error& e) {
      EXPECT_NE(std::string(e.what()).find("--listen"), std::string::npos) << e.what();
    }
  }
}

TEST(config_file, reads_known_keys) {
  sb::config cfg;
  sb::load_config_file(write_temp("shards = 3\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:9100\"\n"
                                  "max_connections = 50000\nlisten_backlog = 1024\nmesh_ring_capacity = 1024\n"),
                       cfg);
  EXPECT_EQ(cfg.shards, 3u);
  EXPECT_EQ(cfg.listen.port, 0);
  EXPECT_EQ(cfg.ops_listen.port, 9100);
  EXPECT_EQ(cfg.max_connections, 50000u);
  EXPECT_EQ(cfg.listen_backlog, 1024u);
  EXPECT_EQ(cfg.mesh_ring_capacity, 1024u);
}

void expect_error(const std::string& text, const std::string& needle) {
  sb::config cfg;
  try {
    sb::load_config_file(write_temp(text), cfg);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const sb::config_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(config_file, errors_name_the_problem) {
  expect_error("shards = 2\nlistne = \"x:1\"\n", "unknown key 'listne'");
  expect_error("shards = \"two\"\n", "'shards'");
  expect_error("shards = 0\n", "shards");
  expect_error("listen = \"127.0.0.1:99999\"\n", "listen");
  expect_error("shards = [1,\n", "sb_config_test.toml");
  expect_error("mesh_ring_capacity = 1\n", "mesh_ring_capacity");
}

TEST(config_file, missing_file_is_an_error) {
  sb::config cfg;
  EXPECT_THROW(sb::load_config_file("/nonexistent/switchboard.toml", cfg), sb::config_error);
}

}  // namespace

namespace {

TEST(command_line, centrifuge_mode_refuses_websocket_pings) {
  // Centrifuge clients are watched by protocol pings on the session's one
  // timer; a WebSocket ping period would need it too.
  std::string path = write_temp("websocket_ping_interval = \"5s\"\n");
  std::string prog = "switchboard", flag = "--config";
  char* argv[] = {prog.data(), flag.data(), path.data()};
  EXPECT_THROW(sb::parse_command_line(3, argv), sb::config_error);
  std::string mode = "--mode", echo = "echo";
  char* argv_echo[] = {prog.data(), flag.data(), path.data(), mode.data(), echo.data()};
  auto r = sb::parse_command_line(5, argv_echo);
  ASSERT_TRUE(r.cfg);
  EXPECT_EQ(r.cfg->websocket_ping_interval_ms, 5000u);
  std::string off = write_temp("websocket_ping_interval = \"0s\"\n");
  char* argv_off[] = {prog.data(), flag.data(), off.data()};
  EXPECT_NO_THROW(sb::parse_command_line(3, argv_off));
}

}  // namespace
