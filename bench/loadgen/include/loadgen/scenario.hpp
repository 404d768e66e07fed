// A load scenario for floodgate-bench: who arrives when, what each person does,
// and how the demo site and the gateway are set up for the run. Read from YAML
// (bench/scenarios/*.yaml; the format is in docs/bench.md).
//
//   absl::StatusOr<scenario> s = load_scenario("bench/scenarios/step.yaml");
//   if (!s.ok()) { std::cerr << s.status().message() << "\n"; return 2; }
//   std::string gw = gateway_config_yaml(*s, "127.0.0.1:9000");
//
// The one thing not to get wrong: every problem in a file is reported as
// "file:line:column: key: what is wrong", and unknown keys are errors, so a
// typo in a scenario never silently runs a different experiment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace floodgate::bench {

// A value or a range written "300ms..1s" (durations) or "2..3" (numbers);
// a single value is a range with lo == hi. Durations are held in seconds.
struct value_range {
    double lo = 0;
    double hi = 0;
    bool operator==(const value_range&) const = default;
};

// Arrivals for a stretch of the run, at a rate that goes linearly from
// rate_from to rate_to people per second (equal for a steady rate).
struct arrival_segment {
    double duration_s = 0;
    double rate_from = 0;
    double rate_to = 0;
    double people() const { return (rate_from + rate_to) / 2 * duration_s; }
};

enum class arrival_process { even, poisson };

struct site_settings {  // floodgate-demo-booking
    std::uint64_t capacity = 50;
    std::uint64_t hard_limit = 0;  // 0: twice the capacity
    std::uint64_t base_latency_ms = 20;
    std::uint64_t seats = 100'000'000;
    unsigned threads = 1;
    bool release_on_reserve = false;
    std::uint64_t effective_hard_limit() const { return hard_limit ? hard_limit : 2 * capacity; }
};

struct room_settings {
    std::string name = "bench";
    std::vector<std::string> paths{"/reserve", "/api/"};
    double rate = 0;  // people per second; 0: no rate limit
    std::uint64_t burst = 1;
    std::uint64_t max_active = 0;  // 0: no limit
    std::string mode = "auto";     // auto | queue_all
    std::optional<std::uint64_t> idle_timeout_ms, session_ttl_ms, claim_window_ms, abandon_after_ms;
    std::string identity_header;  // empty: no identity
};

struct gateway_settings {
    unsigned threads = 1;
    room_settings room;
};

struct booking_request {
    std::string method = "GET";  // GET or POST
    std::string path = "/reserve";
};

struct people_settings {
    std::vector<arrival_segment> arrivals;
    arrival_process process = arrival_process::even;
    std::vector<booking_request> requests{{"GET", "/reserve"}};  // the first one is the join
    value_range think_s{0.5, 1.5};      // before each booking request after the first
    double release_share = 1.0;         // give the slot back when done; the rest just leave
    double abandon_share = 0.0;         // stop polling while waiting
    value_range abandon_after_s{5, 60}; // how long an abandoner waits before leaving
    double multi_device_share = 0.0;    // people with several devices (one identity)
    value_range devices{2, 2};          // how many devices such a person uses
    value_range device_spread_s{0, 2};  // later devices arrive this long after the first
    double ticket_header_share = 0.0;   // send the ticket as Floodgate-Ticket, not as a cookie
    value_range refresh_s{1, 5};        // refused outright (no waiting room: --target nginx-limit),
                                        // a person refreshes the page after this long
};

struct bench_settings {
    unsigned connections = 128;         // shared keep-alive pool for joins and polls
    std::uint64_t request_timeout_ms = 30'000;
    double drain_s = 60;                // after the last arrival, how long people may finish
};

struct scenario {
    std::string name;
    std::string models;  // what it models (free text, required)
    std::string scale;   // its scale factor (free text, required)
    std::uint64_t seed = 1;
    site_settings site;
    gateway_settings gateway;
    people_settings people;
    bench_settings bench;

    double arrival_duration_s() const;
    double expected_people() const;
};

// Parses a scenario; file_name is used in error messages only.
absl::StatusOr<scenario> parse_scenario(std::string_view yaml_text, std::string_view file_name);
absl::StatusOr<scenario> load_scenario(const std::string& path);

// "250ms", "5s", "2m", "1h", or a bare number of seconds, to seconds.
std::optional<double> parse_seconds(std::string_view text);

// Shortens a scenario for a quick run: arrival segment durations (and so the
// number of people) are multiplied by factor, rates stay, and the drain too.
void scale_scenario(scenario& s, double factor);

// The floodgate config for a run: one listener and the admin listener on
// 127.0.0.1 port 0, the demo site as the only upstream, the scenario's room,
// access log off. Admin tokens come from the environment variable tokens_env.
std::string gateway_config_yaml(const scenario& s, std::string_view site_address,
                                std::string_view tokens_env = "FLOODGATE_ADMIN_TOKENS");

// Command-line arguments for floodgate-demo-booking (without --listen/--port-file).
std::vector<std::string> site_arguments(const scenario& s);

}  // namespace floodgate::bench
