// Prometheus metrics: the names of ../shared/DESIGN.md (a contract that
// dashboards and alerts depend on) plus process metrics, rendered with
// prometheus-cpp's registry and text serialiser.
//
// CONTRACT (the lead's side; the implementation may add to it, not change it):
//   metrics_hub hub(threads);                 // owned by server, outlives the workers
//   hub.scrape(gen, rooms)   -> std::string   // text exposition, main thread
//   hub.sample()                              // once a second, main thread (windows below)
//   hub.upstream_recent("booking")            // p50/p99/error rate over the last ~10 s
//
// Counting (the data path): each worker thread has its own thread_metrics and
// is the only thread that writes it; nothing on the request path takes a lock
// or does an atomic read-modify-write.
//   thread_metrics& m = hub.local(worker_id);  // worker.counters()
//   m.request("vaccine", request_outcome::queued);
//   m.upstream_response("booking", 0.012, 200);
// The scrape adds up all threads' counters and builds the families then.
//
// Exported (every family; labels in braces):
//   floodgate_build_info{version}                    gauge, always 1
//   floodgate_connections{listener}                  gauge, open client connections per
//                                                    listener (its configured address)
//   floodgate_requests_total{room,outcome}           counter; room "-" for unprotected paths;
//                                                    outcome: request_outcome below. The
//                                                    gateway's own /__fg/ endpoints are not
//                                                    counted (a status poll is not a request
//                                                    for the site).
//   floodgate_token_rejected_total{reason}           counter: malformed|bad_mac|expired|
//                                                    wrong_room|binding (a token from an unknown
//                                                    key counts as bad_mac, a ticket presented
//                                                    as a pass or the reverse as malformed)
//   floodgate_room_waiting{room}, _active{room}      gauges (waiting_room::snapshot())
//   floodgate_room_rate_limit{room}                  gauge, users/s in effect (0: no rate limit)
//   floodgate_room_max_active{room}                  gauge (0: no limit)
//   floodgate_room_mode{room,mode}                   gauge, 1 for the room's mode
//                                                    (auto|queue_all|paused|closed), 0 otherwise
//   floodgate_tickets_issued_total{room}             counter (places handed out: the queue's
//                                                    sequence, which survives a restart with
//                                                    state_dir)
//   floodgate_admitted_total{room}                   counter (passes: claimed calls + direct)
//   floodgate_abandoned_total{room}                  counter
//   floodgate_noshows_total{room}                    counter (called, never claimed)
//   floodgate_released_total{room,reason}            counter: explicit|upstream|idle|ttl
//   floodgate_wait_seconds{room}                     histogram, ticket issued -> pass minted
//                                                    (1 s resolution: tickets carry whole seconds)
//   floodgate_upstream_request_seconds{upstream}     histogram, from the first connection
//                                                    attempt until the response head arrived
//   floodgate_upstream_errors_total{upstream,kind}   counter: connect|timeout|reset|protocol
//                                                    (upstream_failure below) and status_5xx
//                                                    (the upstream answered 500-599)
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_open_fds, process_max_fds, process_start_time_seconds   (from /proc)
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenstore/token.hpp"

