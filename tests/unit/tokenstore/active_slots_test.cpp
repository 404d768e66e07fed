#include "tokenstore/active_slots.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace floodgate::tokenstore;

namespace {
constexpr millis t0 = 1'700'000'000'000;
}

TEST_CASE("no more than max_active slots are held at once", "[slots]") {
    active_slots s({.max_active = 3});
    auto a = s.acquire(t0), b = s.acquire(t0), c = s.acquire(t0);
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    CHECK_FALSE(s.acquire(t0));
    CHECK(s.active() == 3);
    CHECK(s.release(*b, release_reason::explicit_));
    CHECK_FALSE(s.release(*b, release_reason::explicit_));  // only once
    auto d = s.acquire(t0);
    REQUIRE(d);
    CHECK(d->slot == b->slot);  // the slot is reused...
    CHECK(d->gen != b->gen);    // ...under a new generation
    CHECK_FALSE(s.touch(*b, t0));  // so the old pass no longer works
    CHECK(s.touch(*d, t0));
}

TEST_CASE("reservations for calls count against max_active", "[slots]") {
    active_slots s({.max_active = 5});
    REQUIRE(s.acquire(t0));
    CHECK(s.reserve(10) == 4);
    CHECK(s.reserve(1) == 0);
    CHECK_FALSE(s.acquire(t0));  // a direct admission cannot take a called user's place
    auto l = s.acquire_reserved(t0);
    REQUIRE(l);
    CHECK(s.active() == 2);
    CHECK(s.reserved() == 3);
    s.unreserve(3);  // no-shows
    CHECK(s.committed() == 2);
    CHECK(s.reserve(10) == 3);
}

TEST_CASE("idle and too-old leases expire with their reason counted", "[slots]") {
    active_slots s({.max_active = 10, .idle_timeout = 10'000, .session_ttl = 60'000});
    auto idle = s.acquire(t0);
    auto busy = s.acquire(t0);
    REQUIRE(idle);
    REQUIRE(busy);
    for (millis t = t0; t <= t0 + 30'000; t += 5'000) CHECK(s.touch(*busy, t));
    CHECK_FALSE(s.touch(*idle, t0 + 30'000));  // refused before expire() even runs
    CHECK(s.expire(t0 + 30'000) == 1);
    CHECK(s.counts().by_reason[std::size_t(release_reason::idle)] == 1);
    for (millis t = t0 + 30'000; t <= t0 + 60'000; t += 5'000) s.touch(*busy, t);
    CHECK(s.held(*busy, t0 + 60'000));
    CHECK(s.expire(t0 + 62'000) == 1);
    CHECK(s.counts().by_reason[std::size_t(release_reason::ttl)] == 1);
    CHECK(s.active() == 0);
    auto u = s.acquire(t0 + 62'000);
    REQUIRE(u);
    CHECK(s.release(*u, release_reason::upstream));
    CHECK(s.counts().by_reason[std::size_t(release_reason::upstream)] == 1);
}

TEST_CASE("a lease is never expired before its idle timeout", "[slots]") {
    active_slots s({.max_active = 1, .idle_timeout = 10'000});
    auto l = s.acquire(t0 + 999);
    REQUIRE(l);
    CHECK(s.expire(t0 + 10'999) == 0);
    CHECK(s.touch(*l, t0 + 10'999));
}

TEST_CASE("lowering max_active admits nobody new until the count drains", "[slots]") {
    active_slots s({.max_active = 4});
    std::vector<lease> held;
    for (int i = 0; i < 4; ++i) held.push_back(*s.acquire(t0));
    s.set_limits({.max_active = 2});
    CHECK_FALSE(s.acquire(t0));
    s.release(held[0], release_reason::explicit_);
    s.release(held[1], release_reason::explicit_);
    CHECK_FALSE(s.acquire(t0));
    s.release(held[2], release_reason::explicit_);
    CHECK(s.acquire(t0));
}

TEST_CASE("threads acquiring and releasing never exceed max_active", "[slots][threads]") {
    active_slots s({.max_active = 50});
    std::atomic<int> over{0}, failed_releases{0};
    std::atomic<int> current{0};
    auto worker = [&] {
        std::vector<lease> mine;
        for (int i = 0; i < 50'000; ++i) {
            if (i % 3 != 2) {
                if (auto l = s.acquire(t0)) {
                    if (current.fetch_add(1) + 1 > 50) over.fetch_add(1);
                    mine.push_back(*l);
                }
            } else if (!mine.empty()) {
                current.fetch_sub(1);
                if (!s.release(mine.back(), release_reason::explicit_)) failed_releases.fetch_add(1);
                mine.pop_back();
            }
            if (!mine.empty()) s.touch(mine.front(), t0);
        }
        for (auto& l : mine) {
            current.fetch_sub(1);
            s.release(l, release_reason::explicit_);
        }
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
    CHECK(over.load() == 0);
    CHECK(failed_releases.load() == 0);
    CHECK(s.active() == 0);
    CHECK(s.committed() == 0);
}
