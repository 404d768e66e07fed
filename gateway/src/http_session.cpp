#include "http_session.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cassert>
#include <charconv>
#include <cctype>
#include <cstring>
#include <limits>
#include <tuple>

#include "gateway/headers.hpp"
#include "gateway/path.hpp"
#include "room_gate.hpp"
#include "gateway/text.hpp"

namespace floodgate {

using namespace std::string_view_literals;

namespace {

// shared_room::claim_identity() as an awaitable: resumes on the session's executor with what
// the identity's holder stored, or nullopt (taken now, or the store could not say: then the new
// place stands).
net::awaitable<std::optional<std::string>> claim_identity(shared_room& room, const std::string& identity,
                                                          std::uint64_t seq) {
    auto [ec, holder] = co_await net::async_initiate<decltype(use_nothrow),
                                                     void(error_code, std::optional<std::string>)>(
        [&room, &identity, seq](auto handler) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            room.claim_identity(identity, seq, [h](error_code e, std::optional<std::string> v) {
                auto ex = net::get_associated_executor(*h);
                net::post(ex, [h, e, v = std::move(v)]() mutable { (*h)(e, std::move(v)); });
            });
        },
        use_nothrow);
    if (ec) co_return std::nullopt;
    co_return holder;
}


constexpr std::size_t relay_size = 16 * 1024;  // body bytes moved per read, each direction
constexpr std::size_t read_chunk = 4096;       // header bytes asked for per read
constexpr std::size_t response_header_limit = 64 * 1024;
// A body up to this size is copied after the head and both go in one send(),
// not a two-part sendmsg(), which costs the kernel more than the copy.
constexpr std::size_t coalesce_limit = 4096;

std::string_view view(const beast::flat_buffer& b) {
    auto d = b.data();
    return {static_cast<const char*>(d.data()), d.size()};
}

bool body_allowed(unsigned status) { return !(status / 100 == 1 || status == 204 || status == 304); }

// A LF with no CR before it: the header can never end with CRLF CRLF, so the
// request is refused now rather than when the header timeout fires.
bool has_bare_lf(std::string_view s) {
    for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1))
        if (i == 0 || s[i - 1] != '\r') return true;
    return false;
}

// The request line ends in a syntactically valid "HTTP/d.d" that is not
// 1.0 or 1.1 (Beast reports those as bad_version, like real garbage).
bool is_well_formed_other_version(std::string_view head) {
    const auto eol = head.find("\r\n");
    if (eol == std::string_view::npos || eol < 9) return false;
    const std::string_view v = head.substr(eol - 9, 9);
    return v[0] == ' ' && v.substr(1, 5) == "HTTP/" && std::isdigit(static_cast<unsigned char>(v[6])) &&
           v[7] == '.' && std::isdigit(static_cast<unsigned char>(v[8]));
}

bool is_client_gone(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe ||
           ec == net::error::operation_aborted || ec == ssl::error::stream_truncated;
}

// What a failed upstream read or write says about the upstream.
upstream_failure failure_kind(const error_code& ec) {
    if (ec == beast::error::timeout) return upstream_failure::timeout;
    if (is_client_gone(ec)) return upstream_failure::reset;
    return upstream_failure::protocol;
}

std::string error_body(http::status status, std::string_view detail) {
    const unsigned code = static_cast<unsigned>(status);
    if (code == 502 || code == 503 || code == 504) {
        // A small page a person can read; it names no upstream, address or error.
        std::string title = code == 504 ? "The site is taking too long to answer"
                            : code == 503 ? "The site is busy"
                                          : "The site is not answering right now";
        return text::cat(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<title>", code, " - ", title, "</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
            "padding:0 1rem;color:#222}h1{font-size:1.4rem}p{color:#555}</style></head><body>"
            "<h1>", title, "</h1><p>", detail, "</p><p>Please try again in a moment.</p>"
            "<p><small>Error ", code, " &middot; Floodgate</small></p></body></html>\n");
    }
    return text::cat(code, " ", http::obsolete_reason(status), ": ", detail, "\n");
}

}  // namespace

struct http_session::exchange {
    const generation* gen = nullptr;  // held by http_session::gen_ until the next request
    steady_clock::time_point start;  // when the request's first byte was in (with an access log)
    // The request head: plain, read by headers::parse_plain_request_head()
    // (a request without a body), or the head of Beast's parser, which then
    // reads the body too.
    http::request_header<> plain;
    std::optional<http::request_parser<http::buffer_body>> parser;
    http::request_header<>* head = nullptr;
    // Whether the whole request has been read (a plain one always has).
    bool read_all() const { return !parser || parser->is_done(); }
    const upstream_group* upstream = nullptr;
    std::string_view upstream_label;
    unsigned status = 0;
    std::uint64_t bytes = 0;
    unsigned client_version = 11;
    bool keep_alive = false;
    bool upgrade = false;
    bool has_body = false;
    bool expect_continue = false;
    const room_binding* room = nullptr;        // the waiting room this request passed
    std::optional<tokenstore::lease> lease;    // the admitted person's slot in it
    std::vector<std::string> set_cookies;      // added to the upstream's response
    headers::forwarded forwarded;              // the request's forwarding fields, written last
    // For floodgate_requests_total: the room's name ("" unprotected), what the
    // gate decided, and whether the answer came from the gateway itself.
    std::string_view metrics_room;
    request_outcome outcome = request_outcome::proxied;
    bool counted = true;  // false for the gateway's own /__fg/ endpoints
    bool from_gateway = false;
    std::optional<local_progress> local;  // an answer of the gateway's own, once under way
};

