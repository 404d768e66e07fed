#include "test_upstream.hpp"

#include <atomic>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <mutex>
#include <thread>
#include <type_traits>

#include "gateway/net.hpp"
#include "gateway/text.hpp"

namespace floodgate::itest {

namespace websocket = beast::websocket;

namespace {

constexpr std::size_t body_head_max = 64 * 1024;
constexpr std::size_t piece_size = 64 * 1024;

struct shared_state {
    mutable std::mutex mu;
    std::vector<recorded_request> requests;  // guarded by mu
    std::atomic<std::size_t> connections{0};
    std::atomic<std::size_t> headers{0};
    std::atomic<std::size_t> parse_errors{0};

    void record(const recorded_request& r) {
        std::lock_guard lock(mu);
        requests.push_back(r);
    }
};

// The value of `key` in the target's query string, or `fallback`.
std::uint64_t query_u64(std::string_view target, std::string_view key, std::uint64_t fallback) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return fallback;
    std::string_view qs = target.substr(q + 1);
    while (!qs.empty()) {
        const auto amp = qs.find('&');
        const std::string_view part = qs.substr(0, amp);
        const auto eq = part.find('=');
        if (eq != std::string_view::npos && part.substr(0, eq) == key) {
            std::uint64_t v = 0;
            const auto value = part.substr(eq + 1);
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (ec == std::errc() && p == value.data() + value.size()) return v;
            return fallback;
        }
        if (amp == std::string_view::npos) break;
        qs.remove_prefix(amp + 1);
    }
    return fallback;
}

std::string hex(std::uint64_t v) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
    (void)ec;
    return std::string(buf, p);
}

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
void close_stream(Stream& s) {
    error_code ec;
    auto& sock = beast::get_lowest_layer(s).socket();
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
}

// Echoes websocket messages until the peer closes.
template <class Stream>
class ws_session : public std::enable_shared_from_this<ws_session<Stream>> {
public:
    explicit ws_session(Stream&& stream) : ws_(std::move(stream)) {}

    template <class Request>
    void run(const Request& req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.async_accept(req, [self = this->shared_from_this()](error_code ec) {
            if (!ec) self->do_read();
        });
    }

private:
    void do_read() {
        ws_.async_read(buffer_, [self = this->shared_from_this()](error_code ec, std::size_t) {
            if (ec) return;
            self->ws_.text(self->ws_.got_text());
            self->ws_.async_write(self->buffer_.data(), [self](error_code ec2, std::size_t) {
                if (ec2) return;
                self->buffer_.consume(self->buffer_.size());
                self->do_read();
            });
        });
    }

    websocket::stream<Stream> ws_;
    beast::flat_buffer buffer_;
};

// One upstream connection: reads requests (streaming the body through a
// fixed buffer), records them, answers by route, repeats while keep-alive.
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
public:
    http_session(Stream&& stream, std::shared_ptr<shared_state> state)
        : stream_(std::move(stream)), state_(std::move(state)), timer_(stream_.get_executor()) {}

    void run() {
        if constexpr (std::is_same_v<Stream, tls_stream>) {
            stream_.async_handshake(ssl::stream_base::server,
                                    [self = this->shared_from_this()](error_code ec) {
                                        if (ec) return self->fail(ec);
                                        self->do_read_header();
                                    });
        } else {
            do_read_header();
        }
    }

