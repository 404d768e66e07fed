// Keep-alive HTTP/1.1 client connections for floodgate-bench, and a bounded
// pool of them shared by everyone who is waiting in line.
//
//   connection_pool pool(ex, endpoint, 128);
//   auto c = co_await pool.acquire();          // waits while all 128 are busy
//   exchange_result r = co_await c->exchange(req, 30s);
//   pool.release(std::move(c));
//
// The one thing not to get wrong: a connection carries one request at a time,
// like a browser's; a request that fails on a reused connection before any
// answer arrived is retried once on a fresh one (the server may have closed
// an idle keep-alive connection), and never otherwise.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "gateway/net.hpp"

namespace floodgate::bench {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

class connection {
public:
    connection(net::any_io_executor ex, tcp::endpoint ep) : stream_(ex), ep_(ep) {}

    // Sends req and reads the answer into res.
    net::awaitable<error_code> exchange(const request& req, response& res, std::chrono::milliseconds timeout);
    void close();
    std::uint64_t connects() const { return connects_; }

private:
    net::awaitable<error_code> once(const request& req, response& res, std::chrono::milliseconds timeout);

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    tcp::endpoint ep_;
    bool connected_ = false;
    std::uint64_t connects_ = 0;
};

class connection_pool {
public:
    connection_pool(net::any_io_executor ex, tcp::endpoint ep, std::size_t max)
        : ex_(std::move(ex)), ep_(ep), max_(max) {}

    net::awaitable<std::unique_ptr<connection>> acquire();
    void release(std::unique_ptr<connection> c);
    std::size_t open() const { return open_; }
    std::size_t waiting() const { return waiters_.size(); }

private:
    struct waiter {
        net::steady_timer timer;
        std::unique_ptr<connection> got;
    };
    net::any_io_executor ex_;
    tcp::endpoint ep_;
    std::size_t max_;
    std::size_t open_ = 0;
    std::vector<std::unique_ptr<connection>> idle_;
    std::deque<waiter*> waiters_;
};

}  // namespace floodgate::bench