http_session::http_session(worker& w, listener_state& l, tcp::socket socket)
    : w_(w),
      l_(l),
      s_(l.tls ? stream(std::move(socket), *l.tls) : stream(std::move(socket))) {
    error_code ec;
    auto ep = s_.socket().remote_endpoint(ec);
    if (!ec) remote_ip_ = ep.address().to_string();
    s_.set_tcp_options();
    w_.enter(this);
    w_.counters().connection_opened(l_.index);
}

http_session::~http_session() {
    w_.leave(this);
    w_.counters().connection_closed(l_.index);
    l_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void http_session::close_if_idle() {
    if (idle_) s_.close();
}

net::awaitable<void> http_session::run() {
    const auto& cfg = *w_.gen()->cfg;
    if (s_.is_tls()) {
        s_.expires_after(cfg.timeouts.request_header);
        auto [ec] = co_await s_.async_handshake(ssl::stream_base::server, use_nothrow);
        if (ec) {
            spdlog::debug("TLS handshake with {} failed: {}", remote_ip_, ec.message());
            co_return;
        }
    }
    co_await serve();
}

// The connection's requests, one after another, in one coroutine frame for the
// connection's life: a frame per request would be allocated and freed each
// time (it is too large for Asio's frame cache).
net::awaitable<void> http_session::serve() {
    for (;;) {
        exchange x;
        // The settings in force, for this request to its end; copied only when
        // they changed since the last (two atomic operations per copy).
        if (gen_ != w_.gen()) gen_ = w_.gen();
        x.gen = gen_.get();
        const config& cfg = *x.gen->cfg;

        // Wait for the first byte of the next request (the keep-alive idle time).
        const bool pipelined = buffer_.size() > 0;
        pipeline_depth_ = pipelined ? pipeline_depth_ + 1 : 1;
        if (!pipelined) {
            if (w_.stopping()) co_return;
            idle_ = true;
            s_.expires_after(requests_ == 0 ? cfg.timeouts.request_header : cfg.timeouts.keepalive);
            auto [ec, n] = co_await s_.async_read_some(buffer_.prepare(read_chunk), use_nothrow);
            idle_ = false;
            if (ec) co_return;  // closed, idle too long, or shutting down: nothing to answer
            buffer_.commit(n);
        }
        if (w_.log().enabled()) x.start = steady_clock::now();  // for the log's duration only

        // The rest of the head, within one deadline from its first byte (slowloris).
        s_.expires_after(cfg.timeouts.request_header);
        std::size_t header_end = 0;
        for (;;) {
            header_end = headers::find_header_end(view(buffer_));
            if (header_end) break;
            if (buffer_.size() > cfg.limits.header_bytes)
                co_return co_await refuse(x, http::status::request_header_fields_too_large,
                                          "The request header is larger than this server accepts.");
            if (has_bare_lf(view(buffer_)))
                co_return co_await refuse(x, http::status::bad_request,
                                          "Header lines must end with CRLF.");
            auto [ec, n] = co_await s_.async_read_some(buffer_.prepare(read_chunk), use_nothrow);
            if (ec == beast::error::timeout)
                co_return co_await refuse(x, http::status::request_timeout,
                                          "The request header did not arrive in time.");
            if (ec) co_return;
            buffer_.commit(n);
        }
        if (header_end > cfg.limits.header_bytes)
            co_return co_await refuse(x, http::status::request_header_fields_too_large,
                                      "The request header is larger than this server accepts.");
        // A plain request without a body is read in one pass that makes the raw
        // checks too; anything else is checked, then read by Beast's parser.
        const std::string_view raw_head = view(buffer_).substr(0, header_end);
        if (headers::parse_plain_request_head(raw_head, cfg.limits.header_count, x.plain)) {
            x.head = &x.plain;
        } else {
            switch (headers::scan_raw_header(raw_head, cfg.limits.header_count)) {
                case headers::raw_verdict::ok:
                    break;
                case headers::raw_verdict::too_many_fields:
                    co_return co_await refuse(x, http::status::request_header_fields_too_large,
                                              "The request has too many header fields.");
                case headers::raw_verdict::obs_fold:
                    co_return co_await refuse(x, http::status::bad_request,
                                              "Folded header lines (obs-fold) are not accepted.");
                default:
                    co_return co_await refuse(x, http::status::bad_request,
                                              "The request header contains invalid bytes.");
            }
            auto& p = x.parser.emplace();
            p.eager(false);
            p.header_limit(std::numeric_limits<std::uint32_t>::max());
            p.body_limit(cfg.limits.body_bytes);
            error_code ec;
            const std::size_t used = p.put(net::buffer(buffer_.data().data(), header_end), ec);
            if (ec == http::error::body_limit)
                co_return co_await refuse(x, http::status::payload_too_large,
                                          "The request body is larger than this server accepts.");
            if (ec == http::error::bad_version && is_well_formed_other_version(view(buffer_)))
                co_return co_await refuse(x, http::status::http_version_not_supported,
                                          "Only HTTP/1.0 and HTTP/1.1 are supported.");
            if (ec || !p.is_header_done() || used != header_end)
                co_return co_await refuse(x, http::status::bad_request, "The request is malformed.");
            x.head = &p.get();
        }
        buffer_.consume(header_end);

        auto& req = *x.head;
        x.client_version = req.version();
        if (req.version() != 10 && req.version() != 11)
            co_return co_await refuse(x, http::status::http_version_not_supported,
                                      "Only HTTP/1.0 and HTTP/1.1 are supported.");
        headers::request_fields found;
        if (auto v = headers::check_request_framing(req, req.version(), &found);
            v != headers::framing_verdict::ok)
            co_return co_await refuse(x, http::status::bad_request, headers::to_string(v));
        // Rooms may match on the host: a request without one (HTTP/1.0, or an
        // empty Host) could otherwise slip past a host-restricted room.
        if (text::trim(found.host).empty())
            co_return co_await refuse(x, http::status::bad_request, "A Host header is required.");

        // Request target: origin-form, "*" for OPTIONS, or absolute-form (turned
        // into origin-form with the URI's authority as Host, RFC 9112 3.2.2).
        const std::string_view target = req.target();
        if (target.empty())
            co_return co_await refuse(x, http::status::bad_request, "Missing request target.");
        if (target.front() != '/') {
            if (target == "*" && req.method() == http::verb::options) {
            } else if (text::iequals(target.substr(0, 7), "http://") ||
                       text::iequals(target.substr(0, 8), "https://")) {
                auto u = boost::urls::parse_absolute_uri(target);
                if (!u || !u->has_authority() || u->encoded_host().empty())
                    co_return co_await refuse(x, http::status::bad_request,
                                              "Invalid absolute URI.");
                std::string origin(u->encoded_path().data(), u->encoded_path().size());
                if (origin.empty()) origin = "/";
                if (u->has_query())
                    origin.append("?"sv).append(u->encoded_query().data(),
                                                u->encoded_query().size());
                std::string host(u->encoded_host_and_port().data(),
                                 u->encoded_host_and_port().size());
                req.set(http::field::host, host);
                found.host = req[http::field::host];
                req.target(origin);
            } else {
                co_return co_await refuse(x, http::status::bad_request,
                                          "The request target must start with '/'.");
            }
        }

        // The Host value, after an absolute-form target set it; the field is not changed again.
        const std::string_view host = found.host;
        x.keep_alive = found.keep_alive(req.version());
        if (const std::string_view expect = found.expect; !expect.empty()) {
            if (req.version() >= 11) {
                if (!text::iequals(text::trim(expect), "100-continue"))
                    co_return co_await refuse(x, http::status::expectation_failed,
                                              "Only 'Expect: 100-continue' is supported.");
                x.expect_continue = true;
            }
            req.erase(http::field::expect);
        }
        x.has_body = x.parser && (x.parser->chunked() || x.parser->content_length().value_or(0) > 0);

        // The path is normalised once: rooms are matched on it and the upstream
        // receives the same, so the two never disagree about the route.
        if (req.target() != "*") {
            path::result& norm = norm_;
            path::normalize_target(req.target(), norm);
            if (norm.error != path::path_error::ok)
                co_return co_await refuse(x, http::status::bad_request,
                                          path::to_string(norm.error));
            if (!norm.unchanged) {
                const std::string normal = path::to_target(norm.value);
                if (normal != req.target()) req.target(normal);
            }
            const std::string_view target = req.target();  // not changed again
            const std::string_view npath = norm.value.path;
            const client_info client{remote_ip_, s_.is_tls(), &tokens_};
            if (npath.substr(0, 6) == "/__fg/") {
                ++requests_;
                x.counted = false;
                public_join_claim claim;
                auto res = serve_public(*x.gen, req, client, npath, &w_.counters(), &claim);
                if (claim.room) {  // as below: a new place in a shared line, for a person who may
                                   // hold one
                    std::optional<local_response> dup;
                    if (auto holder = co_await claim_identity(*claim.room->rt->shared(),
                                                              claim.identity, claim.seq))
                        dup = public_join_duplicate(*x.gen, claim, req, client, *holder,
                                                    &w_.counters());
                    if (dup)
                        res = std::move(*dup);
                    else
                        claim.room->rt->shared()->saw(claim.seq, tokenstore::wall_clock_ms());
                }
                if (respond_local_now(x, res)) continue;
                if (!co_await respond_local(x, std::move(res))) co_return;
                continue;
            }
            const int room = x.gen->routes.match(host, req.method_string(), norm.value);
            if (room >= 0) {
                const room_binding& rb = x.gen->rooms[static_cast<std::size_t>(room)];
                auto gate = gate_request(*x.gen, rb, req, client, target, &w_.counters());
                if (gate.joined_seq && rb.rt->shared()) {
                    // A new place in a line shared with other nodes: the person may hold one there.
                    const std::uint64_t joined = *gate.joined_seq;
                    std::optional<gate_result> dup;
                    if (auto holder =
                            co_await claim_identity(*rb.rt->shared(), gate.identity, joined))
                        dup = rejoin_duplicate(*x.gen, rb, req, client, target, joined, *holder,
                                               &w_.counters());
                    if (dup)
                        gate = std::move(*dup);
                    else
                        rb.rt->shared()->saw(joined, tokenstore::wall_clock_ms());
                }
                x.metrics_room = rb.cfg->name;
                x.outcome = gate.outcome;
                if (!gate.proceed) {
                    ++requests_;
                    if (respond_local_now(x, *gate.response)) continue;
                    if (!co_await respond_local(x, std::move(*gate.response))) co_return;
                    continue;
                }
                x.room = &rb;
                x.lease = gate.lease;
                x.set_cookies = std::move(gate.set_cookies);
            }
        }

        x.upgrade = headers::strip_hop_by_hop(req, /*keep_upgrade=*/true);
        // A request without a body is written in one piece, its forwarding fields
        // last (proxy()); Beast's serializer, which streams a body, needs them in the fields.
        x.forwarded = headers::take_forwarded(req, remote_ip_, s_.is_tls(), host, cfg.via);
        if (x.has_body || !x.read_all()) headers::add_forwarded(req, x.forwarded);
        if (x.parser && x.parser->chunked()) x.parser->get().chunked(true);
        req.version(11);

        ++requests_;
        if (requests_ >= cfg.limits.requests_per_connection || w_.stopping()) x.keep_alive = false;

        x.upstream = x.room ? x.room->upstream : x.gen->default_upstream;
        if (!x.upstream)
            co_return co_await refuse(x, http::status::bad_gateway,
                                      "No site is configured behind this address.");
        if (!co_await proxy(x)) co_return;
    }
}

namespace {

// Reads the next piece of a body into buf through a buffer_body parser and
// sets the body up for writing what was read.
template <bool isRequest>
net::awaitable<error_code> read_piece(stream& s, beast::flat_buffer& buffer,
                                      http::parser<isRequest, http::buffer_body>& p, char* buf,
                                      duration timeout) {
    auto& body = p.get().body();
    body.data = buf;
    body.size = relay_size;
    s.expires_after(timeout);
    auto [ec, n] = co_await http::async_read_some(s, buffer, p, use_nothrow);
    if (ec == http::error::need_buffer) ec = {};
    body.size = relay_size - body.size;
    // A read may consume only chunk framing and yield no body bytes. An empty
    // piece must be "no data yet" (nullptr): a zero-size piece with data would
    // be written as the last-chunk marker and end the body early.
    body.data = body.size ? buf : nullptr;
    body.more = !p.is_done();
    co_return ec;
}

void append_fields(const http::fields& f, std::string& out) {
    for (const auto& field : f) {
        out.append(field.name_string()).append(": "sv).append(field.value()).append("\r\n"sv);
    }
}

// The head of a message as HTTP/1.1 text: what Beast's serializer would
// write, without its machinery, for the common messages whose body (if any)
// is already in memory. A request's forwarding fields go last.
void serialize_head(const http::request_header<>& h, const headers::forwarded& fwd, std::string& out) {
    out.clear();
    out.append(h.method_string()).append(" "sv).append(h.target()).append(" HTTP/1.1\r\n"sv);
    append_fields(h, out);
    headers::append_lines(fwd, out);
    out.append("\r\n"sv);
}

void append_status_line(const http::response_header<>& h, std::string& out) {
    const unsigned code = h.result_int();  // below 1000: Beast keeps three digits
    const char line[] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', static_cast<char>('0' + code / 100 % 10),
                         static_cast<char>('0' + code / 10 % 10), static_cast<char>('0' + code % 10), ' '};
    out.append(line, sizeof line).append(h.reason()).append("\r\n"sv);
}

// The head of one of the gateway's own answers, with the Content-Length and
// the Connection field the client's connection needs.
void serialize_local_head(const local_response& res, std::size_t body_size, bool keep, unsigned client_version,
                          std::string& out) {
    const unsigned code = res.result_int();  // three digits: http::status has no others
    const char line[] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', static_cast<char>('0' + code / 100 % 10),
                         static_cast<char>('0' + code / 10 % 10), static_cast<char>('0' + code % 10), ' '};
    const std::string_view reason = http::obsolete_reason(res.status);
    const std::string_view connection = !keep                 ? "Connection: close\r\n"sv
                                        : client_version == 10 ? "Connection: keep-alive\r\n"sv
                                                               : ""sv;
    char digits[24];
    const std::string_view length(digits, std::to_chars(digits, digits + sizeof digits, body_size).ptr - digits);
    constexpr std::string_view type = "\r\nContent-Type: "sv, no_store = "\r\nCache-Control: no-store\r\n"sv,
                               content_length = "Content-Length: "sv;
    std::size_t size = sizeof line + reason.size() + type.size() + res.content_type.size() + no_store.size() +
                       content_length.size() + length.size() + 2 + connection.size() + 2;
    for (const auto& [name, value] : res.fields) size += name.size() + 2 + value.size() + 2;

    // Sized once and filled in: no capacity check per piece.
    out.resize(size);
    char* p = out.data();
    auto put = [&p](std::string_view piece) {
        std::memcpy(p, piece.data(), piece.size());
        p += piece.size();
    };
    put({line, sizeof line});
    put(reason);
    put(type);
    put(res.content_type);
    put(no_store);
    for (const auto& [name, value] : res.fields) {
        put(name);
        put(": "sv);
        put(value);
        put("\r\n"sv);
    }
    put(content_length);
    put(length);
    put("\r\n"sv);
    put(connection);
    put("\r\n"sv);
    assert(p == out.data() + out.size());
}

