// Limits and the gateway's own error responses: every input has a bound, and
// what is refused never reaches the upstream.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace floodgate::itest;

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Sends `request` in one write and returns what came back before the close.
struct refused {
    std::string received;
    bool closed = false;
};
refused send_and_wait_close(std::uint16_t port, const std::string& request) {
    raw_connection c(port);
    c.send(request);
    refused r;
    r.closed = c.wait_closed(5s);
    r.received = c.received();
    return r;
}

}  // namespace

TEST_CASE("a header section over limits.header_bytes gets 431", "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "header_bytes: 1k"}));

    const auto r = send_and_wait_close(gw.port(), "GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " +
                                                      std::string(2000, 'a') + "\r\n\r\n");
    INFO("received: " << r.received);
    CHECK(status_of(r.received) == 431);
    CHECK(r.closed);
    CHECK(up.request_count() == 0);
    CHECK(up.connections_accepted() == 0);
}

TEST_CASE("more header fields than limits.header_count gets 431", "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "header_count: 10"}));

    std::string req = "GET /echo HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 20; ++i) req += "X-Field-" + std::to_string(i) + ": v\r\n";
    req += "\r\n";
    const auto r = send_and_wait_close(gw.port(), req);
    INFO("received: " << r.received);
    CHECK(status_of(r.received) == 431);
    CHECK(r.closed);
    CHECK(up.request_count() == 0);
    CHECK(up.connections_accepted() == 0);
}

TEST_CASE("a header_count worth of fields is still accepted", "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "header_count: 10"}));

    std::string req = "GET /echo HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 8; ++i) req += "X-Field-" + std::to_string(i) + ": v\r\n";
    raw_connection c(gw.port());
    c.send(req + "\r\n");
    REQUIRE(c.read_responses(1, 5s));
    CHECK(parse_responses(c.received()).at(0).status == 200);
}

TEST_CASE("a Content-Length over limits.body_bytes gets 413 and the upstream nothing", "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "body_bytes: 1k"}));
    raw_connection c(gw.port());

    c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" +
           std::string(5000, 'x'));
    REQUIRE(c.read_until("\r\n\r\n", 5s));
    INFO("received: " << c.received());
    CHECK(status_of(c.received()) == 413);
    std::this_thread::sleep_for(100ms);
    CHECK(up.request_count() == 0);
    CHECK(up.connections_accepted() == 0);
}

TEST_CASE("a chunked body growing past limits.body_bytes gets 413 and no complete request upstream",
          "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "body_bytes: 1k"}));
    raw_connection c(gw.port());

    std::string req = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 6; ++i) req += "200\r\n" + std::string(512, 'x') + "\r\n";
    req += "0\r\n\r\n";
    c.send(req);
    REQUIRE(c.read_until("\r\n\r\n", 5s));
    INFO("received: " << c.received());
    CHECK(status_of(c.received()) == 413);
    CHECK(c.wait_closed(5s));
    std::this_thread::sleep_for(200ms);
    CHECK(up.request_count() == 0);
}

TEST_CASE("a connection over listen max_connections gets 503 and is closed", "[limits]") {
    test_upstream up;
    gateway_process gw(make_config(
        {.servers = up.address(), .listen = "{address: 127.0.0.1:0, max_connections: 2}"}));
    auto first = std::make_unique<http_client>(gw.port());
    http_client second(gw.port());
    REQUIRE(first->get("/echo").result_int() == 200);
    REQUIRE(second.get("/echo").result_int() == 200);

    raw_connection third(gw.port());
    third.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(third.wait_closed(5s));
    INFO("received: " << third.received());
    CHECK(status_of(third.received()) == 503);
    const auto responses = parse_responses(third.received(), nullptr, true);
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].closes());
    CHECK(up.request_count() == 2);

    // Once a slot is free again, a new connection is served.
    first.reset();
    bool served = false;
    for (int attempt = 0; attempt < 20 && !served; ++attempt) {
        raw_connection again(gw.port());
        again.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
        again.read_responses(1, 2s);
        served = status_of(again.received()) == 200;
        if (!served) std::this_thread::sleep_for(100ms);
    }
    CHECK(served);
}

TEST_CASE("only limits.pipelined_requests pipelined requests are answered before a close",
          "[limits]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .limits = "pipelined_requests: 4"}));
    raw_connection c(gw.port());

    std::string seven;
    for (int i = 0; i < 7; ++i)
        seven += "GET /echo?i=" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
    c.send(seven);
    CHECK(c.wait_closed(5s));
    std::string rest;
    const auto responses = parse_responses(c.received(), &rest, true);
    INFO("received: " << c.received());
    REQUIRE(responses.size() == 4);
    for (std::size_t i = 0; i < responses.size(); ++i) {
        INFO("response " << i);
        CHECK(responses[i].status == 200);
        CHECK(responses[i].closes() == (i == 3));
    }
    CHECK(rest.empty());
    CHECK(up.request_count() == 4);
}

TEST_CASE("the response that reaches limits.requests_per_connection says Connection close",
          "[limits]") {
    test_upstream up;
    gateway_process gw(
        make_config({.servers = up.address(), .limits = "requests_per_connection: 3"}));
    raw_connection c(gw.port());

    for (std::size_t i = 1; i <= 3; ++i) {
        c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
        REQUIRE(c.read_responses(i, 5s));
        const auto responses = parse_responses(c.received());
        REQUIRE(responses.size() == i);
        INFO("response " << i);
        CHECK(responses.back().status == 200);
        CHECK(responses.back().closes() == (i == 3));
    }
    CHECK(c.wait_closed(5s));
}

TEST_CASE("an unreachable upstream gets a small HTML 502 that leaks nothing", "[limits][errors]") {
    const std::uint16_t dead = unused_port();
    gateway_process gw(make_config({.servers = "127.0.0.1:" + std::to_string(dead)}));
    http_client client(gw.port());

    const auto res = client.get("/echo");
    CHECK(res.result_int() == 502);
    CHECK(lower(std::string(res[floodgate::http::field::content_type])).rfind("text/html", 0) == 0);
    const std::string body = lower(res.body());
    INFO("body: " << res.body());
    CHECK(!body.empty());
    CHECK(body.size() < 4096);
    const std::vector<std::string> leaks{
        "127.0.0.1", ":" + std::to_string(dead), "refused", "errno", "asio", "system:", "econn",
        "connect("};
    for (const auto& leak : leaks) {
        INFO("leak " << leak);
        CHECK(body.find(leak) == std::string::npos);
    }
}
