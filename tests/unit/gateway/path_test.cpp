// Tests gateway/src/path.cpp: every path trick normalises to the one path
// that the router matches and the upstream receives, or is refused.
#include "gateway/path.hpp"

#include <boost/url/parse.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace floodgate;
using path::path_error;

namespace {

struct row {
    std::string input;
    std::string path;  // expected path when error == ok
    path_error error = path_error::ok;
};

row ok(std::string in, std::string out) {
    return {std::move(in), std::move(out), path_error::ok};
}
row refused(std::string in, path_error e) {
    return {std::move(in), {}, e};
}

const std::vector<row>& table() {
    static const std::vector<row> rows = {
        // Plain paths go through unchanged.
        ok("/", "/"),
        ok("/reserve", "/reserve"),
        ok("/a/b/c.html", "/a/b/c.html"),
        ok("/a/", "/a/"),
        ok("/.well-known/x", "/.well-known/x"),
        ok("/a/...", "/a/..."),
        ok("/a/..b/.c", "/a/..b/.c"),
        ok("/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="),
        // Repeated slashes collapse; a trailing slash stays.
        ok("//reserve", "/reserve"),
        ok("/a///b", "/a/b"),
        ok("//", "/"),
        ok("/a//", "/a/"),
        // Dot segments, raw and encoded, clamped at the root.
        ok("/a/./b", "/a/b"),
        ok("/./reserve", "/reserve"),
        ok("/a/../b", "/b"),
        ok("/x/../reserve", "/reserve"),
        ok("/../../x", "/x"),
        ok("/../", "/"),
        ok("/./", "/"),
        ok("/.", "/"),
        ok("/..", "/"),
        ok("/a/b/..", "/a/"),
        ok("/a/b/.", "/a/b/"),
        ok("/a/%2e%2e/b", "/b"),
        ok("/a/%2E%2E/b", "/b"),
        ok("/a/.%2e/b", "/b"),
        ok("/a/%2e./b", "/b"),
        ok("/%2e", "/"),
        ok("/a/%2e/b", "/a/b"),
        ok("/a/b/%2e%2e", "/a/"),
        ok("/a/.//../b", "/b"),
        // ";params" stay, but "." and ".." with params are still dot segments.
        ok("/reserve;jsessionid=1", "/reserve;jsessionid=1"),
        ok("/reserve;jsessionid=1/x", "/reserve;jsessionid=1/x"),
        ok("/public/..;/reserve", "/reserve"),
        ok("/public/..;x=1/reserve", "/reserve"),
        ok("/a/.;x/b", "/a/b"),
        ok("/public/%2e%2e;x/reserve", "/reserve"),
        ok("/public/..%3b/reserve", "/reserve"),
        ok("/a/.%3Bx/b", "/a/b"),
        ok("/a/x%3B/b", "/a/x%3B/b"),
        // Unreserved characters are decoded, other escapes keep uppercase hex.
        ok("/%72eserve", "/reserve"),
        ok("/%41%5a%61%7a%30%39", "/AZaz09"),
        ok("/%7e", "/~"),
        ok("/%7Euser", "/~user"),
        ok("/%2d%5f", "/-_"),
        ok("/a%20b", "/a%20b"),
        ok("/a%3bb", "/a%3Bb"),
        ok("/a%3fb", "/a%3Fb"),
        ok("/a%25b", "/a%25b"),
        ok("/a%252e%252e/b", "/a%252e%252e/b"),
        // UTF-8: encoded stays encoded; raw bytes are percent-encoded.
        ok("/caf%C3%A9", "/caf%C3%A9"),
        ok("/caf%c3%a9", "/caf%C3%A9"),
        ok("/caf\xC3\xA9", "/caf%C3%A9"),
        ok("/caf%C3\xA9", "/caf%C3%A9"),
        ok("/\xEC\x98\x88\xEC\x95\xBD", "/%EC%98%88%EC%95%BD"),
        ok("/%F0%9F%98%80", "/%F0%9F%98%80"),
        ok("/%EF%BF%BF", "/%EF%BF%BF"),
        ok("/%F4%8F%BF%BF", "/%F4%8F%BF%BF"),
        // Characters browsers send raw but RFC 3986 does not allow: encoded.
        ok("/a|b", "/a%7Cb"),
        ok("/{x}[y]^`\"<>", "/%7Bx%7D%5By%5D%5E%60%22%3C%3E"),
        // The query is kept as received.
        ok("/a?x=1", "/a"),
        ok("/a/../b?q=%2e%2e/%2F&x=%zz", "/b"),
        ok("/a?", "/a"),
        // Refused.
        refused("", path_error::not_origin_form),
        refused("reserve", path_error::not_origin_form),
        refused("*", path_error::not_origin_form),
        refused("http://a/b", path_error::not_origin_form),
        refused("/a#b", path_error::not_origin_form),
        refused("/a b", path_error::not_origin_form),
        refused("/a?x#y", path_error::not_origin_form),
        refused("/a%2fb", path_error::encoded_slash),
        refused("/a%2Fb", path_error::encoded_slash),
        refused("/reserve%2f", path_error::encoded_slash),
        refused("/a%5cb", path_error::backslash),
        refused("/a%5Cb", path_error::backslash),
        refused("/a\\b", path_error::backslash),
        refused("/..\\reserve", path_error::backslash),
        refused(std::string("/a\0b", 4), path_error::nul_or_control),
        refused("/a%00b", path_error::nul_or_control),
        refused("/a%0d%0aSet-Cookie:x", path_error::nul_or_control),
        refused("/a%09", path_error::nul_or_control),
        refused("/a%7f", path_error::nul_or_control),
        refused("/a\x7f", path_error::nul_or_control),
        refused("/a\tb", path_error::nul_or_control),
        refused("/a%C2%85", path_error::nul_or_control),
        refused("/a?x=\r\n", path_error::nul_or_control),
        refused("/a%", path_error::bad_percent),
        refused("/a%2", path_error::bad_percent),
        refused("/a%zz", path_error::bad_percent),
        refused("/a%u002e", path_error::bad_percent),
        refused("/a%%32%65", path_error::bad_percent),
        refused("/%C0%AE%C0%AE/reserve", path_error::invalid_utf8),
        refused("/%C1%9C", path_error::invalid_utf8),
        refused("/%E0%80%AE", path_error::invalid_utf8),
        refused("/%F0%80%80%AE", path_error::invalid_utf8),
        refused("/%ED%A0%80", path_error::invalid_utf8),
        refused("/%F4%90%80%80", path_error::invalid_utf8),
        refused("/%F5%80%80%80", path_error::invalid_utf8),
        refused("/%FF", path_error::invalid_utf8),
        refused("/%A9", path_error::invalid_utf8),
        refused("/caf%C3", path_error::invalid_utf8),
        refused("/caf%C3/x", path_error::invalid_utf8),
        refused("/caf%C3e", path_error::invalid_utf8),
        refused("/caf%C3%2e", path_error::invalid_utf8),
        refused("/caf\xE9", path_error::invalid_utf8),
        refused("/\xC0\xAE", path_error::invalid_utf8),
    };
    return rows;
}

}  // namespace

