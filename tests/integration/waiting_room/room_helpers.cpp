#include "room_helpers.hpp"

#include <algorithm>
#include <cctype>
#include <random>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "site_upstream.hpp"

namespace floodgate::itest::rooms {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

constexpr std::string_view b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(const std::string& bytes) {
    std::string out;
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        for (int s = 18; s >= 0; s -= 6) out.push_back(b64_alphabet[(v >> s) & 63]);
    }
    if (bytes.size() - i == 1) {
        const std::uint32_t v = byte(i) << 16;
        out.push_back(b64_alphabet[(v >> 18) & 63]);
        out.push_back(b64_alphabet[(v >> 12) & 63]);
    } else if (bytes.size() - i == 2) {
        const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
        out.push_back(b64_alphabet[(v >> 18) & 63]);
        out.push_back(b64_alphabet[(v >> 12) & 63]);
        out.push_back(b64_alphabet[(v >> 6) & 63]);
    }
    return out;
}

std::string random_bytes(std::size_t n) {
    static std::mt19937_64 rng{std::random_device{}()};
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

}  // namespace

std::string room_config(const std::string& app_address, const std::string& site_address,
                        std::string_view rooms_yaml, std::string_view extra) {
    std::ostringstream y;
    y << "threads: 1\n"
      << "listen: [{address: 127.0.0.1:0}]\n"
      << "admin: {address: 127.0.0.1:0}\n"
      << "log_level: info\n"
      << "access_log: stdout\n"
      << "timeouts: {shutdown_grace: 1s}\n"
      << "upstreams:\n"
      << "  app: {servers: [" << app_address << "]}\n"
      << "  site: {servers: [" << site_address << "]}\n"
      << "default_upstream: app\n"
      << "rooms:\n"
      << rooms_yaml;
    if (!rooms_yaml.empty() && rooms_yaml.back() != '\n') y << "\n";
    if (!extra.empty()) y << extra << "\n";
    return y.str();
}

std::optional<std::string> reply::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequal(n, name)) return v;
    return std::nullopt;
}

std::size_t reply::count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(headers.begin(), headers.end(), [&](const auto& h) { return iequal(h.first, name); }));
}

std::optional<std::string> reply::cookie(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (!iequal(n, "Set-Cookie")) continue;
        if (v.size() > name.size() && v.compare(0, name.size(), name) == 0 && v[name.size()] == '=') {
            const auto start = name.size() + 1;
            const auto semi = v.find(';', start);
            return v.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
        }
    }
    return std::nullopt;
}

boost::json::object reply::json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
}

bool reply::from_site() const { return body.find(site_upstream::marker) != std::string::npos; }

reply fetch(std::uint16_t port, http::verb method, std::string target, const header_list& headers,
            std::string body) {
    http_client c(port);
    auto res = c.request(method, std::move(target), std::move(body), headers);
    reply r;
    r.status = res.result_int();
    for (const auto& f : res) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = std::move(res.body());
    return r;
}

std::string json_string(const boost::json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return {};
    return std::string(it->value().as_string());
}

std::int64_t json_int(const boost::json::object& o, std::string_view key, std::int64_t fallback) {
    auto it = o.find(key);
    if (it == o.end()) return fallback;
    if (it->value().is_int64()) return it->value().as_int64();
    if (it->value().is_uint64()) return static_cast<std::int64_t>(it->value().as_uint64());
    if (it->value().is_double()) return static_cast<std::int64_t>(it->value().as_double());
    return fallback;
}

std::string wait_for_pass(std::uint16_t port, std::string_view room, std::string_view ticket,
                          std::chrono::milliseconds deadline, bool use_header, const header_list& extra_headers) {
    const std::string url = "/__fg/v1/rooms/" + std::string(room) + "/status";
    header_list h = extra_headers;
    if (use_header) h.emplace_back("Floodgate-Ticket", std::string(ticket));
    else h.push_back(cookie_header("fg_ticket_" + std::string(room), ticket));
    const auto end = steady::now() + deadline;
    std::int64_t last_ahead = -1;
    for (int polls = 0; polls < 1000; ++polls) {
        const reply r = get(port, url, h);
        INFO("status answer: " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        const auto j = r.json();
        const std::string state = json_string(j, "state");
        if (state == "admitted") {
            const std::string pass = json_string(j, "pass");
            REQUIRE_FALSE(pass.empty());
            CHECK(r.cookie("fg_pass_" + std::string(room)).value_or("<no cookie>") == pass);
            return pass;
        }
        REQUIRE(state == "waiting");
        const std::int64_t ahead = json_int(j, "ahead");
        REQUIRE(ahead >= 0);
        if (last_ahead >= 0) CHECK(ahead <= last_ahead);
        last_ahead = ahead;
        const std::int64_t wait_ms = json_int(j, "poll_after_ms");
        REQUIRE(wait_ms > 0);
        const auto next = steady::now() + std::chrono::milliseconds(wait_ms);
        if (next > end) FAIL("not admitted within " << deadline.count() << " ms (still " << ahead << " ahead)");
        std::this_thread::sleep_until(next);
    }
    FAIL("too many polls");
    return {};
}

std::vector<std::string> token_parts(std::string_view token) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    for (;;) {
        const auto dot = token.find('.', pos);
        parts.emplace_back(token.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
        if (dot == std::string_view::npos) break;
        pos = dot + 1;
    }
    return parts;
}

std::string join_parts(const std::vector<std::string>& parts) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out.push_back('.');
        out += parts[i];
    }
    return out;
}

std::string change_char(std::string_view token, std::size_t part, std::size_t index) {
    auto parts = token_parts(token);
    REQUIRE(part < parts.size());
    REQUIRE(index < parts[part].size());
    char& c = parts[part][index];
    // The next letter of the alphabet (same case): a different value in
    // every position, including the last character of a group.
    if (c == 'z') c = 'a';
    else if (c == 'Z') c = 'A';
    else if (c == '9') c = '0';
    else if (c == '-' || c == '_') c = 'A';
    else ++c;
    return join_parts(parts);
}

std::optional<pass_claims> decode_pass(std::string_view token) {
    const auto parts = token_parts(token);
    if (parts.size() != 4) return std::nullopt;
    std::string bytes;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : parts[2]) {
        const auto v = b64_alphabet.find(c);
        if (v == std::string_view::npos) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if (bytes.size() != 41 || bytes[0] != 2) return std::nullopt;
    auto le = [&](std::size_t at, std::size_t n) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
        return v;
    };
    pass_claims c;
    c.seq = le(9, 8);
    c.exp = static_cast<std::uint32_t>(le(21, 4));
    c.slot = static_cast<std::uint32_t>(le(33, 4));
    c.slot_gen = static_cast<std::uint32_t>(le(37, 4));
    return c;
}

std::string random_base64url(std::size_t bytes) { return b64url(random_bytes(bytes)); }

std::string key_file_text(std::string_view kid) {
    return "# test keys\n" + std::string(kid) + " " + random_base64url(32) + "\n";
}

std::size_t count_in_logs(const gateway_process& gw, std::string_view text) {
    const std::string all = gw.stdout_text() + gw.stderr_text();
    std::size_t n = 0;
    for (auto pos = all.find(text); pos != std::string::npos; pos = all.find(text, pos + text.size())) ++n;
    return n;
}

bool wait_for_log(const gateway_process& gw, std::string_view text, std::size_t times,
                  std::chrono::milliseconds timeout) {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
        if (count_in_logs(gw, text) >= times) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return count_in_logs(gw, text) >= times;
}

}  // namespace floodgate::itest::rooms
