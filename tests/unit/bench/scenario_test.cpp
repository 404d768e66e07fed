#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "loadgen/scenario.hpp"

using namespace floodgate::bench;

namespace {

const char* minimal = R"(name: tiny
models: a test
scale: 1:1
gateway:
  room:
    name: vaccine
    admission: {rate: 50, burst: 5, max_active: 40}
people:
  arrivals:
    - {duration: 5s, people: 500}
)";

std::string error_of(const std::string& yaml) {
    auto s = parse_scenario(yaml, "s.yaml");
    return s.ok() ? std::string() : std::string(s.status().message());
}

}  // namespace

TEST_CASE("a minimal scenario gets the documented defaults", "[scenario]") {
    auto s = parse_scenario(minimal, "s.yaml");
    REQUIRE(s.ok());
    CHECK(s->name == "tiny");
    CHECK(s->gateway.room.name == "vaccine");
    CHECK(s->gateway.room.rate == 50);
    CHECK(s->gateway.room.burst == 5);
    CHECK(s->gateway.room.max_active == 40);
    CHECK(s->gateway.room.mode == "auto");
    REQUIRE(s->people.arrivals.size() == 1);
    CHECK(s->people.arrivals[0].rate_from == 100);
    CHECK(s->expected_people() == Approx(500));
    CHECK(s->arrival_duration_s() == 5);
    CHECK(s->site.effective_hard_limit() == 2 * s->site.capacity);
    CHECK(s->people.requests.front().path == "/reserve");
}

