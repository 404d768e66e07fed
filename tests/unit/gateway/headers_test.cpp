// Tests gateway/src/headers.cpp: the checks that keep ambiguous or smuggled
// requests away from the upstream, and the header rewriting on the way through.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>

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

namespace {

struct beast_reading {
    bool ok = false;  // read whole, as a request without a body
    http::request<http::buffer_body> msg;
};

// The head as Beast's parser reads it, with the gateway's settings.
beast_reading read_with_beast(std::string_view head) {
    http::request_parser<http::buffer_body> p;
    p.eager(false);
    p.header_limit(std::numeric_limits<std::uint32_t>::max());
    boost::system::error_code ec;
    const std::size_t used = p.put(boost::asio::buffer(head.data(), head.size()), ec);
    beast_reading r;
    r.ok = !ec && p.is_header_done() && used == head.size() && p.is_done();
    r.msg = p.release();
    return r;
}

// Whether the plain parse read head exactly as Beast's parser does.
void check_same_as_beast(std::string_view head, const http::request_header<>& plain) {
    INFO("head: " << head);
    const beast_reading beast = read_with_beast(head);
    REQUIRE(beast.ok);
    CHECK(plain.method() == beast.msg.method());
    CHECK(plain.method_string() == beast.msg.method_string());
    CHECK(plain.target() == beast.msg.target());
    CHECK(plain.version() == beast.msg.version());
    auto a = plain.begin();
    auto b = beast.msg.begin();
    for (; a != plain.end() && b != beast.msg.end(); ++a, ++b) {
        CHECK(a->name() == b->name());
        CHECK(a->name_string() == b->name_string());
        CHECK(a->value() == b->value());
    }
    CHECK(a == plain.end());
    CHECK(b == beast.msg.end());
}

// The plain parse of a complete head, as serve() runs it. A head it accepts
// must pass the raw checks it makes in place of scan_raw_header().
std::optional<http::request_header<>> plain_parse(std::string_view head, std::size_t max_fields = 100) {
    if (headers::find_header_end(head) != head.size()) return std::nullopt;
    http::request_header<> out;
    if (!headers::parse_plain_request_head(head, max_fields, out)) return std::nullopt;
    CHECK(headers::scan_raw_header(head, max_fields) == raw_verdict::ok);
    return out;
}

}  // namespace

TEST_CASE("a plain request head is read as Beast's parser reads it", "[headers]") {
    const std::string heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /__fg/v1/rooms/bench/status HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        "Floodgate-Ticket: AAEC.abc-_def\r\n\r\n",
        "HEAD /a?b=c&d=%20 HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://example.com:81/x?y HTTP/1.1\r\nHost: b\r\n\r\n",
        "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",            // a method Beast has no verb for
        "M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Spaces: \t \r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a \t\r\nX-Inner: a  b\tc \r\nx-lower: 1\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nconnection: ,close,\r\nProxy-Connection: keep-alive\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: tchars\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nX-Text: caf\xc3\xa9 \x80\xff\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        "GET /" + std::string(300, 'p') + " HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(500, 'v') +
            "\r\n\r\n",
    };
    for (const std::string& head : heads) {
        INFO("head: " << head);
        const auto plain = plain_parse(head);
        REQUIRE(plain);
        check_same_as_beast(head, *plain);
    }
}

TEST_CASE("a head the plain parse does not know is left to Beast's parser", "[headers]") {
    const std::string heads[] = {
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",  // a body, even an empty one
        "POST /x HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /x HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET /x HTTP/1.2\r\nHost: a\r\n\r\n",
        "GET /x HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET /x  HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",  // obs-text in the target
        "GET /x\ty HTTP/1.1\r\nHost: a\r\n\r\n",
        "G(T /x HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /x HTTP/1.1\r\n: a\r\n\r\n",
        "GET /x HTTP/1.1\r\nX(y): a\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo-colon\r\n\r\n",
        "GET /x HTTP/1.1\r\nConnection: a b\r\n\r\n",  // not a token list: Beast refuses it
        "GET /x HTTP/1.1\r\n\r\nHost: a\r\n\r\n",      // a blank line before the end
    };
    for (const std::string& head : heads) {
        INFO("head: " << head);
        http::request_header<> out;
        CHECK_FALSE(headers::parse_plain_request_head(head, 100, out));
    }
}

TEST_CASE("the plain parse refuses what the raw checks refuse", "[headers]") {
    const std::string heads[] = {
        "GET /x HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",       // obs-fold
        "GET /x HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n",        // bare LF
        "GET /x HTTP/1.1\r\nHost: a\r\nX: a\rY: b\r\n\r\n",        // bare CR
        "GET /x HTTP/1.1\nHost: a\r\n\r\n",                        // bare LF after the start line
        "GET /x HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n",         // a control byte
        "GET /x HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",          // DEL
        std::string("GET /x HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n", 34),  // NUL
    };
    for (const std::string& head : heads) {
        INFO("head: " << head);
        http::request_header<> out;
        CHECK_FALSE(headers::parse_plain_request_head(head, 100, out));
        CHECK(headers::scan_raw_header(head, 100) != raw_verdict::ok);
    }
    // The field count, as scan_raw_header() counts it.
    const std::string three = "GET /x HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n";
    http::request_header<> out;
    CHECK(headers::parse_plain_request_head(three, 3, out));
    http::request_header<> out2;
    CHECK_FALSE(headers::parse_plain_request_head(three, 2, out2));
    CHECK(headers::scan_raw_header(three, 2) == raw_verdict::too_many_fields);
}

TEST_CASE("changed heads are read either as Beast reads them or not at all", "[headers]") {
    // Random changes to plain heads: every head the plain parse accepts, Beast
    // reads whole, as a request without a body, with the same result.
    const std::string bases[] = {
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n"
        "Floodgate-Ticket: AAEC.abc\r\nCookie: a=1; b=2\r\n\r\n",
        "DELETE /x HTTP/1.0\r\nX: y\r\nContent-Type: a/b\r\n\r\n",
        "PURGE * HTTP/1.1\r\nx:\r\nProxy-Connection: close\r\nY: \xc3\xa9 \t\r\n\r\n",
    };
    const char alphabet[] = {' ', '\t', ':', ',', '"', '(', '/', 'a', 'Z', '0', '%', '*', '\r', '\n',
                             '\x7f', '\x80', '\xff', 'H', '1', '.', 'C', 'T', '\0', '\x01', '\x1f'};
    std::mt19937 rng(20261123);
    std::size_t accepted = 0, refused = 0;
    for (int i = 0; i < 30000; ++i) {
        std::string head = bases[static_cast<std::size_t>(i) % std::size(bases)];
        const int changes = 1 + static_cast<int>(rng() % 4);
        for (int c = 0; c < changes; ++c) {
            const std::size_t at = rng() % (head.size() - 4);  // the final blank line stays
            const char ch = alphabet[rng() % std::size(alphabet)];
            switch (rng() % 3) {
                case 0: head[at] = ch; break;
                case 1: head.insert(head.begin() + static_cast<std::ptrdiff_t>(at), ch); break;
                default: head.erase(at, 1); break;
            }
        }
        if (const auto plain = plain_parse(head)) {
            ++accepted;
            check_same_as_beast(head, *plain);
        } else {
            ++refused;
        }
    }
    // Both outcomes are common, so both were tested.
    CHECK(accepted > 2000);
    CHECK(refused > 2000);
}
