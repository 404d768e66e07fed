// Proxying basics: requests and bodies reach the upstream intact, connections
// are reused on both sides, forwarding headers are added, hop-by-hop headers
// are dropped, and the upstream servers are balanced and failed over.
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "harness.hpp"

namespace http = floodgate::http;
using namespace floodgate::itest;

namespace {

std::string random_bytes(std::size_t n) {
    std::mt19937 rng(42);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

}  // namespace

TEST_CASE("a GET is proxied to the upstream and its response comes back", "[proxy]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    const auto res = client.get("/status?code=203");
    CHECK(res.result_int() == 203);
    CHECK(res.body() == "status 203\n");
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    CHECK(r.method == "GET");
    CHECK(r.target == "/status?code=203");
    CHECK(r.version == 11);
    CHECK(r.body_size == 0);
}

TEST_CASE("a POST body with Content-Length reaches the upstream intact", "[proxy]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());
    const std::string body = random_bytes(200 * 1024);

    const auto res = client.request(http::verb::post, "/echo", body);
    CHECK(res.result_int() == 200);
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    CHECK(r.method == "POST");
    CHECK(r.body_size == body.size());
    CHECK(r.body_hash == fnv1a(body));
    CHECK(r.field("Content-Length") == std::to_string(body.size()));
    CHECK(r.count("Transfer-Encoding") == 0);
}

TEST_CASE("a chunked request body reaches the upstream chunked and intact", "[proxy]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    raw_connection c(gw.port());
    c.send(
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
    REQUIRE(c.read_responses(1, 5s));
    CHECK(parse_responses(c.received()).at(0).status == 200);
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    CHECK(r.body_head == "hello world");
    CHECK(r.field("Transfer-Encoding") == "chunked");
    CHECK(r.count("Content-Length") == 0);
}

TEST_CASE("ten requests on one client connection reuse one upstream connection", "[proxy]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .threads = 1}));
    http_client client(gw.port());
    for (int i = 0; i < 10; ++i) {
        const auto res = client.get("/echo?i=" + std::to_string(i));
        REQUIRE(res.result_int() == 200);
        CHECK(res.keep_alive());
    }
    CHECK(up.request_count() == 10);
    CHECK(up.connections_accepted() == 1);
}

TEST_CASE("X-Forwarded-For gets the client address appended", "[proxy][forwarded]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    REQUIRE(client.get("/echo", {{"X-Forwarded-For", "1.2.3.4"}}).result_int() == 200);
    REQUIRE(client.get("/echo").result_int() == 200);
    const auto rs = up.requests();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].field("X-Forwarded-For") == "1.2.3.4, 127.0.0.1");
    CHECK(rs[0].count("X-Forwarded-For") == 1);
    CHECK(rs[1].field("X-Forwarded-For") == "127.0.0.1");
}

TEST_CASE("the Host header is forwarded unchanged with X-Forwarded-Host and Proto",
          "[proxy][forwarded]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    REQUIRE(client.get("/echo", {{"Host", "shop.example:8080"}}).result_int() == 200);
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    CHECK(r.field("Host") == "shop.example:8080");
    CHECK(r.count("Host") == 1);
    CHECK(r.field("X-Forwarded-Host") == "shop.example:8080");
    CHECK(r.field("X-Forwarded-Proto") == "http");
}

TEST_CASE("Via names the gateway on the request to the upstream and on the response",
          "[proxy][forwarded]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    const auto first = client.get("/echo", {{"Via", "1.0 proxy1"}});
    REQUIRE(first.result_int() == 200);
    CHECK(first[http::field::via] == "1.1 floodgate");
    const auto second = client.get("/echo");
    REQUIRE(second.result_int() == 200);
    CHECK(second[http::field::via] == "1.1 floodgate");

    const auto rs = up.requests();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].field("Via") == "1.0 proxy1, 1.1 floodgate");
    CHECK(rs[1].field("Via") == "1.1 floodgate");
}

