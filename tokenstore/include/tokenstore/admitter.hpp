// The admitter moves a room's cursor forward on each tick by as many live tickets as the room's
// policy allows. It is the only writer of the cursor; everyone else reads it with acquire loads.
//
//   admitter adm(ring, slots, policy, now);
//   on one thread, every adm.tick_interval() ms:  admitter::tick_report r = adm.tick(now);
//   from the admin API (any thread):              adm.set_policy(new_policy, now);
//
// One tick: (1) calls older than claim_window that nobody claimed become no-shows and their
// capacity returns to the budget; (2) idle and too-old leases are released (at most once per
// second); (3) unless paused, n = min(rate budget, free capacity, waiting) tickets are called
// in seq order, skipping abandoned ones; whatever the walk did not use goes back to both
// budgets; (4) a slice of the queue (sweep_per_second, pro rata) is swept for abandoned
// tickets; (5) at most every index_every, the ring's index is republished so `ahead` stops
// counting them.
//
// Tick often enough. A tick can call at most `burst` people (the budget never holds more), so
// ticking every P seconds delivers at most burst / P per second, and whatever accrues while the
// budget is full is lost: tick_interval() is burst / (2 x rate), clamped to [1 ms, 100 ms]
// (rate 550 and burst 50: every 45 ms). A tick with nothing to do costs well under a
// microsecond. With burst 1 the budget has no room for timer lateness at all, so at high
// rates (rate > 500/s with 1 ms ticks) it delivers somewhat less than the rate; use burst >= 2.
//
// Guarantees, given that direct admissions also take from budget() and active_slots:
//   called per second <= rate + burst; active + outstanding calls <= max_active (unless
//   max_active was lowered below the current count, in which case nobody new is admitted until
//   it drains); FIFO among live tickets; no-shows returned after claim_window.
//
// The one thing not to get wrong: tick() must always run on the same thread (or be externally
// serialised); it drives the ring's single-writer half.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/active_slots.hpp"
#include "tokenstore/admission.hpp"
#include "tokenstore/clock.hpp"
#include "tokenstore/ring.hpp"

namespace floodgate::tokenstore {

class admitter {
public:
    struct options {
        std::uint64_t max_calls_per_tick = 100'000;  // bounds a tick when nothing else does
        std::uint64_t sweep_per_second = 4'000'000;  // tickets examined for abandonment
        millis expire_every = 1'000;                 // lease expiry scan interval
        millis index_every = 100;                    // `ahead` lags abandonment by this much
    };

    struct tick_report {
        std::uint64_t called = 0;
        std::uint64_t abandoned = 0;  // found by the walk or the sweep
        std::uint64_t noshows = 0;
        std::uint64_t expired = 0;  // leases released for idle or ttl
        std::uint64_t cursor = 0;
    };

    admitter(ring& queue, active_slots& slots, const room_policy& policy, millis now,
             const options& opts);
    admitter(ring& queue, active_slots& slots, const room_policy& policy, millis now)
        : admitter(queue, slots, policy, now, options{}) {}

    tick_report tick(millis now) ABSL_LOCKS_EXCLUDED(mu_);

    // Live policy change; takes effect at once for budgets and at the next tick for the rest.
    void set_policy(const room_policy& policy, millis now) ABSL_LOCKS_EXCLUDED(mu_);
    room_policy policy() const ABSL_LOCKS_EXCLUDED(mu_);
    // Lock-free, for the request path.
    bool paused() const noexcept { return paused_.load(std::memory_order_relaxed); }

    // Shared queues (several gateway nodes, docs/redis.md). Any thread.
    // calling false: this node does not hold the cursor lease; tick() keeps the housekeeping
    // (no-shows, lease expiry, the index) but calls nobody and marks nothing abandoned.
    void set_calling(bool on) noexcept { calling_.store(on, std::memory_order_relaxed); }
    bool calling() const noexcept { return calling_.load(std::memory_order_relaxed); }
    // The walk stops before this seq (tickets beyond it may not be known here yet).
    void set_walk_end(std::uint64_t end) noexcept { walk_end_.store(end, std::memory_order_relaxed); }
    // Sessions held on other nodes: they count against max_active here.
    void set_active_elsewhere(std::uint64_t n) noexcept {
        elsewhere_.store(n, std::memory_order_relaxed);
    }

    // The rate budget, shared with direct admissions.
    gcra& budget() noexcept { return budget_; }

    // How often to call tick() so the full rate can be called (see above).
    millis tick_interval() const ABSL_LOCKS_EXCLUDED(mu_);

private:
    ring& ring_;
    active_slots& slots_;
    const options opts_;
    gcra budget_;
    mutable mutex mu_;
    room_policy policy_ ABSL_GUARDED_BY(mu_);
    std::atomic<bool> paused_{false};
    std::atomic<bool> calling_{true};
    std::atomic<std::uint64_t> walk_end_{~std::uint64_t(0)};
    std::atomic<std::uint64_t> elsewhere_{0};
    // Tick thread only.
    millis next_expire_ = 0;
    millis next_index_ = 0;
    millis last_tick_ = 0;
};

}  // namespace floodgate::tokenstore