TEST_CASE("every path trick in the table normalises as expected or is refused", "[path]") {
    REQUIRE(table().size() >= 40);
    for (const auto& r : table()) {
        INFO("input: " << r.input);
        const auto got = path::normalize_target(r.input);
        CHECK(std::string(path::to_string(got.error)) == path::to_string(r.error));
        if (r.error == path_error::ok && got.error == path_error::ok) {
            CHECK(got.value.path == r.path);
            // The flag that lets the proxy skip rebuilding the target is never wrong.
            if (got.unchanged) CHECK(path::to_target(got.value) == r.input);
        }
    }
    CHECK(path::normalize_target("/__fg/v1/rooms/bench/status?x=1").unchanged);
    CHECK_FALSE(path::normalize_target("/a/./b").unchanged);
    CHECK_FALSE(path::normalize_target("/a//b?x=1").unchanged);
}

TEST_CASE("a normalised path is a valid origin-form and normalises to itself", "[path]") {
    for (const auto& r : table()) {
        const auto got = path::normalize_target(r.input);
        if (got.error != path_error::ok) continue;
        INFO("input: " << r.input << "  path: " << got.value.path);
        CHECK(boost::urls::parse_origin_form(got.value.path).has_value());
        const auto again = path::normalize_target(got.value.path);
        CHECK(again.error == path_error::ok);
        CHECK(again.value.path == got.value.path);
    }
}

