// The demo site's load model and counters: how many booking requests are in
// flight, the high-water mark, and how long a request should take at the
// current load.
//
// A request is admitted with try_enter(), which returns a ticket that holds
// its place in `in_flight` until it is destroyed. Above the hard limit
// try_enter() returns an empty ticket and counts a rejection; a rejected
// request never raises max_in_flight, so the high-water mark is exactly the
// concurrency the site actually served (what the gateway's tests check).
//
// Shared by all I/O threads: atomics only, no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace floodgate::demo {

class load_meter {
public:
    load_meter(std::size_t capacity, std::size_t hard_limit,
               std::chrono::milliseconds base_latency);

    // Holds one unit of in-flight load; movable, releases it on destruction.
    class ticket {
    public:
        ticket() = default;
        ticket(ticket&& other) noexcept;
        ticket& operator=(ticket&& other) noexcept;
        ~ticket();

        explicit operator bool() const { return meter_ != nullptr; }
        // The number in flight, this request included, when it was admitted.
        std::int64_t load() const { return load_; }

    private:
        friend class load_meter;
        ticket(load_meter* m, std::int64_t load) : meter_(m), load_(load) {}
        load_meter* meter_ = nullptr;
        std::int64_t load_ = 0;
    };

    ticket try_enter();

    // base while load <= capacity; beyond it base * (1 + 4 * (load - capacity) / capacity),
    // so at twice the capacity a request takes five times as long.
    std::chrono::microseconds latency_for(std::int64_t load) const;

    void count_request() { requests_total_.fetch_add(1, std::memory_order_relaxed); }
    void count_ping() { ping_total_.fetch_add(1, std::memory_order_relaxed); }
    void count_reservation() { reservations_total_.fetch_add(1, std::memory_order_relaxed); }

    struct snapshot {
        std::int64_t in_flight, max_in_flight;
        std::uint64_t requests_total, rejected_total, ping_total, reservations_total;
        std::size_t capacity, hard_limit;
        std::int64_t base_latency_ms;
    };
    snapshot read() const;

    // Counters to zero, max_in_flight to the current in_flight.
    void reset();

private:
    void leave() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

    const std::size_t capacity_;
    const std::size_t hard_limit_;
    const std::chrono::milliseconds base_latency_;
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<std::int64_t> max_in_flight_{0};
    std::atomic<std::uint64_t> requests_total_{0};
    std::atomic<std::uint64_t> rejected_total_{0};
    std::atomic<std::uint64_t> ping_total_{0};
    std::atomic<std::uint64_t> reservations_total_{0};
};

}  // namespace floodgate::demo