namespace floodgate {

struct generation;
class room_registry;

// What became of one request (the outcome label of floodgate_requests_total).
// Each request that got an answer counts exactly once.
enum class request_outcome : std::uint8_t {
    proxied,   // the upstream's answer was relayed: with a valid pass, or on an unprotected path
    queued,    // the waiting page (or 503 + JSON) with a place in line
    admitted,  // a pass minted by this very request (direct admission or a claimed call), relayed
    rejected,  // refused: by the gateway (malformed, over a limit) or by the room (closed, full,
               // already admitted on another device)
    error,     // the upstream failed: 502 or 504 from the gateway
};
inline constexpr std::size_t request_outcome_count = 5;

// Why an exchange with an upstream failed (the kind label of
// floodgate_upstream_errors_total; the fifth kind, status_5xx, comes from
// upstream_response()).
enum class upstream_failure : std::uint8_t {
    connect,   // no server of the upstream could be connected (refused, unreachable, TLS)
    timeout,   // connect_timeout or response_timeout ran out
    reset,     // the connection broke while the request or the response was under way
    protocol,  // the upstream's answer was not valid HTTP
};
inline constexpr std::size_t upstream_failure_count = 4;

namespace metrics_detail {

// A counter with one writer: a relaxed load and store, no locked instruction.
// Readers on other threads see a value that is at most a moment old.
struct counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) noexcept {
        v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

struct room_node;
struct upstream_node;

struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace metrics_detail

// One worker's counters. Only the worker's own thread calls the methods below;
// the main thread reads the counters while the worker runs (scrape, sample).
// Rooms and upstreams are found by name in a map of this thread's own, so
// rooms created or deleted at run time and upstreams changed by a reload need
// no coordination: a new name gets a node, published to readers through an
// append-only list. The one thing not to get wrong: never call these from
// another thread than the owner's (two writers would lose counts).
class alignas(64) thread_metrics {
public:
    static constexpr std::size_t max_listeners = 64;

    thread_metrics() = default;
    ~thread_metrics();
    thread_metrics(const thread_metrics&) = delete;
    thread_metrics& operator=(const thread_metrics&) = delete;

    // room: the room's name, or empty for an unprotected path (exported as "-").
    void request(std::string_view room, request_outcome outcome);
    // A token that was presented and did not verify (status != ok).
    void token_rejected(tokenstore::verify_status status);
    // A pass was minted from a ticket after `seconds` in line.
    void waited(std::string_view room, double seconds);
    // The upstream's response head arrived `seconds` after the first attempt.
    void upstream_response(std::string_view upstream, double seconds, unsigned status);
    // An exchange failed; after_response: the response head had arrived (and
    // was counted by upstream_response) when the body broke.
    void upstream_failed(std::string_view upstream, upstream_failure kind, bool after_response = false);
    void connection_opened(std::size_t listener);
    void connection_closed(std::size_t listener);

private:
    friend class metrics_hub;
    using counter = metrics_detail::counter;
    using room_node = metrics_detail::room_node;
    using upstream_node = metrics_detail::upstream_node;

    room_node& room(std::string_view name);
    upstream_node& upstream(std::string_view name);

    std::array<counter, 5> token_rejected_{};
    std::array<counter, max_listeners> opened_{}, closed_{};
    // Heads of the append-only lists the main thread walks (acquire loads).
    std::atomic<room_node*> rooms_{nullptr};
    std::atomic<upstream_node*> upstreams_{nullptr};
    // The owner's index into those lists; nobody else touches it.
    std::unordered_map<std::string, room_node*, metrics_detail::name_hash, std::equal_to<>> room_index_;
    std::unordered_map<std::string, upstream_node*, metrics_detail::name_hash, std::equal_to<>>
        upstream_index_;
    // The node found last, checked before the map: a thread mostly counts
    // one room and one upstream over and over.
    room_node* last_room_ = nullptr;
    upstream_node* last_upstream_ = nullptr;
};

class metrics_hub {
public:
    explicit metrics_hub(std::size_t threads);
    ~metrics_hub();
    metrics_hub(const metrics_hub&) = delete;
    metrics_hub& operator=(const metrics_hub&) = delete;

    // Worker `thread`'s counters (0 <= thread < threads); that thread writes them.
    thread_metrics& local(std::size_t thread) { return *threads_[thread]; }

    // The whole exposition (text format 0.0.4). Main thread.
    std::string scrape(const generation& gen, room_registry& rooms);

    // Once a second on the main thread: moves the windows behind upstream_recent().
    void sample();

    struct upstream_window {
        double p50_s = 0;       // upstream response time, median, over the window
        double p99_s = 0;
        double error_rate = 0;  // failed / all upstream requests over the window (0..1)
        double requests_per_s = 0;
    };
    // The last ~10 s of one upstream (by configured name); zeros when nothing was measured.
    upstream_window upstream_recent(std::string_view upstream) const;

private:
    struct impl;
    std::vector<std::unique_ptr<thread_metrics>> threads_;
    impl* impl_;
};

}  // namespace floodgate
