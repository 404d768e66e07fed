#include "clients.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "gateway/text.hpp"
#include "test_upstream.hpp"

namespace floodgate::itest {

namespace {

using clock = std::chrono::steady_clock;

ms remaining(clock::time_point deadline) {
    return std::max(ms(0), std::chrono::duration_cast<ms>(deadline - clock::now()));
}

}  // namespace

// ---- raw responses ---------------------------------------------------------

std::optional<std::string> raw_response::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (text::iequals(n, name)) return v;
    return std::nullopt;
}

std::size_t raw_response::count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(),
        [&](const auto& h) { return text::iequals(h.first, name); }));
}

bool raw_response::closes() const {
    for (const auto& [n, v] : headers) {
        if (!text::iequals(n, "Connection")) continue;
        std::string lower(v);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower.find("close") != std::string::npos) return true;
    }
    return false;
}

std::vector<raw_response> parse_responses(std::string_view bytes, std::string* rest, bool at_eof) {
    std::vector<raw_response> out;
    while (!bytes.empty()) {
        http::response_parser<http::string_body> p;
        p.eager(true);
        p.header_limit(1 << 20);
        p.body_limit(boost::none);
        std::size_t used = 0;
        error_code ec;
        while (!p.is_done() && used < bytes.size()) {
            const std::size_t n = p.put(net::buffer(bytes.data() + used, bytes.size() - used), ec);
            used += n;
            if (ec == http::error::need_more) {
                ec = {};
                if (n == 0) break;
                continue;
            }
            if (ec || n == 0) break;
        }
        if (!ec && !p.is_done() && at_eof && used == bytes.size() && p.is_header_done())
            p.put_eof(ec);
        if (ec || !p.is_done()) break;
        const auto& m = p.get();
        raw_response r;
        r.status = m.result_int();
        r.version = m.version();
        r.reason = std::string(m.reason());
        for (const auto& f : m)
            r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        r.body = m.body();
        out.push_back(std::move(r));
        bytes.remove_prefix(used);
    }
    if (rest) *rest = std::string(bytes);
    return out;
}

unsigned status_of(std::string_view bytes) {
    if (bytes.size() < 12 || bytes.substr(0, 7) != "HTTP/1." || bytes[8] != ' ') return 0;
    unsigned code = 0;
    for (std::size_t i = 9; i < 12; ++i) {
        if (bytes[i] < '0' || bytes[i] > '9') return 0;
        code = code * 10 + static_cast<unsigned>(bytes[i] - '0');
    }
    return code;
}

std::string first_line(std::string_view bytes) {
    return std::string(bytes.substr(0, std::min(bytes.find("\r\n"), bytes.find('\n'))));
}

// ---- raw_connection --------------------------------------------------------

raw_connection::raw_connection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{10, 0};  // a blocked send fails instead of hanging the test
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const sockaddr_in a = loopback(port);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        connect_errno_ = errno;
        closed_ = true;
    }
}

raw_connection::~raw_connection() {
    if (fd_ >= 0) ::close(fd_);
}

bool raw_connection::send(std::string_view bytes) {
    if (!connected()) return false;
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool raw_connection::send_slowly(std::string_view bytes, ms interval) {
    for (char c : bytes) {
        if (closed_ || !send(std::string_view(&c, 1))) {
            read_some(0ms);
            return false;
        }
        const auto deadline = clock::now() + interval;
        while (!closed_ && clock::now() < deadline) read_some(remaining(deadline));
    }
    return !closed_;
}

std::size_t raw_connection::read_some(ms timeout) {
    if (closed_ || fd_ < 0) return 0;
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return 0;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
        return static_cast<std::size_t>(n);
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        closed_ = true;
        reset_ = n < 0;
    }
    return 0;
}

bool raw_connection::read_until(std::string_view marker, ms timeout) {
    const auto deadline = clock::now() + timeout;
    while (received_.find(marker) == std::string::npos) {
        if (closed_ || clock::now() >= deadline) return false;
        read_some(remaining(deadline));
    }
    return true;
}

