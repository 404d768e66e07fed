#include "admin_server.hpp"

#include <spdlog/spdlog.h>

#include "stream.hpp"

namespace floodgate {

admin_server::admin_server(net::io_context& ioc, tcp::acceptor acceptor,
                           const std::atomic<bool>& stopping)
    : ioc_(ioc), acceptor_(std::move(acceptor)), stopping_(stopping) {}

void admin_server::start() { net::co_spawn(ioc_, accept_loop(), net::detached); }

void admin_server::stop() {
    error_code ec;
    acceptor_.close(ec);
}

net::awaitable<void> admin_server::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
            spdlog::warn("admin accept: {}", ec.message());
            continue;
        }
        net::co_spawn(ioc_, serve(std::move(socket)), net::detached);
    }
}

net::awaitable<void> admin_server::serve(tcp::socket socket) {
    beast::tcp_stream s(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> p;
        p.header_limit(16 * 1024);
        p.body_limit(1024 * 1024);
        s.expires_after(std::chrono::seconds(30));
        auto [ec, n] = co_await http::async_read(s, buffer, p, use_nothrow);
        if (ec == http::error::end_of_stream || ec == net::error::eof) break;
        http::response<http::string_body> res;
        if (ec) {
            res = http::response<http::string_body>{http::status::bad_request, 11};
            res.set(http::field::content_type, "text/plain");
            res.body() = "malformed request\n";
            res.keep_alive(false);
        } else {
            res = handle(p.get());
            res.keep_alive(p.get().keep_alive());
        }
        res.prepare_payload();
        s.expires_after(std::chrono::seconds(30));
        auto [wec, wn] = co_await http::async_write(s, res, use_nothrow);
        if (wec || !res.keep_alive()) break;
    }
    error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
}

http::response<http::string_body> admin_server::handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET, HEAD");
        res.body() = "method not allowed\n";
    } else if (path == "/healthz") {
        res.body() = "ok\n";
    } else if (path == "/readyz") {
        if (stopping_.load(std::memory_order_relaxed)) {
            res.result(http::status::service_unavailable);
            res.body() = "shutting down\n";
        } else {
            res.body() = "ready\n";
        }
    } else {
        res.result(http::status::not_found);
        res.body() = "not found\n";
    }
    return res;
}

}  // namespace floodgate
