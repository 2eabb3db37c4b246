// beast_ws_client: an interop client built on Boost.Beast's
// websocket::stream (a WebSocket implementation nobody here wrote) that
// checks `switchboard --mode echo`:
//   - text and binary messages of 0, 125, 126, 65,535 and 65,536 bytes come
//     back as sent, with the same type;
//   - a message sent as three fragments comes back as one message;
//   - a ping with a payload is answered by a pong with that payload;
//   - a close with code 4000 is answered with a close with code 4000.
// Prints one line per check; exits 0 when all passed, 1 on the first
// failure (with what was sent and what came back). The caller bounds time.
//
// usage: beast_ws_client HOST PORT

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::printf("FAIL %s\n", what.c_str());
  std::fflush(stdout);
  std::exit(1);
}

// n bytes of valid UTF-8 with 1-, 2-, 3- and 4-byte characters.
std::string text_of(std::size_t n) {
  static constexpr std::string_view unit = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  std::string s;
  while (s.size() + unit.size() <= n) s += unit;
  s.append(n - s.size(), 'z');
  return s;
}

std::string bytes_of(std::size_t n, std::mt19937& rng) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

using ws_stream = websocket::stream<tcp::socket>;

// Sends one message and checks the echo.
void round_trip(ws_stream& ws, const std::string& payload, bool text, const char* label) {
  ws.text(text);
  ws.write(asio::buffer(payload));
  beast::flat_buffer buf;
  ws.read(buf);
  std::string got = beast::buffers_to_string(buf.data());
  if (ws.got_text() != text)
    fail(std::string(label) + ": sent " + (text ? "text" : "binary") + ", came back as " +
         (ws.got_text() ? "text" : "binary"));
  if (got != payload)
    fail(std::string(label) + ": sent " + std::to_string(payload.size()) + " bytes, came back " +
         std::to_string(got.size()) + " bytes, different");
  std::printf("ok %s %zu bytes echoed\n", label, payload.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: beast_ws_client HOST PORT\n");
    return 2;
  }
  const std::string host = argv[1];
  const std::string port = argv[2];
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    ws_stream ws(io);
    asio::connect(ws.next_layer(), resolver.resolve(host, port));
    ws.read_message_max(1 << 20);
    ws.handshake(host + ":" + port, "/connection/websocket");
    std::printf("ok upgraded\n");

    std::mt19937 rng(12345);
    for (std::size_t n : {0u, 125u, 126u, 65535u, 65536u}) {
      round_trip(ws, text_of(n), true, "text");
      round_trip(ws, bytes_of(n, rng), false, "binary");
    }

    // Fragmented: three frames, FIN on the last; one message comes back.
    {
      std::string a = text_of(1000), b = text_of(20000), c = "\xE2\x82\xAC end";
      ws.text(true);
      ws.write_some(false, asio::buffer(a));
      ws.write_some(false, asio::buffer(b));
      ws.write_some(true, asio::buffer(c));
      beast::flat_buffer buf;
      ws.read(buf);
      std::string got = beast::buffers_to_string(buf.data());
      if (!ws.got_text() || got != a + b + c)
        fail("fragmented text: sent 3 fragments of " + std::to_string(a.size() + b.size() + c.size()) +
             " bytes, came back " + std::to_string(got.size()) + (ws.got_text() ? " text" : " binary"));
      std::printf("ok fragmented text (3 frames) echoed as one %zu-byte message\n", got.size());
    }

    // Ping with a payload; the pong is seen by the control callback while
    // reading the echo of the message sent after it.
    {
      const std::string ping_payload = "beast-ping-42";
      std::vector<std::string> pongs;
      ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
        if (kind == websocket::frame_type::pong) pongs.emplace_back(payload);
      });
      ws.ping(websocket::ping_data(ping_payload.c_str()));
      round_trip(ws, "after ping", true, "text");
      if (pongs.size() != 1 || pongs[0] != ping_payload)
        fail("ping '" + ping_payload + "': pongs seen before the next echo: " + std::to_string(pongs.size()) +
             (pongs.empty() ? "" : " first '" + pongs[0] + "'"));
      ws.control_callback();
      std::printf("ok ping answered by a pong with payload '%s'\n", pongs[0].c_str());
    }

    // Close with 4000: Beast sends it, reads until the server's close,
    // then tears down TCP.
    ws.close(websocket::close_reason(static_cast<websocket::close_code>(4000), "bye"));
    if (ws.reason().code != 4000)
      fail("close 4000: server answered " + std::to_string(ws.reason().code) + " '" +
           std::string(ws.reason().reason.c_str()) + "'");
    std::printf("ok close 4000 echoed by the server\n");
  } catch (const beast::system_error& e) {
    fail(std::string("error: ") + e.code().message());
  } catch (const std::exception& e) {
    fail(std::string("error: ") + e.what());
  }
  std::printf("all checks passed\n");
  return 0;
}