// What the gateway adds to an upstream's response: its Set-Cookie fields, its
// Via entry and the Connection field for the client's connection.
struct own_response_fields {
    const std::vector<std::string>& set_cookies;
    unsigned upstream_version;  // the Via entry's protocol version
    std::string_view via;
    bool keep_alive;
    unsigned client_version;

    // Into the fields, for Beast's serializer (a streamed body).
    template <class Message>
    void add_to(Message& h) const {
        for (const auto& c : set_cookies) h.insert(http::field::set_cookie, c);
        headers::append_via(h, upstream_version, via);
        h.keep_alive(keep_alive);
        if (keep_alive && client_version == 10) h.set(http::field::connection, "keep-alive");
    }

    // Written after h's fields, with the same result as add_to(), and the blank line.
    void append_head(const http::response_header<>& h, std::string& out) const {
        out.clear();
        append_status_line(h, out);
        std::size_t via_end = std::string::npos;  // the end of the last Via value the upstream sent
        for (const auto& field : h) {
            out.append(field.name_string()).append(": "sv).append(field.value());
            if (field.name() == http::field::via) via_end = out.size();
            out.append("\r\n"sv);
        }
        for (const auto& c : set_cookies) out.append("Set-Cookie: "sv).append(c).append("\r\n"sv);
        const std::string_view entry = upstream_version >= 11 ? "1.1 " : "1.0 ";
        if (via_end != std::string::npos) out.insert(via_end, text::cat(", ", entry, via));
        else out.append("Via: "sv).append(entry).append(via).append("\r\n"sv);
        if (!keep_alive) out.append("Connection: close\r\n"sv);
        else if (client_version == 10) out.append("Connection: keep-alive\r\n"sv);
        out.append("\r\n"sv);
    }
};

