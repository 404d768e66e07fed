// The admin listener: health and readiness now, the admin API, metrics and
// dashboard later. Runs on worker 0's io_context, separate from the public
// listeners, on 127.0.0.1:9090 by default.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "gateway/net.hpp"

namespace floodgate {

class admin_server {
public:
    admin_server(net::io_context& ioc, tcp::acceptor acceptor, const std::atomic<bool>& stopping);

    void start();
    void stop();

private:
    net::awaitable<void> accept_loop();
    net::awaitable<void> serve(tcp::socket socket);
    http::response<http::string_body> handle(const http::request<http::string_body>& req);

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    const std::atomic<bool>& stopping_;
};

}  // namespace floodgate
