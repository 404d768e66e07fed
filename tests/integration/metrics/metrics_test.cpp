// Prometheus metrics as an operator's Prometheus sees them: the admin
// listener's /metrics (with a viewer token) from the real floodgate binary,
// parsed as text exposition format 0.0.4 by a small strict parser below, with
// the counters checked against what each test did. The last test reads the
// Grafana dashboard and the alert rules in deploy/ and checks that every
// metric (and every fixed label value) they use exists in a real scrape.
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "harness.hpp"
#include "room_helpers.hpp"

namespace floodgate::itest::metrics {
namespace {

using rooms::accept_json;
using rooms::cookie_header;
using rooms::reply;
using labels = std::map<std::string, std::string>;

// --- the text format, strictly ----------------------------------------------

struct sample {
    std::string name;
    labels label;
    double value = 0;
};

struct exposition {
    std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|summary|untyped
    std::map<std::string, std::string> helps;
    std::vector<sample> samples;
    std::vector<std::string> errors;  // empty when the text is valid

    // The family a sample belongs to: its own name, or a histogram's or
    // summary's name without _bucket, _sum or _count.
    std::string family_of(const std::string& name) const {
        if (types.count(name)) return name;
        for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
            if (name.size() > suffix.size() && name.ends_with(suffix)) {
                const std::string base = name.substr(0, name.size() - suffix.size());
                const auto t = types.find(base);
                if (t != types.end() && (t->second == "histogram" || t->second == "summary")) return base;
            }
        }
        return {};
    }

    // The samples named `name` whose labels include all of `want`.
    std::vector<const sample*> find(const std::string& name, const labels& want = {}) const {
        std::vector<const sample*> out;
        for (const auto& s : samples) {
            if (s.name != name) continue;
            bool match = true;
            for (const auto& [k, v] : want) {
                const auto it = s.label.find(k);
                if (it == s.label.end() || it->second != v) match = false;
            }
            if (match) out.push_back(&s);
        }
        return out;
    }

