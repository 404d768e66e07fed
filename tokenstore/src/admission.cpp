#include "tokenstore/admission.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace floodgate::tokenstore {

absl::Status validate(const room_policy& p) {
    if (!std::isfinite(p.rate) || p.rate < 0)
        return absl::InvalidArgumentError("rate: expected a finite number >= 0 (0 = no limit), got " +
                                          std::to_string(p.rate));
    if (p.rate > 0 && p.rate < 1e-6)
        return absl::InvalidArgumentError("rate: below one user per 11 days, got " +
                                          std::to_string(p.rate));
    if (p.burst < 1) return absl::InvalidArgumentError("burst: expected at least 1, got 0");
    auto positive = [](const char* name, millis v) -> absl::Status {
        if (v <= 0)
            return absl::InvalidArgumentError(std::string(name) + ": expected a positive duration, got " +
                                              std::to_string(v) + " ms");
        return absl::OkStatus();
    };
    for (auto s : {positive("idle_timeout", p.idle_timeout), positive("session_ttl", p.session_ttl),
                   positive("claim_window", p.claim_window),
                   positive("abandon_after", p.abandon_after)})
        if (!s.ok()) return s;
    return absl::OkStatus();
}

gcra::gcra(double rate, std::uint32_t burst, millis now) { set(rate, burst, now); }

std::uint64_t gcra::available_locked(std::int64_t now_ns) const {
    if (unlimited_) return std::numeric_limits<std::uint64_t>::max();
    const std::int64_t base = std::max(tat_ns_, now_ns);
    if (base - now_ns > tolerance_ns_) return 0;
    return static_cast<std::uint64_t>((now_ns + tolerance_ns_ - base) / interval_ns_) + 1;
}

std::uint64_t gcra::available(millis now) const {
    mutex_lock lock(mu_);
    return available_locked(ns(now));
}

std::uint64_t gcra::take(std::uint64_t n, millis now) {
    mutex_lock lock(mu_);
    const std::int64_t t = ns(now);
    const std::uint64_t k = std::min(n, available_locked(t));
    if (!unlimited_ && k > 0) tat_ns_ = std::max(tat_ns_, t) + std::int64_t(k) * interval_ns_;
    return k;
}

void gcra::give_back(std::uint64_t n, millis now) {
    mutex_lock lock(mu_);
    if (unlimited_ || n == 0) return;
    // Never below now: a full bucket stays full (refunds cannot exceed the burst).
    tat_ns_ = std::max(tat_ns_ - std::int64_t(n) * interval_ns_, ns(now));
}

void gcra::set(double rate, std::uint32_t burst, millis now) {
    mutex_lock lock(mu_);
    const std::int64_t t = ns(now);
    burst = std::max<std::uint32_t>(burst, 1);
    if (!(rate > 0) || !std::isfinite(rate)) {
        unlimited_ = true;
        burst_ = burst;
        return;
    }
    // The balance in calls (fractional), so a change neither forgives nor forgets debt.
    double balance = burst;
    if (!unlimited_) {
        const std::int64_t base = std::max(tat_ns_, t);
        balance = double(t + tolerance_ns_ + interval_ns_ - base) / double(interval_ns_);
    }
    balance = std::clamp(balance, 0.0, double(burst));
    const double interval = std::ceil(1e9 / rate);  // rounding up never exceeds the rate
    interval_ns_ = interval >= 9e15 ? std::int64_t(9e15) : std::max<std::int64_t>(1, std::int64_t(interval));
    tolerance_ns_ = std::int64_t(burst - 1) * interval_ns_;
    burst_ = burst;
    unlimited_ = false;
    tat_ns_ = t + tolerance_ns_ + interval_ns_ -
              static_cast<std::int64_t>(std::floor(balance * double(interval_ns_)));
}

}  // namespace floodgate::tokenstore
