#include "gateway/headers.hpp"

#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <bit>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gateway/text.hpp"

namespace floodgate::headers {

namespace http = boost::beast::http;
using namespace std::string_view_literals;

std::size_t find_header_end(std::string_view buf) {
    auto pos = buf.find("\r\n\r\n");
    return pos == std::string_view::npos ? 0 : pos + 4;
}

namespace {

bool is_special(unsigned char c) { return c < 0x20 || c == 0x7f; }

// The first control character (CR, LF and tab included) or DEL at or after p,
// or end: the bytes scan_raw_header() has to look at one by one. Sixteen bytes
// at a time with SSE2 (every x86-64), then eight, then one.
const char* next_special(const char* p, const char* const end) {
#if defined(__SSE2__)
    for (; end - p >= 16; p += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // Bytes below 0x20 are those that min(v, 0x1f) leaves unchanged.
        const __m128i below_space = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        const __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
        if (const int mask = _mm_movemask_epi8(_mm_or_si128(below_space, del)); mask != 0)
            return p + std::countr_zero(static_cast<unsigned>(mask));
    }
#endif
    for (std::uint64_t w; end - p >= 8; p += 8) {
        std::memcpy(&w, p, 8);
        // The high bit of each byte below 0x20, and of each DEL. A borrow can
        // mark a byte above a marked one, never below it: the lowest mark is
        // the first special byte (bytes are in memory order, little-endian).
        constexpr std::uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
        const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
        const std::uint64_t x = w ^ (ones * 0x7f);
        const std::uint64_t del = (x - ones) & ~x & highs;
        if (const std::uint64_t marks = below_space | del; marks != 0) {
            if constexpr (std::endian::native == std::endian::little) return p + std::countr_zero(marks) / 8;
            break;  // the bytes one by one below
        }
    }
    while (p < end && !is_special(static_cast<unsigned char>(*p))) ++p;
    return p;
}

}  // namespace

raw_verdict scan_raw_header(std::string_view block, std::size_t max_fields) {
    std::size_t lines = 0;
    const char* p = block.data();
    const char* const end = p + block.size();
    while ((p = next_special(p, end)) != end) {
        const unsigned char c = static_cast<unsigned char>(*p);
        if (c == '\r') {
            if (end - p < 2 || p[1] != '\n') return raw_verdict::bad_line_ending;
            p += 2;
            ++lines;
            if (p < end && (*p == ' ' || *p == '\t')) return raw_verdict::obs_fold;
            continue;
        }
        if (c == '\n') return raw_verdict::bad_line_ending;
        if (c != '\t') return raw_verdict::bad_byte;
        ++p;
    }
    // lines counts the start line, each field line and the final empty line.
    if (lines >= 2 && lines - 2 > max_fields) return raw_verdict::too_many_fields;
    return raw_verdict::ok;
}

namespace {

// tchar (RFC 9110 5.6.2), as Beast's parser reads method and field names.
constexpr auto token_chars = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[static_cast<std::size_t>(c)] =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    return t;
}();

bool is_token_char(char c) { return token_chars[static_cast<unsigned char>(c)]; }

const char* skip_token(const char* p) {
    while (is_token_char(*p)) ++p;
    return p;
}

// The first byte at or after p that is not visible ASCII (0x21-0x7e), or end.
const char* skip_visible(const char* p, const char* const end) {
#if defined(__SSE2__)
    for (; end - p >= 16; p += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // Signed: bytes from 0x80 are negative, so "below 0x21" takes them too.
        const __m128i below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x21));
        const __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
        if (const int mask = _mm_movemask_epi8(_mm_or_si128(below, del)); mask != 0)
            return p + std::countr_zero(static_cast<unsigned>(mask));
    }
#endif
    while (p < end && static_cast<unsigned char>(*p) > 0x20 && static_cast<unsigned char>(*p) < 0x7f) ++p;
    return p;
}

}  // namespace

