// A worker is one I/O thread: its own io_context, its own acceptor per
// listener (SO_REUSEPORT), its own upstream pool and the sessions it accepted.
//
// A connection never changes worker, and nothing in a worker is touched from
// another thread except through post() onto its io_context: that is what keeps
// the request path free of locks.
#pragma once

#include <atomic>
#include <memory>
#include <unordered_set>
#include <vector>

#include "access_log.hpp"
#include "generation.hpp"
#include "metrics.hpp"
#include "upstream_pool.hpp"

namespace floodgate {

class http_session;

// A configured listener, shared by the acceptors of all workers.
struct listener_state {
    std::size_t index = 0;
    listener_config cfg;
    std::unique_ptr<ssl::context> tls;
    std::atomic<std::size_t> connections{0};
    tcp::endpoint bound;
};

class worker {
public:
    worker(std::size_t id, access_log& log, metrics_hub& metrics);

    std::size_t id() const { return id_; }
    net::io_context& ioc() { return ioc_; }
    access_log& log() { return log_; }
    metrics_hub& metrics() { return metrics_; }
    // This worker's own counters (only this thread writes them).
    thread_metrics& counters() { return metrics_.local(id_); }
    upstream_pool& pool() { return pool_; }
    const std::shared_ptr<const generation>& gen() const { return gen_; }
    bool stopping() const { return stopping_; }

    // Call on the worker's thread (or before it runs).
    void set_generation(std::shared_ptr<const generation> gen);
    void add_acceptor(listener_state& l, tcp::acceptor acceptor);
    void start();
    // Stops accepting, closes idle connections; busy ones close after their response.
    void begin_shutdown();
    // Closes everything that is still open.
    void force_close();

    void enter(http_session* s) { sessions_.insert(s); }
    void leave(http_session* s) { sessions_.erase(s); }

private:
    net::awaitable<void> accept_loop(listener_state& l, tcp::acceptor& acceptor);
    net::awaitable<void> sweep_loop();

    std::size_t id_;
    // Only this worker's thread does I/O on its sockets: no reactor locking.
    net::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    access_log& log_;
    metrics_hub& metrics_;
    upstream_pool pool_;
    std::shared_ptr<const generation> gen_;
    bool stopping_ = false;
    std::vector<std::pair<listener_state*, std::unique_ptr<tcp::acceptor>>> acceptors_;
    std::unordered_set<http_session*> sessions_;
    net::steady_timer sweep_timer_{ioc_};
};

}  // namespace floodgate
