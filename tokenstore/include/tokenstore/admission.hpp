// A room's admission policy and its rate budget (GCRA).
//
//   gcra budget(550.0, 50, now);             // 550 users/s, up to 50 at one instant
//   std::uint64_t n = budget.take(want, now);  // how many may be called now (taken)
//   budget.give_back(n - used, now);           // return what the walk did not use
//   budget.set(100.0, 10, now);                // live change, keeps the current balance
//
// The GCRA is a token bucket of depth `burst` refilled at `rate` per second, kept as one
// "theoretical arrival time" in nanoseconds. Guarantee: in any window of W seconds at most
// floor(W * rate) + burst calls are taken, also across live changes (then with the largest rate
// and burst in force during the window); so called-per-second never exceeds rate + burst.
//
// rate 0 means "no rate limit": only max_active bounds admission (a concurrency-only room, the
// NetFUNNEL model). To stop calling people, pause the room; do not set the rate to 0.
//
// The one thing not to get wrong: take() reserves. Whatever the caller does not use must go back
// through give_back(), or the room admits less than its rate.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/clock.hpp"

namespace floodgate::tokenstore {

struct room_policy {
    double rate = 0;                 // users per second, > 0 (0.5 works); 0 = no rate limit
    std::uint32_t burst = 1;         // calls allowed at one instant; at least 1
    std::uint64_t max_active = 0;    // concurrent admitted users; 0 = no concurrency limit
    millis idle_timeout = 600'000;   // an admitted user idle this long loses the slot
    millis session_ttl = 1'800'000;  // an admitted user loses the slot this long after admission
    millis claim_window = 60'000;    // a called user must claim the pass within this
    millis abandon_after = 60'000;   // a waiting user not seen this long loses the place
    bool paused = false;             // nobody is called; the queue holds

    bool rate_limited() const noexcept { return rate > 0; }
    bool concurrency_limited() const noexcept { return max_active > 0; }
};

// Checks ranges; messages name the field: "rate: expected a finite number >= 0, got -3".
absl::Status validate(const room_policy& p);

class gcra {
public:
    gcra(double rate, std::uint32_t burst, millis now);

    // Takes up to n calls from the budget at time now and returns how many were taken.
    std::uint64_t take(std::uint64_t n, millis now) ABSL_LOCKS_EXCLUDED(mu_);

    // Returns n unused calls taken earlier (never more than the bucket holds).
    void give_back(std::uint64_t n, millis now) ABSL_LOCKS_EXCLUDED(mu_);

    // How many calls take() would grant now (UINT64_MAX if unlimited).
    std::uint64_t available(millis now) const ABSL_LOCKS_EXCLUDED(mu_);

    // Changes rate and burst, keeping the current balance (capped at the new burst).
    void set(double rate, std::uint32_t burst, millis now) ABSL_LOCKS_EXCLUDED(mu_);

private:
    static std::int64_t ns(millis t) noexcept { return t * 1'000'000; }
    std::uint64_t available_locked(std::int64_t now_ns) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

    mutable mutex mu_;  // held for a few arithmetic operations only
    bool unlimited_ ABSL_GUARDED_BY(mu_) = true;
    std::int64_t interval_ns_ ABSL_GUARDED_BY(mu_) = 1;  // T = ceil(1e9 / rate)
    std::int64_t tolerance_ns_ ABSL_GUARDED_BY(mu_) = 0;  // tau = (burst - 1) * T
    std::uint32_t burst_ ABSL_GUARDED_BY(mu_) = 1;
    std::int64_t tat_ns_ ABSL_GUARDED_BY(mu_) = 0;  // theoretical arrival time
};

}  // namespace floodgate::tokenstore