    // The value of the one sample with exactly these labels; nullopt when absent.
    std::optional<double> value(const std::string& name, const labels& exact = {}) const {
        for (const auto& s : samples)
            if (s.name == name && s.label == exact) return s.value;
        return std::nullopt;
    }
};

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool is_name_char(char c) { return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

bool valid_metric_name(std::string_view s) {
    return !s.empty() && is_name_start(s[0]) && std::all_of(s.begin(), s.end(), is_name_char);
}

bool valid_label_name(std::string_view s) {
    return !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_') &&
           std::all_of(s.begin(), s.end(), [](char c) { return c != ':' && is_name_char(c); });
}

std::optional<double> parse_value(std::string_view s) {
    if (s == "+Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
    if (s == "NaN") return NAN;
    if (s.empty()) return std::nullopt;
    std::string text(s);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return v;
}

// One sample line: name, optional {labels}, value, optional timestamp.
std::optional<sample> parse_sample(std::string_view line, std::string& why) {
    sample s;
    std::size_t i = 0;
    while (i < line.size() && is_name_char(line[i])) ++i;
    s.name = std::string(line.substr(0, i));
    if (!valid_metric_name(s.name)) {
        why = "bad metric name";
        return std::nullopt;
    }
    if (i < line.size() && line[i] == '{') {
        ++i;
        for (;;) {
            if (i < line.size() && line[i] == '}') {
                ++i;
                break;
            }
            const std::size_t start = i;
            while (i < line.size() && line[i] != '=') ++i;
            const std::string name(line.substr(start, i - start));
            if (!valid_label_name(name)) {
                why = "bad label name '" + name + "'";
                return std::nullopt;
            }
            if (i + 1 >= line.size() || line[i + 1] != '"') {
                why = "label value without quotes";
                return std::nullopt;
            }
            i += 2;
            std::string value;
            for (;; ++i) {
                if (i >= line.size()) {
                    why = "unterminated label value";
                    return std::nullopt;
                }
                if (line[i] == '"') break;
                if (line[i] == '\\') {
                    if (++i >= line.size()) {
                        why = "unterminated escape";
                        return std::nullopt;
                    }
                    if (line[i] == 'n') value.push_back('\n');
                    else if (line[i] == '\\' || line[i] == '"') value.push_back(line[i]);
                    else {
                        why = "bad escape in a label value";
                        return std::nullopt;
                    }
                } else {
                    value.push_back(line[i]);
                }
            }
            ++i;  // the closing quote
            if (!s.label.emplace(name, value).second) {
                why = "label '" + name + "' twice";
                return std::nullopt;
            }
            if (i < line.size() && line[i] == ',') ++i;
            else if (i < line.size() && line[i] == '}') continue;
            else {
                why = "expected ',' or '}' after a label";
                return std::nullopt;
            }
        }
    }
    if (i >= line.size() || line[i] != ' ') {
        why = "expected a space before the value";
        return std::nullopt;
    }
    std::string_view rest = line.substr(i + 1);
    const auto space = rest.find(' ');
    const auto v = parse_value(rest.substr(0, space));
    if (!v) {
        why = "bad value";
        return std::nullopt;
    }
    if (space != std::string_view::npos) {
        const std::string ts(rest.substr(space + 1));
        if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string::npos) {
            why = "bad timestamp";
            return std::nullopt;
        }
    }
    s.value = *v;
    return s;
}

exposition parse_exposition(std::string_view text) {
    exposition e;
    std::set<std::string> finished;  // families whose samples ended (a family must be one group)
    std::string current;
    std::set<std::pair<std::string, labels>> seen;
    std::size_t line_no = 0;
    auto error = [&](std::string_view line, const std::string& why) {
        e.errors.push_back("line " + std::to_string(line_no) + ": " + why + ": " + std::string(line));
    };
    if (!text.empty() && text.back() != '\n') e.errors.push_back("the text does not end with a line feed");
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::istringstream in{std::string(line)};
            std::string hash, keyword, name;
            in >> hash >> keyword >> name;
            if (hash != "#" || (keyword != "HELP" && keyword != "TYPE")) continue;  // a comment
            if (!valid_metric_name(name)) {
                error(line, "bad metric name in " + keyword);
                continue;
            }
            if (keyword == "TYPE") {
                std::string type, more;
                in >> type;
                if (in >> more) error(line, "more after the type");
                static const std::set<std::string> known{"counter", "gauge", "histogram", "summary", "untyped"};
                if (!known.count(type)) error(line, "unknown type '" + type + "'");
                if (e.types.count(name)) error(line, "a second TYPE for " + name);
                if (finished.count(name) || current == name) error(line, "TYPE after the samples of " + name);
                e.types[name] = type;
            } else {
                if (e.helps.count(name)) error(line, "a second HELP for " + name);
                e.helps[name] = line.size() > 7 + name.size() ? std::string(line.substr(8 + name.size())) : "";
            }
            continue;
        }
        std::string why;
        auto s = parse_sample(line, why);
        if (!s) {
            error(line, why);
            continue;
        }
        const std::string family = e.family_of(s->name);
        if (family.empty()) error(line, "sample of a family without a TYPE");
        if (family != current) {
            if (finished.count(family)) error(line, "the samples of " + family + " are not together");
            if (!current.empty()) finished.insert(current);
            current = family;
        }
        if (!seen.emplace(s->name, s->label).second) error(line, "the same series twice");
        e.samples.push_back(std::move(*s));
    }
    return e;
}

// --- a gateway with an admin token -----------------------------------------

constexpr std::string_view viewer_token = "metrics-test-viewer-0123456789";

// A token file for the admin listener, in a directory of its own.
struct admin_tokens_file {
    temp_dir dir;
    std::string path = dir.file("tokens");
    admin_tokens_file() {
        write_file(path, "# role name token\nviewer prometheus " + std::string(viewer_token) + "\n");
        ::chmod(path.c_str(), 0600);
    }
};

// The one token file of this test process, written when the first gateway is configured (it must
// exist before a gateway starts) and removed at exit.
const std::string& tokens_file() {
    static const admin_tokens_file tokens;
    return tokens.path;
}

