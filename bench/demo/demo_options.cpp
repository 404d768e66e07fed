#include "demo_options.hpp"

#include <charconv>
#include <limits>
#include <optional>
#include <string_view>

namespace floodgate::demo {

namespace {

std::optional<std::uint64_t> to_u64(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// "127.0.0.1:9000", "[::1]:9000", "localhost:0".
bool split_host_port(std::string_view s, std::string& host, std::uint16_t& port) {
    std::string_view h, p;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return false;
        h = s.substr(1, close - 1);
        p = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        h = s.substr(0, colon);
        p = s.substr(colon + 1);
        if (h.find(':') != std::string_view::npos) return false;
    }
    auto n = to_u64(p);
    if (h.empty() || !n || *n > 65535) return false;
    host = std::string(h);
    port = static_cast<std::uint16_t>(*n);
    return true;
}

}  // namespace

std::string demo_usage(const std::string& program) {
    return "usage: " + program + R"( [options]

The demo booking site ("Seoul Concert Hall") that Floodgate protects. A keep-alive
HTTP/1.1 server whose latency climbs once more than --capacity booking requests
are in flight, and which answers 503 above --hard-limit.

options:
  --listen HOST:PORT      address to listen on (port 0: ephemeral) [127.0.0.1:9000]
  --port-file FILE        after binding, write the port number to FILE (atomically)
  --threads N             I/O threads [1]
  --capacity N            in-flight booking requests served at base latency [50]
  --hard-limit M          above M in flight, answer 503 at once [2 * capacity]
  --base-latency-ms X     latency of a booking request at or below capacity [20];
                          above it: X * (1 + 4 * (in_flight - capacity) / capacity)
  --seats N               seats per performance [200]
  --release-on-reserve    successful POST /api/reserve answers carry
                          "Floodgate-Release: 1" (the gateway then frees the slot)
  --help                  this text

routes:
  GET  /                  home page            GET  /reserve          booking page
  GET  /api/slots         performances (JSON)  POST /api/reserve      {"slot","name"}
  GET  /api/stats         load counters        POST /api/stats/reset  reset them
  GET  /ping              "pong": no latency, not counted (benchmark baseline)
)";
}

std::variant<demo_options, options_error> parse_demo_options(const std::vector<std::string>& args) {
    demo_options o;
    bool hard_limit_given = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string flag = args[i];
        std::optional<std::string> inline_value;
        if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
            inline_value = flag.substr(eq + 1);
            flag.resize(eq);
        }
        auto value = [&]() -> std::optional<std::string> {
            if (inline_value) return inline_value;
            if (i + 1 >= args.size()) return std::nullopt;
            return args[++i];
        };
        auto number = [&](std::uint64_t lo, std::uint64_t hi,
                          std::uint64_t& out) -> std::optional<options_error> {
            auto v = value();
            if (!v) return options_error{flag + ": missing value"};
            auto n = to_u64(*v);
            if (!n || *n < lo || *n > hi)
                return options_error{flag + ": expected a whole number from " + std::to_string(lo) +
                                     " to " + std::to_string(hi) + ", got \"" + *v + "\""};
            out = *n;
            return std::nullopt;
        };
        auto is_switch = [&] {
            return inline_value ? std::optional<options_error>(
                                      options_error{flag + ": takes no value"})
                                : std::nullopt;
        };
        std::uint64_t n = 0;
        std::optional<options_error> err;
        if (flag == "--help" || flag == "-h") {
            o.help_requested = true;
        } else if (flag == "--listen") {
            auto v = value();
            if (!v) return options_error{"--listen: missing value"};
            if (!split_host_port(*v, o.host, o.port))
                return options_error{"--listen: expected HOST:PORT such as 127.0.0.1:9000, got \"" +
                                     *v + "\""};
        } else if (flag == "--port-file") {
            auto v = value();
            if (!v || v->empty()) return options_error{"--port-file: missing file name"};
            o.port_file = *v;
        } else if (flag == "--threads") {
            if (!(err = number(1, 256, n))) o.threads = static_cast<unsigned>(n);
        } else if (flag == "--capacity") {
            if (!(err = number(1, 10'000'000, n))) o.capacity = n;
        } else if (flag == "--hard-limit") {
            if (!(err = number(1, 10'000'000, n))) o.hard_limit = n, hard_limit_given = true;
        } else if (flag == "--base-latency-ms") {
            if (!(err = number(0, 600'000, n))) o.base_latency = std::chrono::milliseconds(n);
        } else if (flag == "--seats") {
            if (!(err = number(0, 100'000'000, n))) o.seats = static_cast<unsigned>(n);
        } else if (flag == "--release-on-reserve") {
            err = is_switch();
            o.release_on_reserve = true;
        } else {
            return options_error{"unknown option \"" + args[i] + "\""};
        }
        if (err) return *err;
    }
    if (!hard_limit_given) o.hard_limit = 2 * o.capacity;
    if (o.hard_limit < o.capacity)
        return options_error{"--hard-limit (" + std::to_string(o.hard_limit) +
                             ") must be at least --capacity (" + std::to_string(o.capacity) + ")"};
    return o;
}

}  // namespace floodgate::demo
