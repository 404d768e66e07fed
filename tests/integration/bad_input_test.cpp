// Bad input: malformed requests and request-smuggling shapes (CL.TE, TE.CL,
// TE.TE obfuscations, bad chunk framing, obs-fold, bare LF ...) are answered
// with an error status and a close, and nothing of them reaches the upstream.
//
// Each case is sent raw, in one write, to a fresh gateway and upstream.
// "Header-level" cases must be refused before the gateway even connects to
// the upstream; for body-level cases (bad chunk framing after a valid
// header) the gateway may already have opened the upstream connection, but
// the upstream must never see a complete request.
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace floodgate::itest;

namespace {

struct bad_case {
    std::string name;
    std::string request;
    std::vector<unsigned> statuses;  // any of these is right
    bool header_level = true;
};

std::string escaped(std::string_view s) {
    std::ostringstream out;
    for (unsigned char c : s) {
        if (c == '\r')
            out << "\\r";
        else if (c == '\n')
            out << "\\n\n";
        else if (c == '\t')
            out << "\\t";
        else if (c < 0x20 || c >= 0x7f)
            out << "\\x" << std::hex << static_cast<int>(c) << std::dec;
        else
            out << c;
    }
    return out.str();
}

std::vector<bad_case> cases() {
    const std::string post = "POST /echo HTTP/1.1\r\nHost: a\r\n";
    const std::string get = "GET /echo HTTP/1.1\r\nHost: a\r\n";
    const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
    const std::vector<unsigned> bad{400};
    std::vector<bad_case> c;
    auto add = [&](std::string name, std::string request, std::vector<unsigned> statuses = {400},
                   bool header_level = true) {
        c.push_back({std::move(name), std::move(request), std::move(statuses), header_level});
    };

    // Content-Length and Transfer-Encoding together (CL.TE and TE.CL).
    add("CL.TE: Content-Length then Transfer-Encoding chunked",
        post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG");
    add("TE.CL: Transfer-Encoding chunked then Content-Length",
        post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n");

    // Content-Length values.
    add("two equal Content-Length fields",
        post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
    add("two different Content-Length fields",
        post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
    add("Content-Length -1", post + "Content-Length: -1\r\n\r\n");
    add("Content-Length as a list 1,1", post + "Content-Length: 1,1\r\n\r\nx");
    add("Content-Length abc", post + "Content-Length: abc\r\n\r\n");
    add("Content-Length with an inner space", post + "Content-Length:  12 34\r\n\r\n");
    // Overflowing 64 bits is malformed (400); 413 is also true of it.
    add("Content-Length beyond 64 bits", post + "Content-Length: 99999999999999999999\r\n\r\n",
        {400, 413});
    add("Content-Length with a plus sign", post + "Content-Length: +5\r\n\r\nhello");
    add("Content-Length in hex", post + "Content-Length: 0x5\r\n\r\nhello");
    add("space before the colon of Content-Length", post + "Content-Length : 5\r\n\r\nhello");

    // Transfer-Encoding obfuscations (TE.TE): anything but exactly chunked.
    add("Transfer-Encoding gzip, chunked",
        post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding chunked, gzip",
        post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n");
    add("space before the colon of Transfer-Encoding",
        post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding chunked in two fields",
        post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding chunked and a second Transfer-Encoding x",
        post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding folded onto a continuation line",
        post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n");
    add("Transfer-Encoding with a vertical tab before chunked", post +
                                                                    "Transfer-Encoding:\x0b"
                                                                    "chunked\r\n\r\n0\r\n\r\n");

    // Line folding and line ends.
    add("obs-fold continuing an ordinary header", get + "X-Foo: a\r\n b\r\n\r\n");
    add("obs-fold with a tab continuing Content-Length",
        post + "Content-Length: 5\r\n\t5\r\n\r\nhello");
    add("bare LF line endings", "GET /echo HTTP/1.1\nHost: a\n\n");
    add("a bare LF after one header line", "GET /echo HTTP/1.1\r\nHost: a\nX-B: b\r\n\r\n");
    add("CR without LF inside a header value", get + "X-A: a\rb\r\n\r\n");
    add("NUL in a header value", get + std::string("X-A: a\0b\r\n\r\n", 12));

    // Header names.
    add("a header name with invalid characters", get + "X(a): 1\r\n\r\n");
    add("a header name containing a space", get + "X Y: 1\r\n\r\n");
    add("an empty header name", get + ": x\r\n\r\n");
    add("a header line without a colon", get + "X-Foo\r\n\r\n");

    // Host.
    add("no Host on HTTP/1.1", "GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n");
    add("two Host fields", get + "Host: b\r\n\r\n");

    // The request line.
    add("two spaces in the request line", "GET  /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    add("a trailing space in the request line", "GET /echo HTTP/1.1 \r\nHost: a\r\n\r\n");
    add("an invalid character in the method", "G@T /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    add("HTTP/2.0 in the request line (505)", "GET /echo HTTP/2.0\r\nHost: a\r\n\r\n", {505});
    add("HTTP/9.9 in the request line (505)", "GET /echo HTTP/9.9\r\nHost: a\r\n\r\n", {505});
    add("a malformed version HTTP/1", "GET /echo HTTP/1\r\nHost: a\r\n\r\n");
    add("a request line without a version", "GET /echo\r\nHost: a\r\n\r\n");
    add("a target that is not origin-form", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n");
    add("an asterisk target on GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    add("a header line longer than limits.header_bytes (431)",
        get + "X-Long: " + std::string(20000, 'a') + "\r\n\r\n", {431});

    // Chunk framing (the header itself is valid).
    add("chunk size zz", chunked + "zz\r\nhello\r\n0\r\n\r\n", bad, false);
    // Overflowing 64 bits is malformed (400); 413 is also true of it.
    add("chunk size beyond 64 bits", chunked + "1ffffffffffffffff0\r\nhello\r\n0\r\n\r\n",
        {400, 413}, false);
    add("chunk data without its CRLF", chunked + "5\r\nhelloX0\r\n\r\n", bad, false);
    add("a negative chunk size", chunked + "-5\r\nhello\r\n0\r\n\r\n", bad, false);
    add("chunk size in 0x form", chunked + "0x5\r\nhello\r\n0\r\n\r\n", bad, false);
    add("chunk data longer than its size", chunked + "3\r\nhello\r\n0\r\n\r\n", bad, false);
    add("an empty chunk size line", chunked + "\r\nhello\r\n0\r\n\r\n", bad, false);
    add("a trailer line without a colon", chunked + "5\r\nhello\r\n0\r\nX-Bad\r\n\r\n", bad, false);
    return c;
}

}  // namespace

TEST_CASE("malformed and smuggling-shaped requests are refused before reaching the upstream",
          "[bad_input]") {
    const auto all = cases();
    REQUIRE(all.size() >= 30);
    for (const auto& bc : all) {
        DYNAMIC_SECTION(bc.name) {
            test_upstream up;
            gateway_process gw(make_config({.servers = up.address()}));
            raw_connection c(gw.port());
            REQUIRE(c.connected());
            c.send(bc.request);
            const bool closed = c.wait_closed(5s);
            INFO("request:\n"
                 << escaped(bc.request.substr(0, 300)) << "\nreceived:\n"
                 << escaped(tail(c.received(), 600)));
            const unsigned status = status_of(c.received());
            CHECK(std::find(bc.statuses.begin(), bc.statuses.end(), status) != bc.statuses.end());
            CHECK(closed);
            const auto responses = parse_responses(c.received(), nullptr, true);
            CHECK(responses.size() == 1);
            if (!responses.empty()) CHECK(responses[0].closes());
            std::this_thread::sleep_for(50ms);
            CHECK(up.request_count() == 0);
            if (bc.header_level) CHECK(up.connections_accepted() == 0);
        }
    }
}