struct gateway_options {
    std::string app;                // the default upstream's servers
    std::string app_extra = {};     // more keys of upstreams.app
    std::string rooms_yaml = {};    // the rooms: section's body
    unsigned threads = 1;
};

std::string gateway_config(const gateway_options& o) {
    std::ostringstream y;
    y << "threads: " << o.threads << "\n"
      << "listen: [{address: 127.0.0.1:0}]\n"
      << "admin: {address: 127.0.0.1:0, tokens_file: " << tokens_file() << "}\n"
      << "log_level: info\n"
      << "access_log: stdout\n"
      << "timeouts: {shutdown_grace: 1s}\n"
      << "upstreams:\n"
      << "  app: {servers: [" << o.app << "]" << (o.app_extra.empty() ? "" : ", " + o.app_extra) << "}\n"
      << "default_upstream: app\n";
    if (!o.rooms_yaml.empty()) y << "rooms:\n" << o.rooms_yaml;
    return y.str();
}

// GET /metrics on the admin listener; the body, after checking the status.
std::string scrape_text(const gateway_process& gw) {
    http_client c(gw.admin_port());
    const auto r = c.get("/metrics", {{"Authorization", "Bearer " + std::string(viewer_token)}});
    INFO(r.body());
    REQUIRE(r.result_int() == 200);
    return r.body();
}

exposition scrape(const gateway_process& gw) {
    const std::string text = scrape_text(gw);
    auto e = parse_exposition(text);
    INFO(text);
    for (const auto& err : e.errors) FAIL_CHECK(err);
    return e;
}

// Scrapes until `done` holds (counts land just after the answer is written)
// or two seconds pass; returns the last scrape either way.
template <class Pred>
exposition scrape_until(const gateway_process& gw, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    for (;;) {
        auto e = scrape(gw);
        if (done(e) || std::chrono::steady_clock::now() >= deadline) return e;
        std::this_thread::sleep_for(20ms);
    }
}

// Scrapes until the series name{exact} has the value `want`, as scrape_until above.
exposition scrape_until(const gateway_process& gw, const std::string& name, const labels& exact,
                        double want) {
    return scrape_until(gw, [&](const exposition& s) { return s.value(name, exact) == want; });
}

// The sample's value, or -1 when the series is missing.
double value_of(const exposition& e, const std::string& name, const labels& l) {
    return e.value(name, l).value_or(-1);
}

labels requests(std::string room, std::string outcome) {
    return {{"room", std::move(room)}, {"outcome", std::move(outcome)}};
}

// Histogram checks: cumulative buckets never decrease, +Inf equals _count.
void check_histogram(const exposition& e, const std::string& name, const labels& l) {
    INFO(name);
    const auto count = e.value(name + "_count", l);
    REQUIRE(count.has_value());
    REQUIRE(e.value(name + "_sum", l).has_value());
    std::vector<std::pair<double, double>> buckets;
    for (const sample* s : e.find(name + "_bucket", l)) {
        auto le = s->label.at("le");
        buckets.emplace_back(*parse_value(le), s->value);
    }
    REQUIRE_FALSE(buckets.empty());
    std::sort(buckets.begin(), buckets.end());
    for (std::size_t i = 1; i < buckets.size(); ++i) CHECK(buckets[i].second >= buckets[i - 1].second);
    CHECK(std::isinf(buckets.back().first));
    CHECK(buckets.back().second == *count);
}

}  // namespace

