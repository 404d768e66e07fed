#include "http_client.hpp"

namespace floodgate::bench {

net::awaitable<error_code> connection::once(const request& req, response& res, std::chrono::milliseconds timeout) {
    error_code ec;
    auto token = net::redirect_error(net::use_awaitable, ec);
    if (!connected_) {
        buffer_.clear();
        stream_.expires_after(timeout);
        co_await stream_.async_connect(ep_, token);
        if (ec) co_return ec;
        stream_.socket().set_option(tcp::no_delay(true), ec);
        connected_ = true;
        ++connects_;
    }
    stream_.expires_after(timeout);
    co_await http::async_write(stream_, req, token);
    if (ec) co_return ec;
    res = {};
    co_await http::async_read(stream_, buffer_, res, token);
    co_return ec;
}

net::awaitable<error_code> connection::exchange(const request& req, response& res, std::chrono::milliseconds timeout) {
    const bool reused = connected_;
    error_code ec = co_await once(req, res, timeout);
    if (ec && reused && ec != beast::error::timeout) {
        // A kept-alive connection the server had closed: once more on a fresh one.
        close();
        ec = co_await once(req, res, timeout);
    }
    if (ec || !res.keep_alive()) close();
    co_return ec;
}

void connection::close() {
    if (!connected_) return;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    connected_ = false;
}

net::awaitable<std::unique_ptr<connection>> connection_pool::acquire() {
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        co_return c;
    }
    if (open_ < max_) {
        ++open_;
        co_return std::make_unique<connection>(ex_, ep_);
    }
    // All busy: wait in line for the next one released (FIFO, so no request starves).
    waiter w{net::steady_timer(ex_, net::steady_timer::time_point::max()), nullptr};
    waiters_.push_back(&w);
    error_code ec;
    co_await w.timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    co_return std::move(w.got);
}

void connection_pool::release(std::unique_ptr<connection> c) {
    if (!waiters_.empty()) {
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->got = std::move(c);
        w->timer.cancel();
        return;
    }
    idle_.push_back(std::move(c));
}

}  // namespace floodgate::bench
