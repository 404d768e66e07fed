// Tests gateway/src/headers.cpp: the checks that keep ambiguous or smuggled
// requests away from the upstream, and the header rewriting on the way through.
#include <catch2/catch.hpp>

#include <string>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

#include "gateway/headers.hpp"

using namespace floodgate;
using headers::framing_verdict;
using headers::raw_verdict;
namespace http = boost::beast::http;

TEST_CASE("a header block ends at the first empty line", "[headers]") {
    CHECK(headers::find_header_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody") == 27);
    CHECK(headers::find_header_end("GET / HTTP/1.1\r\nHost: a\r\n") == 0);
    CHECK(headers::find_header_end("") == 0);
    CHECK(headers::find_header_end("\r\n\r\n") == 4);
    CHECK(headers::find_header_end("\n\r\n") == 0);
    CHECK(headers::find_header_end("a\n\n\r\n\r\r\n") == 0);
}

TEST_CASE("the end of a head is found wherever it falls, and only the first", "[headers]") {
    // Every offset of the blank line, across the 16-byte steps and the tail,
    // with a second head behind it (a pipelined request).
    for (std::size_t len = 0; len < 70; ++len) {
        std::string head = "G";
        while (head.size() < len) head += (head.size() % 9 == 8) ? "\r\n" : "x";
        if (head.back() == '\n') head += "x";  // one line break, not a blank line, before the end
        head += "\r\n\r\n";
        INFO("head of " << head.size() << " bytes");
        CHECK(headers::find_header_end(head) == head.size());
        CHECK(headers::find_header_end(head + "GET /b HTTP/1.1\r\nHost: a\r\n\r\n") == head.size());
        CHECK(headers::find_header_end(head.substr(0, head.size() - 1)) == 0);
    }
}

TEST_CASE("raw header bytes that parsers disagree about are refused", "[headers]") {
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 100) == raw_verdict::ok);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n", 100) ==
          raw_verdict::obs_fold);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 100) ==
          raw_verdict::obs_fold);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\nHost: a\r\n\r\n", 100) ==
          raw_verdict::bad_line_ending);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 100) ==
          raw_verdict::bad_line_ending);
    CHECK(headers::scan_raw_header(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29), 100) ==
          raw_verdict::bad_byte);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", 100) == raw_verdict::bad_byte);
    CHECK(headers::scan_raw_header("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 100) == raw_verdict::ok);
}

TEST_CASE("every byte value is judged the same at every place in a long line", "[headers]") {
    // Long lines go through the 16- and 8-byte scans and the byte-at-a-time
    // tail; a bad byte must be found wherever it falls.
    const std::string head = "GET /a/long/enough/path HTTP/1.1\r\nHost: example.test\r\nX-Long: ";
    const std::string value(45, 'v');
    for (int b = 0; b < 256; ++b) {
        const auto c = static_cast<unsigned char>(b);
        const raw_verdict want = c == '\r' || c == '\n'         ? raw_verdict::bad_line_ending
                                 : (c < 0x20 && c != '\t') || c == 0x7f ? raw_verdict::bad_byte
                                                                     : raw_verdict::ok;
        for (std::size_t at = 0; at < value.size(); ++at) {
            std::string v = value;
            v[at] = static_cast<char>(c);
            INFO("byte " << b << " at " << at);
            REQUIRE(headers::scan_raw_header(head + v + "\r\n\r\n", 100) == want);
        }
    }
}

TEST_CASE("the number of header fields is limited", "[headers]") {
    const std::string two = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    CHECK(headers::scan_raw_header(two, 2) == raw_verdict::ok);
    CHECK(headers::scan_raw_header(two, 1) == raw_verdict::too_many_fields);
}

TEST_CASE("the framing check notes Host, Expect and Connection as lookups by name would", "[headers]") {
    // What the pass noted, copied out: its views point into the request's fields.
    struct noted {
        std::string host, expect;
        bool keep_alive;
    };
    auto found = [](std::initializer_list<std::pair<const char*, const char*>> fields, unsigned version = 11) {
        http::request<http::empty_body> h;
        h.version(version);
        for (auto& [n, v] : fields) h.insert(n, v);
        headers::request_fields r;
        REQUIRE(headers::check_request_framing(h, version, &r) == framing_verdict::ok);
        // The same answers as Beast's own lookups, which the session used before.
        CHECK(r.host == h[http::field::host]);
        CHECK(r.expect == h[http::field::expect]);
        CHECK(r.keep_alive(version) == h.keep_alive());
        return noted{std::string(r.host), std::string(r.expect), r.keep_alive(version)};
    };
    auto r = found({{"host", "a.example"}, {"EXPECT", "100-continue"}, {"Connection", "close"}});
    CHECK(r.host == "a.example");
    CHECK(r.expect == "100-continue");
    CHECK_FALSE(r.keep_alive);
    CHECK(found({{"Host", "a"}}).keep_alive);
    CHECK_FALSE(found({{"Host", "a"}}, 10).keep_alive);
    CHECK(found({{"Host", "a"}, {"Connection", "Keep-Alive"}}, 10).keep_alive);
    CHECK(found({{"Host", "a"}, {"Connection", "te, upgrade"}}).keep_alive);
    CHECK_FALSE(found({{"Host", "a"}, {"Connection", "upgrade, CLOSE"}}).keep_alive);
    // Only the first of each name counts, as with Beast's lookups.
    r = found({{"Host", "a"}, {"Expect", ""}, {"Expect", "100-continue"}, {"Connection", "x"},
               {"Connection", "close"}});
    CHECK(r.expect.empty());
    CHECK(r.keep_alive);
    // When the framing is refused, nothing is written.
    http::fields bad;
    bad.insert("Host", "a");
    bad.insert("Host", "b");
    headers::request_fields untouched;
    untouched.host = "kept";
    CHECK(headers::check_request_framing(bad, 11, &untouched) == framing_verdict::duplicate_host);
    CHECK(untouched.host == "kept");
}

TEST_CASE("framing that could be read two ways is refused", "[headers]") {
    auto check = [](std::initializer_list<std::pair<const char*, const char*>> fields, unsigned version = 11) {
        http::fields f;
        for (auto& [n, v] : fields) f.insert(n, v);
        return headers::check_request_framing(f, version);
    };
    CHECK(check({{"Host", "a"}}) == framing_verdict::ok);
    CHECK(check({{"Host", "a"}, {"Content-Length", "10"}}) == framing_verdict::ok);
    CHECK(check({{"Host", "a"}, {"Transfer-Encoding", "chunked"}}) == framing_verdict::ok);
    CHECK(check({{"Host", "a"}, {"Transfer-Encoding", "Chunked "}}) == framing_verdict::ok);
    CHECK(check({}) == framing_verdict::missing_host);
    CHECK(check({}, 10) == framing_verdict::ok);
    CHECK(check({{"Host", "a"}, {"Host", "b"}}) == framing_verdict::duplicate_host);
    CHECK(check({{"Host", "a"}, {"Content-Length", "5"}, {"Content-Length", "5"}}) ==
          framing_verdict::duplicate_content_length);
    CHECK(check({{"Host", "a"}, {"Content-Length", "5, 5"}}) == framing_verdict::bad_content_length);
    CHECK(check({{"Host", "a"}, {"Content-Length", "-1"}}) == framing_verdict::bad_content_length);
    CHECK(check({{"Host", "a"}, {"Content-Length", "+5"}}) == framing_verdict::bad_content_length);
    CHECK(check({{"Host", "a"}, {"Content-Length", "99999999999999999999"}}) ==
          framing_verdict::bad_content_length);
    CHECK(check({{"Host", "a"}, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}) ==
          framing_verdict::content_length_and_transfer_encoding);
    CHECK(check({{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}}) ==
          framing_verdict::bad_transfer_encoding);
    CHECK(check({{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}) ==
          framing_verdict::bad_transfer_encoding);
    CHECK(check({{"Host", "a"}, {"Transfer-Encoding", "chunked"}}, 10) ==
          framing_verdict::bad_transfer_encoding);
}

TEST_CASE("hop-by-hop fields and those named in Connection are removed", "[headers]") {
    http::fields f;
    f.insert("Host", "a");
    f.insert("Connection", "keep-alive, X-Secret");
    f.insert("X-Secret", "1");
    f.insert("Keep-Alive", "timeout=5");
    f.insert("Proxy-Connection", "keep-alive");
    f.insert("TE", "trailers");
    f.insert("Trailer", "X");
    f.insert("Transfer-Encoding", "chunked");
    f.insert("Upgrade", "websocket");
    f.insert("Proxy-Authorization", "Basic x");
    f.insert("X-Kept", "yes");
    CHECK_FALSE(headers::strip_hop_by_hop(f, true));  // Connection did not name upgrade
    for (auto name : {"Connection", "X-Secret", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                      "Transfer-Encoding", "Upgrade", "Proxy-Authorization"})
        CHECK(f.count(name) == 0);
    CHECK(f["X-Kept"] == "yes");
    CHECK(f["Host"] == "a");
}

TEST_CASE("an upgrade keeps Upgrade and Connection: upgrade only when asked to", "[headers]") {
    http::fields f;
    f.insert("Connection", "Upgrade");
    f.insert("Upgrade", "websocket");
    http::fields g = f;
    CHECK(headers::strip_hop_by_hop(f, true));
    CHECK(f["Upgrade"] == "websocket");
    CHECK(f["Connection"] == "upgrade");
    CHECK(headers::strip_hop_by_hop(g, false));
    CHECK(g.count("Upgrade") == 0);
    CHECK(g.count("Connection") == 0);
}

TEST_CASE("forwarding headers tell the upstream who asked", "[headers]") {
    http::fields f;
    f.insert("X-Forwarded-For", "1.2.3.4");
    f.insert("X-Forwarded-Proto", "https");  // a client's claim is overwritten
    f.insert("Via", "1.1 cdn");
    headers::add_forwarded(f, "127.0.0.1", false, "shop.example", "floodgate");
    CHECK(f["X-Forwarded-For"] == "1.2.3.4, 127.0.0.1");
    CHECK(f["X-Forwarded-Proto"] == "http");
    CHECK(f["X-Forwarded-Host"] == "shop.example");
    CHECK(f["Via"] == "1.1 cdn, 1.1 floodgate");

    http::fields g;
    headers::add_forwarded(g, "::1", true, "a", "gate");
    CHECK(g["X-Forwarded-For"] == "::1");
    CHECK(g["X-Forwarded-Proto"] == "https");
    CHECK(g["Via"] == "1.1 gate");
}

TEST_CASE("Content-Length accepts plain decimal digits only", "[headers]") {
    CHECK(headers::parse_content_length("0") == 0u);
    CHECK(headers::parse_content_length(" 42 ") == 42u);
    CHECK_FALSE(headers::parse_content_length(""));
    CHECK_FALSE(headers::parse_content_length("4 2"));
    CHECK_FALSE(headers::parse_content_length("0x10"));
    CHECK_FALSE(headers::parse_content_length("12345678901234567890"));
}