TEST_CASE("the metrics page is valid Prometheus text in which every family has a type", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  shop: {match: {paths: [/echo]}, admission: {max_active: 100}}\n"}));
    http_client client(gw.port());
    CHECK(client.get("/status?code=204").result_int() == 204);
    CHECK(client.get("/echo").result_int() == 200);

    const std::string text = scrape_text(gw);
    const auto e = parse_exposition(text);
    INFO(text);
    for (const auto& err : e.errors) FAIL_CHECK(err);
    CHECK(e.samples.size() > 50);
    for (const auto& [family, type] : e.types) {
        INFO(family);
        CHECK(e.helps.count(family) == 1);
        if (type == "counter") CHECK(family.ends_with("_total"));
    }
    // The contract of DESIGN.md, with their types.
    const std::map<std::string, std::string> contract{
        {"floodgate_room_waiting", "gauge"},
        {"floodgate_room_active", "gauge"},
        {"floodgate_room_rate_limit", "gauge"},
        {"floodgate_room_max_active", "gauge"},
        {"floodgate_tickets_issued_total", "counter"},
        {"floodgate_admitted_total", "counter"},
        {"floodgate_abandoned_total", "counter"},
        {"floodgate_released_total", "counter"},
        {"floodgate_wait_seconds", "histogram"},
        {"floodgate_requests_total", "counter"},
        {"floodgate_token_rejected_total", "counter"},
        {"floodgate_upstream_request_seconds", "histogram"},
        {"floodgate_upstream_errors_total", "counter"},
        {"floodgate_connections", "gauge"},
        {"floodgate_build_info", "gauge"},
        {"process_cpu_seconds_total", "counter"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
    };
    for (const auto& [name, type] : contract) {
        INFO(name);
        CHECK(e.types.count(name) == 1);
        if (e.types.count(name)) CHECK(e.types.at(name) == type);
    }
    CHECK(e.find("floodgate_build_info").size() == 1);
    CHECK(e.find("floodgate_build_info").front()->value == 1);
    CHECK(e.value("floodgate_room_max_active", {{"room", "shop"}}) == 100);
    CHECK(e.value("floodgate_room_mode", {{"room", "shop"}, {"mode", "auto"}}) == 1);
    CHECK(e.value("process_resident_memory_bytes").value_or(0) > 1e6);
    CHECK(e.value("process_open_fds").value_or(0) >= 3);
    const double started = e.value("process_start_time_seconds").value_or(0);
    const double now = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    CHECK(started > now - 120);
    CHECK(started <= now + 2);
    check_histogram(e, "floodgate_upstream_request_seconds", {{"upstream", "app"}});
    check_histogram(e, "floodgate_wait_seconds", {{"room", "shop"}});
}

TEST_CASE("the metrics page needs an admin token", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config({.app = app.address()}));
    http_client c(gw.admin_port());
    CHECK(c.get("/metrics").result_int() == 401);
    CHECK(c.get("/metrics", {{"Authorization", "Bearer not-the-token-at-all-0000"}}).result_int() == 401);
    CHECK(c.get("/metrics", {{"Authorization", "Bearer " + std::string(viewer_token)}}).result_int() == 200);
}

TEST_CASE("every proxied request is counted once with its upstream time on every thread", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config({.app = app.address(), .threads = 2}));
    constexpr int n = 24;
    // Fresh connections, so that both threads serve some (SO_REUSEPORT spreads them).
    for (int i = 0; i < n; ++i) {
        http_client c(gw.port());
        REQUIRE(c.get("/echo?i=" + std::to_string(i)).result_int() == 200);
    }
    {
        http_client c(gw.port());
        CHECK(c.get("/status?code=503").result_int() == 503);  // relayed: proxied, and a 5xx of the upstream
    }
    // Refused by the gateway before any upstream: a request target without a leading slash.
    const auto refused = raw_exchange(gw.port(), "GET nothing HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(status_of(refused) == 400);

    const auto e = scrape_until(gw, [&](const exposition& s) {
        return s.value("floodgate_requests_total", requests("-", "proxied")) == n + 1 &&
               s.value("floodgate_requests_total", requests("-", "rejected")) == 1;
    });
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "proxied")) == n + 1);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "rejected")) == 1);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "error")) == 0);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "queued")) == 0);
    const labels app_label{{"upstream", "app"}};
    CHECK(value_of(e, "floodgate_upstream_request_seconds_count", app_label) == n + 1);
    check_histogram(e, "floodgate_upstream_request_seconds", app_label);
    const double sum = value_of(e, "floodgate_upstream_request_seconds_sum", app_label);
    CHECK(sum > 0);
    CHECK(sum < 5.0 * (n + 1));
    CHECK(value_of(e, "floodgate_upstream_errors_total", {{"upstream", "app"}, {"kind", "status_5xx"}}) == 1);
    for (std::string kind : {"connect", "timeout", "reset", "protocol"})
        CHECK(value_of(e, "floodgate_upstream_errors_total", {{"upstream", "app"}, {"kind", kind}}) == 0);
}

