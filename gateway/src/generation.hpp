// A generation is one loaded configuration plus what is derived from it at
// load time: resolved upstream addresses, upstream TLS contexts and the
// shared passive-health state of each upstream server.
//
// Generations are immutable once built (except the atomics of the health
// state) and shared by pointer; SIGHUP builds a new one and hands it to every
// worker, while requests already in flight finish on the one they started with.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config.hpp"
#include "gateway/net.hpp"
#include "gateway/router.hpp"
#include "room_runtime.hpp"
#include "tokenstore/key_ring.hpp"

namespace floodgate {

using steady_clock = std::chrono::steady_clock;

// One address of an upstream, with its passive health: after max_fails
// consecutive failures it is skipped for fail_timeout. Shared by all threads.
struct upstream_server {
    std::string label;  // host:port as configured, for logs
    std::vector<tcp::endpoint> addresses;
    std::atomic<std::uint32_t> consecutive_fails{0};
    std::atomic<std::int64_t> ejected_until_ns{0};  // steady_clock nanoseconds

    bool ejected(steady_clock::time_point now) const {
        return now.time_since_epoch().count() < ejected_until_ns.load(std::memory_order_relaxed);
    }
    // Returns true when this failure ejected the server.
    bool record_failure(steady_clock::time_point now, const upstream_config& cfg);
    void record_success() {
        if (consecutive_fails.load(std::memory_order_relaxed) != 0)
            consecutive_fails.store(0, std::memory_order_relaxed);
    }
};

struct upstream_group {
    std::size_t index = 0;  // position in generation::upstreams
    upstream_config cfg;
    std::vector<std::unique_ptr<upstream_server>> servers;
    std::unique_ptr<ssl::context> tls;  // set when cfg.tls.enabled
    mutable std::atomic<std::uint32_t> next{0};

    // Round robin over the servers that are not ejected; when all are, the
    // one whose ejection ends first (a full outage still gets tried).
    std::size_t pick(steady_clock::time_point now) const;
};

// A configured room with what serving it needs: its runtime state (shared
// with later generations), its upstream, and its waiting-page template.
struct room_binding {
    const room_config* cfg = nullptr;  // points into generation::cfg
    std::shared_ptr<room_runtime> rt;
    const upstream_group* upstream = nullptr;
    std::string page_template;
    std::string pass_cookie;    // fg_pass_<room>
    std::string ticket_cookie;  // fg_ticket_<room>
    std::string status_head;    // {"room":"<room>","state":"  (how every status answer starts)
};

struct generation {
    std::shared_ptr<const config> cfg;
    std::vector<std::unique_ptr<upstream_group>> upstreams;
    const upstream_group* default_upstream = nullptr;
    std::vector<room_binding> rooms;  // config order; router indexes into it
    router routes;
    std::shared_ptr<tokenstore::key_ring> keys;

    const upstream_group* find_upstream(std::string_view name) const;
    const room_binding* find_room(std::string_view name) const;
};

// Resolves upstream names, loads TLS material and templates, and binds the
// rooms to their runtime state (created in the registry on first use).
// Blocking: call it from the main thread, never from an I/O thread.
absl::StatusOr<std::shared_ptr<const generation>> build_generation(
    std::shared_ptr<const config> cfg, room_registry& rooms,
    std::shared_ptr<tokenstore::key_ring> keys);

}  // namespace floodgate
