#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "loadgen/stats.hpp"

using namespace floodgate::bench;

namespace {

std::uint64_t brute_inversions(const std::vector<std::uint64_t>& v) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
        for (std::size_t j = i + 1; j < v.size(); ++j) n += v[i] > v[j];
    return n;
}

std::uint64_t brute_fifo(const std::vector<observed_admission>& v) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
        for (std::size_t j = i + 1; j < v.size(); ++j) n += v[j].admitted_s < v[i].last_waiting_s;
    return n;
}

}  // namespace

TEST_CASE("percentiles interpolate between the closest ranks", "[stats]") {
    CHECK_FALSE(percentile({}, 50).has_value());
    CHECK(*percentile({7}, 99) == 7);
    CHECK(*percentile({3, 1, 2}, 50) == 2);
    CHECK(*percentile({1, 2, 3, 4}, 50) == Approx(2.5));
    CHECK(*percentile({1, 2, 3, 4}, 0) == 1);
    CHECK(*percentile({1, 2, 3, 4}, 100) == 4);
    std::vector<double> hundred;
    for (int i = 1; i <= 101; ++i) hundred.push_back(i);
    CHECK(*percentile(hundred, 90) == Approx(91));
    CHECK(*percentile(hundred, 99) == Approx(100));
}

TEST_CASE("an event counter finds the busiest sliding window", "[stats]") {
    event_counter c(0.1);
    // 5 events late in second 0 and 5 early in second 1: no whole second holds more than 5,
    // but the window from 0.5 s to 1.5 s holds all 10.
    for (int i = 0; i < 5; ++i) c.add(0.55 + 0.05 * i);
    for (int i = 0; i < 5; ++i) c.add(1.05 + 0.05 * i);
    CHECK(c.total() == 10);
    CHECK(c.series(1.0) == std::vector<std::uint64_t>{5, 5});
    CHECK(c.max_window(1.0) == 10);
    CHECK(c.max_window(0.1) == 2);
    c.add(-3);  // before the start counts in the first bucket
    CHECK(c.series(1.0).front() == 6);
}

TEST_CASE("sliding means cover every run of consecutive values", "[stats]") {
    CHECK(sliding_means({1, 2, 3, 4}, 2) == std::vector<double>{1.5, 2.5, 3.5});
    CHECK(sliding_means({1, 2}, 3).empty());
    CHECK(sliding_means({5, 5, 5}, 3) == std::vector<double>{5});
}

TEST_CASE("the Kendall tau distance counts the pairs out of order", "[stats][fifo]") {
    CHECK(kendall_tau_distance({}) == 0);
    CHECK(kendall_tau_distance({1, 2, 3, 4}) == 0);
    CHECK(kendall_tau_distance({4, 3, 2, 1}) == 6);
    CHECK(kendall_tau_distance({0, 2, 1}) == 1);
    CHECK(kendall_tau_distance({2, 2, 1}) == 2);  // ties are in order, 2 > 1 twice
    std::mt19937_64 rng(5);
    for (int round = 0; round < 50; ++round) {
        std::vector<std::uint64_t> v(std::uniform_int_distribution<int>(0, 300)(rng));
        for (auto& x : v) x = rng() % 50;
        CHECK(kendall_tau_distance(v) == brute_inversions(v));
    }
}

TEST_CASE("FIFO inversions count only pairs whose order the bench saw for certain", "[stats][fifo]") {
    // Joined in this order. The second was admitted at 5.0; the first was told to wait at 6.0.
    CHECK(fifo_inversions({{6.0, 7.0}, {4.0, 5.0}}) == 1);
    // Overlapping brackets: the first may have been called before the second. Not counted.
    CHECK(fifo_inversions({{4.5, 7.0}, {4.0, 5.0}}) == 0);
    // In order.
    CHECK(fifo_inversions({{1, 2}, {2, 3}, {3, 4}}) == 0);
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> t(0, 100), len(0, 5);
    for (int round = 0; round < 50; ++round) {
        std::vector<observed_admission> v(std::uniform_int_distribution<int>(0, 300)(rng));
        for (auto& o : v) {
            o.last_waiting_s = t(rng);
            o.admitted_s = o.last_waiting_s + len(rng);
        }
        CHECK(fifo_inversions(v) == brute_fifo(v));
    }
}

TEST_CASE("FIFO inversions equal the Kendall tau distance when brackets are points", "[stats][fifo]") {
    std::mt19937_64 rng(3);
    std::vector<observed_admission> v(500);
    std::vector<std::uint64_t> times;
    for (auto& o : v) {
        o.admitted_s = o.last_waiting_s = double(rng() % 1000);
        times.push_back(static_cast<std::uint64_t>(o.admitted_s));
    }
    CHECK(fifo_inversions(v) == kendall_tau_distance(times));
}

