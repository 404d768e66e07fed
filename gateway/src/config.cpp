#include "gateway/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "gateway/text.hpp"

namespace floodgate {

using text::cat;
using text::join;
using text::to_lower;
using text::trim;

std::string endpoint::to_string() const {
    if (host.find(':') != std::string::npos) return cat("[", host, "]:", port);
    return cat(host, ":", port);
}

const char* to_string(room_mode m) {
    switch (m) {
        case room_mode::automatic: return "auto";
        case room_mode::queue_all: return "queue_all";
        case room_mode::paused: return "paused";
        case room_mode::closed: return "closed";
    }
    return "auto";
}

std::optional<room_mode> parse_room_mode(std::string_view s) {
    if (s == "auto") return room_mode::automatic;
    if (s == "queue_all" || s == "queue-all") return room_mode::queue_all;
    if (s == "paused") return room_mode::paused;
    if (s == "closed") return room_mode::closed;
    return std::nullopt;
}

const room_config* config::find_room(std::string_view name) const {
    for (const auto& r : rooms)
        if (r.name == name) return &r;
    return nullptr;
}

const upstream_config* config::find_upstream(std::string_view name) const {
    for (const auto& u : upstreams)
        if (u.name == name) return &u;
    return nullptr;
}

using text::parse_u64;

namespace {

// "10ms" -> {10, "ms"}: a whole number and a lowercase unit (maybe empty).
struct number_with_unit {
    std::uint64_t n = 0;
    std::string unit;
};

std::optional<number_with_unit> split_number(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t digits = 0;
    while (digits < s.size() && (s[digits] >= '0' && s[digits] <= '9')) ++digits;
    number_with_unit out;
    if (!parse_u64(s.substr(0, digits), out.n)) return std::nullopt;
    out.unit = to_lower(trim(s.substr(digits)));
    return out;
}

}  // namespace

absl::StatusOr<duration> parse_duration(std::string_view text) {
    auto parts = split_number(text);
    if (!parts)
        return absl::InvalidArgumentError(
            cat("expected a duration such as 250ms, 10s, 5m or 1h, got \"", text, "\""));
    const std::uint64_t n = parts->n;
    const std::string& unit = parts->unit;
    std::uint64_t ms_per_unit = 0;
    if (unit == "ms") ms_per_unit = 1;
    else if (unit.empty() || unit == "s") ms_per_unit = 1000;
    else if (unit == "m" || unit == "min") ms_per_unit = 60'000;
    else if (unit == "h") ms_per_unit = 3'600'000;
    else
        return absl::InvalidArgumentError(cat(
            "unknown duration unit \"", unit, "\" in \"", text, "\" (use ms, s, m or h)"));
    if (n > std::numeric_limits<std::int64_t>::max() / ms_per_unit / 1000)
        return absl::InvalidArgumentError(cat("duration \"", text, "\" is too large"));
    return duration(static_cast<std::int64_t>(n * ms_per_unit));
}

absl::StatusOr<std::uint64_t> parse_size(std::string_view text) {
    auto parts = split_number(text);
    if (!parts)
        return absl::InvalidArgumentError(
            cat("expected a size such as 512, 16k, 10m or 1g, got \"", text, "\""));
    const std::uint64_t n = parts->n;
    const std::string& unit = parts->unit;
    std::uint64_t mult = 0;
    if (unit.empty() || unit == "b") mult = 1;
    else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1ull << 10;
    else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1ull << 20;
    else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1ull << 30;
    else
        return absl::InvalidArgumentError(cat(
            "unknown size unit \"", unit, "\" in \"", text, "\" (use k, m or g)"));
    if (n > std::numeric_limits<std::uint64_t>::max() / mult)
        return absl::InvalidArgumentError(cat("size \"", text, "\" is too large"));
    return n * mult;
}

absl::StatusOr<endpoint> parse_endpoint(std::string_view text) {
    std::string_view s = trim(text);
    endpoint ep;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return absl::InvalidArgumentError(
                cat("expected [ipv6]:port, got \"", text, "\""));
        ep.host = std::string(s.substr(1, close - 1));
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos)
            return absl::InvalidArgumentError(
                cat("expected host:port such as 127.0.0.1:8080, got \"", text, "\""));
        if (s.substr(0, colon).find(':') != std::string_view::npos)
            return absl::InvalidArgumentError(
                cat("write IPv6 addresses in brackets, [::1]:8080, got \"", text, "\""));
        ep.host = std::string(s.substr(0, colon));
        port = s.substr(colon + 1);
        if (ep.host.empty()) ep.host = "0.0.0.0";
    }
    std::uint64_t p = 0;
    if (!parse_u64(port, p) || p > 65535)
        return absl::InvalidArgumentError(
            cat("expected a port from 0 to 65535 in \"", text, "\""));
    if (ep.host.empty())
        return absl::InvalidArgumentError(cat("missing host in \"", text, "\""));
    ep.port = static_cast<std::uint16_t>(p);
    return ep;
}