template <class Body, class Fields>
void set_no_more(http::message<true, Body, Fields>& m) {
    m.body().data = nullptr;
    m.body().size = 0;
    m.body().more = false;
}

template <class Body, class Fields>
void set_no_more(http::message<false, Body, Fields>& m) {
    m.body().data = nullptr;
    m.body().size = 0;
    m.body().more = false;
}

}  // namespace

net::awaitable<bool> http_session::proxy(exchange& x) {
    const config& cfg = *x.gen->cfg;
    const upstream_group& g = *x.upstream;
    auto& req = *x.head;
    if (!relay_) relay_ = std::make_unique<char[]>(relay_size);
    char* buf = relay_.get();

    auto client_body_error = [&](const error_code& ec) -> net::awaitable<bool> {
        if (ec == http::error::body_limit)
            co_return co_await respond_error(&x, http::status::payload_too_large,
                                             "The request body is larger than this server accepts.");
        if (ec == beast::error::timeout)
            co_return co_await respond_error(&x, http::status::request_timeout,
                                             "The request body did not arrive in time.");
        if (is_client_gone(ec)) co_return false;
        co_return co_await respond_error(&x, http::status::bad_request, "The request body is malformed.");
    };

    // Parse what the client already sent of the body before any upstream is
    // involved, so a malformed first chunk is refused with nothing forwarded.
    bool piece_ready = false;
    if (x.has_body && !x.expect_continue && buffer_.size() > 0) {
        auto ec = co_await read_piece(s_, buffer_, *x.parser, buf, cfg.timeouts.body);
        if (ec) co_return co_await client_body_error(ec);
        piece_ready = true;
    }

    bool continue_sent = false;
    thread_metrics& metrics = w_.counters();
    const auto upstream_start = steady_clock::now();
    for (int attempt = 0;; ++attempt) {
        // Usually an idle connection is at hand: no coroutine for that.
        std::size_t server = 0;
        std::unique_ptr<upstream_connection> conn = attempt == 0 ? w_.pool().take_pooled(g, server) : nullptr;
        if (!conn) {
            auto acq = co_await w_.pool().acquire(g, /*allow_pooled=*/attempt == 0,
                                                  attempt == 0 ? std::optional(server) : std::nullopt);
            if (!acq.conn) {
                metrics.upstream_failed(g.cfg.name,
                                        acq.timed_out ? upstream_failure::timeout : upstream_failure::connect);
                co_return co_await respond_error(&x, http::status::bad_gateway,
                                                 "The booking site could not be reached.");
            }
            conn = std::move(acq.conn);
        }
        x.upstream_label = g.servers[conn->server]->label;

        if (x.expect_continue && x.has_body && !continue_sent) {
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            s_.expires_after(cfg.timeouts.send);
            auto [ec, n] = co_await net::async_write(s_, net::buffer(cont), use_nothrow);
            if (ec) co_return false;
            continue_sent = true;
        }

        // Request head and body, streamed.
        error_code up_ec, cl_ec;
        if (x.read_all() && !x.has_body) {
            // No body: the head is the whole request, written in one piece.
            serialize_head(req, x.forwarded, head_);
            conn->s.expires_after(g.cfg.response_timeout);
            const std::size_t sent = conn->s.try_send(net::buffer(head_), up_ec);
            if (!up_ec && sent < head_.size())
                std::tie(up_ec, std::ignore) =
                    co_await net::async_write(conn->s, net::buffer(head_) + sent, use_nothrow);
        } else {
        auto& p = *x.parser;  // a body: Beast's parser read the head
        http::request_serializer<http::buffer_body> sr{p.get()};
        do {
            if (!piece_ready) {
                if (!p.is_done()) {
                    cl_ec = co_await read_piece(s_, buffer_, p, buf, cfg.timeouts.body);
                    if (cl_ec) break;
                } else {
                    set_no_more(p.get());
                }
            }
            piece_ready = false;
            conn->s.expires_after(g.cfg.response_timeout);
            auto [ec, n] = co_await http::async_write(conn->s, sr, use_nothrow);
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
                up_ec = ec;
                break;
            }
        } while (!p.is_done() || !sr.is_done());
        }
        if (cl_ec) co_return co_await client_body_error(cl_ec);  // conn is dropped: it saw half a request
        if (up_ec) {
            if (conn->reused && !x.has_body && attempt == 0) continue;  // a stale keep-alive connection
            g.servers[conn->server]->record_failure(steady_clock::now(), g.cfg);
            metrics.upstream_failed(g.cfg.name, up_ec == beast::error::timeout ? upstream_failure::timeout
                                                                                : upstream_failure::reset);
            co_return co_await respond_error(&x, up_ec == beast::error::timeout
                                                     ? http::status::gateway_timeout
                                                     : http::status::bad_gateway,
                                             "The booking site did not accept the request.");
        }

        // Response head; interim 1xx responses other than 101 are dropped.
        std::optional<http::response_parser<http::buffer_body>> rp;
        error_code ec;
        for (;;) {
            rp.emplace();
            rp->header_limit(response_header_limit);
            rp->body_limit(std::numeric_limits<std::uint64_t>::max());
            if (req.method() == http::verb::head) rp->skip(true);
            conn->s.expires_after(g.cfg.response_timeout);
            // http::async_read_header() written out, with its reads and errors: its two
            // layers of composed operations cost more than the parsing.
            while (!rp->is_header_done()) {
                if (conn->buffer.size() > 0) {
                    conn->buffer.consume(rp->put(conn->buffer.data(), ec));
                    if (ec == http::error::need_more) ec = {};
                    if (ec || rp->is_header_done()) break;
                }
                const std::size_t size = beast::read_size(conn->buffer, 65536);
                if (size == 0) {
                    ec = http::error::buffer_overflow;
                    break;
                }
                auto [rec, rn] = co_await conn->s.async_read_some(conn->buffer.prepare(size), use_nothrow);
                conn->buffer.commit(rn);
                if (rec == net::error::eof) {
                    // Whatever the parser makes of the end (partial_message), or a clean close.
                    if (rp->got_some()) rp->put_eof(ec);
                    else ec = http::error::end_of_stream;
                    break;
                }
                if (rec) {
                    ec = rec;
                    break;
                }
            }
            if (ec) break;
            const unsigned st = rp->get().result_int();
            if (st < 100 || st >= 200 || st == 101) break;
        }
        if (ec) {
            if (ec == beast::error::timeout) {
                g.servers[conn->server]->record_failure(steady_clock::now(), g.cfg);
                metrics.upstream_failed(g.cfg.name, upstream_failure::timeout);
                co_return co_await respond_error(&x, http::status::gateway_timeout,
                                                 "The booking site did not answer in time.");
            }
            if (conn->reused && !x.has_body && attempt == 0 && is_client_gone(ec)) continue;
            metrics.upstream_failed(g.cfg.name, failure_kind(ec));
            co_return co_await respond_error(&x, http::status::bad_gateway,
                                             "The booking site sent an invalid response.");
        }

        auto& res = rp->get();
        x.status = res.result_int();
        metrics.upstream_response(g.cfg.name,
                                  std::chrono::duration<double>(steady_clock::now() - upstream_start).count(),
                                  x.status);
        if (x.status == 101) {
            if (!x.upgrade)
                co_return co_await respond_error(&x, http::status::bad_gateway,
                                                 "The booking site sent an invalid response.");
            headers::strip_hop_by_hop(res, /*keep_upgrade=*/true);
            headers::append_via(res, res.version(), cfg.via);
            http::response_serializer<http::buffer_body> hsr{res};
            s_.expires_after(cfg.timeouts.send);
            auto [wec, wn] = co_await http::async_write_header(s_, hsr, use_nothrow);
            if (wec) co_return false;
            log(x);
            co_await tunnel(*conn);
            co_return false;
        }

        // The site says the person is done: free the slot now (NetFUNNEL's key return).
        if (auto rel = res.find("Floodgate-Release"); rel != res.end()) {
            const bool done = text::trim(rel->value()) == "1";
            res.erase("Floodgate-Release");
            if (done && x.room && x.lease)
                x.set_cookies.push_back(release_by_upstream(*x.room, *x.lease, s_.is_tls()));
        }

        const bool no_body = req.method() == http::verb::head || !body_allowed(x.status);
        const bool has_length = rp->content_length().has_value();
        const bool was_chunked = rp->chunked();
        bool upstream_reusable = res.keep_alive() && (no_body || was_chunked || has_length);
        headers::strip_hop_by_hop(res, /*keep_upgrade=*/false);
        const unsigned upstream_version = res.version();
        res.version(11);
        if (!no_body && (was_chunked || !has_length)) {
            if (x.client_version >= 11) res.chunked(true);
            else x.keep_alive = false;  // an HTTP/1.0 client reads until the close
        }
        if (pipeline_depth_ >= cfg.limits.pipelined_requests && buffer_.size() > 0) x.keep_alive = false;
        if (w_.stopping()) x.keep_alive = false;
        const own_response_fields own{x.set_cookies, upstream_version, cfg.via, x.keep_alive, x.client_version};

        // The common case: the whole body (or none) arrived with the head.
        const std::uint64_t length = has_length ? *rp->content_length() : 0;
        if (!was_chunked && (no_body || (has_length && length <= conn->buffer.size()))) {
            const std::size_t body_len = no_body ? 0 : static_cast<std::size_t>(length);
            own.append_head(res, head_);
            const auto* body = static_cast<const char*>(conn->buffer.data().data());
            s_.expires_after(cfg.timeouts.send);
            error_code wec;
            if (body_len <= coalesce_limit) {
                head_.append(body, body_len);
                const std::size_t sent = s_.try_send(net::buffer(head_), wec);
                if (!wec && sent < head_.size())
                    std::tie(wec, std::ignore) = co_await net::async_write(s_, net::buffer(head_) + sent, use_nothrow);
            } else {
                const std::array<net::const_buffer, 2> out{net::buffer(head_), net::buffer(body, body_len)};
                std::tie(wec, std::ignore) = co_await net::async_write(s_, out, use_nothrow);
            }
            conn->buffer.consume(body_len);
            x.bytes = body_len;
            log(x);
            if (wec) co_return false;
            if (upstream_reusable && conn->buffer.size() == 0) w_.pool().release(std::move(conn));
            if (!x.keep_alive) co_await linger_close();
            co_return x.keep_alive;
        }

        own.add_to(res);
        http::response_serializer<http::buffer_body> rsr{res};
        bool head_sent = false;
        error_code rup_ec, rcl_ec;
        do {
            if (!rp->is_done()) {
                rup_ec = co_await read_piece(conn->s, conn->buffer, *rp, buf, g.cfg.response_timeout);
                if (rup_ec) break;
            } else {
                set_no_more(res);
            }
            if (res.body().data) x.bytes += res.body().size;
            s_.expires_after(cfg.timeouts.send);
            auto [wec, wn] = co_await http::async_write(s_, rsr, use_nothrow);
            if (wec == http::error::need_buffer) wec = {};
            head_sent = true;
            if (wec) {
                rcl_ec = wec;
                break;
            }
        } while (!rp->is_done() || !rsr.is_done());

        if (rup_ec) {
            metrics.upstream_failed(g.cfg.name, failure_kind(rup_ec), /*after_response=*/true);
            x.outcome = request_outcome::error;  // the client gets a cut-short answer
            if (!head_sent)
                co_return co_await respond_error(&x, rup_ec == beast::error::timeout
                                                         ? http::status::gateway_timeout
                                                         : http::status::bad_gateway,
                                                 "The booking site sent an invalid response.");
            log(x);
            s_.close();  // the response is cut short; closing tells the client so
            co_return false;
        }
        if (rcl_ec) {
            log(x);
            co_return false;
        }
        if (upstream_reusable && rp->is_done()) w_.pool().release(std::move(conn));
        log(x);
        if (!x.keep_alive) co_await linger_close();
        co_return x.keep_alive;
    }
}