TEST_CASE("hop-by-hop request headers do not reach the upstream", "[proxy][hop]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    const auto res = client.get("/echo", {{"Connection", "keep-alive, X-Custom-Hop"},
                                          {"X-Custom-Hop", "secret"},
                                          {"Keep-Alive", "timeout=5"},
                                          {"Proxy-Connection", "keep-alive"},
                                          {"TE", "trailers"},
                                          {"Trailer", "X-Checksum"},
                                          {"Upgrade", "h2c"},
                                          {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                                          {"X-Normal", "kept"}});
    REQUIRE(res.result_int() == 200);
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    for (const char* name : {"X-Custom-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                             "Upgrade", "Proxy-Authorization"}) {
        INFO("header " << name);
        CHECK(r.field(name) == "<absent>");
    }
    // The gateway may state its own keep-alive to the upstream; nothing of
    // the client's Connection field may pass.
    const std::string connection = r.field("Connection");
    CHECK((connection == "<absent>" || connection == "keep-alive"));
    CHECK(r.field("X-Normal") == "kept");
}

TEST_CASE("hop-by-hop response headers do not reach the client", "[proxy][hop]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client client(gw.port());

    const auto res = client.get("/hop");
    REQUIRE(res.result_int() == 200);
    CHECK(res.body() == "hop\n");
    for (const char* name : {"X-Secret-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer"}) {
        INFO("header " << name);
        CHECK(res.find(name) == res.end());
    }
    const std::string connection(res[http::field::connection]);
    CHECK((connection.empty() || connection == "keep-alive"));
}

TEST_CASE("a stale pooled upstream connection does not fail the next GET", "[proxy][pool]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .threads = 1}));
    http_client client(gw.port());
    for (int i = 0; i < 5; ++i) {
        // /close answers with keep-alive framing, then closes: the gateway's
        // pooled connection is dead by the time the next request uses it.
        CHECK(client.get("/close").result_int() == 200);
        std::this_thread::sleep_for(i * 25ms);
        CHECK(client.get("/echo").result_int() == 200);
    }
    CHECK(up.request_count() == 10);
}

TEST_CASE("an absolute-form target reaches the upstream in origin form", "[proxy]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    raw_connection c(gw.port());
    c.send("GET http://example.test/echo?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n");
    REQUIRE(c.read_responses(1, 5s));
    CHECK(parse_responses(c.received()).at(0).status == 200);
    REQUIRE(up.request_count() == 1);
    const auto r = up.requests().at(0);
    CHECK(r.target == "/echo?x=1");
    CHECK(r.field("Host") == "example.test");
}

TEST_CASE("requests alternate between two upstream servers", "[proxy][balance]") {
    test_upstream a;
    test_upstream b;
    gateway_process gw(make_config({.servers = a.address() + ", " + b.address(), .threads = 1}));
    http_client client(gw.port());
    for (int i = 0; i < 10; ++i) REQUIRE(client.get("/echo").result_int() == 200);
    CHECK(a.request_count() == 5);
    CHECK(b.request_count() == 5);
}

TEST_CASE("a server that is down is retried on the next and skipped after max_fails",
          "[proxy][balance]") {
    const std::uint16_t dead = unused_port();
    test_upstream b;
    gateway_process gw(
        make_config({.servers = "127.0.0.1:" + std::to_string(dead) + ", " + b.address(),
                     .upstream = "max_fails: 2, fail_timeout: 60s, connect_timeout: 1s",
                     .threads = 1}));
    http_client client(gw.port());
    for (int i = 0; i < 6; ++i) {
        INFO("request " << i);
        CHECK(client.get("/echo").result_int() == 200);
    }
    CHECK(b.request_count() == 6);

    // The dead server comes back, but it failed max_fails times: it stays
    // out of rotation for fail_timeout.
    test_upstream a({.port = dead});
    for (int i = 0; i < 6; ++i) CHECK(client.get("/echo").result_int() == 200);
    CHECK(a.request_count() == 0);
    CHECK(b.request_count() == 12);
}
