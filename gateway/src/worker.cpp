#include "worker.hpp"

#include <spdlog/spdlog.h>

#include "http_session.hpp"

namespace floodgate {

worker::worker(std::size_t id, access_log& log, metrics_hub& metrics)
    : id_(id), log_(log), metrics_(metrics), pool_(ioc_.get_executor()) {}

void worker::set_generation(std::shared_ptr<const generation> gen) {
    gen_ = std::move(gen);
    pool_.reset(gen_.get());
}

void worker::add_acceptor(listener_state& l, tcp::acceptor acceptor) {
    acceptors_.emplace_back(&l, std::make_unique<tcp::acceptor>(std::move(acceptor)));
}

void worker::start() {
    for (auto& [l, a] : acceptors_) net::co_spawn(ioc_, accept_loop(*l, *a), net::detached);
    net::co_spawn(ioc_, sweep_loop(), net::detached);
}

// Rejects a connection over the listener's limit with a short 503 written
// without waiting (best effort), then closes it.
static void refuse_over_limit(tcp::socket& socket) {
    static constexpr std::string_view busy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 34\r\n"
        "Connection: close\r\nRetry-After: 1\r\n\r\nToo many connections; try again.\r\n";
    error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(net::buffer(busy), ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
}

net::awaitable<void> worker::accept_loop(listener_state& l, tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
        if (ec) {
            if (stopping_ || ec == net::error::operation_aborted) co_return;
            // Out of file descriptors and the like: log, back off briefly, go on.
            spdlog::warn("accept on {}: {}", l.cfg.address.to_string(), ec.message());
            net::steady_timer t(ioc_, std::chrono::milliseconds(50));
            co_await t.async_wait(use_nothrow);
            continue;
        }
        if (l.connections.fetch_add(1, std::memory_order_relaxed) >= l.cfg.max_connections) {
            l.connections.fetch_sub(1, std::memory_order_relaxed);
            refuse_over_limit(socket);
            continue;
        }
        auto session = std::make_unique<http_session>(*this, l, std::move(socket));
        net::co_spawn(ioc_,
                      [s = std::move(session)]() mutable -> net::awaitable<void> {
                          co_await s->run();
                      },
                      net::detached);
    }
}

net::awaitable<void> worker::sweep_loop() {
    while (!stopping_) {
        sweep_timer_.expires_after(std::chrono::seconds(5));
        auto [ec] = co_await sweep_timer_.async_wait(use_nothrow);
        if (ec || stopping_) break;
        pool_.sweep();
    }
}

void worker::begin_shutdown() {
    stopping_ = true;
    for (auto& [l, a] : acceptors_) {
        error_code ec;
        a->close(ec);
    }
    sweep_timer_.cancel();
    pool_.close_all();
    // Copy: closing a session may end it, which erases it from the set.
    std::vector<http_session*> sessions(sessions_.begin(), sessions_.end());
    for (auto* s : sessions) s->close_if_idle();
}

void worker::force_close() {
    std::vector<http_session*> sessions(sessions_.begin(), sessions_.end());
    for (auto* s : sessions) s->close_now();
}

}  // namespace floodgate