// After a 101 the connection is no longer HTTP: bytes are copied both ways
// until both sides have closed, or nothing moved for timeouts.tunnel_idle.
net::awaitable<void> http_session::tunnel(upstream_connection& up) {
    using namespace net::experimental::awaitable_operators;
    const config& cfg = *w_.gen()->cfg;
    const duration idle_limit = cfg.timeouts.tunnel_idle;
    const duration send_limit = cfg.timeouts.send;

    // Bytes that arrived together with the request or the 101 go first.
    if (buffer_.size() > 0) {
        up.s.expires_after(send_limit);
        auto [ec, n] = co_await net::async_write(up.s, buffer_.data(), use_nothrow);
        if (ec) co_return;
        buffer_.consume(buffer_.size());
    }
    if (up.buffer.size() > 0) {
        s_.expires_after(send_limit);
        auto [ec, n] = co_await net::async_write(s_, up.buffer.data(), use_nothrow);
        if (ec) co_return;
        up.buffer.consume(up.buffer.size());
    }
    s_.expires_never();
    up.s.expires_never();

    auto last_activity = steady_clock::now();
    int finished = 0;
    net::steady_timer watchdog(s_.get_executor());
    auto pump = [&](stream& from, stream& to, char* b) -> net::awaitable<void> {
        for (;;) {
            auto [ec, n] = co_await from.async_read_some(net::buffer(b, relay_size), use_nothrow);
            if (ec) {
                // End of stream: pass the half-close on and let the other direction finish.
                if (ec == net::error::eof) to.shutdown_send();
                else {
                    from.close();
                    to.close();
                }
                break;
            }
            last_activity = steady_clock::now();
            auto [wec, wn] = co_await net::async_write(to, net::buffer(b, n), use_nothrow);
            if (wec) {
                from.close();
                to.close();
                break;
            }
        }
        if (++finished == 2) watchdog.cancel();
    };
    auto watch = [&]() -> net::awaitable<void> {
        const duration tick = std::min<duration>(idle_limit, std::chrono::seconds(1));
        while (finished < 2) {
            watchdog.expires_after(tick);
            co_await watchdog.async_wait(use_nothrow);
            if (finished < 2 && steady_clock::now() - last_activity >= idle_limit) {
                s_.close();
                up.s.close();
            }
        }
    };
    if (!relay_) relay_ = std::make_unique<char[]>(relay_size);
    auto down = std::make_unique<char[]>(relay_size);
    co_await (pump(s_, up.s, relay_.get()) && pump(up.s, s_, down.get()) && watch());
}

