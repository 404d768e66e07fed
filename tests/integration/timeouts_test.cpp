// Timeouts: slow clients and slow upstreams are cut off. The tests only say
// that a connection closes within a generous bound, never how fast.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace floodgate::itest;
using std::chrono::steady_clock;

TEST_CASE("a request header trickled past timeouts.request_header gets 408 and a close",
          "[timeouts]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .timeouts = "request_header: 1s"}));
    raw_connection c(gw.port());
    const auto start = steady_clock::now();

    // 25 bytes at one per 200 ms: about 5 s, and the header never ends.
    c.send_slowly("GET /echo HTTP/1.1\r\nX-Slow", 200ms);
    const bool closed = c.wait_closed(
        std::max(ms(0), 5s - std::chrono::duration_cast<ms>(steady_clock::now() - start)));
    INFO("received: " << c.received());
    CHECK(closed);
    CHECK(status_of(c.received()) == 408);
    const auto responses = parse_responses(c.received(), nullptr, true);
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].closes());
    CHECK(up.request_count() == 0);
    CHECK(up.connections_accepted() == 0);
}

TEST_CASE("an idle keep-alive connection is closed after timeouts.keepalive", "[timeouts]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .timeouts = "keepalive: 1s"}));
    raw_connection c(gw.port());

    c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(c.read_responses(1, 5s));
    const auto res = parse_responses(c.received()).at(0);
    CHECK(res.status == 200);
    CHECK_FALSE(res.closes());
    CHECK(c.wait_closed(5s));
}

TEST_CASE("a client that half-closes after its request gets the answer and then the close at once",
          "[timeouts]") {
    // The request and the client's FIN arrive together; the gateway must notice
    // the end of stream after answering, not wait out the keep-alive time.
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .timeouts = "keepalive: 60s"}));
    for (const std::string_view path : {"/echo", "/__fg/v1/lights"}) {
        raw_connection c(gw.port());
        REQUIRE(c.send("GET " + std::string(path) + " HTTP/1.1\r\nHost: a\r\n\r\n"));
        c.shutdown_write();
        REQUIRE(c.read_responses(1, 5s));
        INFO(path);
        CHECK(parse_responses(c.received()).at(0).status == 200);
        CHECK(c.wait_closed(5s));
    }
}

TEST_CASE("a request body stalled past timeouts.body closes the connection", "[timeouts]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .timeouts = "body: 1s"}));
    raw_connection c(gw.port());

    c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    INFO("received: " << c.received());
    CHECK(c.wait_closed(5s));
    std::this_thread::sleep_for(100ms);
    CHECK(up.request_count() == 0);
}

TEST_CASE("an upstream slower than response_timeout gets 504", "[timeouts]") {
    test_upstream up;
    gateway_process gw(
        make_config({.servers = up.address(), .upstream = "response_timeout: 500ms"}));
    http_client client(gw.port());

    const auto res = client.get("/delay?ms=3000");
    CHECK(res.result_int() == 504);
    CHECK(up.request_count() == 1);
}

TEST_CASE("an upstream whose connects hang gets 502 after connect_timeout", "[timeouts]") {
    unresponsive_listener blackhole;
    if (!blackhole.connects_hang()) {
        WARN(
            "skipped: a full backlog-0 listen queue does not drop SYNs on this kernel, so "
            "connects to it do not hang");
        return;
    }
    gateway_process gw(make_config({.servers = "127.0.0.1:" + std::to_string(blackhole.port()),
                                    .upstream = "connect_timeout: 500ms, max_fails: 100"}));
    http_client client(gw.port());

    const auto res = client.get("/echo");
    CHECK(res.result_int() == 502);
}