private:
    void do_read_header() {
        parser_.emplace();
        parser_->header_limit(1 << 20);
        parser_->body_limit(boost::none);
        current_ = {};
        http::async_read_header(
            stream_, buffer_, *parser_,
            [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
    }

    void on_header(error_code ec) {
        if (ec) return fail(ec);
        ++state_->headers;
        const auto& req = parser_->get();
        current_.method = std::string(req.method_string());
        current_.target = std::string(req.target());
        current_.version = req.version();
        for (const auto& f : req)
            current_.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        if (websocket::is_upgrade(req) && current_.path() == "/ws") {
            state_->record(current_);
            std::make_shared<ws_session<Stream>>(std::move(stream_))->run(req);
            return;
        }
        do_read_body();
    }

    void do_read_body() {
        if (parser_->is_done()) return on_request();
        auto& body = parser_->get().body();
        body.data = piece_.data();
        body.size = piece_.size();
        http::async_read(
            stream_, buffer_, *parser_,
            [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
    }

    void on_body(error_code ec) {
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return fail(ec);
        const std::size_t n = piece_.size() - parser_->get().body().size;
        const std::string_view got(piece_.data(), n);
        current_.body_size += n;
        current_.body_hash = fnv1a(got, current_.body_hash);
        if (current_.body_head.size() < body_head_max)
            current_.body_head.append(got.substr(0, body_head_max - current_.body_head.size()));
        do_read_body();
    }

    void on_request() {
        keep_alive_ = parser_->get().keep_alive();
        state_->record(current_);
        const std::string path = current_.path();
        const std::string& target = current_.target;
        if (path == "/echo") return respond(200, echo_json(), "application/json");
        if (path == "/status") {
            const auto code = static_cast<unsigned>(query_u64(target, "code", 200));
            return respond(code, "status " + std::to_string(code) + "\n");
        }
        if (path == "/count") return respond(200, std::to_string(current_.body_size));
        if (path == "/bytes") return send_generated(query_u64(target, "n", 0), false);
        if (path == "/chunked") return send_generated(query_u64(target, "n", 0), true);
        if (path == "/delay") {
            timer_.expires_after(std::chrono::milliseconds(query_u64(target, "ms", 0)));
            timer_.async_wait([self = this->shared_from_this()](error_code ec) {
                if (ec) return;
                self->respond(200, "delayed\n");
            });
            return;
        }
        if (path == "/hop")
            return respond(200, "hop\n", "text/plain",
                           "Connection: X-Secret-Hop, keep-alive\r\nX-Secret-Hop: 1\r\n"
                           "Keep-Alive: timeout=5\r\nProxy-Authenticate: x\r\nTrailer: x\r\n");
        if (path == "/close") return respond(200, "closing\n", "text/plain", "", true);
        if (path == "/until-close") return respond_until_close(query_u64(target, "n", 0));
        respond(404, "no route for " + path + "\n");
    }

    std::string echo_json() const {
        boost::json::object o;
        o["method"] = current_.method;
        o["target"] = current_.target;
        o["version"] = current_.version;
        boost::json::array headers;
        for (const auto& [name, value] : current_.headers)
            headers.push_back(
                boost::json::array{boost::json::string(name), boost::json::string(value)});
        o["headers"] = std::move(headers);
        o["body_length"] = current_.body_size;
        o["body_hash"] = hex(current_.body_hash);
        return boost::json::serialize(o);
    }

    std::string head(unsigned status, std::string_view content_type, std::string_view extra) {
        std::string reason(http::obsolete_reason(http::int_to_status(status)));
        std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
        h += "Content-Type: " + std::string(content_type) + "\r\n";
        h += extra;
        if (!keep_alive_) h += "Connection: close\r\n";
        return h;
    }

    // Plain responses; `then_close` closes right after the response even
    // though its framing promised keep-alive.
    void respond(unsigned status, std::string body, std::string_view content_type = "text/plain",
                 std::string_view extra = "", bool then_close = false) {
        out_ = head(status, content_type, extra);
        const bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
        if (no_body)
            body.clear();
        else
            out_ += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        out_ += "\r\n";
        out_ += body;
        net::async_write(stream_, net::buffer(out_),
                         [self = this->shared_from_this(), then_close](error_code ec, std::size_t) {
                             self->after_response(ec, then_close);
                         });
    }

    // A body without length or chunks, ended by closing the connection (RFC 9112
    // 6.3): written in one piece and closed at once, so its end arrives with it.
    void respond_until_close(std::uint64_t n) {
        out_ = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
        for (std::uint64_t i = 0; i < n; ++i) out_.push_back(generated_byte(i));
        net::async_write(stream_, net::buffer(out_), [self = this->shared_from_this()](error_code ec, std::size_t) {
            self->after_response(ec, true);
        });
    }

    void send_generated(std::uint64_t n, bool chunked) {
        total_ = n;
        sent_ = 0;
        chunked_ = chunked;
        out_ = head(200, "application/octet-stream", "");
        out_ += chunked ? "Transfer-Encoding: chunked\r\n"
                        : "Content-Length: " + std::to_string(n) + "\r\n";
        out_ += "\r\n";
        net::async_write(stream_, net::buffer(out_),
                         [self = this->shared_from_this()](error_code ec, std::size_t) {
                             if (ec) return self->fail(ec);
                             self->write_next_piece();
                         });
    }

    void write_next_piece() {
        if (sent_ == total_) {
            if (!chunked_) return after_response({}, false);
            out_ = "0\r\n\r\n";
            net::async_write(stream_, net::buffer(out_),
                             [self = this->shared_from_this()](error_code ec, std::size_t) {
                                 self->after_response(ec, false);
                             });
            return;
        }
        const std::size_t k =
            static_cast<std::size_t>(std::min<std::uint64_t>(piece_size, total_ - sent_));
        out_.clear();
        if (chunked_) out_ += hex(k) + "\r\n";
        for (std::size_t i = 0; i < k; ++i) out_.push_back(generated_byte(sent_ + i));
        if (chunked_) out_ += "\r\n";
        sent_ += k;
        net::async_write(stream_, net::buffer(out_),
                         [self = this->shared_from_this()](error_code ec, std::size_t) {
                             if (ec) return self->fail(ec);
                             self->write_next_piece();
                         });
    }

    void after_response(error_code ec, bool then_close) {
        if (ec) return fail(ec);
        if (then_close || !keep_alive_) return close_stream(stream_);
        do_read_header();
    }

    void fail(error_code ec) {
        if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message)
            ++state_->parse_errors;
        close_stream(stream_);
    }

    Stream stream_;
    std::shared_ptr<shared_state> state_;
    net::steady_timer timer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::buffer_body>> parser_;
    std::array<char, piece_size> piece_{};
    recorded_request current_;
    bool keep_alive_ = true;
    std::string out_;
    std::uint64_t total_ = 0;
    std::uint64_t sent_ = 0;
    bool chunked_ = false;
};

}  // namespace

std::optional<std::string> recorded_request::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (text::iequals(n, name)) return v;
    return std::nullopt;
}