TEST_CASE("open client connections are a gauge per listener", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config({.app = app.address()}));
    const labels listener{{"listener", "127.0.0.1:0"}};
    {
        http_client a(gw.port()), b(gw.port());
        CHECK(a.get("/echo").result_int() == 200);
        CHECK(b.get("/echo").result_int() == 200);
        const auto e = scrape_until(gw, "floodgate_connections", listener, 2);
        CHECK(value_of(e, "floodgate_connections", listener) == 2);
    }
    const auto e = scrape_until(gw, "floodgate_connections", listener, 0);
    CHECK(value_of(e, "floodgate_connections", listener) == 0);
}

TEST_CASE("an unreachable upstream is counted as a connect error and the request as an error", "[metrics]") {
    gateway_process gw(gateway_config({.app = "127.0.0.1:" + std::to_string(unused_port())}));
    for (int i = 0; i < 3; ++i) {
        http_client c(gw.port());
        CHECK(c.get("/echo").result_int() == 502);
    }
    const auto e = scrape_until(gw, "floodgate_requests_total", requests("-", "error"), 3);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "error")) == 3);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "proxied")) == 0);
    CHECK(value_of(e, "floodgate_upstream_errors_total", {{"upstream", "app"}, {"kind", "connect"}}) == 3);
    CHECK(value_of(e, "floodgate_upstream_request_seconds_count", {{"upstream", "app"}}) == 0);
}

TEST_CASE("a slow upstream is counted as a timeout", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config({.app = app.address(), .app_extra = "response_timeout: 300ms"}));
    http_client c(gw.port());
    CHECK(c.get("/delay?ms=2000").result_int() == 504);
    const auto e = scrape_until(gw, "floodgate_requests_total", requests("-", "error"), 1);
    CHECK(value_of(e, "floodgate_requests_total", requests("-", "error")) == 1);
    CHECK(value_of(e, "floodgate_upstream_errors_total", {{"upstream", "app"}, {"kind", "timeout"}}) == 1);
}

TEST_CASE("tampered and foreign passes are counted by reason and the person is admitted as new", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  shop: {match: {paths: [/echo]}, admission: {max_active: 100}}\n"
                       "  other: {match: {paths: [/count]}, admission: {max_active: 100}}\n"}));
    // Direct admission (auto mode, room for everyone): a pass minted by this request.
    const reply first = rooms::get(gw.port(), "/echo");
    REQUIRE(first.status == 200);
    const auto pass = first.cookie("fg_pass_shop");
    REQUIRE(pass.has_value());
    // With the pass: proxied.
    CHECK(rooms::get(gw.port(), "/echo", {cookie_header("fg_pass_shop", *pass)}).status == 200);
    // A changed MAC, garbage, and shop's pass shown to the other room.
    CHECK(rooms::get(gw.port(), "/echo", {cookie_header("fg_pass_shop", rooms::change_char(*pass, 3, 2))})
              .status == 200);
    CHECK(rooms::get(gw.port(), "/echo", {cookie_header("fg_pass_shop", "garbage")}).status == 200);
    CHECK(rooms::get(gw.port(), "/count", {cookie_header("fg_pass_other", *pass)}).status == 200);

    const auto e = scrape_until(gw, "floodgate_requests_total", requests("other", "admitted"), 1);
    const auto rejected = [&](std::string reason) {
        return value_of(e, "floodgate_token_rejected_total", {{"reason", std::move(reason)}});
    };
    CHECK(rejected("bad_mac") == 1);
    CHECK(rejected("malformed") == 1);
    CHECK(rejected("wrong_room") == 1);
    CHECK(rejected("expired") == 0);
    CHECK(rejected("binding") == 0);
    CHECK(value_of(e, "floodgate_requests_total", requests("shop", "admitted")) == 3);
    CHECK(value_of(e, "floodgate_requests_total", requests("shop", "proxied")) == 1);
    CHECK(value_of(e, "floodgate_requests_total", requests("other", "admitted")) == 1);
    CHECK(value_of(e, "floodgate_admitted_total", {{"room", "shop"}}) == 3);
    CHECK(value_of(e, "floodgate_room_active", {{"room", "shop"}}) == 3);
    CHECK(value_of(e, "floodgate_tickets_issued_total", {{"room", "shop"}}) == 0);
}

