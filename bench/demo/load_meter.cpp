#include "load_meter.hpp"

#include <utility>

namespace floodgate::demo {

load_meter::load_meter(std::size_t capacity, std::size_t hard_limit,
                       std::chrono::milliseconds base_latency)
    : capacity_(capacity), hard_limit_(hard_limit), base_latency_(base_latency) {}

load_meter::ticket::ticket(ticket&& other) noexcept
    : meter_(std::exchange(other.meter_, nullptr)), load_(other.load_) {}

load_meter::ticket& load_meter::ticket::operator=(ticket&& other) noexcept {
    if (this != &other) {
        if (meter_) meter_->leave();
        meter_ = std::exchange(other.meter_, nullptr);
        load_ = other.load_;
    }
    return *this;
}

load_meter::ticket::~ticket() {
    if (meter_) meter_->leave();
}

load_meter::ticket load_meter::try_enter() {
    const std::int64_t load = in_flight_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (load > static_cast<std::int64_t>(hard_limit_)) {
        leave();
        rejected_total_.fetch_add(1, std::memory_order_relaxed);
        return {};
    }
    std::int64_t seen = max_in_flight_.load(std::memory_order_relaxed);
    while (load > seen &&
           !max_in_flight_.compare_exchange_weak(seen, load, std::memory_order_relaxed)) {
    }
    return ticket(this, load);
}

std::chrono::microseconds load_meter::latency_for(std::int64_t load) const {
    const auto base = std::chrono::duration_cast<std::chrono::microseconds>(base_latency_);
    const auto cap = static_cast<std::int64_t>(capacity_);
    if (load <= cap) return base;
    const double factor = 1.0 + 4.0 * static_cast<double>(load - cap) / static_cast<double>(cap);
    return std::chrono::microseconds(
        static_cast<std::int64_t>(static_cast<double>(base.count()) * factor));
}

load_meter::snapshot load_meter::read() const {
    return {in_flight_.load(std::memory_order_acquire),
            max_in_flight_.load(std::memory_order_relaxed),
            requests_total_.load(std::memory_order_relaxed),
            rejected_total_.load(std::memory_order_relaxed),
            ping_total_.load(std::memory_order_relaxed),
            reservations_total_.load(std::memory_order_relaxed),
            capacity_,
            hard_limit_,
            static_cast<std::int64_t>(base_latency_.count())};
}

void load_meter::reset() {
    requests_total_.store(0, std::memory_order_relaxed);
    rejected_total_.store(0, std::memory_order_relaxed);
    ping_total_.store(0, std::memory_order_relaxed);
    reservations_total_.store(0, std::memory_order_relaxed);
    max_in_flight_.store(in_flight_.load(std::memory_order_acquire), std::memory_order_relaxed);
}

}  // namespace floodgate::demo
