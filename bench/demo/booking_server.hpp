// The demo site's network side: one io_context per thread, one acceptor that
// hands each new connection to the next thread (round robin), and one
// keep-alive HTTP/1.1 session coroutine per connection. A connection never
// changes thread, so a session needs no strand.
//
// run() blocks until SIGINT or SIGTERM; it then stops accepting, lets booking
// requests in flight finish (up to two seconds) and returns.
#pragma once

#include <memory>
#include <vector>

#include "booking_handler.hpp"
#include "booking_state.hpp"
#include "demo_options.hpp"
#include "gateway/net.hpp"
#include "load_meter.hpp"

namespace floodgate::demo {

class booking_server {
public:
    explicit booking_server(demo_options options);
    ~booking_server();

    // Resolves, binds and listens; writes the port file. False with a message on failure.
    bool open(std::string& error);
    std::uint16_t port() const { return port_; }

    void run();

private:
    net::awaitable<void> accept_loop();
    net::awaitable<void> session(tcp::socket socket);
    net::awaitable<void> drain_and_stop();

    demo_options options_;
    booking_state state_;
    load_meter meter_;
    booking_handler handler_;
    std::vector<std::unique_ptr<net::io_context>> contexts_;
    tcp::acceptor acceptor_;
    net::signal_set signals_;
    std::size_t next_context_ = 0;
    std::uint16_t port_ = 0;
};

}  // namespace floodgate::demo