TEST_CASE("people in a paused room are counted as tickets issued and waiting", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  hall: {match: {paths: [/hall]}, admission: {rate: 10}, mode: paused}\n"}));
    constexpr int n = 4;
    for (int i = 0; i < n; ++i) {
        const reply r = rooms::get(gw.port(), "/hall", {accept_json});
        INFO(r.body);
        CHECK(r.status == 503);
        CHECK(r.cookie("fg_ticket_hall").has_value());
    }
    const auto e = scrape_until(gw, "floodgate_requests_total", requests("hall", "queued"), n);
    const labels hall{{"room", "hall"}};
    CHECK(value_of(e, "floodgate_requests_total", requests("hall", "queued")) == n);
    CHECK(value_of(e, "floodgate_tickets_issued_total", hall) == n);
    CHECK(value_of(e, "floodgate_room_waiting", hall) == n);
    CHECK(value_of(e, "floodgate_room_active", hall) == 0);
    CHECK(value_of(e, "floodgate_admitted_total", hall) == 0);
    CHECK(value_of(e, "floodgate_room_rate_limit", hall) == 10);
    CHECK(value_of(e, "floodgate_room_mode", {{"room", "hall"}, {"mode", "paused"}}) == 1);
    CHECK(value_of(e, "floodgate_room_mode", {{"room", "hall"}, {"mode", "auto"}}) == 0);
    CHECK(app.request_count() == 0);
}

TEST_CASE("time in line is observed once per pass minted from a ticket", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  concert: {match: {paths: [/echo]}, admission: {rate: 4, burst: 1}, mode: queue_all}\n"}));
    constexpr int n = 3;
    std::vector<std::string> tickets;
    for (int i = 0; i < n; ++i) {
        const reply r = rooms::get(gw.port(), "/echo", {accept_json});
        REQUIRE(r.status == 503);
        tickets.push_back(r.cookie("fg_ticket_concert").value_or(""));
    }
    std::vector<std::string> passes;
    for (const auto& t : tickets) passes.push_back(rooms::wait_for_pass(gw.port(), "concert", t, 15s));
    for (const auto& p : passes)
        CHECK(rooms::get(gw.port(), "/echo", {cookie_header("fg_pass_concert", p)}).status == 200);

    const labels concert{{"room", "concert"}};
    const auto e = scrape_until(gw, "floodgate_requests_total", requests("concert", "proxied"), n);
    CHECK(value_of(e, "floodgate_wait_seconds_count", concert) == n);
    check_histogram(e, "floodgate_wait_seconds", concert);
    CHECK(value_of(e, "floodgate_wait_seconds_sum", concert) >= 0);
    CHECK(value_of(e, "floodgate_wait_seconds_sum", concert) < 20.0 * n);
    CHECK(value_of(e, "floodgate_tickets_issued_total", concert) == n);
    CHECK(value_of(e, "floodgate_admitted_total", concert) == n);
    CHECK(value_of(e, "floodgate_requests_total", requests("concert", "queued")) == n);
    CHECK(value_of(e, "floodgate_requests_total", requests("concert", "proxied")) == n);
    CHECK(value_of(e, "floodgate_room_active", concert) == n);
}

