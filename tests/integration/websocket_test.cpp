// Websocket: an upgrade through the gateway becomes a tunnel to the upstream.
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>

#include "harness.hpp"

namespace net = floodgate::net;
namespace beast = floodgate::beast;
namespace http = floodgate::http;
namespace websocket = boost::beast::websocket;
using floodgate::error_code;
using floodgate::tcp;
using namespace floodgate::itest;

namespace {

// Runs one async operation on `ioc` for at most `timeout`; on timeout the
// socket is closed so the operation ends.
template <class Start>
error_code run_op(net::io_context& ioc, tcp::socket& socket, Start&& start, ms timeout = 5s) {
    std::optional<error_code> result;
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run_for(timeout);
    if (result) return *result;
    error_code ignored;
    socket.close(ignored);
    ioc.restart();
    ioc.run_for(1s);
    return net::error::timed_out;
}

}  // namespace

TEST_CASE("a websocket upgrade is tunnelled and messages are echoed both ways", "[websocket]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));

    net::io_context ioc;
    websocket::stream<tcp::socket> ws(ioc);
    auto& sock = ws.next_layer();
    const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), gw.port());
    REQUIRE_FALSE(run_op(ioc, sock, [&](auto h) { sock.async_connect(ep, std::move(h)); }));

    websocket::response_type upgrade;
    const std::string host = "localhost:" + std::to_string(gw.port());
    const error_code hs =
        run_op(ioc, sock, [&](auto h) { ws.async_handshake(upgrade, host, "/ws", std::move(h)); });
    REQUIRE_FALSE(hs);
    CHECK(upgrade.result_int() == 101);

    for (int i = 0; i < 5; ++i) {
        const bool text = i % 2 == 0;
        const std::string message =
            text ? "message " + std::to_string(i) : std::string(70000 + i, static_cast<char>(i));
        ws.text(text);
        REQUIRE_FALSE(
            run_op(ioc, sock, [&](auto h) { ws.async_write(net::buffer(message), std::move(h)); }));
        beast::flat_buffer buffer;
        REQUIRE_FALSE(run_op(ioc, sock, [&](auto h) { ws.async_read(buffer, std::move(h)); }));
        CHECK(ws.got_text() == text);
        CHECK(beast::buffers_to_string(buffer.data()) == message);
    }

    // Close handshake: our close frame goes through, the echo server's comes back.
    CHECK_FALSE(run_op(
        ioc, sock, [&](auto h) { ws.async_close(websocket::close_code::normal, std::move(h)); }));

    REQUIRE(up.request_count() >= 1);
    const auto r = up.requests().at(0);
    CHECK(r.path() == "/ws");
    CHECK(r.field("Upgrade") == "websocket");
}