TEST_CASE("a full scenario reads every section", "[scenario]") {
    auto s = parse_scenario(R"(name: full
models: everything
scale: "1 person = 1000 people"
seed: 7
site: {capacity: 300, hard_limit: 450, base_latency: 50ms, seats: 1000, threads: 2, release_on_reserve: true}
gateway:
  threads: 2
  room:
    name: vaccine
    paths: [/reserve, /api/]
    admission: {rate: 100, burst: 20, max_active: 300, idle_timeout: 30s, session_ttl: 5m,
                claim_window: 10s, abandon_after: 15s}
    mode: queue_all
    identity: {header: X-User-Id}
people:
  process: poisson
  arrivals:
    - {duration: 10s, rate: 10..200}
    - {duration: 1m, rate: 50}
  booking:
    requests: [GET /reserve, GET /api/slots, POST /api/reserve]
    think: 300ms..1s
  release_share: 0.7
  abandon: {share: 0.15, after: 2s..40s}
  devices: {share: 0.1, count: 2..3, spread: 0s..3s}
  ticket_header_share: 0.5
bench: {connections: 64, request_timeout: 10s, drain: 2m}
)", "full.yaml");
    REQUIRE(s.ok());
    CHECK(s->seed == 7);
    CHECK(s->site.base_latency_ms == 50);
    CHECK(s->site.release_on_reserve);
    CHECK(s->gateway.threads == 2);
    CHECK(s->gateway.room.idle_timeout_ms == 30'000u);
    CHECK(s->gateway.room.session_ttl_ms == 300'000u);
    CHECK(s->gateway.room.identity_header == "X-User-Id");
    CHECK(s->people.process == arrival_process::poisson);
    CHECK(s->people.arrivals[0].rate_from == 10);
    CHECK(s->people.arrivals[0].rate_to == 200);
    CHECK(s->people.arrivals[1].duration_s == 60);
    CHECK(s->people.requests.size() == 3);
    CHECK(s->people.requests[2].method == "POST");
    CHECK(s->people.think_s == value_range{0.3, 1.0});
    CHECK(s->people.abandon_share == 0.15);
    CHECK(s->people.devices == value_range{2, 3});
    CHECK(s->bench.connections == 64);
    CHECK(s->bench.request_timeout_ms == 10'000u);
    CHECK(s->bench.drain_s == 120);
    CHECK(s->expected_people() == Approx(1050 + 3000));
}

TEST_CASE("a scenario error names its place in the file and the key", "[scenario]") {
    std::string bad = minimal;
    bad.replace(bad.find("rate: 50"), 8, "rate: -3");
    CHECK(error_of(bad) == "s.yaml:7:23: gateway.room.admission.rate: expected a number from 0 to 1e+07, got \"-3\"");
    CHECK(error_of(std::string(minimal) + "colour: blue\n").find("s.yaml:11:1: colour: unknown key") == 0);
    bad = minimal;
    bad.replace(bad.find("5s"), 2, "5 parsecs");
    CHECK(error_of(bad).find("people.arrivals[0].duration: expected a duration") != std::string::npos);
    CHECK(error_of("name: x\nscale: y\n").find("models: missing") != std::string::npos);
    CHECK(error_of("name: [unclosed\n").find("s.yaml:") == 0);
}

TEST_CASE("scenarios that cannot run are refused with the reason", "[scenario]") {
    std::string s = minimal;
    auto with = [&](std::string_view from, std::string_view to) {
        std::string t = s;
        t.replace(t.find(from), from.size(), to);
        return error_of(t);
    };
    CHECK(with("rate: 50, burst: 5, max_active: 40", "burst: 5").find("set rate, max_active or both") !=
          std::string::npos);
    CHECK(with("name: vaccine", "name: Vaccine!").find("[a-z0-9_-]") != std::string::npos);
    CHECK(with("people: 500", "people: 500, rate: 3").find("not both") != std::string::npos);
    CHECK(with("people: 500", "rate: 0").find("expected people per second") != std::string::npos);
    CHECK(error_of(s + "  booking: {requests: [POST /api/reserve]}\n").find("must be a GET") != std::string::npos);
    CHECK(error_of(s + "  booking: {requests: [DELETE /x]}\n").find("\"GET /path\"") != std::string::npos);
    CHECK(error_of(s + "  abandon: {share: 0.7}\n  devices: {share: 0.5}\n").find("must not exceed 1") !=
          std::string::npos);
    CHECK(error_of(s + "  devices: {count: 1}\n").find("people.devices.count") != std::string::npos);
    CHECK(error_of(s + "site: {capacity: 10, hard_limit: 5}\n").find("at least site.capacity") != std::string::npos);
}

TEST_CASE("refused people reload after 1 to 5 seconds unless the scenario says otherwise", "[scenario][refresh]") {
    auto s = parse_scenario(minimal, "s.yaml");
    REQUIRE(s.ok());
    CHECK(s->people.refresh_s == value_range{1, 5});
    s = parse_scenario(std::string(minimal) + "  refresh: 500ms..2s\n", "s.yaml");
    REQUIRE(s.ok());
    CHECK(s->people.refresh_s == value_range{0.5, 2});
    CHECK(error_of(std::string(minimal) + "  refresh: 5s..1s\n").find("people.refresh: expected a duration") !=
          std::string::npos);
    CHECK(error_of(std::string(minimal) + "  refresh: 0s\n").find("people.refresh: expected a time above 0") !=
          std::string::npos);
}

TEST_CASE("durations take the gateway's units", "[scenario]") {
    CHECK(parse_seconds("250ms") == 0.25);
    CHECK(parse_seconds("5s") == 5);
    CHECK(parse_seconds("5") == 5);
    CHECK(parse_seconds("2m") == 120);
    CHECK(parse_seconds("1h") == 3600);
    CHECK(parse_seconds("1.5s") == 1.5);
    CHECK_FALSE(parse_seconds("5 days"));
    CHECK_FALSE(parse_seconds("-1s"));
    CHECK_FALSE(parse_seconds(""));
}

TEST_CASE("the gateway config and the site's arguments follow the scenario", "[scenario]") {
    auto s = parse_scenario(std::string(minimal) +
                                "site: {capacity: 30, release_on_reserve: true}\n",
                            "s.yaml");
    REQUIRE(s.ok());
    s->gateway.room.identity_header = "X-User-Id";
    s->gateway.room.claim_window_ms = 10'000;
    const std::string cfg = gateway_config_yaml(*s, "127.0.0.1:9000");
    CHECK(cfg.find("servers: [127.0.0.1:9000]") != std::string::npos);
    CHECK(cfg.find("  vaccine:\n") != std::string::npos);
    CHECK(cfg.find("admission: {rate: 50, burst: 5, max_active: 40, claim_window: 10000ms}") != std::string::npos);
    CHECK(cfg.find("identity: {header: X-User-Id}") != std::string::npos);
    CHECK(cfg.find("access_log: off") != std::string::npos);
    const auto args = site_arguments(*s);
    CHECK(std::find(args.begin(), args.end(), "--release-on-reserve") != args.end());
    CHECK(args[1] == "30");
    CHECK(args[3] == "60");
}

TEST_CASE("shortening a scenario keeps its rates and shrinks its crowd", "[scenario]") {
    auto s = parse_scenario(minimal, "s.yaml");
    REQUIRE(s.ok());
    scale_scenario(*s, 0.2);
    CHECK(s->arrival_duration_s() == Approx(1));
    CHECK(s->people.arrivals[0].rate_from == 100);
    CHECK(s->expected_people() == Approx(100));
}

TEST_CASE("every scenario in bench/scenarios parses", "[scenario]") {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(FLOODGATE_SCENARIO_DIR)) {
        if (e.path().extension() != ".yaml") continue;
        INFO(e.path().string());
        auto s = load_scenario(e.path().string());
        CHECK(s.ok());
        if (s.ok()) {
            // The site is protected only if the room never lets more people in at once than it holds.
            CHECK(s->gateway.room.max_active > 0);
            CHECK(s->gateway.room.max_active <= s->site.capacity);
        }
        ++n;
    }
    CHECK(n >= 5);
}