TEST_CASE("evenly spaced arrivals follow each segment's rate", "[stats][arrivals]") {
    arrival_schedule s({{10, 5, 5}, {2, 100, 100}}, arrival_process::even, 1);
    std::vector<double> t;
    while (auto x = s.next()) t.push_back(*x);
    REQUIRE(t.size() == 50 + 200);
    CHECK(std::is_sorted(t.begin(), t.end()));
    CHECK(t.front() == Approx(0.1));
    CHECK(std::count_if(t.begin(), t.end(), [](double x) { return x < 10; }) == 50);
    CHECK(t.back() <= 12.0);
}

TEST_CASE("a ramp brings more people towards its end", "[stats][arrivals]") {
    arrival_schedule s({{10, 0, 100}}, arrival_process::even, 1);  // 500 people
    std::vector<double> t;
    while (auto x = s.next()) t.push_back(*x);
    CHECK(t.size() == 500);
    CHECK(std::is_sorted(t.begin(), t.end()));
    // Λ(t) = 5 t²: a quarter of the people by t = 5.
    CHECK(std::count_if(t.begin(), t.end(), [](double x) { return x < 5; }) == Approx(125).margin(1));
    arrival_schedule down({{10, 100, 0}}, arrival_process::even, 1);
    std::vector<double> d;
    while (auto x = down.next()) d.push_back(*x);
    CHECK(d.size() == 500);
    CHECK(std::count_if(d.begin(), d.end(), [](double x) { return x < 5; }) == Approx(375).margin(1));
}

TEST_CASE("Poisson arrivals are reproducible from the seed and near the expected count", "[stats][arrivals]") {
    auto run = [](std::uint64_t seed) {
        arrival_schedule s({{100, 50, 50}}, arrival_process::poisson, seed);
        std::vector<double> t;
        while (auto x = s.next()) t.push_back(*x);
        return t;
    };
    const auto a = run(42), b = run(42), c = run(43);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(double(a.size()) == Approx(5000).margin(300));  // about 4 standard deviations
}

TEST_CASE("a refused person reloads within the refresh range until their patience ends", "[stats][refresh]") {
    const value_range delay{1, 5};
    CHECK(*next_refresh_s(10, delay, 0.0, 1e18) == Approx(11));
    CHECK(*next_refresh_s(10, delay, 0.5, 1e18) == Approx(13));
    CHECK(*next_refresh_s(10, delay, 0.999, 1e18) == Approx(14.996));
    // A fixed delay is exactly that delay, whatever the draw.
    CHECK(*next_refresh_s(2, {3, 3}, 0.7, 1e18) == Approx(5));
    // Out of patience: the next reload would come at or after the moment the person gives up.
    CHECK_FALSE(next_refresh_s(10, delay, 0.5, 12.5).has_value());
    CHECK_FALSE(next_refresh_s(10, delay, 0.5, 13).has_value());
    CHECK(next_refresh_s(10, delay, 0.5, 13.01).has_value());
    // Over many draws: every reload inside the range, and the range covered evenly.
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u01(0, 1);
    double sum = 0, lo = 1e9, hi = 0;
    const int n = 20'000;
    for (int i = 0; i < n; ++i) {
        const double d = *next_refresh_s(100, delay, u01(rng), 1e18) - 100;
        sum += d;
        lo = std::min(lo, d);
        hi = std::max(hi, d);
    }
    CHECK(lo >= 1);
    CHECK(hi <= 5);
    CHECK(lo < 1.01);
    CHECK(hi > 4.99);
    CHECK(sum / n == Approx(3).margin(0.05));
}

TEST_CASE("a person who keeps being refused leaves after their patience, never before", "[stats][refresh]") {
    // Arrived at 0 with 20 s of patience: reloads go out until one would fall past 20 s.
    std::mt19937_64 rng(9);
    std::uniform_real_distribution<double> u01(0, 1);
    for (int person = 0; person < 200; ++person) {
        double t = 0;
        int reloads = 0;
        while (auto next = next_refresh_s(t, {1, 5}, u01(rng), 20)) {
            CHECK(*next > t);
            CHECK(*next < 20);
            t = *next;
            ++reloads;
        }
        CHECK(t >= 20 - 5);  // gave up only when the next reload could have fallen past 20 s
        CHECK(reloads >= 3);
        CHECK(reloads <= 19);
    }
}
