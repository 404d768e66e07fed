// Tests gateway/src/router.cpp: a protected route is found whatever shape the
// request gives its path, and nothing else is.
#include "gateway/router.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace floodgate;

namespace {

// The room a GET for `target` on host "booking.example" lands in, -1 for none;
// -2 when the target is refused before routing.
int room_of(const router& r, std::string_view target, std::string_view host = "booking.example",
            std::string_view method = "GET") {
    auto n = path::normalize_target(target);
    if (n.error != path::path_error::ok) return -2;
    return r.match(host, method, n.value);
}

router vaccine(bool case_insensitive) {
    router r;
    room_match m;
    m.prefixes = {"/reserve", "/api/reserve/"};
    m.case_insensitive = case_insensitive;
    REQUIRE(r.add(0, m) == path::path_error::ok);
    return r;
}

}  // namespace

TEST_CASE("a prefix matches on segment boundaries only", "[router]") {
    const router r = vaccine(false);
    CHECK(room_of(r, "/reserve") == 0);
    CHECK(room_of(r, "/reserve/") == 0);
    CHECK(room_of(r, "/reserve/step2") == 0);
    CHECK(room_of(r, "/reserve?x=1") == 0);
    CHECK(room_of(r, "/reserved") == -1);
    CHECK(room_of(r, "/reserve.html") == -1);
    CHECK(room_of(r, "/") == -1);
    CHECK(room_of(r, "/other/reserve") == -1);
}

TEST_CASE("a prefix ending in a slash covers the path without it too", "[router]") {
    const router r = vaccine(false);
    CHECK(room_of(r, "/api/reserve") == 0);
    CHECK(room_of(r, "/api/reserve/") == 0);
    CHECK(room_of(r, "/api/reserve/123") == 0);
    CHECK(room_of(r, "/api/reserved") == -1);
    CHECK(room_of(r, "/api") == -1);
}

TEST_CASE("the bypass shapes of the path all reach the room", "[router]") {
    const router r = vaccine(false);
    CHECK(room_of(r, "//reserve") == 0);
    CHECK(room_of(r, "/./reserve") == 0);
    CHECK(room_of(r, "/x/../reserve") == 0);
    CHECK(room_of(r, "/x/%2e%2e/reserve") == 0);
    CHECK(room_of(r, "/x/.%2E/reserve") == 0);
    CHECK(room_of(r, "/%72eserve") == 0);
    CHECK(room_of(r, "/%72%65%73%65%72%76%65") == 0);
    CHECK(room_of(r, "/reserve;jsessionid=1") == 0);
    CHECK(room_of(r, "/reserve;x/step2") == 0);
    CHECK(room_of(r, "/;x/reserve") == 0);
    CHECK(room_of(r, "/reserve%3bjsessionid=1") == 0);
    CHECK(room_of(r, "/%3Bx/reserve") == 0);
    CHECK(room_of(r, "/public/..%3B/reserve") == 0);
    CHECK(room_of(r, "/public/..;/reserve") == 0);
    CHECK(room_of(r, "/public/%2e%2e;x=1/reserve") == 0);
    CHECK(room_of(r, "/api;v=1/reserve/1") == 0);
    CHECK(room_of(r, "///api//reserve") == 0);
    // Shapes that are refused before routing.
    CHECK(room_of(r, "/x%2f..%2freserve") == -2);
    CHECK(room_of(r, "/x\\..\\reserve") == -2);
    CHECK(room_of(r, "/reserve%00") == -2);
    CHECK(room_of(r, "/%C0%AE%C0%AE/reserve") == -2);
}

TEST_CASE("letter case matters only when the room is case-sensitive", "[router]") {
    const router sensitive = vaccine(false);
    CHECK(room_of(sensitive, "/RESERVE") == -1);
    CHECK(room_of(sensitive, "/Reserve/x") == -1);

    const router insensitive = vaccine(true);
    CHECK(room_of(insensitive, "/RESERVE") == 0);
    CHECK(room_of(insensitive, "/Reserve/x") == 0);
    CHECK(room_of(insensitive, "/%52ESERVE") == 0);
    CHECK(room_of(insensitive, "/API/Reserve;JSESSIONID=1") == 0);
    CHECK(room_of(insensitive, "/RESERVED") == -1);
}

TEST_CASE("configured paths are normalised like requests", "[router]") {
    router r;
    room_match m;
    m.prefixes = {"/Reserve/", "//a/./b/../c", "/caf\xC3\xA9"};
    m.case_insensitive = true;
    REQUIRE(r.add(0, m) == path::path_error::ok);
    CHECK(room_of(r, "/reserve") == 0);
    CHECK(room_of(r, "/a/c/1") == 0);
    CHECK(room_of(r, "/caf%c3%a9") == 0);
    CHECK(room_of(r, "/CAF%C3%A9/menu") == 0);
    CHECK(room_of(r, "/caf\xC3\xA9") == 0);
}

TEST_CASE("a configured path that is not a valid path is reported and never matches", "[router]") {
    router r;
    room_match m;
    m.prefixes = {"/a%2Fb", "/ok"};
    CHECK(r.add(0, m) == path::path_error::encoded_slash);
    CHECK(room_of(r, "/ok") == 0);
    CHECK(room_of(r, "/a") == -1);

    router q;
    room_match only_bad;
    only_bad.exact = {"/x?y=1"};
    CHECK(q.add(0, only_bad) == path::path_error::not_origin_form);
    CHECK(room_of(q, "/x") == -1);
    CHECK(room_of(q, "/") == -1);
}

