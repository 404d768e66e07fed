#include "loadgen/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_join.h"

namespace floodgate::bench {

double scenario::arrival_duration_s() const {
    double t = 0;
    for (const auto& a : people.arrivals) t += a.duration_s;
    return t;
}

double scenario::expected_people() const {
    double n = 0;
    for (const auto& a : people.arrivals) n += a.people();
    return n;
}

namespace {

// Debian's Abseil has its own string_view, which StrCat does not take from std.
template <class... A>
std::string cat(const A&... a) {
    std::ostringstream o;
    (o << ... << a);
    return o.str();
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::optional<double> parse_number(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

// Reads YAML nodes into settings, remembering the first problem with its place.
class reader {
public:
    explicit reader(std::string_view file) : file_(file) {}

    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }

    void fail(const YAML::Node& at, std::string_view key, std::string_view what) {
        if (failed()) return;
        const YAML::Mark m = at.Mark();
        if (m.line >= 0)
            error_ = cat(file_, ":", m.line + 1, ":", m.column + 1, ": ", key, ": ", what);
        else
            error_ = cat(file_, ": ", key, ": ", what);
    }

    // A mapping whose keys are all in `allowed`.
    bool map(const YAML::Node& n, std::string_view key, std::initializer_list<std::string_view> allowed) {
        if (!n.IsMap()) {
            fail(n, key, "expected a mapping");
            return false;
        }
        for (const auto& kv : n) {
            const std::string k = kv.first.as<std::string>();
            if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
                std::vector<std::string> names(allowed.begin(), allowed.end());
                fail(kv.first, key.empty() ? k : cat(key, ".", k),
                     cat("unknown key; expected one of ", absl::StrJoin(names, ", ")));
                return false;
            }
        }
        return true;
    }

    std::string scalar(const YAML::Node& n, std::string_view key) {
        if (!n.IsScalar()) {
            fail(n, key, "expected a single value");
            return {};
        }
        return n.Scalar();
    }

    void text(const YAML::Node& n, std::string_view key, std::string& out) {
        if (n) out = scalar(n, key);
    }

    void number(const YAML::Node& n, std::string_view key, double lo, double hi, double& out) {
        if (!n) return;
        const std::string s = scalar(n, key);
        if (failed()) return;
        auto v = parse_number(s);
        if (!v || *v < lo || *v > hi) {
            fail(n, key, cat("expected a number from ", lo, " to ", hi, ", got \"", s, "\""));
            return;
        }
        out = *v;
    }

    template <class Int>
    void whole(const YAML::Node& n, std::string_view key, std::uint64_t lo, std::uint64_t hi, Int& out) {
        if (!n) return;
        const std::string s = scalar(n, key);
        if (failed()) return;
        auto v = parse_number(s);
        if (!v || *v != std::floor(*v) || *v < double(lo) || *v > double(hi)) {
            fail(n, key, cat("expected a whole number from ", lo, " to ", hi, ", got \"", s, "\""));
            return;
        }
        out = static_cast<Int>(*v);
    }

    void seconds(const YAML::Node& n, std::string_view key, double& out) {
        if (!n) return;
        const std::string s = scalar(n, key);
        if (failed()) return;
        auto v = parse_seconds(s);
        if (!v) {
            fail(n, key, cat("expected a duration such as 250ms, 5s or 2m, got \"", s, "\""));
            return;
        }
        out = *v;
    }

    void millis(const YAML::Node& n, std::string_view key, std::optional<std::uint64_t>& out) {
        if (!n) return;
        double s = 0;
        seconds(n, key, s);
        if (!failed()) out = static_cast<std::uint64_t>(std::llround(s * 1000));
    }

    void share(const YAML::Node& n, std::string_view key, double& out) { number(n, key, 0, 1, out); }

    void flag(const YAML::Node& n, std::string_view key, bool& out) {
        if (!n) return;
        const std::string s = scalar(n, key);
        if (s == "true" || s == "yes" || s == "on") out = true;
        else if (s == "false" || s == "no" || s == "off") out = false;
        else fail(n, key, cat("expected true or false, got \"", s, "\""));
    }

    // "300ms..1s", "2..3", or one value; durations when `durations`.
    void range(const YAML::Node& n, std::string_view key, bool durations, double lo_limit, value_range& out) {
        if (!n) return;
        const std::string s = scalar(n, key);
        if (failed()) return;
        const auto dots = s.find("..");
        auto one = [&](std::string_view part) {
            return durations ? parse_seconds(part) : parse_number(part);
        };
        std::optional<double> lo = one(dots == std::string::npos ? std::string_view(s) : std::string_view(s).substr(0, dots));
        std::optional<double> hi = dots == std::string::npos ? lo : one(std::string_view(s).substr(dots + 2));
        if (!lo || !hi || *lo < lo_limit || *hi < *lo) {
            fail(n, key, cat("expected ", durations ? "a duration or a range such as 300ms..1s"
                                                             : "a number or a range such as 2..3",
                                      " (low <= high), got \"", s, "\""));
            return;
        }
        out = {*lo, *hi};
    }

private:
    std::string file_;
    std::string error_;
};

void read_site(reader& r, const YAML::Node& n, site_settings& s) {
    if (!r.map(n, "site", {"capacity", "hard_limit", "base_latency", "seats", "threads", "release_on_reserve"}))
        return;
    r.whole(n["capacity"], "site.capacity", 1, 10'000'000, s.capacity);
    r.whole(n["hard_limit"], "site.hard_limit", 1, 10'000'000, s.hard_limit);
    if (n["base_latency"]) {
        double sec = 0;
        r.seconds(n["base_latency"], "site.base_latency", sec);
        s.base_latency_ms = static_cast<std::uint64_t>(std::llround(sec * 1000));
    }
    r.whole(n["seats"], "site.seats", 0, 100'000'000, s.seats);
    r.whole(n["threads"], "site.threads", 1, 256, s.threads);
    r.flag(n["release_on_reserve"], "site.release_on_reserve", s.release_on_reserve);
    if (!r.failed() && s.hard_limit && s.hard_limit < s.capacity)
        r.fail(n["hard_limit"], "site.hard_limit", "must be at least site.capacity");
}

bool valid_room_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

void read_room(reader& r, const YAML::Node& n, room_settings& room) {
    if (!r.map(n, "gateway.room", {"name", "paths", "admission", "mode", "identity"})) return;
    r.text(n["name"], "gateway.room.name", room.name);
    if (!r.failed() && !valid_room_name(room.name))
        r.fail(n["name"], "gateway.room.name", "expected [a-z0-9_-], at most 64 characters");
    if (auto p = n["paths"]) {
        if (!p.IsSequence() || p.size() == 0) {
            r.fail(p, "gateway.room.paths", "expected a list of path prefixes such as [/reserve, /api/]");
        } else {
            room.paths.clear();
            for (const auto& e : p) {
                std::string path = r.scalar(e, "gateway.room.paths");
                if (r.failed()) return;
                if (path.empty() || path.front() != '/')
                    return r.fail(e, "gateway.room.paths", cat("a path starts with /, got \"", path, "\""));
                room.paths.push_back(std::move(path));
            }
        }
    }
    if (auto a = n["admission"]) {
        if (!r.map(a, "gateway.room.admission",
                   {"rate", "burst", "max_active", "idle_timeout", "session_ttl", "claim_window", "abandon_after"}))
            return;
        r.number(a["rate"], "gateway.room.admission.rate", 0, 1e7, room.rate);
        r.whole(a["burst"], "gateway.room.admission.burst", 1, 10'000'000, room.burst);
        r.whole(a["max_active"], "gateway.room.admission.max_active", 0, 100'000'000, room.max_active);
        r.millis(a["idle_timeout"], "gateway.room.admission.idle_timeout", room.idle_timeout_ms);
        r.millis(a["session_ttl"], "gateway.room.admission.session_ttl", room.session_ttl_ms);
        r.millis(a["claim_window"], "gateway.room.admission.claim_window", room.claim_window_ms);
        r.millis(a["abandon_after"], "gateway.room.admission.abandon_after", room.abandon_after_ms);
        if (!r.failed() && room.rate == 0 && room.max_active == 0)
            r.fail(a, "gateway.room.admission", "set rate, max_active or both");
    } else {
        r.fail(n, "gateway.room.admission", "missing: the room needs a rate, a max_active or both");
    }
    r.text(n["mode"], "gateway.room.mode", room.mode);
    if (!r.failed() && room.mode != "auto" && room.mode != "queue_all")
        r.fail(n["mode"], "gateway.room.mode", cat("expected auto or queue_all, got \"", room.mode, "\""));
    if (auto id = n["identity"]) {
        if (!r.map(id, "gateway.room.identity", {"header"})) return;
        r.text(id["header"], "gateway.room.identity.header", room.identity_header);
    }
}

void read_gateway(reader& r, const YAML::Node& n, gateway_settings& g) {
    if (!r.map(n, "gateway", {"threads", "room"})) return;
    r.whole(n["threads"], "gateway.threads", 1, 64, g.threads);
    if (n["room"]) read_room(r, n["room"], g.room);
    else r.fail(n, "gateway.room", "missing: the waiting room the people go through");
}

// "GET /reserve"
void read_request(reader& r, const YAML::Node& n, booking_request& out) {
    const std::string s = r.scalar(n, "people.booking.requests");
    if (r.failed()) return;
    const auto space = s.find(' ');
    const std::string method = s.substr(0, space);
    const std::string path = space == std::string::npos ? "" : std::string(trim(std::string_view(s).substr(space + 1)));
    if ((method != "GET" && method != "POST") || path.empty() || path.front() != '/') {
        r.fail(n, "people.booking.requests",
               cat("expected \"GET /path\" or \"POST /path\", got \"", s, "\""));
        return;
    }
    out = {method, path};
}

void read_people(reader& r, const YAML::Node& n, people_settings& p) {
    if (!r.map(n, "people", {"arrivals", "process", "booking", "release_share", "abandon", "devices",
                             "ticket_header_share", "refresh"}))
        return;
    const YAML::Node arr = n["arrivals"];
    if (!arr || !arr.IsSequence() || arr.size() == 0) {
        r.fail(arr ? arr : n, "people.arrivals",
               "expected a list of segments such as {duration: 10s, rate: 200} or {duration: 5s, people: 9000}");
        return;
    }
    p.arrivals.clear();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const YAML::Node seg = arr[i];
        const std::string key = cat("people.arrivals[", i, "]");
        if (!r.map(seg, key, {"duration", "rate", "people"})) return;
        arrival_segment a;
        if (!seg["duration"]) return r.fail(seg, key + ".duration", "missing");
        r.seconds(seg["duration"], key + ".duration", a.duration_s);
        if (r.failed()) return;
        if (a.duration_s <= 0) return r.fail(seg["duration"], key + ".duration", "must be more than 0");
        if (seg["rate"] && seg["people"])
            return r.fail(seg, key, "give rate or people, not both");
        if (seg["rate"]) {
            // "200" steady, "10..200" rising, "200..10" falling.
            const std::string text = r.scalar(seg["rate"], key + ".rate");
            if (r.failed()) return;
            const auto dots = text.find("..");
            auto from = parse_number(std::string_view(text).substr(0, dots));
            auto to = dots == std::string::npos ? from : parse_number(std::string_view(text).substr(dots + 2));
            if (!from || !to || *from < 0 || *to < 0 || *from + *to <= 0)
                return r.fail(seg["rate"], key + ".rate",
                              cat("expected people per second such as 200, or from..to such as 10..200, got \"",
                                           text, "\""));
            a.rate_from = *from;
            a.rate_to = *to;
        } else if (seg["people"]) {
            double people = 0;
            r.number(seg["people"], key + ".people", 0, 1e9, people);
            a.rate_from = a.rate_to = people / a.duration_s;
        } else {
            return r.fail(seg, key, "missing rate (people per second, or from..to for a ramp) or people");
        }
        if (r.failed()) return;
        p.arrivals.push_back(a);
    }
    if (auto pr = n["process"]) {
        const std::string s = r.scalar(pr, "people.process");
        if (s == "even") p.process = arrival_process::even;
        else if (s == "poisson") p.process = arrival_process::poisson;
        else r.fail(pr, "people.process", cat("expected even or poisson, got \"", s, "\""));
    }
    if (auto b = n["booking"]) {
        if (!r.map(b, "people.booking", {"requests", "think"})) return;
        if (auto q = b["requests"]) {
            if (!q.IsSequence() || q.size() == 0)
                return r.fail(q, "people.booking.requests", "expected a list such as [GET /reserve, POST /api/reserve]");
            p.requests.clear();
            for (const auto& e : q) {
                booking_request req;
                read_request(r, e, req);
                if (r.failed()) return;
                p.requests.push_back(req);
            }
            if (p.requests.front().method != "GET")
                return r.fail(q, "people.booking.requests",
                              "the first request is the page a person asks for when arriving: it must be a GET");
        }
        r.range(b["think"], "people.booking.think", true, 0, p.think_s);
    }
    r.share(n["release_share"], "people.release_share", p.release_share);
    if (auto a = n["abandon"]) {
        if (!r.map(a, "people.abandon", {"share", "after"})) return;
        r.share(a["share"], "people.abandon.share", p.abandon_share);
        r.range(a["after"], "people.abandon.after", true, 0, p.abandon_after_s);
    }
    if (auto d = n["devices"]) {
        if (!r.map(d, "people.devices", {"share", "count", "spread"})) return;
        r.share(d["share"], "people.devices.share", p.multi_device_share);
        r.range(d["count"], "people.devices.count", false, 2, p.devices);
        if (!r.failed() && (p.devices.lo != std::floor(p.devices.lo) || p.devices.hi != std::floor(p.devices.hi) ||
                            p.devices.hi > 10))
            r.fail(d["count"], "people.devices.count", "expected whole numbers from 2 to 10");
        r.range(d["spread"], "people.devices.spread", true, 0, p.device_spread_s);
    }
    r.share(n["ticket_header_share"], "people.ticket_header_share", p.ticket_header_share);
    r.range(n["refresh"], "people.refresh", true, 0, p.refresh_s);
    if (!r.failed() && n["refresh"] && p.refresh_s.hi <= 0)
        r.fail(n["refresh"], "people.refresh", "expected a time above 0 such as 1s..5s");
}

void read_bench(reader& r, const YAML::Node& n, bench_settings& b) {
    if (!r.map(n, "bench", {"connections", "request_timeout", "drain"})) return;
    r.whole(n["connections"], "bench.connections", 1, 20'000, b.connections);
    if (n["request_timeout"]) {
        double s = 0;
        r.seconds(n["request_timeout"], "bench.request_timeout", s);
        b.request_timeout_ms = static_cast<std::uint64_t>(s * 1000);
    }
    r.seconds(n["drain"], "bench.drain", b.drain_s);
}

}  // namespace

std::optional<double> parse_seconds(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t end = 0;
    while (end < s.size() && ((s[end] >= '0' && s[end] <= '9') || s[end] == '.')) ++end;
    auto n = parse_number(s.substr(0, end));
    if (!n || *n < 0) return std::nullopt;
    const std::string_view unit = trim(s.substr(end));
    if (unit.empty() || unit == "s") return *n;
    if (unit == "ms") return *n / 1000;
    if (unit == "m" || unit == "min") return *n * 60;
    if (unit == "h") return *n * 3600;
    return std::nullopt;
}

absl::StatusOr<scenario> parse_scenario(std::string_view yaml_text, std::string_view file_name) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        return absl::InvalidArgumentError(
            cat(file_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    scenario s;
    reader r(file_name);
    try {
        if (!root || !root.IsMap()) return absl::InvalidArgumentError(cat(file_name, ": expected a mapping"));
        if (r.map(root, "", {"name", "models", "scale", "seed", "site", "gateway", "people", "bench"})) {
            r.text(root["name"], "name", s.name);
            r.text(root["models"], "models", s.models);
            r.text(root["scale"], "scale", s.scale);
            if (!r.failed() && s.name.empty()) r.fail(root, "name", "missing: the scenario's name");
            if (!r.failed() && s.models.empty()) r.fail(root, "models", "missing: say what this scenario models");
            if (!r.failed() && s.scale.empty()) r.fail(root, "scale", "missing: say its scale factor");
            r.whole(root["seed"], "seed", 0, ~0ull >> 12, s.seed);
            if (!r.failed()) {
                if (root["site"]) read_site(r, root["site"], s.site);
            }
            if (!r.failed()) {
                if (root["gateway"]) read_gateway(r, root["gateway"], s.gateway);
                else r.fail(root, "gateway", "missing: the gateway's room");
            }
            if (!r.failed()) {
                if (root["people"]) read_people(r, root["people"], s.people);
                else r.fail(root, "people", "missing: who arrives and what they do");
            }
            if (!r.failed() && root["bench"]) read_bench(r, root["bench"], s.bench);
            if (!r.failed() && s.people.abandon_share + s.people.multi_device_share > 1)
                r.fail(root["people"], "people", "abandon.share + devices.share must not exceed 1");
        }
    } catch (const YAML::Exception& e) {
        return absl::InvalidArgumentError(
            cat(file_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    if (r.failed()) return absl::InvalidArgumentError(r.error());
    return s;
}

absl::StatusOr<scenario> load_scenario(const std::string& path) {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(cat(path, ": cannot read the file"));
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_scenario(ss.str(), path);
}

void scale_scenario(scenario& s, double factor) {
    for (auto& a : s.people.arrivals) a.duration_s *= factor;
    s.bench.drain_s *= factor;
}

std::string gateway_config_yaml(const scenario& s, std::string_view site_address, std::string_view tokens_env) {
    const room_settings& room = s.gateway.room;
    std::ostringstream o;
    o << "# written by floodgate-bench for scenario " << s.name << "\n"
      << "threads: " << s.gateway.threads << "\n"
      << "listen:\n  - address: 127.0.0.1:0\n    max_connections: 20000\n"
      << "admin: {address: 127.0.0.1:0, tokens_env: " << tokens_env << "}\n"
      << "upstreams:\n  site:\n    servers: [" << site_address << "]\n    pool_size: 256\n"
      << "default_upstream: site\n"
      << "access_log: off\nlog_level: warn\n"
      << "rooms:\n  " << room.name << ":\n"
      << "    match: {paths: [" << absl::StrJoin(room.paths, ", ") << "]}\n"
      << "    upstream: site\n"
      << "    mode: " << room.mode << "\n";
    o << "    admission: {rate: " << room.rate << ", burst: " << room.burst << ", max_active: " << room.max_active;
    auto ms = [&](const char* key, const std::optional<std::uint64_t>& v) {
        if (v) o << ", " << key << ": " << *v << "ms";
    };
    ms("idle_timeout", room.idle_timeout_ms);
    ms("session_ttl", room.session_ttl_ms);
    ms("claim_window", room.claim_window_ms);
    ms("abandon_after", room.abandon_after_ms);
    o << "}\n";
    if (!room.identity_header.empty()) o << "    identity: {header: " << room.identity_header << "}\n";
    return o.str();
}

std::vector<std::string> site_arguments(const scenario& s) {
    std::vector<std::string> a{"--capacity",        std::to_string(s.site.capacity),
                               "--hard-limit",      std::to_string(s.site.effective_hard_limit()),
                               "--base-latency-ms", std::to_string(s.site.base_latency_ms),
                               "--seats",           std::to_string(s.site.seats),
                               "--threads",         std::to_string(s.site.threads)};
    if (s.site.release_on_reserve) a.emplace_back("--release-on-reserve");
    return a;
}

}  // namespace floodgate::bench
