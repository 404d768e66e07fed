#include "tokenstore/admitter.hpp"

#include <algorithm>

namespace floodgate::tokenstore {

admitter::admitter(ring& queue, active_slots& slots, const room_policy& policy, millis now,
                   const options& opts)
    : ring_(queue), slots_(slots), opts_(opts), budget_(policy.rate, policy.burst, now) {
    mutex_lock lock(mu_);
    policy_ = policy;
    paused_.store(policy.paused, std::memory_order_relaxed);
    slots_.set_limits({policy.max_active, policy.idle_timeout, policy.session_ttl});
}

void admitter::set_policy(const room_policy& policy, millis now) {
    mutex_lock lock(mu_);
    policy_ = policy;
    paused_.store(policy.paused, std::memory_order_relaxed);
    budget_.set(policy.rate, policy.burst, now);
    slots_.set_limits({policy.max_active, policy.idle_timeout, policy.session_ttl});
}

room_policy admitter::policy() const {
    mutex_lock lock(mu_);
    return policy_;
}

millis admitter::tick_interval() const {
    const room_policy p = policy();
    if (!p.rate_limited()) return 100;
    // Half the time the budget takes to fill: a late timer loses nothing to a full bucket.
    const double ms = 500.0 * double(p.burst) / p.rate;
    return ms >= 100 ? 100 : ms <= 1 ? 1 : static_cast<millis>(ms);
}

admitter::tick_report admitter::tick(millis now) {
    const room_policy p = policy();
    tick_report r;
    ring_.set_abandon_after(p.abandon_after);

    r.noshows = ring_.expire_calls(now, p.claim_window);
    slots_.unreserve(r.noshows);

    if (now >= next_expire_) {
        r.expired = slots_.expire(now);
        next_expire_ = now + opts_.expire_every;
    }

    const bool calling = calling_.load(std::memory_order_relaxed);
    if (!p.paused && calling) {
        const std::uint64_t cursor = ring_.cursor();
        const std::uint64_t end =
            std::min(ring_.next_seq(), std::max(cursor, walk_end_.load(std::memory_order_relaxed)));
        const std::uint64_t want = std::min(opts_.max_calls_per_tick, end - cursor);
        if (want > 0) {
            // Reserve from both budgets first, walk, then return what the walk did not use:
            // direct admissions on other threads can never squeeze in between.
            const std::uint64_t by_rate = budget_.take(want, now);
            std::uint64_t n = slots_.reserve(by_rate);
            // Sessions on other nodes share max_active: give back what would exceed it.
            if (const std::uint64_t others = elsewhere_.load(std::memory_order_relaxed);
                others > 0 && p.concurrency_limited()) {
                const std::uint64_t cap = p.max_active > others ? p.max_active - others : 0;
                const std::uint64_t committed = slots_.committed();
                if (committed > cap) {
                    const std::uint64_t excess = std::min(n, committed - cap);
                    slots_.unreserve(excess);
                    n -= excess;
                }
            }
            const ring::advance_result a = ring_.advance(n, now, end - cursor);
            slots_.unreserve(n - a.called);
            budget_.give_back(by_rate - a.called, now);
            r.called = a.called;
            r.abandoned += a.abandoned;
        }
    }
    // The sweep is paced by time, not by ticks, so fast tickers do not sweep more.
    const millis elapsed = last_tick_ == 0 ? 1'000 : std::clamp<millis>(now - last_tick_, 0, 1'000);
    last_tick_ = now;
    const std::uint64_t sweep = std::max<std::uint64_t>(
        1'024, opts_.sweep_per_second * std::uint64_t(elapsed) / 1'000);
    if (calling) r.abandoned += ring_.sweep(sweep, now);
    if (now >= next_index_) {
        ring_.publish_index();
        next_index_ = now + opts_.index_every;
    }
    r.cursor = ring_.cursor();
    return r;
}

}  // namespace floodgate::tokenstore