namespace {

// Walks the YAML tree, keeping the file name so that every error can say
// where it is. The first error wins; later reads become no-ops.
class reader {
public:
    explicit reader(std::string file) : file_(std::move(file)) {}

    bool failed() const { return !status_.ok(); }
    absl::Status status() const { return status_; }

    void fail(const YAML::Node& at, std::string_view path, std::string_view why) {
        if (failed()) return;
        const YAML::Mark m = at.Mark();
        if (m.is_null())
            status_ = absl::InvalidArgumentError(cat(file_, ": ", path, ": ", why));
        else
            status_ = absl::InvalidArgumentError(cat(file_, ":", m.line + 1, ":",
                                                              m.column + 1, ": ", path, ": ", why));
    }

    // Checks that a mapping has only known keys (typos are errors, not silently ignored).
    bool expect_map(const YAML::Node& node, std::string_view path,
                    std::initializer_list<std::string_view> keys) {
        if (failed()) return false;
        if (!node.IsMap()) {
            fail(node, path, "expected a mapping (key: value lines)");
            return false;
        }
        for (const auto& kv : node) {
            const std::string key = kv.first.Scalar();
            if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
                fail(kv.first, child(path, key),
                     cat("unknown key; expected one of: ", join(keys, ", ")));
                return false;
            }
        }
        return true;
    }

    static std::string child(std::string_view path, std::string_view key) {
        return path.empty() ? std::string(key) : cat(path, ".", key);
    }

    bool scalar(const YAML::Node& n, std::string_view path, std::string& out) {
        if (failed()) return false;
        if (!n.IsScalar()) {
            fail(n, path, "expected a single value");
            return false;
        }
        out = n.Scalar();
        return true;
    }

    void string(const YAML::Node& parent, std::string_view path, std::string_view key,
                std::string& out) {
        if (auto n = parent[std::string(key)]) scalar(n, child(path, key), out);
    }

    void boolean(const YAML::Node& parent, std::string_view path, std::string_view key, bool& out) {
        auto n = parent[std::string(key)];
        if (!n) return;
        std::string s;
        if (!scalar(n, child(path, key), s)) return;
        s = to_lower(s);
        if (s == "true" || s == "yes" || s == "on") out = true;
        else if (s == "false" || s == "no" || s == "off") out = false;
        else fail(n, child(path, key), cat("expected true or false, got \"", n.Scalar(), "\""));
    }

    template <class T>
    void number(const YAML::Node& parent, std::string_view path, std::string_view key, T& out,
                std::uint64_t lo, std::uint64_t hi) {
        auto n = parent[std::string(key)];
        if (!n) return;
        std::string s;
        if (!scalar(n, child(path, key), s)) return;
        std::uint64_t v = 0;
        if (!parse_u64(s, v) || v < lo || v > hi) {
            fail(n, child(path, key),
                 cat("expected a whole number from ", lo, " to ", hi, ", got \"", s, "\""));
            return;
        }
        out = static_cast<T>(v);
    }

