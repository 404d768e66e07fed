#include "tokenstore/redis/redis_url.hpp"

#include <charconv>
#include <string>


namespace floodgate::tokenstore::redis {

namespace {

template <class T>
bool parse_number(std::string_view s, T& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

absl::StatusOr<redis_connection::options> parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (url.substr(0, 9) == "rediss://") {
        return absl::InvalidArgumentError("store: rediss:// (TLS to Redis) is not supported yet");
    }
    if (url.substr(0, scheme.size()) != scheme) {
        return absl::InvalidArgumentError(
            "store: expected 'memory' or a URL like redis://host:6379/0");
    }
    std::string_view rest = url.substr(scheme.size());
    redis_connection::options o;

    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            return absl::InvalidArgumentError(
                "store: credentials must be ':password@' (or 'user:password@'; the user is ignored)");
        }
        o.password = std::string(userinfo.substr(colon + 1));
        if (o.password.empty()) return absl::InvalidArgumentError("store: empty password after ':'");
    }

    std::string_view hostport = rest;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        const std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && (!parse_number(db, o.db) || o.db < 0)) {
            return absl::InvalidArgumentError(
                "store: database must be a non-negative number, got '" + std::string(db) + "'");
        }
    }
    if (hostport.find('?') != std::string_view::npos) {
        return absl::InvalidArgumentError(
            "store: URL options (?...) are not supported; Sentinel discovery is not built yet");
    }

    std::string_view port;
    if (!hostport.empty() && hostport.front() == '[') {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) {
            return absl::InvalidArgumentError("store: IPv6 address without closing ']'");
        }
        o.host = std::string(hostport.substr(1, close - 1));
        const std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return absl::InvalidArgumentError("store: expected ':port' after ']'");
            port = after.substr(1);
        }
    } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        o.host = std::string(hostport.substr(0, colon));
        port = hostport.substr(colon + 1);
    } else {
        o.host = std::string(hostport);
    }
    if (o.host.empty()) return absl::InvalidArgumentError("store: missing host in redis:// URL");
    if (!port.empty() || hostport.back() == ':') {
        unsigned p = 0;
        if (!parse_number(port, p) || p == 0 || p > 65535) {
            return absl::InvalidArgumentError(
                "store: port must be 1-65535, got '" + std::string(port) + "'");
        }
        o.port = static_cast<std::uint16_t>(p);
    }
    return o;
}

}  // namespace floodgate::tokenstore::redis