std::size_t recorded_request::count(std::string_view name) const {
    std::size_t c = 0;
    for (const auto& h : headers)
        if (text::iequals(h.first, name)) ++c;
    return c;
}

struct test_upstream::impl {
    std::shared_ptr<shared_state> state = std::make_shared<shared_state>();
    std::optional<ssl::context> tls;  // outlives the io_context and its sessions
    net::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::uint16_t port = 0;  // read once: the acceptor belongs to the io thread
    std::thread thread;

    void do_accept() {
        acceptor.async_accept([this](error_code ec, tcp::socket socket) {
            if (ec == net::error::operation_aborted) return;
            if (!ec) {
                ++state->connections;
                socket.set_option(tcp::no_delay(true), ec);
                beast::tcp_stream stream(std::move(socket));
                if (tls)
                    std::make_shared<http_session<tls_stream>>(tls_stream(std::move(stream), *tls),
                                                               state)
                        ->run();
                else
                    std::make_shared<http_session<beast::tcp_stream>>(std::move(stream), state)
                        ->run();
            }
            do_accept();
        });
    }
};

test_upstream::test_upstream(upstream_options options) : impl_(std::make_unique<impl>()) {
    if (options.tls) {
        impl_->tls.emplace(ssl::context::tls_server);
        impl_->tls->use_certificate_chain_file(options.cert_file);
        impl_->tls->use_private_key_file(options.key_file, ssl::context::pem);
    }
    const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), options.port);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(net::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(net::socket_base::max_listen_connections);
    impl_->port = impl_->acceptor.local_endpoint().port();
    impl_->do_accept();
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

test_upstream::~test_upstream() {
    impl_->ioc.stop();
    impl_->thread.join();
}

std::uint16_t test_upstream::port() const {
    return impl_->port;
}

std::vector<recorded_request> test_upstream::requests() const {
    std::lock_guard lock(impl_->state->mu);
    return impl_->state->requests;
}

std::size_t test_upstream::request_count() const {
    std::lock_guard lock(impl_->state->mu);
    return impl_->state->requests.size();
}

std::size_t test_upstream::connections_accepted() const {
    return impl_->state->connections;
}
std::size_t test_upstream::headers_received() const {
    return impl_->state->headers;
}
std::size_t test_upstream::parse_errors() const {
    return impl_->state->parse_errors;
}

bool test_upstream::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (request_count() < n) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

}  // namespace floodgate::itest
