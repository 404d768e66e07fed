// Tests gateway/src/config.cpp: every value is checked, and every error says
// where it is (file:line:column) and what to change.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "gateway/config.hpp"

using namespace floodgate;
using namespace std::chrono_literals;

namespace {

std::string error_of(const std::string& yaml) {
    auto c = parse_config(yaml, "fg.yaml");
    REQUIRE_FALSE(c.ok());
    return std::string(c.status().message());
}

const std::string minimal = "listen: [{address: 127.0.0.1:8080}]\nupstreams:\n  app: {servers: [127.0.0.1:9000]}\n";

}  // namespace

TEST_CASE("a minimal config gets the documented defaults", "[config]") {
    auto c = parse_config(minimal, "fg.yaml");
    REQUIRE(c.ok());
    CHECK(c->listeners.size() == 1);
    CHECK(c->listeners[0].address.host == "127.0.0.1");
    CHECK(c->listeners[0].address.port == 8080);
    CHECK_FALSE(c->listeners[0].tls.has_value());
    CHECK(c->default_upstream == "app");  // the only upstream is the default
    CHECK(c->admin.enabled);
    CHECK(c->admin.address.to_string() == "127.0.0.1:9090");
    CHECK(c->limits.header_bytes == 16 * 1024);
    CHECK(c->limits.body_bytes == 10 * 1024 * 1024);
    CHECK(c->timeouts.request_header == 10s);
    CHECK(c->timeouts.keepalive == 60s);
    CHECK(c->upstreams[0].pool_size == 64);
    CHECK(c->upstreams[0].connect_timeout == 2s);
    CHECK(c->upstreams[0].tls.enabled == false);
    CHECK(c->access_log.enabled);
    CHECK(c->via == "floodgate");
}

TEST_CASE("every documented key is read", "[config]") {
    const std::string yaml = R"(
threads: 3
listen:
  - address: 0.0.0.0:8080
    max_connections: 500
  - address: "[::1]:8443"
    tls: {cert: site.crt, key: site.key}
admin: {address: 127.0.0.1:9191}
limits: {header_bytes: 8k, header_count: 50, body_bytes: 2m, pipelined_requests: 4, requests_per_connection: 100}
timeouts: {request_header: 5s, keepalive: 30s, body: 20s, send: 15s, tunnel_idle: 2m, shutdown_grace: 0s}
upstreams:
  booking:
    servers: [127.0.0.1:9000, "localhost:9001"]
    pool_size: 8
    connect_timeout: 500ms
    response_timeout: 1m
    idle_timeout: 45s
    max_fails: 2
    fail_timeout: 30s
    tls: {verify: false, ca: ca.pem, server_name: booking.example}
  static: {servers: 127.0.0.1:9100}
default_upstream: booking
access_log: {path: /var/log/floodgate/access.log}
log_level: debug
state_dir: /var/lib/floodgate
via: gate-1
)";
    auto c = parse_config(yaml, "fg.yaml");
    INFO((c.ok() ? "" : std::string(c.status().message())));
    REQUIRE(c.ok());
    CHECK(c->threads == 3);
    REQUIRE(c->listeners.size() == 2);
    CHECK(c->listeners[0].max_connections == 500);
    CHECK(c->listeners[1].address.host == "::1");
    CHECK(c->listeners[1].address.to_string() == "[::1]:8443");
    REQUIRE(c->listeners[1].tls.has_value());
    CHECK(c->listeners[1].tls->cert_file == "site.crt");
    CHECK(c->admin.address.port == 9191);
    CHECK(c->limits.header_bytes == 8192);
    CHECK(c->limits.header_count == 50);
    CHECK(c->limits.body_bytes == 2 * 1024 * 1024);
    CHECK(c->limits.pipelined_requests == 4);
    CHECK(c->limits.requests_per_connection == 100);
    CHECK(c->timeouts.request_header == 5s);
    CHECK(c->timeouts.tunnel_idle == 120s);
    CHECK(c->timeouts.shutdown_grace == 0s);
    const auto* b = c->find_upstream("booking");
    REQUIRE(b != nullptr);
    CHECK(b->servers.size() == 2);
    CHECK(b->servers[1].host == "localhost");
    CHECK(b->pool_size == 8);
    CHECK(b->connect_timeout == 500ms);
    CHECK(b->response_timeout == 60s);
    CHECK(b->max_fails == 2);
    CHECK(b->tls.enabled);
    CHECK_FALSE(b->tls.verify);
    CHECK(b->tls.server_name == "booking.example");
    CHECK(c->find_upstream("static")->servers.size() == 1);
    CHECK(c->access_log.path == "/var/log/floodgate/access.log");
    CHECK(c->log_level == "debug");
    CHECK(c->via == "gate-1");
}

