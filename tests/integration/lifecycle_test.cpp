// The process's life: the command line, graceful shutdown on SIGTERM, config
// reload on SIGHUP, the admin health check.
#include <catch2/catch.hpp>
#include <regex>
#include <thread>

#include "harness.hpp"

using namespace floodgate::itest;
using std::chrono::steady_clock;

namespace {

// Two upstreams, a and b, with `default_upstream` choosing one.
std::string two_upstreams_config(const test_upstream& a, const test_upstream& b,
                                 const std::string& default_upstream) {
    return "threads: 1\n"
           "listen: [{address: 127.0.0.1:0}]\n"
           "admin: {address: 127.0.0.1:0}\n"
           "access_log: stdout\n"
           "timeouts: {shutdown_grace: 1s}\n"
           "upstreams:\n"
           "  a: {servers: [" +
           a.address() +
           "]}\n"
           "  b: {servers: [" +
           b.address() +
           "]}\n"
           "default_upstream: " +
           default_upstream + "\n";
}

unsigned get_status(std::uint16_t port, const std::string& target) {
    http_client client(port);
    return client.get(target).result_int();
}

}  // namespace

TEST_CASE("check-config accepts a valid file", "[lifecycle][cli]") {
    temp_dir dir;
    const std::string file = dir.file("good.yaml");
    write_file(file, make_config({.servers = "127.0.0.1:9"}));
    const auto r = run_process({floodgate_bin(), "--check-config", file});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 0);
}

TEST_CASE("check-config rejects a bad value naming file line column and key", "[lifecycle][cli]") {
    temp_dir dir;
    const std::string file = dir.file("bad.yaml");
    write_file(file,
               "threads: 1\n"
               "listen: [{address: 127.0.0.1:0}]\n"
               "upstreams:\n"
               "  app: {servers: [127.0.0.1:9]}\n"
               "limits:\n"
               "  header_bytes: lots\n");
    const auto r = run_process({floodgate_bin(), "--check-config", file});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(file + ":6:17:") != std::string::npos);
    CHECK(r.err.find("limits.header_bytes") != std::string::npos);
}

TEST_CASE("check-config rejects an unknown key naming file line column and key",
          "[lifecycle][cli]") {
    temp_dir dir;
    const std::string file = dir.file("typo.yaml");
    write_file(file,
               "threads: 1\n"
               "listen: [{address: 127.0.0.1:0}]\n"
               "upstreams:\n"
               "  app: {servers: [127.0.0.1:9]}\n"
               "timeoutz: {body: 1s}\n");
    const auto r = run_process({floodgate_bin(), "--check-config", file});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(file + ":5:1:") != std::string::npos);
    CHECK(r.err.find("timeoutz") != std::string::npos);
}

TEST_CASE("version prints a version number", "[lifecycle][cli]") {
    const auto r = run_process({floodgate_bin(), "--version"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(std::regex_search(r.out, std::regex(R"(\d+\.\d+\.\d+)")));
}

TEST_CASE("SIGTERM finishes the request in flight, refuses new connections and exits 0",
          "[lifecycle][signals]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(), .timeouts = "shutdown_grace: 3s"}));
    const std::uint16_t port = gw.port();
    raw_connection in_flight(port);
    in_flight.send("GET /delay?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(up.wait_for_requests(1, 5s));

    const auto sent = steady_clock::now();
    gw.signal(SIGTERM);
    int connect_errno = 0;
    while (steady_clock::now() - sent < 1s) {
        raw_connection probe(port);
        if (!probe.connected()) {
            connect_errno = probe.connect_errno();
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    CHECK(connect_errno == ECONNREFUSED);

    REQUIRE(in_flight.read_responses(1, 5s));
    CHECK(parse_responses(in_flight.received()).at(0).status == 200);
    CHECK(gw.wait_exit(3s + 5s).value_or(-1) == 0);
}

TEST_CASE("SIGHUP with a broken config keeps the gateway serving", "[lifecycle][signals]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    REQUIRE(get_status(gw.port(), "/echo") == 200);

    gw.rewrite_config("listen: [{address: 127.0.0.1:0\nupstreams: {app: {servers: oops}}\n");
    gw.signal(SIGHUP);
    std::this_thread::sleep_for(500ms);
    REQUIRE(gw.running());
    CHECK(get_status(gw.port(), "/echo") == 200);
    CHECK(get_status(gw.port(), "/echo") == 200);
    CHECK(up.request_count() == 3);
}

TEST_CASE("SIGHUP with a changed config sends new requests to the new default upstream",
          "[lifecycle][signals]") {
    test_upstream a;
    test_upstream b;
    gateway_process gw(two_upstreams_config(a, b, "a"));
    REQUIRE(get_status(gw.port(), "/echo") == 200);
    CHECK(a.request_count() == 1);

    gw.rewrite_config(two_upstreams_config(a, b, "b"));
    gw.signal(SIGHUP);
    const auto deadline = steady_clock::now() + 5s;
    while (b.request_count() == 0 && steady_clock::now() < deadline) {
        CHECK(get_status(gw.port(), "/echo") == 200);
        if (b.request_count() == 0) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(b.request_count() == 1);
    const auto a_before = a.request_count();
    for (int i = 0; i < 3; ++i) CHECK(get_status(gw.port(), "/echo") == 200);
    CHECK(b.request_count() == 4);
    CHECK(a.request_count() == a_before);
    CHECK(gw.running());
}

TEST_CASE("the admin listener answers healthz with 200", "[lifecycle][admin]") {
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address()}));
    http_client admin(gw.admin_port());
    CHECK(admin.get("/healthz").result_int() == 200);
    CHECK(up.request_count() == 0);
}
