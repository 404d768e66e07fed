#include "tokenstore/admission.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <deque>
#include <random>

using namespace floodgate::tokenstore;

namespace {
constexpr millis t0 = 1'700'000'000'000;
}

TEST_CASE("the budget allows a burst at once and then the rate", "[admission]") {
    gcra g(10.0, 5, t0);
    CHECK(g.available(t0) == 5);
    CHECK(g.take(100, t0) == 5);
    CHECK(g.take(1, t0) == 0);
    CHECK(g.take(100, t0 + 99) == 0);
    CHECK(g.take(100, t0 + 100) == 1);
    CHECK(g.take(100, t0 + 300) == 2);
    CHECK(g.take(100, t0 + 400) == 1);
    CHECK(g.take(100, t0 + 10'000) == 5);  // idle time refills only up to the burst
}

TEST_CASE("a rate below one per second works", "[admission]") {
    gcra g(0.5, 1, t0);
    CHECK(g.take(10, t0) == 1);
    CHECK(g.take(10, t0 + 1'999) == 0);
    CHECK(g.take(10, t0 + 2'000) == 1);
    CHECK(g.take(10, t0 + 3'000) == 0);
    CHECK(g.take(10, t0 + 4'000) == 1);
}

TEST_CASE("a rate of zero means no rate limit", "[admission]") {
    gcra g(0, 1, t0);
    CHECK(g.take(1'000'000, t0) == 1'000'000);
    CHECK(g.take(5, t0) == 5);
    g.set(2.0, 1, t0);
    CHECK(g.take(5, t0) == 1);
}

TEST_CASE("unused calls given back can be taken again, never beyond the burst", "[admission]") {
    gcra g(10.0, 5, t0);
    CHECK(g.take(5, t0) == 5);
    g.give_back(3, t0);
    CHECK(g.take(10, t0) == 3);
    g.give_back(100, t0);  // more than was taken: the bucket is simply full
    CHECK(g.take(10, t0) == 5);
}

TEST_CASE("a live rate change keeps the balance instead of forgiving debt", "[admission]") {
    gcra g(100.0, 50, t0);
    CHECK(g.take(50, t0) == 50);  // bucket empty
    g.set(10.0, 50, t0);          // a much slower rate must not refill the bucket
    CHECK(g.take(50, t0) == 0);
    CHECK(g.take(50, t0 + 1'000) == 10);
    gcra h(10.0, 50, t0);
    h.set(10.0, 5, t0);  // a smaller burst caps a full bucket
    CHECK(h.take(50, t0) == 5);
}

TEST_CASE("policies with impossible values are refused with the field's name", "[admission]") {
    CHECK(validate(room_policy{}).ok());
    CHECK(validate(room_policy{.rate = 0.5}).ok());
    CHECK(std::string(validate(room_policy{.rate = -3}).message()).rfind("rate:", 0) == 0);
    CHECK(std::string(validate(room_policy{.rate = NAN}).message()).rfind("rate:", 0) == 0);
    CHECK(std::string(validate(room_policy{.burst = 0}).message()).rfind("burst:", 0) == 0);
    CHECK(std::string(validate(room_policy{.claim_window = 0}).message())
              .rfind("claim_window:", 0) == 0);
}

TEST_CASE("calls per second never exceed rate plus burst, across live changes", "[admission][property]") {
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
        std::mt19937_64 rng(seed);
        const double rates[] = {0.5, 1, 3, 7.5, 50, 550};
        const std::uint32_t bursts[] = {1, 2, 5, 20};
        double rate = rates[rng() % 6];
        std::uint32_t burst = bursts[rng() % 4];
        gcra g(rate, burst, t0);
        struct event {
            millis at;
            std::uint64_t n;
            double max_rate;
            std::uint32_t max_burst;
        };
        std::deque<event> window;  // calls in the last second
        struct setting {
            millis from;
            double rate;
            std::uint32_t burst;
        };
        std::deque<setting> settings{{t0, rate, burst}};
        millis now = t0;
        for (int step = 0; step < 3'000; ++step) {
            now += std::uniform_int_distribution<millis>(0, 120)(rng);
            if (rng() % 50 == 0) {
                rate = rates[rng() % 6];
                burst = bursts[rng() % 4];
                g.set(rate, burst, now);
                settings.push_back({now, rate, burst});
            }
            const std::uint64_t want = std::uniform_int_distribution<std::uint64_t>(0, 40)(rng);
            std::uint64_t got = g.take(want, now);
            if (got > 0 && rng() % 4 == 0) {
                const std::uint64_t unused = rng() % (got + 1);
                g.give_back(unused, now);
                got -= unused;
            }
            window.push_back({now, got, 0, 0});
            while (window.front().at <= now - 1'000) window.pop_front();
            // The limits in force at any time within the window [now - 1 s, now].
            while (settings.size() > 1 && settings[1].from <= now - 1'000) settings.pop_front();
            double max_rate = 0;
            std::uint32_t max_burst = 0;
            for (const auto& s : settings) {
                max_rate = std::max(max_rate, s.rate);
                max_burst = std::max(max_burst, s.burst);
            }
            std::uint64_t in_window = 0;
            for (const auto& e : window) in_window += e.n;
            INFO("seed " << seed << " step " << step);
            REQUIRE(double(in_window) <= max_rate + max_burst);
        }
    }
}
