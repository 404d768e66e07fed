#include "loadgen/stats.hpp"

#include <algorithm>
#include <cmath>

namespace floodgate::bench {

std::optional<double> percentile_sorted(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return std::nullopt;
    p = std::clamp(p, 0.0, 100.0);
    const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const auto hi = std::min(lo + 1, sorted.size() - 1);
    const double frac = rank - static_cast<double>(lo);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

std::optional<double> percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    return percentile_sorted(values, p);
}

void event_counter::add(double t_s, std::uint64_t n) {
    if (t_s < 0 || !std::isfinite(t_s)) t_s = 0;
    const auto i = static_cast<std::size_t>(t_s / bucket_s_);
    if (i >= buckets_.size()) buckets_.resize(i + 1, 0);
    buckets_[i] += n;
    total_ += n;
}

std::vector<std::uint64_t> event_counter::series(double width_s) const {
    const auto per = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(width_s / bucket_s_)));
    std::vector<std::uint64_t> out((buckets_.size() + per - 1) / per, 0);
    for (std::size_t i = 0; i < buckets_.size(); ++i) out[i / per] += buckets_[i];
    return out;
}

std::uint64_t event_counter::max_window(double width_s) const {
    const auto per = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(width_s / bucket_s_)));
    std::uint64_t sum = 0, best = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        sum += buckets_[i];
        if (i >= per) sum -= buckets_[i - per];
        best = std::max(best, sum);
    }
    return best;
}

std::vector<double> sliding_means(const std::vector<double>& values, std::size_t width) {
    std::vector<double> out;
    if (width == 0 || values.size() < width) return out;
    double sum = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        sum += values[i];
        if (i >= width) sum -= values[i - width];
        if (i + 1 >= width) out.push_back(sum / static_cast<double>(width));
    }
    return out;
}

namespace {

std::uint64_t merge_count(std::vector<std::uint64_t>& v, std::vector<std::uint64_t>& tmp, std::size_t lo,
                          std::size_t hi) {
    if (hi - lo < 2) return 0;
    const std::size_t mid = lo + (hi - lo) / 2;
    std::uint64_t n = merge_count(v, tmp, lo, mid) + merge_count(v, tmp, mid, hi);
    std::size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        if (v[j] < v[i]) {
            n += mid - i;  // v[j] is out of order with every remaining left element
            tmp[k++] = v[j++];
        } else {
            tmp[k++] = v[i++];
        }
    }
    while (i < mid) tmp[k++] = v[i++];
    while (j < hi) tmp[k++] = v[j++];
    std::copy(tmp.begin() + static_cast<std::ptrdiff_t>(lo), tmp.begin() + static_cast<std::ptrdiff_t>(hi),
              v.begin() + static_cast<std::ptrdiff_t>(lo));
    return n;
}

// Sorts [lo, hi) of `by_lo` by last_waiting_s and of `by_hi` by admitted_s (both hold the same
// people in join order on entry) and counts pairs i < j with admitted_s[j] < last_waiting_s[i].
std::uint64_t merge_fifo(std::vector<observed_admission>& by_lo, std::vector<observed_admission>& by_hi,
                         std::vector<observed_admission>& tmp, std::size_t lo, std::size_t hi) {
    if (hi - lo < 2) return 0;
    const std::size_t mid = lo + (hi - lo) / 2;
    std::uint64_t n = merge_fifo(by_lo, by_hi, tmp, lo, mid) + merge_fifo(by_lo, by_hi, tmp, mid, hi);
    // Left half (earlier joiners) sorted by last_waiting_s, right half by admitted_s: for each
    // left element, the right elements admitted before it was last told to wait.
    std::size_t j = mid;
    for (std::size_t i = lo; i < mid; ++i) {
        while (j < hi && by_hi[j].admitted_s < by_lo[i].last_waiting_s) ++j;
        n += j - mid;
    }
    auto merge = [&](std::vector<observed_admission>& v, auto key) {
        std::merge(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(mid),
                   v.begin() + static_cast<std::ptrdiff_t>(mid), v.begin() + static_cast<std::ptrdiff_t>(hi),
                   tmp.begin() + static_cast<std::ptrdiff_t>(lo),
                   [&](const observed_admission& a, const observed_admission& b) { return key(a) < key(b); });
        std::copy(tmp.begin() + static_cast<std::ptrdiff_t>(lo), tmp.begin() + static_cast<std::ptrdiff_t>(hi),
                  v.begin() + static_cast<std::ptrdiff_t>(lo));
    };
    merge(by_lo, [](const observed_admission& a) { return a.last_waiting_s; });
    merge(by_hi, [](const observed_admission& a) { return a.admitted_s; });
    return n;
}

}  // namespace

std::uint64_t kendall_tau_distance(std::vector<std::uint64_t> v) {
    std::vector<std::uint64_t> tmp(v.size());
    return merge_count(v, tmp, 0, v.size());
}

std::uint64_t fifo_inversions(const std::vector<observed_admission>& in_join_order) {
    std::vector<observed_admission> by_lo = in_join_order, by_hi = in_join_order, tmp(in_join_order.size());
    return merge_fifo(by_lo, by_hi, tmp, 0, in_join_order.size());
}

std::optional<double> next_refresh_s(double refused_at_s, const value_range& delay, double u01,
                                     double give_up_s) {
    const double hi = std::max(delay.lo, delay.hi);
    const double at = refused_at_s + delay.lo + (hi - delay.lo) * std::clamp(u01, 0.0, 1.0);
    if (at >= give_up_s) return std::nullopt;
    return at;
}

arrival_schedule::arrival_schedule(std::vector<arrival_segment> segments, arrival_process process,
                                   std::uint64_t seed)
    : segments_(std::move(segments)), process_(process), rng_(seed) {}

std::optional<double> arrival_schedule::next() {
    // Unit-rate points u (evenly spaced, or Poisson: exponential gaps) mapped through the inverse
    // of the cumulative rate Λ(t) = a t + (b - a) t² / (2T) of each segment.
    double step = 1.0;
    if (process_ == arrival_process::poisson) step = std::exponential_distribution<double>(1.0)(rng_);
    else if (first_) step = 0.5;  // the first of evenly spaced arrivals half a gap in
    first_ = false;
    u_ += step;
    while (seg_ < segments_.size()) {
        const arrival_segment& s = segments_[seg_];
        const double total = s.people();
        if (u_ <= total) {
            const double a = s.rate_from, b = s.rate_to, T = s.duration_s;
            double t;
            if (std::abs(b - a) < 1e-12) {
                t = u_ / a;
            } else {
                const double k = (b - a) / T;  // Λ(t) = a t + k t² / 2
                t = (-a + std::sqrt(std::max(0.0, a * a + 2 * k * u_))) / k;
            }
            return seg_start_ + std::clamp(t, 0.0, T);
        }
        u_ -= total;
        seg_start_ += s.duration_s;
        ++seg_;
    }
    return std::nullopt;
}

}  // namespace floodgate::bench
