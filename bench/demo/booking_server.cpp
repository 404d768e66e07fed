#include "booking_server.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

namespace floodgate::demo {

namespace {

constexpr std::size_t header_limit = 16 * 1024;
constexpr std::size_t body_limit = 64 * 1024;
constexpr auto read_timeout = std::chrono::seconds(60);  // also the keep-alive idle time
constexpr auto write_timeout = std::chrono::seconds(30);
constexpr auto drain_limit = std::chrono::seconds(2);

std::unique_ptr<net::io_context> make_context() {
    return std::make_unique<net::io_context>(1);  // one thread each: no internal locking
}

// Writes `port` to `path` via a temporary file and rename(), so a reader
// polling for the file never sees it half written.
bool write_port_file(const std::string& path, std::uint16_t port, std::string& error) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << port << "\n";
        out.flush();
        if (!out) {
            error = "cannot write " + tmp;
            return false;
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        error = "cannot rename " + tmp + " to " + path;
        return false;
    }
    return true;
}

// Parse failures get an answer before the connection closes; transport errors do not.
std::optional<http::status> status_for_parse_error(const error_code& ec) {
    if (ec == http::error::body_limit) return http::status::payload_too_large;
    if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
    if (ec.category() == http::make_error_code(http::error::bad_method).category())
        return http::status::bad_request;
    return std::nullopt;
}

}  // namespace

booking_server::booking_server(demo_options options)
    : options_(std::move(options)),
      state_(options_.seats),
      meter_(options_.capacity, options_.hard_limit, options_.base_latency),
      handler_(options_, state_, meter_),
      contexts_([&] {
          std::vector<std::unique_ptr<net::io_context>> v;
          for (unsigned i = 0; i < options_.threads; ++i) v.push_back(make_context());
          return v;
      }()),
      acceptor_(*contexts_.front()),
      signals_(*contexts_.front(), SIGINT, SIGTERM) {}

booking_server::~booking_server() = default;

bool booking_server::open(std::string& error) {
    error_code ec;
    tcp::resolver resolver(*contexts_.front());
    auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
        error = "cannot resolve " + options_.host + ": " + ec.message();
        return false;
    }
    const tcp::endpoint ep = results.begin()->endpoint();
    const std::string where = ep.address().to_string() + ":" + std::to_string(ep.port());
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
        error = "cannot listen on " + where + ": " + ec.message();
        return false;
    }
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) {
        error = "cannot read the bound port: " + ec.message();
        return false;
    }
    if (!options_.port_file.empty() && !write_port_file(options_.port_file, port_, error))
        return false;
    std::cerr << "floodgate-demo-booking: listening on " << ep.address().to_string() << ":"
              << port_ << " (threads " << options_.threads << ", capacity " << options_.capacity
              << ", hard limit " << options_.hard_limit << ", base latency "
              << options_.base_latency.count() << "ms"
              << (options_.release_on_reserve ? ", release-on-reserve" : "") << ")" << std::endl;
    return true;
}

void booking_server::run() {
    signals_.async_wait([this](const error_code& ec, int) {
        if (ec) return;
        error_code ignored;
        acceptor_.close(ignored);
        net::co_spawn(*contexts_.front(), drain_and_stop(), net::detached);
    });
    net::co_spawn(*contexts_.front(), accept_loop(), net::detached);

    // The other threads have no work until a connection arrives: keep them running.
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
        guards.push_back(net::make_work_guard(*contexts_[i]));
        threads.emplace_back([ctx = contexts_[i].get()] { ctx->run(); });
    }
    contexts_.front()->run();
    // drain_and_stop() has stopped every context; the threads are ending.
    for (auto& t : threads) t.join();
    std::cerr << "floodgate-demo-booking: stopped" << std::endl;
}

net::awaitable<void> booking_server::drain_and_stop() {
    const auto deadline = std::chrono::steady_clock::now() + drain_limit;
    net::steady_timer timer(co_await net::this_coro::executor);
    while (meter_.read().in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    for (auto& ctx : contexts_) ctx->stop();
}

net::awaitable<void> booking_server::accept_loop() {
    net::steady_timer backoff(*contexts_.front());
    for (;;) {
        net::io_context& ctx = *contexts_[next_context_++ % contexts_.size()];
        auto [ec, socket] =
            co_await acceptor_.async_accept(ctx, net::as_tuple(net::use_awaitable));
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            // Out of file descriptors and the like: wait a little rather than spin.
            std::cerr << "floodgate-demo-booking: accept: " << ec.message() << std::endl;
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        net::co_spawn(ctx, session(std::move(socket)), net::detached);
    }
}

net::awaitable<void> booking_server::session(tcp::socket socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        stream.expires_after(read_timeout);
        auto [rec, n] = co_await http::async_read(stream, buffer, parser,
                                                  net::as_tuple(net::use_awaitable));
        if (rec) {
            if (auto status = status_for_parse_error(rec); status && rec != http::error::end_of_stream) {
                response res{*status, 11};
                res.set(http::field::server, "floodgate-demo-booking");
                res.set(http::field::content_type, "text/plain");
                res.keep_alive(false);
                res.body() = std::string(obsolete_reason(*status)) + "\n";
                res.prepare_payload();
                stream.expires_after(write_timeout);
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
            }
            break;
        }
        response res = co_await handler_.handle(parser.release());
        stream.expires_after(write_timeout);
        auto [wec, wn] = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
        if (wec || res.need_eof()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace floodgate::demo