    void real(const YAML::Node& parent, std::string_view path, std::string_view key, double& out,
              double lo, double hi) {
        auto n = parent[std::string(key)];
        if (!n) return;
        std::string s;
        if (!scalar(n, child(path, key), s)) return;
        double v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size() || !(v >= lo && v <= hi)) {
            fail(n, child(path, key),
                 cat("expected a number from ", lo, " to ", hi, ", got \"", s, "\""));
            return;
        }
        out = v;
    }

    // A single value or a list of values.
    void strings(const YAML::Node& parent, std::string_view path, std::string_view key,
                 std::vector<std::string>& out) {
        auto n = parent[std::string(key)];
        if (!n || failed()) return;
        out.clear();
        if (n.IsScalar()) {
            out.push_back(n.Scalar());
        } else if (n.IsSequence()) {
            for (const auto& item : n) {
                std::string s;
                if (!scalar(item, child(path, key), s)) return;
                out.push_back(s);
            }
        } else {
            fail(n, child(path, key), "expected a value or a list of values");
        }
    }

    void size(const YAML::Node& parent, std::string_view path, std::string_view key,
              std::uint64_t& out, std::uint64_t lo, std::uint64_t hi) {
        auto n = parent[std::string(key)];
        if (!n) return;
        std::string s;
        if (!scalar(n, child(path, key), s)) return;
        auto v = parse_size(s);
        if (!v.ok()) return fail(n, child(path, key), std::string(v.status().message()));
        if (*v < lo || *v > hi)
            return fail(n, child(path, key),
                        cat("expected a size from ", lo, " to ", hi, " bytes, got \"", s, "\""));
        out = *v;
    }

    void time(const YAML::Node& parent, std::string_view path, std::string_view key, duration& out,
              duration lo = duration(1)) {
        auto n = parent[std::string(key)];
        if (!n) return;
        std::string s;
        if (!scalar(n, child(path, key), s)) return;
        auto v = parse_duration(s);
        if (!v.ok()) return fail(n, child(path, key), std::string(v.status().message()));
        if (*v < lo)
            return fail(n, child(path, key),
                        cat("must be at least ", lo.count(), "ms, got \"", s, "\""));
        out = *v;
    }

    void address(const YAML::Node& n, std::string_view path, endpoint& out) {
        std::string s;
        if (!scalar(n, path, s)) return;
        auto ep = parse_endpoint(s);
        if (!ep.ok()) return fail(n, path, std::string(ep.status().message()));
        out = *ep;
    }

private:
    std::string file_;
    absl::Status status_;
};

void read_listener(reader& r, const YAML::Node& n, const std::string& path, listener_config& out) {
    if (n.IsScalar()) {  // shorthand: "- 0.0.0.0:8080"
        r.address(n, path, out.address);
        return;
    }
    if (!r.expect_map(n, path, {"address", "tls", "max_connections"})) return;
    if (!n["address"]) return r.fail(n, path, "missing address (host:port)");
    r.address(n["address"], path + ".address", out.address);
    r.number(n, path, "max_connections", out.max_connections, 1, 10'000'000);
    if (auto t = n["tls"]) {
        const std::string tp = path + ".tls";
        if (!r.expect_map(t, tp, {"cert", "key"})) return;
        tls_server_config tls;
        r.string(t, tp, "cert", tls.cert_file);
        r.string(t, tp, "key", tls.key_file);
        if (tls.cert_file.empty()) return r.fail(t, tp, "missing cert (a PEM certificate chain file)");
        if (tls.key_file.empty()) return r.fail(t, tp, "missing key (a PEM private key file)");
        out.tls = std::move(tls);
    }
}