TEST_CASE("config errors name the file and line and column and key", "[config]") {
    SECTION("an unknown key is a typo, not silently ignored") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080}]\ntimeouts:\n  keepalvie: 10s\n");
        CHECK(e.find("fg.yaml:3:3: timeouts.keepalvie: unknown key") == 0);
        CHECK(e.find("keepalive") != std::string::npos);  // lists the valid keys
    }
    SECTION("a bad number") {
        auto e = error_of(minimal + "limits: {header_count: lots}\n");
        CHECK(e.find("fg.yaml:4:24: limits.header_count: expected a whole number") == 0);
        CHECK(e.find("\"lots\"") != std::string::npos);
    }
    SECTION("a negative number") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080, max_connections: -3}]\n");
        CHECK(e.find("listen[0].max_connections") != std::string::npos);
        CHECK(e.find("-3") != std::string::npos);
    }
    SECTION("a bad duration") {
        auto e = error_of(minimal + "timeouts: {keepalive: 10 parsecs}\n");
        CHECK(e.find("timeouts.keepalive") != std::string::npos);
        CHECK(e.find("unknown duration unit") != std::string::npos);
    }
    SECTION("a bad size") {
        auto e = error_of(minimal + "limits: {body_bytes: 10 furlongs}\n");
        CHECK(e.find("limits.body_bytes") != std::string::npos);
    }
    SECTION("a header limit too small to be useful") {
        auto e = error_of(minimal + "limits: {header_bytes: 10}\n");
        CHECK(e.find("limits.header_bytes: expected a size from 512") != std::string::npos);
    }
    SECTION("a bad port") {
        auto e = error_of("listen: [{address: 127.0.0.1:99999}]\n");
        CHECK(e.find("fg.yaml:1:20: listen[0].address") == 0);
        CHECK(e.find("port") != std::string::npos);
    }
    SECTION("an address without a port") {
        auto e = error_of("listen: [{address: localhost}]\n");
        CHECK(e.find("expected host:port") != std::string::npos);
    }
    SECTION("an IPv6 address without brackets") {
        auto e = error_of("listen: [{address: '::1:80'}]\n");
        CHECK(e.find("brackets") != std::string::npos);
    }
    SECTION("missing listen") {
        auto e = error_of("upstreams:\n  app: {servers: [127.0.0.1:9000]}\n");
        CHECK(e.find("listen: missing") != std::string::npos);
    }
    SECTION("a listener without an address") {
        auto e = error_of("listen: [{max_connections: 5}]\n");
        CHECK(e.find("listen[0]: missing address") != std::string::npos);
    }
    SECTION("TLS without a key") {
        auto e = error_of("listen: [{address: 127.0.0.1:8443, tls: {cert: a.pem}}]\n");
        CHECK(e.find("listen[0].tls: missing key") != std::string::npos);
    }
    SECTION("an upstream without servers") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080}]\nupstreams:\n  app: {pool_size: 3}\n");
        CHECK(e.find("upstreams.app: missing servers") != std::string::npos);
    }
    SECTION("an upstream server with port 0") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080}]\nupstreams:\n  app: {servers: [127.0.0.1:0]}\n");
        CHECK(e.find("upstreams.app.servers") != std::string::npos);
    }
    SECTION("a default upstream that does not exist") {
        auto e = error_of(minimal + "default_upstream: bookng\n");
        CHECK(e.find("fg.yaml:4:19: default_upstream: no upstream named \"bookng\"; defined: app") == 0);
    }
    SECTION("a bad boolean") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080}]\nupstreams:\n  app: {servers: [127.0.0.1:9000], tls: {verify: maybe}}\n");
        CHECK(e.find("upstreams.app.tls.verify: expected true or false") != std::string::npos);
    }
    SECTION("a bad log level") {
        auto e = error_of(minimal + "log_level: chatty\n");
        CHECK(e.find("log_level: expected one of") != std::string::npos);
    }
    SECTION("a list where a mapping belongs") {
        auto e = error_of(minimal + "limits: [1, 2]\n");
        CHECK(e.find("limits: expected a mapping") != std::string::npos);
    }
    SECTION("YAML syntax errors have a position too") {
        auto e = error_of("listen: [{address: 127.0.0.1:8080}\n");
        CHECK(e.find("fg.yaml:") == 0);
    }
    SECTION("an empty file") {
        auto e = error_of("");
        CHECK(e.find("empty") != std::string::npos);
    }
}

TEST_CASE("a missing config file is reported by name", "[config]") {
    auto c = load_config_file("/nonexistent/floodgate.yaml");
    REQUIRE_FALSE(c.ok());
    CHECK(std::string(c.status().message()).find("/nonexistent/floodgate.yaml") != std::string::npos);
}

TEST_CASE("durations and sizes and endpoints parse in their documented forms", "[config]") {
    CHECK(*parse_duration("250ms") == 250ms);
    CHECK(*parse_duration("10s") == 10s);
    CHECK(*parse_duration("10") == 10s);
    CHECK(*parse_duration("5m") == 300s);
    CHECK(*parse_duration("1h") == 3600s);
    CHECK_FALSE(parse_duration("").ok());
    CHECK_FALSE(parse_duration("-1s").ok());
    CHECK_FALSE(parse_duration("1.5s").ok());
    CHECK_FALSE(parse_duration("99999999999999999999s").ok());

    CHECK(*parse_size("512") == 512);
    CHECK(*parse_size("16k") == 16384);
    CHECK(*parse_size("10MB") == 10 * 1024 * 1024);
    CHECK(*parse_size("1g") == 1024ull * 1024 * 1024);
    CHECK_FALSE(parse_size("1t").ok());
    CHECK_FALSE(parse_size("k").ok());

    CHECK(parse_endpoint(":8080")->host == "0.0.0.0");
    CHECK(parse_endpoint("[::1]:80")->host == "::1");
    CHECK(parse_endpoint("localhost:9000")->port == 9000);
    CHECK_FALSE(parse_endpoint("[::1]80").ok());
    CHECK_FALSE(parse_endpoint("host:").ok());
}