bool raw_connection::read_responses(std::size_t n, ms timeout) {
    const auto deadline = clock::now() + timeout;
    while (parse_responses(received_).size() < n) {
        if (closed_ || clock::now() >= deadline) return false;
        read_some(remaining(deadline));
    }
    return true;
}

bool raw_connection::wait_closed(ms timeout) {
    const auto deadline = clock::now() + timeout;
    while (!closed_) {
        if (clock::now() >= deadline) return false;
        read_some(remaining(deadline));
    }
    return true;
}

void raw_connection::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

std::string raw_exchange(std::uint16_t port, std::string_view bytes, ms read_timeout) {
    raw_connection c(port);
    c.send(bytes);
    c.wait_closed(read_timeout);
    return c.received();
}

// ---- http_client -----------------------------------------------------------

struct http_client::impl {
    using tls_stream = beast::ssl_stream<beast::tcp_stream>;

    impl(std::uint16_t p, ms t) : port(p), timeout(t) {}

    std::uint16_t port;
    ms timeout;
    std::optional<ssl::context> ctx;  // outlives the stream
    net::io_context ioc;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<tls_stream> tls;
    beast::flat_buffer buffer;

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    template <class F>
    void with_stream(F&& f) {
        if (tls)
            f(*tls);
        else
            f(*plain);
    }

