#include "loadgen/protocol.hpp"

#include <boost/json.hpp>

#include <array>

namespace floodgate::bench {

namespace json = boost::json;

std::optional<std::string_view> cookie_value(std::string_view set_cookie, std::string_view name) {
    while (!set_cookie.empty() && set_cookie.front() == ' ') set_cookie.remove_prefix(1);
    if (set_cookie.size() <= name.size() || set_cookie.substr(0, name.size()) != name ||
        set_cookie[name.size()] != '=')
        return std::nullopt;
    std::string_view v = set_cookie.substr(name.size() + 1);
    return v.substr(0, v.find(';'));
}

namespace {

int b64url_digit(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

}  // namespace

std::optional<std::uint64_t> ticket_seq(std::string_view token) {
    // "v1" "." kid "." payload "." mac
    if (token.substr(0, 3) != "v1.") return std::nullopt;
    const auto kid_end = token.find('.', 3);
    if (kid_end == std::string_view::npos) return std::nullopt;
    const auto payload_end = token.find('.', kid_end + 1);
    if (payload_end == std::string_view::npos) return std::nullopt;
    const std::string_view payload = token.substr(kid_end + 1, payload_end - kid_end - 1);
    std::array<std::uint8_t, 17> bytes{};  // type, room, seq
    std::size_t n = 0;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : payload) {
        const int d = b64url_digit(c);
        if (d < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < bytes.size()) bytes[n] = static_cast<std::uint8_t>(acc >> bits);
            ++n;
            acc &= (1u << bits) - 1;
        }
        if (n >= bytes.size()) break;
    }
    if (n < bytes.size() || bytes[0] != 1) return std::nullopt;  // 1: ticket
    std::uint64_t seq = 0;
    for (int i = 7; i >= 0; --i) seq = (seq << 8) | bytes[9 + static_cast<std::size_t>(i)];
    return seq;
}

std::optional<status_answer> parse_status(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return std::nullopt;
    const json::object* o = v.if_object();
    if (!o) return std::nullopt;
    status_answer a;
    auto str = [&](std::string_view key, std::string& out) {
        if (const json::value* x = o->if_contains(key); x && x->is_string()) out = std::string(x->get_string());
    };
    auto num = [&](std::string_view key) -> std::optional<double> {
        const json::value* x = o->if_contains(key);
        if (!x) return std::nullopt;
        if (x->is_int64()) return static_cast<double>(x->get_int64());
        if (x->is_uint64()) return static_cast<double>(x->get_uint64());
        if (x->is_double()) return x->get_double();
        return std::nullopt;
    };
    str("state", a.state);
    if (a.state.empty()) return std::nullopt;
    if (auto p = num("position")) a.position = static_cast<std::uint64_t>(*p);
    if (auto p = num("ahead")) a.ahead = static_cast<std::uint64_t>(*p);
    a.eta_s = num("eta_s");
    if (auto p = num("poll_after_ms")) a.poll_after_ms = static_cast<std::uint64_t>(*p);
    str("light", a.light);
    str("ticket", a.ticket);
    str("pass", a.pass);
    return a;
}

}  // namespace floodgate::bench