TEST_CASE("the rooms API reports the upstream's recent response times and error rate", "[metrics]") {
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  shop: {match: {paths: [/count]}, admission: {max_active: 100}}\n"}));
    // The room's upstream is the default one (app): any request through app counts.
    auto upstream_stats = [&]() {
        http_client c(gw.admin_port());
        const auto r = c.get("/admin/v1/rooms/shop", {{"Authorization", "Bearer " + std::string(viewer_token)}});
        INFO(r.body());
        REQUIRE(r.result_int() == 200);
        const auto doc = boost::json::parse(r.body());
        return doc.at("stats").at("upstream").as_object();
    };
    auto number = [](const boost::json::object& o, std::string_view key) {
        return boost::json::value_to<double>(o.at(key));
    };
    auto wait_for = [&](auto pred) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        for (;;) {
            const auto up = upstream_stats();
            if (pred(up) || std::chrono::steady_clock::now() >= deadline) return up;
            std::this_thread::sleep_for(200ms);
        }
    };

    for (int i = 0; i < 10; ++i) CHECK(rooms::get(gw.port(), "/delay?ms=20").status == 200);
    auto up = wait_for([&](const boost::json::object& o) { return number(o, "requests_per_s") > 0; });
    INFO(boost::json::serialize(up));
    CHECK(number(up, "requests_per_s") > 0);
    CHECK(number(up, "p50_ms") >= 15);  // 20 ms, within the 25% of its bucket
    CHECK(number(up, "p50_ms") < 1000);
    CHECK(number(up, "p99_ms") >= number(up, "p50_ms"));
    CHECK(number(up, "error_rate") == 0);

    for (int i = 0; i < 10; ++i) CHECK(rooms::get(gw.port(), "/status?code=500").status == 500);
    up = wait_for([&](const boost::json::object& o) { return number(o, "error_rate") > 0.3; });
    INFO(boost::json::serialize(up));
    CHECK(number(up, "error_rate") > 0.3);  // 10 of 20 in the window, or 10 of 10 once the first left it
    CHECK(number(up, "error_rate") <= 1);
}

// --- deploy/: the dashboard and the alerts use only metrics that exist ------

namespace {

struct used_metric {
    std::string name;
    labels fixed;  // label matchers with = and a literal value
    std::string where;
};

// Metric names (and their literal = matchers) in a PromQL expression.
void find_metrics(const std::string& expr, const std::string& where, std::vector<used_metric>& out) {
    static const std::regex selector(R"(\b((?:floodgate|process)_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?)");
    static const std::regex matcher(R"re(([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)")re");
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), selector); it != std::sregex_iterator(); ++it) {
        used_metric m{(*it)[1].str(), {}, where};
        const std::string braces = (*it)[2].str();
        for (auto mt = std::sregex_iterator(braces.begin(), braces.end(), matcher); mt != std::sregex_iterator(); ++mt)
            if ((*mt)[2].str() == "=" && (*mt)[3].str().find('$') == std::string::npos)
                m.fixed[(*mt)[1].str()] = (*mt)[3].str();
        out.push_back(std::move(m));
    }
}

// Every "expr" and every templating "query" in a Grafana dashboard.
void walk_dashboard(const boost::json::value& v, const std::string& where, std::vector<used_metric>& out,
                    std::size_t& exprs) {
    if (v.is_object()) {
        const auto& o = v.as_object();
        std::string here = where;
        if (auto t = o.if_contains("title"); t && t->is_string()) here = where + " / " + std::string(t->as_string());
        for (const auto& [k, child] : o) {
            if ((k == "expr" || k == "query" || k == "definition") && child.is_string()) {
                ++exprs;
                find_metrics(std::string(child.as_string()), here, out);
            } else if (k == "query" && child.is_object()) {
                if (auto q = child.as_object().if_contains("query"); q && q->is_string()) {
                    ++exprs;
                    find_metrics(std::string(q->as_string()), here, out);
                }
            } else {
                walk_dashboard(child, here, out, exprs);
            }
        }
    } else if (v.is_array()) {
        for (const auto& child : v.as_array()) walk_dashboard(child, where, out, exprs);
    }
}

}  // namespace

