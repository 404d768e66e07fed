#include "room_runtime.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "tokenstore/token.hpp"

namespace floodgate {

tokenstore::room_policy policy_of(const room_config& cfg) {
    tokenstore::room_policy p;
    p.rate = cfg.rate;
    p.burst = cfg.burst;
    p.max_active = cfg.max_active;
    p.idle_timeout = cfg.idle_timeout.count();
    p.session_ttl = cfg.session_ttl.count();
    p.claim_window = cfg.claim_window.count();
    p.abandon_after = cfg.abandon_after.count();
    p.paused = cfg.mode == room_mode::paused;
    return p;
}

room_runtime::room_runtime(std::string name, std::unique_ptr<tokenstore::waiting_room> wr, double rate)
    : name_(std::move(name)), id_(tokenstore::room_id(name_)), wr_(std::move(wr)), call_rate_(rate) {}

absl::StatusOr<std::shared_ptr<room_runtime>> room_runtime::create(const room_config& cfg, millis now) {
    tokenstore::waiting_room::options opts;
    opts.policy = policy_of(cfg);
    opts.queue.abandon_after = cfg.abandon_after.count();
    auto wr = tokenstore::waiting_room::create(opts, now);
    if (!wr.ok()) return wr.status();
    return std::shared_ptr<room_runtime>(new room_runtime(cfg.name, std::move(*wr), cfg.rate));
}

void room_runtime::apply(const room_config& cfg, millis now) {
    wr_->set_policy(policy_of(cfg), now);
    if (!measured_) call_rate_.store(cfg.rate, std::memory_order_relaxed);
}

millis room_runtime::tick(millis now) {
    const auto report = wr_->tick(now);
    if (window_start_ == 0) window_start_ = now;
    window_calls_ += report.called;
    const millis span = now - window_start_;
    if (span >= 1000) {
        // Exponential smoothing with a time constant of about ten seconds.
        const double measured = 1000.0 * static_cast<double>(window_calls_) / static_cast<double>(span);
        const double alpha = std::min(1.0, static_cast<double>(span) / 10'000.0);
        const double prev = call_rate_.load(std::memory_order_relaxed);
        if (window_calls_ > 0 || measured_) {
            call_rate_.store(measured_ ? prev + alpha * (measured - prev) : measured,
                             std::memory_order_relaxed);
            measured_ = true;
        }
        window_start_ = now;
        window_calls_ = 0;
    }
    return now + std::max<millis>(1, wr_->tick_interval());
}

absl::StatusOr<std::shared_ptr<room_runtime>> room_registry::get_or_create(const room_config& cfg,
                                                                           millis now) {
    std::lock_guard lock(mu_);
    auto it = rooms_.find(cfg.name);
    if (it != rooms_.end()) {
        it->second->apply(cfg, now);
        return it->second;
    }
    auto r = room_runtime::create(cfg, now);
    if (!r.ok()) return r.status();
    rooms_.emplace(cfg.name, *r);
    cv_.notify_all();
    return *r;
}

void room_registry::start() {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void room_registry::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// The admitter: ticks every room at the interval its policy asks for.
void room_registry::run() {
    std::map<std::string, millis> next;
    std::unique_lock lock(mu_);
    while (!stopping_) {
        const millis now = tokenstore::wall_clock_ms();
        millis wake = now + 100;
        for (auto& [name, room] : rooms_) {
            millis& at = next[name];
            if (at <= now) at = room->tick(now);
            wake = std::min(wake, at);
        }
        cv_.wait_for(lock, std::chrono::milliseconds(std::max<millis>(1, wake - now)));
    }
}

}  // namespace floodgate
