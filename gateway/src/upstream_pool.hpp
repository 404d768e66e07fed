// The upstream side of a worker: connections to upstream servers, kept alive
// between requests, one pool per worker thread.
//
// A pool is only ever used from its worker's thread, so it needs no locks; a
// connection taken from it stays on that thread. A connection goes back to the
// pool only after a complete, cleanly framed response: after any framing or
// I/O error it is closed, never reused.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "generation.hpp"
#include "stream.hpp"

namespace floodgate {

struct upstream_connection {
    upstream_connection(net::any_io_executor ex, const upstream_group& g, std::size_t server_index,
                        const generation* gen);

    stream s;
    beast::flat_buffer buffer;  // bytes read past the last response (normally none)
    const upstream_group* group;
    std::size_t server;
    const generation* gen;
    steady_clock::time_point idle_since{};
    bool reused = false;  // taken from the pool rather than freshly connected
};

struct acquire_result {
    std::unique_ptr<upstream_connection> conn;
    bool timed_out = false;  // the last connect attempt ran out of time
};

class upstream_pool {
public:
    explicit upstream_pool(net::any_io_executor ex) : ex_(std::move(ex)) {}

    // Drops every idle connection and starts over with a new generation.
    void reset(const generation* gen);

    // A connection to a healthy server of g: an idle one when allowed and
    // alive, else a new one. Tries each server at most once, first_server
    // (when given) first.
    net::awaitable<acquire_result> acquire(const upstream_group& g, bool allow_pooled,
                                           std::optional<std::size_t> first_server = std::nullopt);

    // acquire()'s first step without a coroutine, for the common case: picks a
    // server and returns an idle, live connection to it, or null with the
    // server picked in `server` (then call acquire() with it as first_server).
    std::unique_ptr<upstream_connection> take_pooled(const upstream_group& g, std::size_t& server);

    // Keeps a connection for reuse; drops it when the pool is full, the
    // generation changed or the pool is shutting down.
    void release(std::unique_ptr<upstream_connection> c);

    // Closes idle connections that expired or that the server closed.
    void sweep();
    void close_all();

private:
    std::unique_ptr<upstream_connection> take_idle(const upstream_group& g, std::size_t server,
                                                   steady_clock::time_point now);

    net::any_io_executor ex_;
    const generation* gen_ = nullptr;
    bool closed_ = false;
    // idle_[group][server]: most recently used last.
    std::vector<std::vector<std::vector<std::unique_ptr<upstream_connection>>>> idle_;
};

}  // namespace floodgate