bool parse_plain_request_head(std::string_view block, std::size_t max_fields,
                              http::request_header<>& out) {
    // Every loop below stops at the CR of the final CRLF CRLF at the latest.
    if (block.size() < 4 || block.substr(block.size() - 4) != "\r\n\r\n") return false;
    const char* p = block.data();
    const char* const end = p + block.size();

    // method SP target SP HTTP/1.x CRLF
    const char* const method = p;
    p = skip_token(p);
    if (p == method || *p != ' ') return false;
    const std::string_view method_str(method, static_cast<std::size_t>(p - method));
    const char* const target = ++p;
    p = skip_visible(p, end);
    if (p == target || p == end || *p != ' ') return false;
    const std::string_view target_str(target, static_cast<std::size_t>(p - target));
    ++p;
    if (end - p < 10 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != '\r' || p[9] != '\n')
        return false;
    out.version(p[7] == '1' ? 11 : 10);
    p += 10;
    if (const http::verb v = http::string_to_verb(method_str); v != http::verb::unknown)
        out.method(v);
    else
        out.method_string(method_str);
    out.target(target_str);

    // name ":" OWS value OWS CRLF, until the empty line. A folded line fails
    // the name (it starts with a space or tab).
    std::size_t fields = 0;
    while (*p != '\r') {
        if (++fields > max_fields) return false;
        const char* const name = p;
        p = skip_token(p);
        if (p == name || *p != ':') return false;
        const std::string_view name_str(name, static_cast<std::size_t>(p - name));
        ++p;
        while (*p == ' ' || *p == '\t') ++p;
        const char* const value = p;
        // The value ends at CRLF; of the control bytes and DEL only HTAB may be in it.
        const char* cr = next_special(p, end);
        while (*cr == '\t') cr = next_special(cr + 1, end);
        if (*cr != '\r' || cr[1] != '\n') return false;
        const char* value_end = cr;
        while (value_end != value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
        const std::string_view value_str(value, static_cast<std::size_t>(value_end - value));
        const http::field f = http::string_to_field(name_str);
        switch (f) {
            case http::field::content_length:
            case http::field::transfer_encoding:
                return false;  // a body: Beast's parser reads it
            case http::field::connection:
            case http::field::proxy_connection:
                // Beast's parser refuses a malformed list here.
                if (!http::validate_list(http::opt_token_list{value_str})) return false;
                break;
            default:
                break;
        }
        out.insert(f, name_str, value_str);
        p = cr + 2;
    }
    return p[1] == '\n' && p + 2 == end;
}

std::optional<std::uint64_t> parse_content_length(std::string_view v) {
    v = text::trim(v);
    if (v.empty() || v.size() > 19) return std::nullopt;  // 19 digits always fit in u64
    std::uint64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

bool request_fields::keep_alive(unsigned version) const {
    if (version < 11) return connection && http::token_list{*connection}.exists("keep-alive");
    return !connection || !http::token_list{*connection}.exists("close");
}

framing_verdict check_request_framing(const fields& f, unsigned version, request_fields* found) {
    std::size_t hosts = 0, lengths = 0, encodings = 0;
    std::string_view te;
    request_fields seen;
    for (const auto& field : f) {
        switch (field.name()) {
            case http::field::host:
                if (hosts++ == 0) seen.host = field.value();
                break;
            case http::field::expect:
                if (seen.expect.data() == nullptr) seen.expect = field.value();  // not seen yet
                break;
            case http::field::connection:
                if (!seen.connection) seen.connection = field.value();
                break;
            case http::field::content_length:
                ++lengths;
                if (!parse_content_length(field.value())) return framing_verdict::bad_content_length;
                break;
            case http::field::transfer_encoding:
                ++encodings;
                te = field.value();
                break;
            default:
                break;
        }
    }
    if (hosts > 1) return framing_verdict::duplicate_host;
    if (hosts == 0 && version >= 11) return framing_verdict::missing_host;
    if (lengths > 1) return framing_verdict::duplicate_content_length;
    if (encodings > 0 && lengths > 0) return framing_verdict::content_length_and_transfer_encoding;
    if (encodings > 1) return framing_verdict::bad_transfer_encoding;
    if (encodings == 1 && !text::iequals(text::trim(te), "chunked"))
        return framing_verdict::bad_transfer_encoding;
    if (encodings == 1 && version < 11) return framing_verdict::bad_transfer_encoding;
    if (found) *found = seen;
    return framing_verdict::ok;
}

const char* to_string(framing_verdict v) {
    switch (v) {
        case framing_verdict::ok: return "ok";
        case framing_verdict::missing_host: return "missing Host header";
        case framing_verdict::duplicate_host: return "more than one Host header";
        case framing_verdict::duplicate_content_length: return "more than one Content-Length header";
        case framing_verdict::bad_content_length: return "invalid Content-Length";
        case framing_verdict::bad_transfer_encoding: return "unsupported Transfer-Encoding";
        case framing_verdict::content_length_and_transfer_encoding:
            return "both Content-Length and Transfer-Encoding";
    }
    return "invalid framing";
}

namespace {

// The fields that are always hop-by-hop, Upgrade aside.
bool always_hop_by_hop(http::field name) {
    switch (name) {
        case http::field::connection:
        case http::field::keep_alive:
        case http::field::proxy_connection:
        case http::field::te:
        case http::field::trailer:
        case http::field::transfer_encoding:
        case http::field::proxy_authenticate:
        case http::field::proxy_authorization:
            return true;
        default:
            return false;
    }
}

}  // namespace

bool strip_hop_by_hop(fields& f, bool keep_upgrade) {
    // One look at each field: usually there is no Connection field, or one
    // naming only close or keep-alive, and nothing is erased by name.
    bool has_connection = false, has_upgrade = false;
    for (const auto& field : f) {
        has_connection = has_connection || field.name() == http::field::connection;
        has_upgrade = has_upgrade || field.name() == http::field::upgrade;
    }
    bool upgrade = false;
    if (has_connection) {
        // Fields named by Connection go first; copy the names, erasing invalidates views.
        std::string names;
        for (const auto& field : f) {
            if (field.name() != http::field::connection) continue;
            names.append(field.value());
            names.push_back(',');
        }
        for (auto token : http::token_list(names)) {
            if (text::iequals(token, "upgrade")) {
                upgrade = true;
                continue;
            }
            if (text::iequals(token, "close") || text::iequals(token, "keep-alive")) continue;
            f.erase(std::string_view(token.data(), token.size()));
        }
    }
    upgrade = upgrade && has_upgrade;
    const bool keep = upgrade && keep_upgrade;
    for (auto it = f.begin(); it != f.end();) {
        if (always_hop_by_hop(it->name()) || (it->name() == http::field::upgrade && !keep)) it = f.erase(it);
        else ++it;
    }
    if (keep) f.set(http::field::connection, "upgrade");
    return upgrade;
}

void append_via(fields& f, unsigned version, std::string_view via) {
    const std::string entry = text::cat(version >= 11 ? "1.1 " : "1.0 ", via);
    auto it = f.find(http::field::via);
    if (it == f.end()) {
        f.set(http::field::via, entry);
    } else {
        f.set(http::field::via, text::cat(it->value(), ", ", entry));
    }
}

forwarded take_forwarded(fields& f, std::string_view client_ip, bool tls, std::string_view host,
                         std::string_view via) {
    forwarded fwd;
    fwd.tls = tls;
    fwd.host = host;
    // One pass: several X-Forwarded-For (or Via) lines are one list (RFC 9110
    // 5.3), kept in their order; the client's X-Forwarded-Proto and -Host go.
    for (auto it = f.begin(); it != f.end();) {
        std::string* list = nullptr;
        if (it->name() == http::field::via) {
            list = &fwd.via;
        } else if (it->name() == http::field::unknown) {
            const std::string_view name = it->name_string();
            if (name.size() < 15 || !text::iequals(name.substr(0, 12), "X-Forwarded-")) {
                ++it;
                continue;
            }
            const std::string_view rest = name.substr(12);
            if (text::iequals(rest, "For")) list = &fwd.xff;
            else if (!text::iequals(rest, "Proto") && !text::iequals(rest, "Host")) {
                ++it;
                continue;
            }
        } else {
            ++it;
            continue;
        }
        if (list) list->append(it->value()).append(", "sv);
        it = f.erase(it);
    }
    fwd.xff.append(client_ip);
    fwd.via.append("1.1 "sv).append(via);
    return fwd;
}

void append_lines(const forwarded& fwd, std::string& out) {
    fwd.each([&out](std::string_view name, std::string_view value) {
        out.append(name).append(": "sv).append(value).append("\r\n"sv);
    });
}

void add_forwarded(fields& f, const forwarded& fwd) {
    fwd.each([&f](std::string_view name, std::string_view value) { f.set(name, value); });
}

void add_forwarded(fields& f, std::string_view client_ip, bool tls, std::string_view host,
                   std::string_view via) {
    add_forwarded(f, take_forwarded(f, client_ip, tls, host, via));
}

}  // namespace floodgate::headers
