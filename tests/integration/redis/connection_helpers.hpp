// For tests of redis_connection: an I/O thread to run it on, a bounded wait, and one command
// waited for.
//
//   io_thread io;
//   auto conn = redis_connection::create(io.ioc.get_executor(), {.port = redis.port()});
//   conn->start();
//   REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; }, 5s));
//   auto [ec, reply] = call(*conn, {"GET", "k"});
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate::test {

// An io_context with one I/O thread, as the gateway would give the store.
struct io_thread {
    net::io_context ioc;
    net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
    std::thread thread{[this] { ioc.run(); }};
    ~io_thread() {
        work.reset();
        ioc.stop();
        thread.join();
    }
};

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// One command and its answer; fails the test if none comes within 10 s.
inline std::pair<error_code, tokenstore::redis::redis_reply> call(tokenstore::redis::redis_connection& c,
                                                                  std::vector<std::string> args) {
    using result = std::pair<error_code, tokenstore::redis::redis_reply>;
    auto p = std::make_shared<std::promise<result>>();
    auto f = p->get_future();
    c.command(std::move(args), [p](error_code ec, tokenstore::redis::redis_reply r) {
        p->set_value({ec, std::move(r)});
    });
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return f.get();
}

}  // namespace floodgate::test