    // Starts one async operation and runs it to completion; the tcp_stream's
    // expiry bounds it (on expiry the socket is closed and the op fails).
    template <class Start>
    error_code run(Start&& start) {
        lowest().expires_after(timeout);
        std::optional<error_code> result;
        start([&result](error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        return result.value_or(net::error::timed_out);
    }

    static void check(error_code ec, const char* what) {
        if (ec) throw boost::system::system_error(ec, what);
    }

    void connect(const std::optional<client_tls>& tls_options) {
        const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
        if (tls_options) {
            ctx.emplace(ssl::context::tls_client);
            ctx->set_verify_mode(ssl::verify_peer);
            ctx->load_verify_file(tls_options->ca_file);
            tls = std::make_unique<tls_stream>(ioc, *ctx);
            tls->set_verify_callback(ssl::host_name_verification(tls_options->server_name));
            if (!SSL_set_tlsext_host_name(tls->native_handle(), tls_options->server_name.c_str()))
                throw std::runtime_error("SSL_set_tlsext_host_name failed");
        } else {
            plain = std::make_unique<beast::tcp_stream>(ioc);
        }
        check(run([&](auto h) { lowest().async_connect(ep, std::move(h)); }), "connect");
        error_code ec;
        lowest().socket().set_option(tcp::no_delay(true), ec);
        if (tls)
            check(
                run([&](auto h) { tls->async_handshake(ssl::stream_base::client, std::move(h)); }),
                "TLS handshake");
    }

    void write_raw(std::string_view bytes, const char* what) {
        error_code ec = run([&](auto h) {
            with_stream([&](auto& s) { net::async_write(s, net::buffer(bytes), std::move(h)); });
        });
        check(ec, what);
    }

    template <class Message>
    void write_message(Message& msg) {
        error_code ec = run([&](auto h) {
            with_stream([&](auto& s) { http::async_write(s, msg, std::move(h)); });
        });
        check(ec, "write request");
    }

    // Reads a whole message into parser (for a buffer_body, until the body buffer is full).
    template <class Parser>
    error_code read_message(Parser& parser) {
        return run([&](auto h) {
            with_stream([&](auto& s) { http::async_read(s, buffer, parser, std::move(h)); });
        });
    }
};

http_client::http_client(std::uint16_t port, ms timeout)
    : impl_(std::make_unique<impl>(port, timeout)) {
    impl_->connect(std::nullopt);
}

http_client::http_client(std::uint16_t port, client_tls tls, ms timeout)
    : impl_(std::make_unique<impl>(port, timeout)) {
    impl_->connect(tls);
}

http_client::~http_client() = default;

response http_client::get(std::string target, const header_list& headers) {
    return request(http::verb::get, std::move(target), {}, headers);
}

response http_client::request(http::verb method, std::string target, std::string body,
                              const header_list& headers) {
    http::request<http::string_body> req{method, target, 11};
    for (const auto& [name, value] : headers) req.insert(name, value);
    if (!body.empty() || method == http::verb::post || method == http::verb::put) {
        req.body() = std::move(body);
        req.prepare_payload();
    }
    return send(std::move(req));
}

response http_client::send(http::request<http::string_body> req) {
    if (req.find(http::field::host) == req.end())
        req.set(http::field::host, "localhost:" + std::to_string(impl_->port));
    impl_->write_message(req);
    http::response_parser<http::string_body> parser;
    parser.header_limit(1 << 20);
    parser.body_limit(boost::none);
    impl::check(impl_->read_message(parser), "read response");
    return parser.release();
}

download_result http_client::download(std::string target) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost:" + std::to_string(impl_->port));
    impl_->write_message(req);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    impl::check(impl_->run([&](auto h) {
        impl_->with_stream(
            [&](auto& s) { http::async_read_header(s, impl_->buffer, parser, std::move(h)); });
    }),
                "read response header");
    download_result r;
    r.status = parser.get().result_int();
    r.chunked = parser.chunked();
    std::vector<char> piece(64 * 1024);
    while (!parser.is_done()) {
        parser.get().body().data = piece.data();
        parser.get().body().size = piece.size();
        error_code ec = impl_->read_message(parser);
        if (ec == http::error::need_buffer) ec = {};
        impl::check(ec, "read response body");
        const std::size_t n = piece.size() - parser.get().body().size;
        for (std::size_t i = 0; i < n && r.pattern_ok; ++i)
            if (piece[i] != generated_byte(r.bytes + i)) r.pattern_ok = false;
        r.bytes += n;
    }
    return r;
}

response http_client::upload(std::string target, std::uint64_t n, bool chunked) {
    std::string head =
        "POST " + target + " HTTP/1.1\r\nHost: localhost:" + std::to_string(impl_->port) + "\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n"
                    : "Content-Length: " + std::to_string(n) + "\r\n";
    head += "\r\n";
    impl_->write_raw(head, "write request header");
    std::string piece;
    for (std::uint64_t sent = 0; sent < n;) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, n - sent));
        piece.clear();
        if (chunked) {
            char size[32];
            piece.append(size,
                         static_cast<std::size_t>(std::snprintf(size, sizeof size, "%zx\r\n", k)));
        }
        for (std::size_t i = 0; i < k; ++i) piece.push_back(generated_byte(sent + i));
        if (chunked) piece += "\r\n";
        impl_->write_raw(piece, "write request body");
        sent += k;
    }
    if (chunked) impl_->write_raw("0\r\n\r\n", "write last chunk");
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    impl::check(impl_->read_message(parser), "read response");
    return parser.release();
}

bool http_client::wait_closed(ms timeout) {
    const auto saved = impl_->timeout;
    impl_->timeout = timeout;
    char byte = 0;
    error_code ec = impl_->run([&](auto h) {
        impl_->with_stream(
            [&](auto& s) { s.async_read_some(net::buffer(&byte, 1), std::move(h)); });
    });
    impl_->timeout = saved;
    if (!ec) return false;  // the server sent more bytes instead of closing
    return ec != beast::error::timeout && ec != net::error::timed_out;
}

// ---- misbehaving sockets ---------------------------------------------------

unresponsive_listener::unresponsive_listener() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);

    auto start_connect = [&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        return fd;
    };
    for (int i = 0; i < 3; ++i) fillers_.push_back(start_connect());
    std::this_thread::sleep_for(50ms);
    // The probe: does one more connect stay pending?
    const int probe = start_connect();
    pollfd p{probe, POLLOUT, 0};
    hangs_ = ::poll(&p, 1, 300) == 0;
    ::close(probe);
}

unresponsive_listener::~unresponsive_listener() {
    for (int fd : fillers_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

}  // namespace floodgate::itest
