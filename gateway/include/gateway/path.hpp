// Request-target normalisation: turns the origin-form target of a request
// ("/a/./b?x=1") into the one canonical path that the router matches and the
// upstream receives, or refuses it.
//
// The one thing not to get wrong: the gateway and the upstream must agree on
// which route was asked for. So the target is normalised once, the room is
// matched on the result, and the same result (never the original bytes) is
// what the upstream receives. Anything two servers could read two ways
// (encoded slash, backslash, control bytes, broken UTF-8) is refused.
//
//   auto r = path::normalize_target("/a/%2e%2e//Reserve;jsessionid=1?x=1");
//   // r.error == path_error::ok, r.value.path == "/Reserve;jsessionid=1",
//   // r.value.query == "x=1", path::match_key(r.value.path) == "/Reserve"
//
// Rules for the path (the part before the first '?'):
//  - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; every
//    other escape is kept, with uppercase hex ("%c3%a9" -> "%C3%A9").
//  - Refused: %2F (encoded_slash); '\' or %5C (backslash); control bytes raw
//    or encoded, C0, DEL and the C1 range U+0080..U+009F (nul_or_control);
//    '%' without two hex digits (bad_percent); bytes, raw or encoded, that are
//    not well-formed UTF-8 (overlong forms, surrogates and > U+10FFFF included)
//    (invalid_utf8); '#', space, an empty target or one not starting with '/'
//    (not_origin_form); a path over max_path_bytes, before or after
//    normalisation (too_long).
//  - Raw bytes that RFC 3986 does not allow in a path but that browsers and
//    Beast's parser let through are percent-encoded, so both spellings of one
//    path normalise alike: valid raw UTF-8 ("/café" -> "/caf%C3%A9") and
//    " < > [ ] ^ ` { | }" ("/a|b" -> "/a%7Cb").
//  - Repeated slashes collapse ("//a///b" -> "/a/b"); a trailing slash is kept.
//  - Dot segments are removed after decoding (RFC 3986 5.2.4, clamped at the
//    root): "/a/%2e%2e/b" -> "/b". A segment whose name before ';' (or %3B)
//    is "." or ".." is a dot segment too and goes with its parameters:
//    "/public/..;x/reserve" -> "/reserve" (servlet containers read it that way).
//  - ";params" of other segments stay in the path for the upstream; the router
//    ignores them through match_key()/key_reader.
// The result is always a valid RFC 3986 absolute-path (it passes
// boost::urls::parse_origin_form; the tests and the fuzzer check this).
//
// The query is not normalised: it is kept byte for byte (still encoded) and
// only refused for control bytes (nul_or_control) or '#' (not_origin_form).
// It plays no part in routing.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace floodgate::path {

inline constexpr std::size_t max_path_bytes = 8 * 1024;

struct normalized {
    std::string path;        // normalised, percent-encoded, starts with '/'
    std::string query;       // as received, without the '?'; empty if none
    bool has_query = false;  // "/a?" has an (empty) query
};

enum class path_error {
    ok,
    not_origin_form,
    bad_percent,
    encoded_slash,
    backslash,
    nul_or_control,
    invalid_utf8,
    too_long,
};

struct result {
    path_error error = path_error::ok;
    normalized value;        // meaningful only when error == ok
    bool unchanged = false;  // the target was already normal: to_target(value) equals it
};

// Normalises an origin-form request target ("/a/b?x=1"). Does not throw except
// std::bad_alloc; one allocation for the path in the common case.
result normalize_target(std::string_view origin_form_target);
// The same into r, whose strings keep their storage from one call to the next
// (a connection's requests): no allocation once they are large enough.
void normalize_target(std::string_view origin_form_target, result& r);

// path + ("?" + query when has_query): the target to send upstream.
std::string to_target(const normalized& n);

// Short, stable names for logs and counters: "encoded_slash", ...
const char* to_string(path_error e);

// The key a room is matched on: the normalised path with each segment's
// ";params" removed, and segments left with an empty name dropped, as
// servlet-style upstreams route them: "/reserve;jsessionid=1" -> "/reserve",
// "/;x/reserve" -> "/reserve", "/a/;x" -> "/a/". An encoded ';' (%3B) starts
// parameters here too, for upstreams that decode before they strip them; at
// worst that protects a path more, never less. Allocates; the router uses
// key_reader instead.
std::string match_key(std::string_view normalized_path);

// Reads match_key(path) one character at a time without allocating.
//   key_reader k("/a;x/b");  // k.next() yields '/', 'a', '/', 'b', then -1
class key_reader {
public:
    explicit key_reader(std::string_view normalized_path) : p_(normalized_path) {}

    // The next character of the key as unsigned char, or -1 at the end.
    int next() {
        while (pos_ < p_.size()) {
            if (!param_at(pos_)) return static_cast<unsigned char>(p_[pos_++]);
            // Skip the parameters up to the next '/'. If the segment's name is
            // empty ("/;x/"), its '/' was already read: skip the next one too.
            const bool empty_name = pos_ > 0 && p_[pos_ - 1] == '/';
            const std::size_t slash = p_.find('/', pos_);
            if (slash == std::string_view::npos)
                pos_ = p_.size();
            else
                pos_ = empty_name ? slash + 1 : slash;
        }
        return -1;
    }

private:
    // ';' or its escape (normalised paths have uppercase hex).
    bool param_at(std::size_t i) const {
        return p_[i] == ';' || (p_[i] == '%' && p_.compare(i, 3, "%3B") == 0);
    }

    std::string_view p_;
    std::size_t pos_ = 0;
};

}  // namespace floodgate::path