TEST_CASE("an exact path matches with or without a trailing slash only", "[router]") {
    router r;
    room_match m;
    m.exact = {"/checkout", "/"};
    REQUIRE(r.add(0, m) == path::path_error::ok);
    CHECK(room_of(r, "/checkout") == 0);
    CHECK(room_of(r, "/checkout/") == 0);
    CHECK(room_of(r, "/checkout;jsessionid=1") == 0);
    CHECK(room_of(r, "//checkout?x") == 0);
    CHECK(room_of(r, "/checkout/x") == -1);
    CHECK(room_of(r, "/checkouts") == -1);
    CHECK(room_of(r, "/") == 0);
    CHECK(room_of(r, "/index.html") == -1);
}

TEST_CASE("a root prefix or no paths at all covers every path", "[router]") {
    router r;
    room_match root;
    root.prefixes = {"/"};
    root.hosts = {"a.example"};
    REQUIRE(r.add(0, root) == path::path_error::ok);
    room_match whole_host;
    whole_host.hosts = {"b.example"};
    REQUIRE(r.add(1, whole_host) == path::path_error::ok);
    CHECK(room_of(r, "/", "a.example") == 0);
    CHECK(room_of(r, "/anything/at/all", "a.example") == 0);
    CHECK(room_of(r, "/", "b.example") == 1);
    CHECK(room_of(r, "/x;y", "b.example") == 1);
    CHECK(room_of(r, "/x", "c.example") == -1);
}

TEST_CASE("the host is compared without case port brackets or trailing dot", "[router]") {
    router r;
    room_match m;
    m.hosts = {"Booking.Example", "[::1]", "10.0.0.1:8080"};
    m.prefixes = {"/reserve"};
    REQUIRE(r.add(0, m) == path::path_error::ok);
    CHECK(room_of(r, "/reserve", "booking.example") == 0);
    CHECK(room_of(r, "/reserve", "BOOKING.EXAMPLE") == 0);
    CHECK(room_of(r, "/reserve", "booking.example:8080") == 0);
    CHECK(room_of(r, "/reserve", "booking.example.") == 0);
    CHECK(room_of(r, "/reserve", "Booking.Example.:443") == 0);
    CHECK(room_of(r, "/reserve", "[::1]:80") == 0);
    CHECK(room_of(r, "/reserve", "[::1]") == 0);
    CHECK(room_of(r, "/reserve", "10.0.0.1") == 0);
    CHECK(room_of(r, "/reserve", "other.example") == -1);
    CHECK(room_of(r, "/reserve", "booking.example.evil") == -1);
    CHECK(room_of(r, "/reserve", "") == -1);
    CHECK(room_of(r, "/reserve", "[::2]:80") == -1);

    CHECK(room_of(r, "/reserve", std::string(300, 'a')) == -1);

    router blank;
    room_match only_blank;
    only_blank.hosts = {""};
    REQUIRE(blank.add(0, only_blank) == path::path_error::ok);
    CHECK(room_of(blank, "/reserve", "") == -1);
    CHECK(room_of(blank, "/reserve", "a.example") == -1);

    CHECK(router::canonical_host("a.example:80") == "a.example");
    CHECK(router::canonical_host("[fe80::1]:443") == "fe80::1");
    CHECK(router::canonical_host("fe80::1") == "fe80::1");
    CHECK(router::canonical_host(" a.example. ") == "a.example");
}

TEST_CASE("a method filter limits the room to those methods", "[router]") {
    router r;
    room_match m;
    m.prefixes = {"/reserve"};
    m.methods = {"post", "GET"};
    REQUIRE(r.add(0, m) == path::path_error::ok);
    CHECK(room_of(r, "/reserve", "booking.example", "POST") == 0);
    CHECK(room_of(r, "/reserve", "booking.example", "GET") == 0);
    CHECK(room_of(r, "/reserve", "booking.example", "HEAD") == 0);
    // A lower-case method is still the method to an upstream that folds case.
    CHECK(room_of(r, "/reserve", "booking.example", "post") == 0);
    CHECK(room_of(r, "/reserve", "booking.example", "PUT") == -1);
    CHECK(room_of(r, "/reserve", "booking.example", "OPTIONS") == -1);
}

TEST_CASE("the first matching room in config order wins", "[router]") {
    router r;
    room_match narrow;
    narrow.prefixes = {"/reserve/vip"};
    room_match wide;
    wide.prefixes = {"/reserve"};
    room_match other_host;
    other_host.hosts = {"b.example"};
    other_host.prefixes = {"/reserve"};
    // Added out of order: the room index decides, not the order of add().
    REQUIRE(r.add(2, wide) == path::path_error::ok);
    REQUIRE(r.add(1, narrow) == path::path_error::ok);
    REQUIRE(r.add(0, other_host) == path::path_error::ok);
    CHECK(room_of(r, "/reserve/vip/1", "a.example") == 1);
    CHECK(room_of(r, "/reserve/x", "a.example") == 2);
    CHECK(room_of(r, "/reserve/vip", "b.example") == 0);
    CHECK(room_of(r, "/free", "a.example") == -1);
}

TEST_CASE("an exact path and a prefix in one room both match", "[router]") {
    router r;
    room_match a;
    a.exact = {"/book"};
    REQUIRE(r.add(0, a) == path::path_error::ok);
    room_match b;
    b.prefixes = {"/book"};
    REQUIRE(r.add(1, b) == path::path_error::ok);
    CHECK(room_of(r, "/book") == 0);
    CHECK(room_of(r, "/book/") == 0);
    CHECK(room_of(r, "/book/1") == 1);
    CHECK(room_of(r, "/books") == -1);
    CHECK(r.match("booking.example", "GET", path::normalized{"/book", "", false}) == 0);
}
