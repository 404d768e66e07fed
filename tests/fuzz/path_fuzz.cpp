// libFuzzer target for path::normalize_target and the router's use of it.
// Besides "no crash, no sanitizer report", it checks the promises in
// gateway/include/gateway/path.hpp on every accepted input:
//  - the path is a valid RFC 3986 origin-form (Boost.URL agrees);
//  - it has no "//", and once fully percent-decoded no segment whose name
//    (before ';') is "." or "..", and no '\' or control byte;
//  - normalising it again changes nothing, and the query is kept as is;
//  - routing the original target and the normalised path gives one answer.
#include <boost/url/parse.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/path.hpp"
#include "gateway/router.hpp"

using namespace floodgate;

namespace {

[[noreturn]] void fail(const char* what, std::string_view in, std::string_view out) {
    std::fprintf(stderr, "path_fuzz: %s\n  input:  %.*s\n  output: %.*s\n", what, int(in.size()),
                 in.data(), int(out.size()), out.data());
    std::abort();
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // the output only has uppercase hex
}

// Decodes every %XX of s into out; false on a malformed escape.
bool decode(std::string_view s, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return false;
        const int h = hex(s[i + 1]), l = hex(s[i + 2]);
        if (h < 0 || l < 0) return false;
        out.push_back(char(h * 16 + l));
        i += 2;
    }
    return true;
}

const router& test_router() {
    static const router r = [] {
        router x;
        room_match a;
        a.prefixes = {"/reserve", "/api/reserve/", "/caf\xC3\xA9"};
        a.case_insensitive = true;
        (void)x.add(0, a);
        room_match b;
        b.exact = {"/Book", "/"};
        b.methods = {"POST"};
        (void)x.add(1, b);
        room_match c;
        c.prefixes = {"/A;b/c"};
        (void)x.add(2, c);
        return x;
    }();
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto r = path::normalize_target(in);
    (void)path::to_string(r.error);
    if (r.error != path::path_error::ok) return 0;

    const std::string& p = r.value.path;
    if (p.empty() || p.front() != '/') fail("path does not start with '/'", in, p);
    if (p.size() > path::max_path_bytes) fail("path over the limit", in, p);
    if (p.find("//") != std::string::npos) fail("path has '//'", in, p);
    if (!boost::urls::parse_origin_form(p)) fail("Boost.URL refuses the path", in, p);

    std::string decoded;
    if (!decode(p, decoded)) fail("bad escape in output", in, p);
    std::size_t seg = 1;
    while (seg <= decoded.size()) {
        std::size_t end = decoded.find('/', seg);
        if (end == std::string::npos) end = decoded.size();
        std::string_view s(decoded.data() + seg, end - seg);
        s = s.substr(0, s.find(';'));
        if (s == "." || s == "..") fail("dot segment left in path", in, p);
        seg = end + 1;
    }
    for (const char ch : decoded) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\' || c < 0x20 || c == 0x7f) fail("backslash or control byte in path", in, p);
    }

    const auto again = path::normalize_target(path::to_target(r.value));
    if (again.error != path::path_error::ok) fail("normalised target refused", in, p);
    if (again.value.path != p) fail("normalisation is not idempotent", in, again.value.path);
    if (again.value.query != r.value.query || again.value.has_query != r.value.has_query)
        fail("query changed", in, again.value.query);
    const std::size_t q = in.find('?');
    if ((q != std::string_view::npos) != r.value.has_query ||
        (r.value.has_query && in.substr(q + 1) != r.value.query))
        fail("query not kept as received", in, r.value.query);

    const std::string key = path::match_key(p);
    if (key.find(';') != std::string::npos || key.find("%3B") != std::string::npos)
        fail("';' in match key", in, key);
    if (key.find("//") != std::string::npos) fail("'//' in match key", in, key);

    const router& rt = test_router();
    for (const char* method : {"GET", "POST"}) {
        const int a = rt.match("h", method, r.value);
        const int b = rt.match("h", method, again.value);
        if (a != b) fail("routing changed after normalising twice", in, p);
        path::normalized by_key{key, "", false};
        if (rt.match("h", method, by_key) != a) fail("routing by key differs", in, key);
    }
    return 0;
}
