#include "tokenstore/redis/redis_url.hpp"

#include <charconv>
#include <string>

namespace floodgate::tokenstore::redis {

namespace {

using address = redis_connection::address;

constexpr std::string_view plain_scheme = "redis://";
constexpr std::string_view sentinel_scheme = "redis+sentinel://";

template <class T>
bool parse_number(std::string_view s, T& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// "host", "host:port", "[v6]" or "[v6]:port" into `out`; the port defaults to `default_port`.
absl::Status parse_host_port(std::string_view s, std::uint16_t default_port, address& out) {
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos) {
            return absl::InvalidArgumentError("store: IPv6 address without closing ']'");
        }
        out.host = std::string(s.substr(1, close - 1));
        const std::string_view after = s.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return absl::InvalidArgumentError("store: expected ':port' after ']'");
            port = after.substr(1);
        }
    } else if (const auto colon = s.rfind(':'); colon != std::string_view::npos) {
        out.host = std::string(s.substr(0, colon));
        port = s.substr(colon + 1);
    } else {
        out.host = std::string(s);
    }
    if (out.host.empty()) return absl::InvalidArgumentError("store: missing host in the URL");
    out.port = default_port;
    if (!port.empty() || s.back() == ':') {
        unsigned p = 0;
        if (!parse_number(port, p) || p == 0 || p > 65535) {
            return absl::InvalidArgumentError("store: port must be 1-65535, got '" +
                                              std::string(port) + "'");
        }
        out.port = static_cast<std::uint16_t>(p);
    }
    return absl::OkStatus();
}

absl::Status parse_db(std::string_view db, int& out) {
    if (!db.empty() && (!parse_number(db, out) || out < 0)) {
        return absl::InvalidArgumentError("store: database must be a non-negative number, got '" +
                                          std::string(db) + "'");
    }
    return absl::OkStatus();
}

// %XX escapes, so that a sentinel password can hold '&', '@' or '%'.
bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 3 > in.size()) return false;
        const char* hex = in.data() + i + 1;
        unsigned v = 0;
        auto [p, ec] = std::from_chars(hex, hex + 2, v, 16);
        if (ec != std::errc() || p != hex + 2) return false;
        out += static_cast<char>(v);
        i += 2;
    }
    return true;
}

// `?sentinel_password=...`, the one option of a redis+sentinel:// URL. The messages never repeat
// the value.
absl::Status parse_query(std::string_view query, redis_connection::options& o) {
    constexpr std::string_view key = "sentinel_password=";
    if (query.substr(0, key.size()) != key) {
        return absl::InvalidArgumentError(
            "store: the only URL option is ?sentinel_password=... (redis+sentinel:// only)");
    }
    if (!percent_decode(query.substr(key.size()), o.sentinel_password)) {
        return absl::InvalidArgumentError("store: bad %-escape in sentinel_password");
    }
    if (o.sentinel_password.empty())
        return absl::InvalidArgumentError("store: empty sentinel_password");
    return absl::OkStatus();
}

}  // namespace

absl::StatusOr<redis_connection::options> parse_redis_url(std::string_view url) {
    if (url.substr(0, 9) == "rediss://") {
        return absl::InvalidArgumentError("store: rediss:// (TLS to Redis) is not supported yet");
    }
    const bool sentinel = url.substr(0, sentinel_scheme.size()) == sentinel_scheme;
    if (!sentinel && url.substr(0, plain_scheme.size()) != plain_scheme) {
        return absl::InvalidArgumentError(
            "store: expected 'memory' or a URL like redis://host:6379/0 or "
            "redis+sentinel://host:26379/mymaster");
    }
    std::string_view rest = url.substr(sentinel ? sentinel_scheme.size() : plain_scheme.size());
    redis_connection::options o;

    const auto at = rest.rfind('@');
    // The query starts after the credentials: a password may hold '?'.
    if (const auto q = rest.find('?', at == std::string_view::npos ? 0 : at);
        q != std::string_view::npos) {
        if (!sentinel) {
            return absl::InvalidArgumentError(
                "store: URL options (?...) are not supported in redis:// URLs; for Sentinel use "
                "redis+sentinel://");
        }
        if (auto st = parse_query(rest.substr(q + 1), o); !st.ok()) return st;
        rest = rest.substr(0, q);
    }
    if (at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            return absl::InvalidArgumentError(
                "store: credentials must be ':password@' (or 'user:password@'; the user is "
                "ignored)");
        }
        o.password = std::string(userinfo.substr(colon + 1));
        if (o.password.empty())
            return absl::InvalidArgumentError("store: empty password after ':'");
    }

    const auto slash = rest.find('/');
    const std::string_view hosts = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

    if (!sentinel) {
        if (auto st = parse_db(path, o.db); !st.ok()) return st;
        address a;
        if (auto st = parse_host_port(hosts, 6379, a); !st.ok()) return st;
        o.host = std::move(a.host);
        o.port = a.port;
        return o;
    }

    // redis+sentinel://h1[:port],h2[:port]/<master-name>[/<db>]
    const auto name_end = path.find('/');
    o.master_name = std::string(path.substr(0, name_end));
    if (o.master_name.empty()) {
        return absl::InvalidArgumentError(
            "store: a redis+sentinel:// URL needs the master name: "
            "redis+sentinel://host:26379/mymaster");
    }
    if (name_end != std::string_view::npos) {
        if (auto st = parse_db(path.substr(name_end + 1), o.db); !st.ok()) return st;
    }
    if (hosts.empty())
        return absl::InvalidArgumentError("store: no sentinel in the redis+sentinel:// URL");
    for (std::size_t start = 0;;) {
        const auto comma = hosts.find(',', start);
        address a;
        if (auto st = parse_host_port(hosts.substr(start, comma - start), 26379, a); !st.ok())
            return st;
        o.sentinels.push_back(std::move(a));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    o.host.clear();
    o.port = 0;
    return o;
}

std::string describe(const redis_connection::options& o) {
    std::string out;
    if (o.sentinels.empty()) {
        out = to_string(redis_connection::address{o.host, o.port});
    } else {
        out = "the primary '" + o.master_name + "' named by Sentinel ";
        for (std::size_t i = 0; i < o.sentinels.size(); ++i) {
            if (i > 0) out += ',';
            out += to_string(o.sentinels[i]);
        }
    }
    return out + " db " + std::to_string(o.db);
}

}  // namespace floodgate::tokenstore::redis
