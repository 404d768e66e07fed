// A waiting room at run time: the tokenstore's waiting_room (queue, active
// slots, identity map, admitter) plus the smoothed call rate used for ETAs
// and the counters the metrics will read.
//
// Rooms outlive configuration generations: a reload or an admin change
// applies a new policy to the same room, so nobody loses a place in line.
// The one thing not to get wrong: tick() runs on the admitter thread only;
// everything else is safe from every I/O thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "gateway/config.hpp"
#include "tokenstore/waiting_room.hpp"

namespace floodgate {

using tokenstore::millis;

class room_runtime {
public:
    static absl::StatusOr<std::shared_ptr<room_runtime>> create(const room_config& cfg, millis now);

    const std::string& name() const { return name_; }
    std::uint64_t id() const { return id_; }
    tokenstore::waiting_room& wr() { return *wr_; }

    // Applies the admission part of cfg (rate, burst, max_active, timeouts, mode).
    void apply(const room_config& cfg, millis now);

    // People called per second, smoothed over about ten seconds; the
    // configured rate until something has been measured.
    double call_rate() const { return call_rate_.load(std::memory_order_relaxed); }

    // The admitter thread: one admission step; returns when to tick next.
    millis tick(millis now);

    std::atomic<std::uint64_t> tickets_issued{0};
    std::atomic<std::uint64_t> direct_admissions{0};

private:
    room_runtime(std::string name, std::unique_ptr<tokenstore::waiting_room> wr, double rate);

    std::string name_;
    std::uint64_t id_;
    std::unique_ptr<tokenstore::waiting_room> wr_;
    std::atomic<double> call_rate_;
    // admitter thread only
    millis window_start_ = 0;
    std::uint64_t window_calls_ = 0;
    bool measured_ = false;
};

tokenstore::room_policy policy_of(const room_config& cfg);

// All rooms of the process, and the admitter thread that ticks them.
class room_registry {
public:
    room_registry() = default;
    ~room_registry() { stop(); }

    // The room named cfg.name, created on first use, with cfg applied.
    absl::StatusOr<std::shared_ptr<room_runtime>> get_or_create(const room_config& cfg, millis now);

    void start();
    void stop();

private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::map<std::string, std::shared_ptr<room_runtime>> rooms_;
    std::thread thread_;
};

}  // namespace floodgate
