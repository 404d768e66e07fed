// Rules for HTTP header blocks that the proxy applies before anything is
// forwarded: raw-byte checks that the parser is too lenient about, framing
// checks against request smuggling, hop-by-hop removal and the forwarding
// headers (X-Forwarded-*, Via).
//
// The one thing not to get wrong: a request that fails any check here is
// answered by the gateway and never reaches an upstream. Ambiguity about
// where a message ends is always an error, never a guess.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace floodgate::headers {

using fields = boost::beast::http::fields;

enum class raw_verdict {
    ok,
    bad_line_ending,  // LF without CR, or CR without LF
    obs_fold,         // a field line that starts with a space or tab (RFC 9112 5.2)
    bad_byte,         // NUL or another control character
    too_many_fields,  // more field lines than allowed
};

// Checks a complete header block, from the start line through the empty line
// that ends it. Beast's parser accepts obs-fold and some line endings that
// other servers read differently, so those are refused here first.
raw_verdict scan_raw_header(std::string_view block, std::size_t max_fields);

// Reads the head of a request without a body (most requests, and every poll)
// into out, in one pass that also makes scan_raw_header()'s checks (with
// max_fields), in a fraction of the time Beast's parser takes. It reads
// exactly what Beast's parser would read, but only from plain heads: a token
// method, a target of visible ASCII, HTTP/1.0 or HTTP/1.1, and fields with
// neither Content-Length nor Transfer-Encoding, none folded, none with a
// control byte but HTAB. For anything else it returns false, out is to be
// dropped, and scan_raw_header() and Beast's parser judge the head.
bool parse_plain_request_head(std::string_view block, std::size_t max_fields,
                              boost::beast::http::request_header<>& out);

// Finds the end of a header block in buf: the offset just past "\r\n\r\n",
// or 0 when the block is not complete yet.
std::size_t find_header_end(std::string_view buf);

enum class framing_verdict {
    ok,
    missing_host,                          // HTTP/1.1 without Host
    duplicate_host,
    duplicate_content_length,              // even with equal values
    bad_content_length,                    // not a plain decimal number
    bad_transfer_encoding,                 // anything but exactly "chunked"
    content_length_and_transfer_encoding,  // CL.TE / TE.CL smuggling shape
};

// The fields a request is answered by, found while its framing is checked:
// each the first of its name, as Beast's lookups by name would give.
struct request_fields {
    std::string_view host;
    std::string_view expect;
    std::optional<std::string_view> connection;

    // Whether the client keeps the connection open after the answer (HTTP/1.1
    // unless "Connection: close", HTTP/1.0 only with "Connection: keep-alive").
    bool keep_alive(unsigned version) const;
};

// Checks the fields that decide where a request's body ends; with found,
// also notes the fields above in the same pass.
framing_verdict check_request_framing(const fields& f, unsigned version, request_fields* found = nullptr);

const char* to_string(framing_verdict v);

// Removes the hop-by-hop fields (RFC 9110 7.6.1: Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and the
// Proxy-Authenticate/Proxy-Authorization pair) and every field the Connection
// header names. Returns true when the message asked for a protocol upgrade
// (Connection names "upgrade" and an Upgrade field is present); with
// keep_upgrade the Upgrade field and "Connection: upgrade" are then kept.
bool strip_hop_by_hop(fields& f, bool keep_upgrade);

// What the upstream needs to know about the original request: X-Forwarded-For
// (appended), X-Forwarded-Proto and X-Forwarded-Host (set) and Via (appended).
// They go last in the forwarded head, in that order, replacing any the client sent.
struct forwarded {
    std::string xff;
    bool tls = false;
    std::string_view host;  // a view of the request's Host value: keep the request
    std::string via;

    // Calls f(name, value) for each field, in order.
    template <class F>
    void each(F&& f) const {
        f("X-Forwarded-For", std::string_view(xff));
        f("X-Forwarded-Proto", std::string_view(tls ? "https" : "http"));
        if (!host.empty()) f("X-Forwarded-Host", host);
        f("Via", std::string_view(via));
    }
};

// The forwarding fields for a request with fields f, and f without the ones they replace.
// Writing them into the head while serializing (append_lines) saves adding them to f.
forwarded take_forwarded(fields& f, std::string_view client_ip, bool tls, std::string_view host,
                         std::string_view via);

// Appends "Name: value\r\n" for each of fwd's fields.
void append_lines(const forwarded& fwd, std::string& out);

// take_forwarded(), then the fields set at the end of f.
void add_forwarded(fields& f, std::string_view client_ip, bool tls, std::string_view host,
                   std::string_view via);
void add_forwarded(fields& f, const forwarded& fwd);

// Appends "1.1 <via>" (or "1.0 <via>") to the Via field.
void append_via(fields& f, unsigned version, std::string_view via);

// Parses a Content-Length value: decimal digits only, no sign, no list.
std::optional<std::uint64_t> parse_content_length(std::string_view v);

}  // namespace floodgate::headers