void read_upstream(reader& r, const std::string& name, const YAML::Node& n, const std::string& path,
                   upstream_config& out) {
    out.name = name;
    if (!r.expect_map(n, path,
                      {"servers", "pool_size", "connect_timeout", "response_timeout",
                       "idle_timeout", "max_fails", "fail_timeout", "tls"}))
        return;
    auto servers = n["servers"];
    if (!servers) return r.fail(n, path, "missing servers (a list of host:port)");
    const std::string sp = path + ".servers";
    if (servers.IsScalar()) {
        endpoint ep;
        r.address(servers, sp, ep);
        out.servers.push_back(ep);
    } else if (servers.IsSequence()) {
        std::size_t i = 0;
        for (const auto& s : servers) {
            endpoint ep;
            r.address(s, cat(sp, "[", i++, "]"), ep);
            if (ep.port == 0) return r.fail(s, sp, "an upstream server needs a port other than 0");
            out.servers.push_back(ep);
        }
    } else {
        return r.fail(servers, sp, "expected a list of host:port");
    }
    if (!r.failed() && out.servers.empty()) return r.fail(servers, sp, "needs at least one server");
    r.number(n, path, "pool_size", out.pool_size, 0, 100'000);
    r.time(n, path, "connect_timeout", out.connect_timeout);
    r.time(n, path, "response_timeout", out.response_timeout);
    r.time(n, path, "idle_timeout", out.idle_timeout);
    r.number(n, path, "max_fails", out.max_fails, 1, 1'000'000);
    r.time(n, path, "fail_timeout", out.fail_timeout);
    if (auto t = n["tls"]) {
        const std::string tp = path + ".tls";
        if (t.IsScalar()) {
            r.boolean(n, path, "tls", out.tls.enabled);
        } else if (r.expect_map(t, tp, {"enabled", "verify", "ca", "server_name"})) {
            out.tls.enabled = true;
            r.boolean(t, tp, "enabled", out.tls.enabled);
            r.boolean(t, tp, "verify", out.tls.verify);
            r.string(t, tp, "ca", out.tls.ca_file);
            r.string(t, tp, "server_name", out.tls.server_name);
        }
    }
}

bool valid_room_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

void read_room(reader& r, const YAML::Node& key, const YAML::Node& n, room_config& out) {
    out.name = key.Scalar();
    const std::string path = cat("rooms.", out.name);
    if (!valid_room_name(out.name))
        return r.fail(key, path, "a room name is 1 to 64 of a-z, 0-9, '_' and '-' (it appears in URLs and cookie names)");
    if (!r.expect_map(n, path, {"match", "api_paths", "upstream", "admission", "mode", "identity",
                                "page", "tokens"}))
        return;
    auto m = n["match"];
    if (!m) return r.fail(n, path, "missing match (which paths this room protects)");
    const std::string mp = path + ".match";
    if (!r.expect_map(m, mp, {"hosts", "paths", "exact", "methods", "case_insensitive"})) return;
    r.strings(m, mp, "hosts", out.hosts);
    r.strings(m, mp, "paths", out.paths);
    r.strings(m, mp, "exact", out.exact);
    r.strings(m, mp, "methods", out.methods);
    r.boolean(m, mp, "case_insensitive", out.case_insensitive);
    if (r.failed()) return;
    if (out.paths.empty() && out.exact.empty())
        return r.fail(m, mp, "needs paths (prefixes) or exact paths to protect");
    for (const auto* list : {&out.paths, &out.exact})
        for (const auto& p : *list)
            if (p.empty() || p.front() != '/')
                return r.fail(m, mp, cat("paths start with '/', got \"", p, "\""));
    for (auto& meth : out.methods)
        for (auto& c : meth) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    r.strings(n, path, "api_paths", out.api_paths);
    r.string(n, path, "upstream", out.upstream);

    if (auto a = n["admission"]) {
        const std::string ap = path + ".admission";
        if (r.expect_map(a, ap, {"rate", "burst", "max_active", "idle_timeout", "session_ttl",
                                 "claim_window", "abandon_after"})) {
            r.real(a, ap, "rate", out.rate, 0, 10'000'000);
            r.number(a, ap, "burst", out.burst, 1, 10'000'000);
            r.number(a, ap, "max_active", out.max_active, 0, 1'000'000'000);
            r.time(a, ap, "idle_timeout", out.idle_timeout, duration(1000));
            r.time(a, ap, "session_ttl", out.session_ttl, duration(1000));
            r.time(a, ap, "claim_window", out.claim_window, duration(1000));
            r.time(a, ap, "abandon_after", out.abandon_after, duration(2000));
        }
    }
    if (!r.failed() && out.rate == 0 && out.max_active == 0)
        return r.fail(n["admission"] ? n["admission"] : n, path + ".admission",
                      "set rate (users/s), max_active (concurrent users) or both");
    if (auto md = n["mode"]) {
        std::string s;
        if (r.scalar(md, path + ".mode", s)) {
            auto mode = parse_room_mode(s);
            if (!mode) return r.fail(md, path + ".mode", cat("expected auto, queue_all, paused or closed, got \"", s, "\""));
            out.mode = *mode;
        }
    }
    if (auto id = n["identity"]) {
        const std::string ip = path + ".identity";
        if (r.expect_map(id, ip, {"header", "cookie"})) {
            r.string(id, ip, "header", out.identity_header);
            r.string(id, ip, "cookie", out.identity_cookie);
        }
    }
    if (auto pg = n["page"]) {
        const std::string pp = path + ".page";
        if (r.expect_map(pg, pp, {"default_language", "template", "title", "banner", "yellow_wait"})) {
            r.string(pg, pp, "default_language", out.default_language);
            if (!r.failed() && out.default_language != "en" && out.default_language != "ko")
                return r.fail(pg["default_language"], pp + ".default_language",
                              cat("expected en or ko, got \"", out.default_language, "\""));
            r.string(pg, pp, "template", out.page_template);
            r.string(pg, pp, "title", out.title);
            r.string(pg, pp, "banner", out.banner);
            r.time(pg, pp, "yellow_wait", out.yellow_wait);
        }
    }
    if (auto t = n["tokens"]) {
        const std::string tp = path + ".tokens";
        if (r.expect_map(t, tp, {"ticket_ttl", "bind_ip", "bind_user_agent", "secure_cookies"})) {
            r.time(t, tp, "ticket_ttl", out.ticket_ttl, duration(60'000));
            r.boolean(t, tp, "bind_ip", out.bind_ip);
            r.boolean(t, tp, "bind_user_agent", out.bind_user_agent);
            if (t["secure_cookies"]) {
                bool b = false;
                r.boolean(t, tp, "secure_cookies", b);
                out.secure_cookies = b;
            }
        }
    }
}

// read_room, then the upstream: the room's own, else default_upstream, and it must exist in c.
void read_room_with_upstream(reader& r, const YAML::Node& key, const YAML::Node& n, const config& c,
                             room_config& rc) {
    read_room(r, key, n, rc);
    if (r.failed()) return;
    const std::string rp = cat("rooms.", rc.name);
    if (rc.upstream.empty()) rc.upstream = c.default_upstream;
    if (rc.upstream.empty()) return r.fail(n, rp, "no upstream: set upstream, or default_upstream");
    if (!c.find_upstream(rc.upstream))
        r.fail(n["upstream"] ? n["upstream"] : n, rp + ".upstream",
               cat("no upstream named \"", rc.upstream, "\""));
}

}  // namespace

absl::StatusOr<room_config> parse_room_definition(std::string_view text, std::string_view origin,
                                                  const config& base) {
    reader r{std::string(origin)};
    room_config rc;
    try {
        const YAML::Node root = YAML::Load(std::string(text));
        if (!root.IsMap()) return absl::InvalidArgumentError(cat(origin, ": expected an object {\"name\": ..., \"match\": ...}"));
        const YAML::Node name = root["name"];
        if (!name || !name.IsScalar())
            return absl::InvalidArgumentError(cat(origin, ": name: missing (the room's name, a-z 0-9 _ -)"));
        YAML::Node rest(YAML::NodeType::Map);
        for (const auto& kv : root)
            if (kv.first.Scalar() != "name") rest[kv.first] = kv.second;
        read_room_with_upstream(r, name, rest, base, rc);
    } catch (const YAML::Exception& e) {
        return absl::InvalidArgumentError(cat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    if (r.failed()) return r.status();
    return rc;
}

absl::StatusOr<config> parse_config(std::string_view yaml_text, std::string_view file_name) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::ParserException& e) {
        return absl::InvalidArgumentError(cat(file_name, ":", e.mark.line + 1, ":",
                                                       e.mark.column + 1, ": ", e.msg));
    }
    reader r{std::string(file_name)};
    config c;
    c.source_file = std::string(file_name);
    if (!root || root.IsNull())
        return absl::InvalidArgumentError(cat(file_name, ": the file is empty"));
    try {
        if (!r.expect_map(root, "",
                          {"threads", "listen", "admin", "limits", "timeouts", "upstreams",
                           "default_upstream", "access_log", "log_level", "state_dir", "via",
                           "rooms", "keys_file", "store", "store_failure", "node_id"}))
            return r.status();
        r.number(root, "", "threads", c.threads, 0, 1024);

        auto listen = root["listen"];
        if (!listen) return absl::InvalidArgumentError(cat(
            file_name, ": listen: missing; say where to accept clients, e.g. listen: [{address: 0.0.0.0:8080}]"));
        if (listen.IsSequence()) {
            std::size_t i = 0;
            for (const auto& l : listen) {
                listener_config lc;
                read_listener(r, l, cat("listen[", i++, "]"), lc);
                c.listeners.push_back(std::move(lc));
            }
        } else {
            listener_config lc;
            read_listener(r, listen, "listen", lc);
            c.listeners.push_back(std::move(lc));
        }
        if (!r.failed() && c.listeners.empty()) r.fail(listen, "listen", "needs at least one address");

        if (auto a = root["admin"]) {
            if (a.IsScalar()) {
                std::string s = to_lower(a.Scalar());
                if (s == "off" || s == "false" || s == "no") c.admin.enabled = false;
                else r.address(a, "admin", c.admin.address);
            } else if (r.expect_map(a, "admin", {"address", "enabled", "tokens_file", "tokens_env"})) {
                if (a["address"]) r.address(a["address"], "admin.address", c.admin.address);
                r.boolean(a, "admin", "enabled", c.admin.enabled);
                r.string(a, "admin", "tokens_file", c.admin.tokens_file);
                r.string(a, "admin", "tokens_env", c.admin.tokens_env);
            }
        }

        if (auto l = root["limits"]; l && r.expect_map(l, "limits",
                {"header_bytes", "header_count", "body_bytes", "pipelined_requests",
                 "requests_per_connection"})) {
            r.size(l, "limits", "header_bytes", c.limits.header_bytes, 512, 1 << 20);
            r.number(l, "limits", "header_count", c.limits.header_count, 1, 10'000);
            r.size(l, "limits", "body_bytes", c.limits.body_bytes, 0, std::uint64_t(1) << 50);
            r.number(l, "limits", "pipelined_requests", c.limits.pipelined_requests, 1, 10'000);
            r.number(l, "limits", "requests_per_connection", c.limits.requests_per_connection, 1,
                     100'000'000);
        }

        if (auto t = root["timeouts"]; t && r.expect_map(t, "timeouts",
                {"request_header", "keepalive", "body", "send", "tunnel_idle", "shutdown_grace"})) {
            r.time(t, "timeouts", "request_header", c.timeouts.request_header);
            r.time(t, "timeouts", "keepalive", c.timeouts.keepalive);
            r.time(t, "timeouts", "body", c.timeouts.body);
            r.time(t, "timeouts", "send", c.timeouts.send);
            r.time(t, "timeouts", "tunnel_idle", c.timeouts.tunnel_idle);
            r.time(t, "timeouts", "shutdown_grace", c.timeouts.shutdown_grace, duration(0));
        }

        if (auto u = root["upstreams"]) {
            if (!u.IsMap()) {
                r.fail(u, "upstreams", "expected a mapping of name: {servers: [...]}");
            } else {
                for (const auto& kv : u) {
                    upstream_config uc;
                    const std::string name = kv.first.Scalar();
                    read_upstream(r, name, kv.second, cat("upstreams.", name), uc);
                    c.upstreams.push_back(std::move(uc));
                }
            }
        }
        r.string(root, "", "default_upstream", c.default_upstream);
        if (!r.failed() && !c.default_upstream.empty() && !c.find_upstream(c.default_upstream)) {
            std::vector<std::string> names;
            for (const auto& u : c.upstreams) names.push_back(u.name);
            r.fail(root["default_upstream"], "default_upstream",
                   cat("no upstream named \"", c.default_upstream, "\"; defined: ",
                                names.empty() ? "none" : join(names, ", ")));
        }
        if (!r.failed() && c.default_upstream.empty() && c.upstreams.size() == 1)
            c.default_upstream = c.upstreams.front().name;

        if (auto a = root["access_log"]) {
            if (a.IsScalar()) {
                std::string s = a.Scalar();
                if (to_lower(s) == "off") c.access_log.enabled = false;
                else c.access_log.path = s;
            } else if (r.expect_map(a, "access_log", {"enabled", "path"})) {
                r.boolean(a, "access_log", "enabled", c.access_log.enabled);
                r.string(a, "access_log", "path", c.access_log.path);
            }
        }
        r.string(root, "", "log_level", c.log_level);
        if (!r.failed()) {
            static const std::set<std::string> levels{"trace", "debug", "info", "warn",
                                                      "error", "critical", "off"};
            if (!levels.count(c.log_level))
                r.fail(root["log_level"], "log_level",
                       cat("expected one of trace, debug, info, warn, error, critical, "
                                    "off, got \"", c.log_level, "\""));
        }
        r.string(root, "", "state_dir", c.state_dir);
        r.string(root, "", "via", c.via);
        r.string(root, "", "keys_file", c.keys_file);
        r.string(root, "", "store", c.store);
        if (!r.failed() && c.store != "memory" && !c.store.starts_with("redis://") &&
            !c.store.starts_with("redis+sentinel://"))
            r.fail(root["store"], "store",
                   "expected memory, a redis:// URL (redis://127.0.0.1:6379/0) or a redis+sentinel:// "
                   "URL (redis+sentinel://127.0.0.1:26379/mymaster)");
        if (auto f = root["store_failure"]; f && !r.failed()) {
            const std::string s = f.IsScalar() ? to_lower(f.Scalar()) : std::string();
            if (s == "hold") c.store_failure = store_failure_mode::hold;
            else if (s == "fail_open") c.store_failure = store_failure_mode::fail_open;
            else if (s == "fail_closed") c.store_failure = store_failure_mode::fail_closed;
            else r.fail(f, "store_failure", "expected hold, fail_open or fail_closed");
        }
        r.string(root, "", "node_id", c.node_id);
        if (!r.failed()) {
            for (char ch : c.node_id)
                if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ||
                      ch == '.' || ch == ':')) {
                    r.fail(root["node_id"], "node_id",
                           "use letters, digits and - _ . : only (it goes into metric labels)");
                    break;
                }
        }

        if (auto rooms = root["rooms"]; rooms && !r.failed()) {
            if (!rooms.IsMap()) {
                r.fail(rooms, "rooms", "expected a mapping of room name: {match: ..., admission: ...}");
            } else {
                for (const auto& kv : rooms) {
                    room_config rc;
                    read_room_with_upstream(r, kv.first, kv.second, c, rc);
                    if (r.failed()) break;
                    c.rooms.push_back(std::move(rc));
                }
            }
        }
    } catch (const YAML::Exception& e) {
        return absl::InvalidArgumentError(cat(file_name, ":", e.mark.line + 1, ":",
                                                       e.mark.column + 1, ": ", e.msg));
    }
    if (r.failed()) return r.status();
    return c;
}

std::string_view to_string(store_failure_mode m) {
    switch (m) {
        case store_failure_mode::hold: return "hold";
        case store_failure_mode::fail_open: return "fail_open";
        case store_failure_mode::fail_closed: return "fail_closed";
    }
    return "hold";
}

absl::StatusOr<config> load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(cat(path, ": cannot open the file"));
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

}  // namespace floodgate