TEST_CASE("every metric in the Grafana dashboard and the alert rules exists on the metrics page", "[metrics]") {
    const std::filesystem::path source = FLOODGATE_SOURCE_DIR;
    std::vector<used_metric> used;
    std::size_t exprs = 0;

    std::size_t dashboards = 0;
    for (const auto& f : std::filesystem::directory_iterator(source / "deploy" / "grafana")) {
        if (f.path().extension() != ".json") continue;
        ++dashboards;
        boost::system::error_code ec;
        const auto doc = boost::json::parse(read_file(f.path().string()), ec);
        INFO(f.path());
        REQUIRE_FALSE(ec);
        REQUIRE(doc.is_object());
        CHECK(doc.as_object().contains("panels"));
        walk_dashboard(doc, f.path().filename().string(), used, exprs);
    }
    CHECK(dashboards >= 1);

    const YAML::Node alerts = YAML::LoadFile((source / "deploy" / "prometheus" / "alerts.yml").string());
    std::size_t rules = 0;
    for (const auto& group : alerts["groups"])
        for (const auto& rule : group["rules"]) {
            ++rules;
            ++exprs;
            const std::string name = rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>();
            find_metrics(rule["expr"].as<std::string>(), "alerts.yml / " + name, used);
        }
    CHECK(rules >= 4);
    CHECK(exprs >= 10);
    REQUIRE_FALSE(used.empty());

    // A scrape in which every family has series: a room, an upstream, a
    // rejected token, an upstream error.
    test_upstream app;
    gateway_process gw(gateway_config(
        {.app = app.address(),
         .rooms_yaml = "  shop: {match: {paths: [/echo]}, admission: {max_active: 100}}\n"}));
    CHECK(rooms::get(gw.port(), "/echo", {cookie_header("fg_pass_shop", "garbage")}).status == 200);
    CHECK(rooms::get(gw.port(), "/status?code=500").status == 500);
    const auto e = scrape(gw);

    std::set<std::string> sample_names;
    for (const auto& s : e.samples) sample_names.insert(s.name);
    for (const auto& m : used) {
        INFO(m.where << ": " << m.name);
        CHECK(sample_names.count(m.name) == 1);
        std::string base = m.name;
        for (std::string_view suffix : {"_bucket", "_sum", "_count"})
            if (base.ends_with(suffix) && e.types.count(base.substr(0, base.size() - suffix.size())))
                base = base.substr(0, base.size() - suffix.size());
        CHECK(e.types.count(base) == 1);
        if (!m.fixed.empty()) {
            // Some series has each literal label value the expression asks for.
            for (const auto& [k, v] : m.fixed) {
                INFO(k << "=\"" << v << "\"");
                CHECK_FALSE(e.find(m.name, {{k, v}}).empty());
            }
        }
    }
}

namespace {

std::string find_in_path(std::string_view program) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path ? path : "/usr/bin:/bin";
    while (!dirs.empty()) {
        const auto colon = dirs.find(':');
        const std::string candidate = std::string(dirs.substr(0, colon)) + "/" + std::string(program);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    }
    return {};
}

}  // namespace

TEST_CASE("the alert rules pass their promtool unit tests and the scrape config is valid", "[metrics]") {
    const std::string promtool = find_in_path("promtool");
    // deploy/install-deps.sh installs it; a missing promtool is a failed check, not a skipped one.
    if (promtool.empty()) FAIL("promtool is not installed (Debian package prometheus; deploy/install-deps.sh)");
    const std::filesystem::path dir = std::filesystem::path(FLOODGATE_SOURCE_DIR) / "deploy" / "prometheus";
    const auto rules = run_process({promtool, "test", "rules", (dir / "alerts_test.yml").string()}, 60s);
    INFO(rules.out << rules.err);
    CHECK(rules.exit_code == 0);
    // check config reads the credentials file: a copy that points at one that exists.
    temp_dir tmp;
    write_file(tmp.file("token"), "not-a-real-token\n");
    write_file(tmp.file("alerts.yml"), read_file((dir / "alerts.yml").string()));
    write_file(tmp.file("prometheus.yml"),
               replace_all(read_file((dir / "prometheus.yml").string()), "/etc/prometheus/floodgate.token",
                           tmp.file("token")));
    const auto config = run_process({promtool, "check", "config", tmp.file("prometheus.yml")}, 60s);
    INFO(config.out << config.err);
    CHECK(config.exit_code == 0);
}

}  // namespace floodgate::itest::metrics
