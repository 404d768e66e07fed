// See gateway/include/gateway/path.hpp for the rules.
//
// One pass over the path. A prefix made only of plain characters, with no
// "//" and no segment starting with '.', is copied in one piece (for most
// requests that is the whole path); the rest goes segment by segment into the
// output, and dot segments are resolved as each segment ends, on the output.
#include "gateway/path.hpp"

#include <array>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cstdint>

namespace floodgate::path {
namespace {

enum class cls : std::uint8_t {
    plain,    // a pchar that stands for itself: unreserved, sub-delims, ':', '@'
    slash,    // '/'
    percent,  // '%'
    encode,   // printable ASCII that browsers send raw but RFC 3986 does not allow
    high,     // a byte >= 0x80: part of a raw UTF-8 sequence
    control,  // C0 controls and DEL
    bslash,   // '\'
    bad,      // '#', space, '?' (never inside a path)
};

constexpr std::array<cls, 256> make_classes() {
    std::array<cls, 256> t{};
    for (int i = 0; i < 256; ++i) {
        const auto c = static_cast<unsigned char>(i);
        if (i < 0x20 || i == 0x7f)
            t[i] = cls::control;
        else if (i >= 0x80)
            t[i] = cls::high;
        else if (boost::urls::pchars(c))
            t[i] = cls::plain;  // '%' is not in pchars
        else if (c == '/')
            t[i] = cls::slash;
        else if (c == '%')
            t[i] = cls::percent;
        else if (c == '\\')
            t[i] = cls::bslash;
        else if (c == '#' || c == ' ' || c == '?')
            t[i] = cls::bad;
        else
            t[i] = cls::encode;  // " < > [ ] ^ ` { | }
    }
    return t;
}
constexpr std::array<cls, 256> classes = make_classes();
static_assert(classes['|'] == cls::encode && classes['{'] == cls::encode &&
              classes['"'] == cls::encode);
static_assert(classes[';'] == cls::plain && classes['.'] == cls::plain &&
              classes['~'] == cls::plain);

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void append_escape(std::string& out, unsigned b) {
    constexpr char digits[] = "0123456789ABCDEF";
    const char esc[3] = {'%', digits[b >> 4], digits[b & 0xf]};
    out.append(esc, 3);
}

bool is_control(unsigned b) {
    return b < 0x20 || b == 0x7f;
}

// Checks UTF-8 one byte at a time, whether the byte came raw or from %XX.
// Follows the table of well-formed sequences in Unicode 15, 3.9 (D92): no
// overlong forms, no surrogates, nothing above U+10FFFF.
class utf8_check {
public:
    bool pending() const { return need_ != 0; }

    path_error feed(unsigned b) {
        if (need_ == 0) {
            c1_ = false;
            lo_ = 0x80;
            hi_ = 0xbf;
            if (b < 0xc2) return path_error::invalid_utf8;  // continuation byte or overlong
            if (b <= 0xdf) {
                need_ = 1;
                c1_ = b == 0xc2;  // U+0080..U+009F are C1 controls
            } else if (b <= 0xef) {
                need_ = 2;
                if (b == 0xe0) lo_ = 0xa0;  // overlong
                if (b == 0xed) hi_ = 0x9f;  // surrogates
            } else if (b <= 0xf4) {
                need_ = 3;
                if (b == 0xf0) lo_ = 0x90;  // overlong
                if (b == 0xf4) hi_ = 0x8f;  // above U+10FFFF
            } else {
                return path_error::invalid_utf8;
            }
            return path_error::ok;
        }
        if (b < lo_ || b > hi_) return path_error::invalid_utf8;
        if (c1_ && b <= 0x9f) return path_error::nul_or_control;
        c1_ = false;
        lo_ = 0x80;
        hi_ = 0xbf;
        --need_;
        return path_error::ok;
    }

private:
    unsigned need_ = 0;
    unsigned lo_ = 0x80;
    unsigned hi_ = 0xbf;
    bool c1_ = false;
};

path_error check_query(std::string_view q) {
    for (const char ch : q) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_control(c)) return path_error::nul_or_control;
        if (c == '#' || c == ' ') return path_error::not_origin_form;
    }
    return path_error::ok;
}

// Length of the prefix of `in` that is already normal and can be copied as is:
// it ends just before a '/', and holds only plain characters, no "//" and no
// segment starting with '.'. Equals in.size() when the whole path is normal.
std::size_t normal_prefix(std::string_view in) {
    std::size_t seg = 0;  // where the current segment's '/' is
    for (std::size_t i = 0; i < in.size(); ++i) {
        const cls k = classes[static_cast<unsigned char>(in[i])];
        if (k == cls::plain) continue;
        if (k != cls::slash) return seg;
        seg = i;
        if (i + 1 < in.size() && (in[i + 1] == '/' || in[i + 1] == '.')) return seg;
    }
    return in.size();
}