// Answers from the gateway itself, the part that never waits (the request's
// body is read by then): whether the connection stays open, the head (and a
// short body) written to head_, and as much of it sent as the socket takes now.
http_session::local_progress http_session::start_local(exchange& x, const local_response& res) {
    const config& cfg = *x.gen->cfg;
    local_progress st;
    st.keep = x.keep_alive && !w_.stopping() && requests_ < cfg.limits.requests_per_connection &&
              !(pipeline_depth_ >= cfg.limits.pipelined_requests && buffer_.size() > 0);
    // For HEAD, the head only; Content-Length stays that of the body a GET would get.
    const bool head_only = x.head->method() == http::verb::head;
    serialize_local_head(res, res.body.size(), st.keep, x.client_version, head_);
    x.status = res.result_int();
    x.bytes = head_only ? 0 : res.body.size();
    s_.expires_after(cfg.timeouts.send);
    if (x.bytes <= coalesce_limit) {
        head_.append(res.body, 0, x.bytes);
        st.coalesced = true;
        st.sent = s_.try_send(net::buffer(head_), st.ec);
    }
    return st;
}

// A request without a body, answered whole at once on a connection that stays
// open: the common case, with no coroutine. False: respond_local() finishes
// the answer (it goes on from x.local when this started it).
bool http_session::respond_local_now(exchange& x, const local_response& res) {
    if (!x.read_all()) return false;
    const local_progress& st = x.local.emplace(start_local(x, res));
    if (!st.keep || !st.coalesced || st.ec || st.sent < head_.size()) return false;
    log(x);
    return true;
}

