// The statistics floodgate-bench reports: percentiles, counts over sliding
// windows, and the order measures (Kendall tau distance, FIFO inversions).
// Pure functions over plain vectors, so the unit tests can check each against
// a brute-force answer.
//
//   percentile({3, 1, 2}, 50) == 2
//   event_counter c(0.1); c.add(0.05); c.add(0.95); c.max_window(1.0) == 2
//   kendall_tau_distance({0, 2, 1}) == 1
//
// The one thing not to get wrong: fifo_inversions() counts only pairs whose
// order the bench saw for certain (the later joiner held a pass before the
// earlier one was last told to wait); pairs inside one poll interval are not
// knowable from outside and are not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "loadgen/scenario.hpp"

namespace floodgate::bench {

// The p-th percentile (0..100) with linear interpolation between the closest
// ranks (R type 7); nullopt for no values. Takes a copy to sort.
std::optional<double> percentile(std::vector<double> values, double p);

// Percentiles of one sorted vector, several at once.
std::optional<double> percentile_sorted(const std::vector<double>& sorted, double p);

// Counts of events in fixed buckets (bucket_s wide, from time 0), for rates
// and sliding-window maxima.
class event_counter {
public:
    explicit event_counter(double bucket_s = 0.1) : bucket_s_(bucket_s) {}

    void add(double t_s, std::uint64_t n = 1);
    // Counts per `width_s` (a multiple of the bucket), from 0 to the last event.
    std::vector<std::uint64_t> series(double width_s) const;
    // The largest count in any window of width_s that starts on a bucket boundary.
    std::uint64_t max_window(double width_s) const;
    std::uint64_t total() const { return total_; }
    double bucket_s() const { return bucket_s_; }

private:
    double bucket_s_;
    std::vector<std::uint64_t> buckets_;
    std::uint64_t total_ = 0;
};

// Means of every run of `width` consecutive values (a sliding window); empty
// when there are fewer values than width.
std::vector<double> sliding_means(const std::vector<double>& values, std::size_t width);

// The number of pairs i < j with v[i] > v[j] (ties are in order): the Kendall
// tau distance between the order given and sorted order. O(n log n) by merge sort.
std::uint64_t kendall_tau_distance(std::vector<std::uint64_t> v);

// One person who stayed in line, as the bench saw them: the last moment the
// gateway was asked and said "wait" (not yet called at that moment), and the
// moment a pass was in hand (called by then).
struct observed_admission {
    double last_waiting_s = 0;  // send time of the last "waiting" answer (or of the join)
    double admitted_s = 0;      // receive time of the pass
};

// People in join order (ticket seq); counts pairs i < j where j held a pass
// before i was last told to wait: j was certainly called before i although i
// joined first. O(n log n) by merge sort. With last_waiting_s == admitted_s for
// everyone this is kendall_tau_distance of the admission times.
std::uint64_t fifo_inversions(const std::vector<observed_admission>& in_join_order);

// When a person refused outright (a 429 or 503 instead of the page, and no place in line:
// --target nginx-limit) asks again, as someone pressing reload: at refused_at_s plus a delay
// drawn uniformly from `delay` (u01 is a uniform draw in [0, 1)); nullopt when that would be at
// or after give_up_s, the end of the person's patience, so they leave instead.
//
//   next_refresh_s(10, {1, 5}, 0.5, 1e18) == 13
//   next_refresh_s(10, {1, 5}, 0.5, 12.5) == nullopt
std::optional<double> next_refresh_s(double refused_at_s, const value_range& delay, double u01, double give_up_s);

// Arrival times for a scenario's segments: even spacing, or a Poisson process
// whose rate follows the segments (ramps included), from a seeded generator.
class arrival_schedule {
public:
    arrival_schedule(std::vector<arrival_segment> segments, arrival_process process, std::uint64_t seed);
    // The next arrival in seconds from the start, or nullopt after the last segment.
    std::optional<double> next();

private:
    std::vector<arrival_segment> segments_;
    arrival_process process_;
    std::mt19937_64 rng_;
    std::size_t seg_ = 0;
    double seg_start_ = 0;  // time at which segment seg_ starts
    double u_ = 0;          // cumulative expected arrivals within segment seg_
    bool first_ = true;
};

}  // namespace floodgate::bench