// Normalises `in` (starts with '/', no '?') from `from`, a '/' position, onto
// `out`, which holds the normal prefix in[0, from).
path_error normalize_rest(std::string_view in, std::size_t from, std::string& out) {
    utf8_check utf8;
    std::size_t p = from;
    while (p < in.size()) {  // in[p] == '/'
        ++p;
        out.push_back('/');
        const std::size_t seg_begin = out.size();
        std::size_t name_end = std::string::npos;  // the first ';' or %3B in this segment

        while (p < in.size() && in[p] != '/') {
            const auto c = static_cast<unsigned char>(in[p]);
            const cls k = classes[c];
            if (k == cls::high) {
                if (auto e = utf8.feed(c); e != path_error::ok) return e;
                append_escape(out, c);
                ++p;
                continue;
            }
            if (k == cls::percent) {
                const int h = p + 1 < in.size() ? hex_value(in[p + 1]) : -1;
                const int l = p + 2 < in.size() ? hex_value(in[p + 2]) : -1;
                if (h < 0 || l < 0) return path_error::bad_percent;
                const auto b = static_cast<unsigned>(h * 16 + l);
                p += 3;
                if (b >= 0x80) {
                    if (auto e = utf8.feed(b); e != path_error::ok) return e;
                    append_escape(out, b);
                    continue;
                }
                if (utf8.pending()) return path_error::invalid_utf8;
                if (is_control(b)) return path_error::nul_or_control;
                if (b == '/') return path_error::encoded_slash;
                if (b == '\\') return path_error::backslash;
                // An upstream that decodes before it strips ";params" reads "..%3B"
                // as "..": for dot segments, %3B ends the name like ';' does.
                if (b == ';' && name_end == std::string::npos) name_end = out.size();
                if (boost::urls::unreserved_chars(static_cast<unsigned char>(b)))
                    out.push_back(static_cast<char>(b));
                else
                    append_escape(out, b);
                continue;
            }
            if (utf8.pending()) return path_error::invalid_utf8;
            switch (k) {
                case cls::plain:
                    if (c == ';' && name_end == std::string::npos) name_end = out.size();
                    out.push_back(static_cast<char>(c));
                    break;
                case cls::encode:
                    append_escape(out, c);
                    break;
                case cls::control:
                    return path_error::nul_or_control;
                case cls::bslash:
                    return path_error::backslash;
                default:
                    return path_error::not_origin_form;
            }
            ++p;
        }
        if (utf8.pending()) return path_error::invalid_utf8;

        const bool last = p >= in.size();
        if (name_end == std::string::npos) name_end = out.size();
        const std::string_view name(out.data() + seg_begin, name_end - seg_begin);
        if (out.size() == seg_begin) {
            if (!last) out.pop_back();  // "//": collapse; a trailing '/' stays
        } else if (name == ".") {
            out.resize(last ? seg_begin : seg_begin - 1);
        } else if (name == "..") {
            out.resize(seg_begin - 1);
            const std::size_t prev = out.rfind('/');
            out.resize(prev == std::string::npos ? 0 : prev);
            if (last) out.push_back('/');
        }
    }
    if (out.empty()) out.push_back('/');
    return path_error::ok;
}

}  // namespace

void normalize_target(std::string_view target, result& r) {
    r.error = path_error::ok;
    r.unchanged = false;
    r.value.path.clear();
    r.value.query.clear();
    r.value.has_query = false;
    if (target.empty() || target.front() != '/') {
        r.error = path_error::not_origin_form;
        return;
    }
    const std::size_t q = target.find('?');
    const std::string_view in = target.substr(0, q);
    if (in.size() > max_path_bytes) {
        r.error = path_error::too_long;
        return;
    }
    if (q != std::string_view::npos) {
        const std::string_view query = target.substr(q + 1);
        if (auto e = check_query(query); e != path_error::ok) {
            r.error = e;
            return;
        }
        r.value.has_query = true;
        r.value.query.assign(query);
    }

    const std::size_t clean = normal_prefix(in);
    if (clean == in.size()) {
        r.value.path.assign(in);
        r.unchanged = true;
        return;
    }
    std::string& out = r.value.path;
    out.reserve(in.size() + 8);
    out.assign(in.substr(0, clean));
    if (auto e = normalize_rest(in, clean, out); e != path_error::ok) {
        r.error = e;
        return;
    }
    if (out.size() > max_path_bytes) r.error = path_error::too_long;
}

result normalize_target(std::string_view target) {
    result r;
    normalize_target(target, r);
    return r;
}

std::string to_target(const normalized& n) {
    std::string t;
    t.reserve(n.path.size() + (n.has_query ? n.query.size() + 1 : 0));
    t.append(n.path);
    if (n.has_query) {
        t.push_back('?');
        t.append(n.query);
    }
    return t;
}

const char* to_string(path_error e) {
    switch (e) {
        case path_error::ok:
            return "ok";
        case path_error::not_origin_form:
            return "not_origin_form";
        case path_error::bad_percent:
            return "bad_percent";
        case path_error::encoded_slash:
            return "encoded_slash";
        case path_error::backslash:
            return "backslash";
        case path_error::nul_or_control:
            return "nul_or_control";
        case path_error::invalid_utf8:
            return "invalid_utf8";
        case path_error::too_long:
            return "too_long";
    }
    return "unknown";
}

std::string match_key(std::string_view normalized_path) {
    std::string key;
    key.reserve(normalized_path.size());
    key_reader k(normalized_path);
    for (int c = k.next(); c >= 0; c = k.next()) key.push_back(static_cast<char>(c));
    return key;
}

}  // namespace floodgate::path