// Answers a request from the gateway itself (waiting page, /__fg/ endpoints)
// on a connection that stays open: the request body is read and dropped first.
net::awaitable<bool> http_session::respond_local(exchange& x, local_response res) {
    const config& cfg = *x.gen->cfg;
    if (!x.local) {
        if (!x.read_all()) {
            auto& p = *x.parser;
            if (!relay_) relay_ = std::make_unique<char[]>(relay_size);
            while (!p.is_done()) {
                auto ec = co_await read_piece(s_, buffer_, p, relay_.get(), cfg.timeouts.body);
                if (ec == http::error::body_limit)
                    co_return co_await respond_error(&x, http::status::payload_too_large,
                                                     "The request body is larger than this server accepts.");
                if (ec) co_return false;
            }
        }
        x.local = start_local(x, res);
    }
    local_progress& st = *x.local;
    if (!st.ec) {
        if (!st.coalesced) {
            const std::array<net::const_buffer, 2> out{net::buffer(head_), net::buffer(res.body)};
            std::tie(st.ec, std::ignore) = co_await net::async_write(s_, out, use_nothrow);
        } else if (st.sent < head_.size()) {
            std::tie(st.ec, std::ignore) = co_await net::async_write(s_, net::buffer(head_) + st.sent, use_nothrow);
        }
    }
    log(x);
    if (st.ec) co_return false;
    if (!st.keep) co_await linger_close();
    co_return st.keep;
}