TEST_CASE("the query is kept byte for byte and not normalised", "[path]") {
    auto r = path::normalize_target("/a/./b?q=%2e%2e/%2f&x=a|b&y=%7e");
    REQUIRE(r.error == path_error::ok);
    CHECK(r.value.path == "/a/b");
    CHECK(r.value.has_query);
    CHECK(r.value.query == "q=%2e%2e/%2f&x=a|b&y=%7e");
    CHECK(path::to_target(r.value) == "/a/b?q=%2e%2e/%2f&x=a|b&y=%7e");

    r = path::normalize_target("/a?");
    REQUIRE(r.error == path_error::ok);
    CHECK(r.value.has_query);
    CHECK(r.value.query.empty());
    CHECK(path::to_target(r.value) == "/a?");

    r = path::normalize_target("/a");
    REQUIRE(r.error == path_error::ok);
    CHECK_FALSE(r.value.has_query);
    CHECK(path::to_target(r.value) == "/a");
}

TEST_CASE("a path over 8 KiB is refused", "[path]") {
    const std::string max = "/" + std::string(path::max_path_bytes - 1, 'a');
    CHECK(path::normalize_target(max).error == path_error::ok);
    CHECK(path::normalize_target(max + "a").error == path_error::too_long);
    // The query does not count toward the path limit.
    CHECK(path::normalize_target(max + "?" + std::string(10000, 'q')).error == path_error::ok);
    // Nor may encoding raw bytes push the result over it.
    std::string raw = "/";
    while (raw.size() + 2 <= path::max_path_bytes) raw += "\xC3\xA9";
    CHECK(path::normalize_target(raw).error == path_error::too_long);
}

TEST_CASE("deep dot segments resolve against the right parent", "[path]") {
    CHECK(path::normalize_target("/a/b/c/../../d").value.path == "/a/d");
    CHECK(path::normalize_target("/a/b/c/%2e%2e/%2E%2E/%2e%2e/%2e%2e/d").value.path == "/d");
    CHECK(path::normalize_target("/a;p/b/../../c").value.path == "/c");
    CHECK(path::normalize_target("/caf%C3%A9/../x").value.path == "/x");
    CHECK(path::normalize_target("/a|b/../c").value.path == "/c");
}

TEST_CASE("the match key drops each segment's parameters", "[path]") {
    CHECK(path::match_key("/reserve;jsessionid=1") == "/reserve");
    CHECK(path::match_key("/reserve;jsessionid=1/x;y=2") == "/reserve/x");
    CHECK(path::match_key("/a;x;y/b") == "/a/b");
    CHECK(path::match_key("/;x/reserve") == "/reserve");
    CHECK(path::match_key("/;x/;y/reserve") == "/reserve");
    CHECK(path::match_key("/a/;x") == "/a/");
    CHECK(path::match_key("/a/;x/") == "/a/");
    CHECK(path::match_key("/;x") == "/");
    CHECK(path::match_key("/reserve/") == "/reserve/");
    CHECK(path::match_key("/reserve%3Bx") == "/reserve");
    CHECK(path::match_key("/%3Bx/reserve") == "/reserve");
    CHECK(path::match_key("/a%3B") == "/a");
    CHECK(path::match_key("/a%3") == "/a%3");
    CHECK(path::match_key("/") == "/");
}

TEST_CASE("each error has a stable name", "[path]") {
    CHECK(std::string(path::to_string(path_error::ok)) == "ok");
    CHECK(std::string(path::to_string(path_error::encoded_slash)) == "encoded_slash");
    CHECK(std::string(path::to_string(path_error::invalid_utf8)) == "invalid_utf8");
    CHECK(std::string(path::to_string(path_error::too_long)) == "too_long");
}