net::awaitable<bool> http_session::respond_error(exchange* x, http::status status,
                                                 std::string_view detail) {
    const config& cfg = *w_.gen()->cfg;
    http::response<http::string_body> res{status, 11};
    const unsigned code = static_cast<unsigned>(status);
    const bool html = code == 502 || code == 503 || code == 504;
    res.set(http::field::content_type, html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = error_body(status, detail);
    res.keep_alive(false);
    res.prepare_payload();
    s_.expires_after(cfg.timeouts.send);
    auto [ec, n] = co_await http::async_write(s_, res, use_nothrow);
    if (x) {
        x->from_gateway = true;
        x->status = code;
        x->bytes = ec ? 0 : res.body().size();
        log(*x);
    }
    if (!ec) co_await linger_close();
    co_return false;
}

// respond_error() for serve(), which ends with the connection.
net::awaitable<void> http_session::refuse(exchange& x, http::status status, std::string_view detail) {
    co_await respond_error(&x, status, detail);
}

// Closes after a final response without losing it: half-close, then read
// and discard what the client still sends (an unread body, pipelined
// requests) until it closes too or a short time passes. Closing with unread
// input would reset the connection and could destroy the response in flight.
net::awaitable<void> http_session::linger_close() {
    // Like nginx's lingering close: keep draining while the client keeps
    // sending (a slow client may still be writing the request we refused),
    // up to 2 s of silence, 30 s in all and 1 MiB.
    s_.shutdown_send();
    const auto deadline = steady_clock::now() + std::chrono::seconds(30);
    std::size_t discarded = 0;
    char sink[4096];
    while (discarded < 1024 * 1024 && steady_clock::now() < deadline) {
        s_.expires_after(std::chrono::seconds(2));
        auto [ec, n] = co_await s_.async_read_some_tcp(net::buffer(sink), use_nothrow);
        if (ec) break;
        discarded += n;
    }
    s_.close();
}

void http_session::log(const exchange& x) {
    // Called once per answered request: the place to count its outcome.
    if (x.counted)
        w_.counters().request(x.metrics_room, !x.from_gateway                    ? x.outcome
                                              : x.status == 502 || x.status == 504 ? request_outcome::error
                                                                                   : request_outcome::rejected);
    auto& log = w_.log();
    if (!log.enabled()) return;
    access_record r;
    r.remote = remote_ip_;
    if (x.head) {
        const auto& req = *x.head;
        r.method = req.method_string();
        r.target = req.target();
        r.host = req[http::field::host];
    }
    r.status = x.status;
    r.bytes = x.bytes;
    if (x.start != steady_clock::time_point{})  // else the log was turned on during the request
        r.duration_ms = std::chrono::duration<double, std::milli>(steady_clock::now() - x.start).count();
    r.upstream = x.upstream_label;
    r.listener = l_.index;
    log.write(r);
}

}  // namespace floodgate
