#include "tokenstore/ring.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

using namespace floodgate::tokenstore;
using state = ring::state;

namespace {

constexpr millis t0 = 1'700'000'000'000;  // a manual clock, in ms

std::unique_ptr<ring> make_ring(ring::options o = {}, millis now = t0) {
    auto r = ring::create(o, now);
    REQUIRE(r.ok());
    return *std::move(r);
}

std::uint64_t join(ring& r, millis now) {
    auto s = r.join(now);
    REQUIRE(s.has_value());
    return *s;
}

}  // namespace

TEST_CASE("joins take consecutive numbers and count everyone ahead", "[ring]") {
    auto r = make_ring();
    for (std::uint64_t i = 0; i < 100; ++i) CHECK(join(*r, t0) == i);
    CHECK(r->next_seq() == 100);
    CHECK(r->waiting() == 100);
    const ring::position p = r->locate(57);
    CHECK(p.st == state::waiting);
    CHECK(p.ahead == 57);
    CHECK(r->locate(100).st == state::unknown);
}

TEST_CASE("a called ticket learns it was called and can be claimed exactly once", "[ring]") {
    auto r = make_ring();
    for (int i = 0; i < 10; ++i) join(*r, t0);
    const ring::advance_result a = r->advance(3, t0 + 100);
    CHECK(a.called == 3);
    CHECK(a.cursor == 3);
    CHECK(r->calls_pending() == 3);
    CHECK(r->locate(2).st == state::called);
    CHECK(r->locate(3).ahead == 0);
    CHECK(r->locate(9).ahead == 6);
    CHECK(r->claim(3) == ring::claim_status::not_called);
    CHECK(r->claim(1) == ring::claim_status::claimed);
    CHECK(r->claim(1) == ring::claim_status::already_claimed);
    CHECK(r->locate(1).st == state::claimed);
    CHECK(r->calls_pending() == 2);
    CHECK(r->claim(55) == ring::claim_status::unknown);
}

TEST_CASE("unclaimed calls become no-shows after the claim window", "[ring]") {
    auto r = make_ring();
    for (int i = 0; i < 5; ++i) join(*r, t0);
    r->advance(2, t0);
    r->advance(2, t0 + 5'000);
    CHECK(r->claim(0) == ring::claim_status::claimed);
    CHECK(r->expire_calls(t0 + 59'999, 60'000) == 0);
    CHECK(r->expire_calls(t0 + 60'000, 60'000) == 1);  // seq 1; seq 0 was claimed
    CHECK(r->locate(1).st == state::missed);
    CHECK(r->claim(1) == ring::claim_status::missed);
    CHECK(r->claim(2) == ring::claim_status::claimed);  // the second batch is still in time
    CHECK(r->expire_calls(t0 + 65'000, 60'000) == 1);   // seq 3
    CHECK(r->calls_pending() == 0);
    CHECK(r->locate(3).st == state::missed);  // remembered for another claim window
    CHECK(r->expire_calls(t0 + 125'000, 60'000) == 0);
    CHECK(r->tail() == 4);
    CHECK(r->locate(0).st == state::expired);
}

TEST_CASE("abandoned tickets are skipped and stop counting as ahead", "[ring]") {
    auto r = make_ring({.abandon_after = 10'000});
    for (int i = 0; i < 10; ++i) join(*r, t0);
    // Everyone except 2, 5 and 6 keeps polling.
    for (millis t = t0; t <= t0 + 20'000; t += 1'000)
        for (std::uint64_t s : {0, 1, 3, 4, 7, 8, 9}) r->heartbeat(s, t);
    const millis now = t0 + 20'000;
    CHECK(r->locate(9).ahead == 9);  // nobody has looked yet
    CHECK(r->sweep(100, now) == 3);
    r->publish_index();
    CHECK(r->locate(9).ahead == 6);
    CHECK(r->locate(5).st == state::abandoned);
    CHECK_FALSE(r->heartbeat(5, now));  // an abandoned ticket never comes back
    CHECK(r->locate(5).st == state::abandoned);
    const ring::advance_result a = r->advance(4, now);
    CHECK(a.called == 4);  // 0 1 3 4
    CHECK(a.cursor == 5);
    CHECK(r->locate(7).ahead == 0);
    CHECK(r->locate(9).ahead == 2);
    CHECK(r->locate(2).st == state::abandoned);
    CHECK(r->waiting() == 3);
}

TEST_CASE("nobody is abandoned before abandon_after has passed", "[ring]") {
    auto r = make_ring({.abandon_after = 10'000});
    join(*r, t0 + 999);                     // seen late in second t0
    CHECK(r->sweep(10, t0 + 10'999) == 0);  // exactly 10 s: not yet
    CHECK(r->sweep(10, t0 + 11'000) == 1);  // 10.001 s
    join(*r, t0 + 11'000);                  // seen early in a second
    CHECK(r->sweep(10, t0 + 21'999) == 0);  // 10.999 s: still within the 1 s resolution
    CHECK(r->sweep(10, t0 + 22'000) == 1);
}

TEST_CASE("the walk marks stale tickets abandoned even without a sweep", "[ring]") {
    auto r = make_ring({.abandon_after = 5'000});
    for (int i = 0; i < 4; ++i) join(*r, t0);
    r->heartbeat(3, t0 + 9'000);
    const ring::advance_result a = r->advance(10, t0 + 9'000);
    CHECK(a.called == 1);
    CHECK(a.abandoned == 3);
    CHECK(r->locate(3).st == state::called);
    CHECK(r->abandoned_total() == 3);
}

TEST_CASE("a ticket that leaves is abandoned by the next sweep", "[ring]") {
    auto r = make_ring();
    for (int i = 0; i < 3; ++i) join(*r, t0);
    CHECK(r->leave(1));
    CHECK(r->sweep(10, t0 + 1'000) == 1);
    CHECK(r->locate(2).ahead == 1);
    CHECK_FALSE(r->leave(1));
}

TEST_CASE("a full ring refuses joins and frees blocks as the tail passes", "[ring]") {
    auto r = make_ring({.capacity = 1, .abandon_after = 3'600'000});  // rounds up to the minimum
    const std::uint64_t cap = r->capacity();
    CHECK(cap >= 4096);
    std::uint64_t joined = 0;
    while (r->join(t0)) ++joined;
    CHECK(joined < cap);
    CHECK(joined >= cap / 2);
    // Call, claim and expire everything several times over: the ring wraps around.
    millis now = t0;
    std::uint64_t claimed = 0;
    for (int round = 0; round < 12; ++round) {
        now += 1'000;
        const std::uint64_t from = r->cursor();
        const auto a = r->advance(cap, now);
        for (std::uint64_t s = from; s < a.cursor; ++s)
            if (s % 3 != 0 && r->claim(s) == ring::claim_status::claimed) ++claimed;
        r->expire_calls(now + 120'000, 60'000);
        CHECK(r->tail() == r->cursor());
        while (r->join(now)) ++joined;
        CHECK(r->next_seq() - r->tail() < cap);
        // Fresh tickets after a wrap start clean.
        const std::uint64_t last = r->next_seq() - 1;
        CHECK(r->locate(last).st == state::waiting);
        CHECK(r->locate(last).ahead == last - r->cursor());
    }
    CHECK(joined > 9 * cap);
    CHECK(claimed > 0);
}

TEST_CASE("a restored ring keeps every waiting ticket's order and pending calls", "[ring]") {
    auto r = make_ring({.next_seq = 1'000, .cursor = 600, .tail = 590});
    CHECK(r->cursor() == 600);
    CHECK(r->next_seq() == 1'000);
    CHECK(r->locate(700).ahead == 100);
    CHECK(r->locate(595).st == state::called);
    CHECK(r->locate(500).st == state::expired);
    CHECK(r->calls_pending() == 10);
    CHECK(r->claim(595) == ring::claim_status::claimed);
    CHECK(join(*r, t0) == 1'000);
    CHECK(r->expire_calls(t0 + 60'000, 60'000) == 9);

    auto bad = ring::create({.next_seq = 5, .cursor = 6}, t0);
    CHECK_FALSE(bad.ok());
}

TEST_CASE("a live user's position never increases between polls", "[ring][property]") {
    for (std::uint32_t seed = 1; seed <= 8; ++seed) {
        std::mt19937_64 rng(seed);
        const millis abandon = 5'000;
        auto r = make_ring({.abandon_after = abandon});
        struct user {
            std::uint64_t seq;
            millis last_seen;
            bool present;  // keeps polling
            std::uint64_t last_ahead;
        };
        std::vector<user> users;
        millis now = t0;
        for (int step = 0; step < 400; ++step) {
            now += std::uniform_int_distribution<millis>(50, 700)(rng);
            for (int j = std::uniform_int_distribution<int>(0, 6)(rng); j > 0; --j) {
                const std::uint64_t s = join(*r, now);
                users.push_back({s, now, rng() % 4 != 0, s - r->cursor()});
            }
            for (auto& u : users) {
                if (u.present && rng() % 10 == 0) u.present = false;  // walks away
                if (!u.present || rng() % 3 == 0) continue;
                const ring::position p = r->poll(u.seq, now);
                if (p.st == state::waiting) {
                    INFO("seed " << seed << " seq " << u.seq);
                    REQUIRE(p.ahead <= u.last_ahead);
                    REQUIRE(p.ahead <= u.seq - r->cursor());
                    u.last_ahead = p.ahead;
                    u.last_seen = now;
                } else {
                    // Only someone who stayed away too long may lose the place.
                    if (p.st == state::abandoned) REQUIRE(now - u.last_seen > abandon);
                    u.present = false;
                }
            }
            if (rng() % 2 == 0) r->advance(std::uniform_int_distribution<int>(0, 4)(rng), now);
            r->sweep(std::uniform_int_distribution<int>(1, 64)(rng), now);
            if (rng() % 3 == 0) r->publish_index();
            r->expire_calls(now, 10'000);
        }
    }
}

TEST_CASE("ten million tickets join, are counted and are called in seconds", "[ring][scale]") {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t n = 10'000'000;
    auto r = make_ring({.abandon_after = 60'000});
    for (std::uint64_t i = 0; i < n; ++i) r->join(t0);
    CHECK(r->next_seq() == n);
    CHECK(r->locate(n - 1).ahead == n - 1);
    for (std::uint64_t s = 0; s < n; s += 10) r->leave(s);  // a tenth walk away
    std::uint64_t marked = 0;
    for (int i = 0; i < 10; ++i) marked += r->sweep(1u << 20, t0 + 1'000);
    r->publish_index();
    CHECK(marked == n / 10);
    CHECK(r->locate(n - 1).ahead == n - 1 - n / 10);
    CHECK(r->waiting() == n - n / 10);
    std::uint64_t called = 0;
    while (r->cursor() < n) called += r->advance(1u << 20, t0 + 2'000).called;
    CHECK(called == n - n / 10);
    r->expire_calls(t0 + 200'000, 60'000);
    CHECK(r->tail() == n);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    CHECK(secs < 10.0);  // optimised builds only; about 1 s on one core
#else
    WARN("10M run took " << secs << " s (no time limit in this build)");
#endif
}

TEST_CASE("joins and heartbeats on two threads keep the invariants while the admitter advances",
          "[ring][threads]") {
    auto r = make_ring({.abandon_after = 2'000});
    std::atomic<millis> clock{t0};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> violations{0}, polls{0}, claims{0};

    auto client = [&](std::uint32_t seed) {
        std::mt19937_64 rng(seed);
        struct mine {
            std::uint64_t seq;
            std::uint64_t last_ahead;
            bool present;
        };
        std::vector<mine> tickets;
        while (!stop.load(std::memory_order_relaxed)) {
            const millis now = clock.load(std::memory_order_relaxed);
            if (tickets.size() < 4'000) {
                if (auto s = r->join(now)) tickets.push_back({*s, ~std::uint64_t(0), rng() % 5 != 0});
            }
            for (int k = 0; k < 8 && !tickets.empty(); ++k) {
                mine& t = tickets[rng() % tickets.size()];
                if (!t.present) continue;
                const ring::position p = r->poll(t.seq, clock.load(std::memory_order_relaxed));
                polls.fetch_add(1, std::memory_order_relaxed);
                if (p.st == state::waiting) {
                    if (p.ahead > t.last_ahead) violations.fetch_add(1);
                    t.last_ahead = p.ahead;
                } else if (p.st == state::called) {
                    if (r->claim(t.seq) == ring::claim_status::claimed) claims.fetch_add(1);
                    t.present = false;
                } else {
                    t.present = false;
                }
            }
            std::erase_if(tickets, [](const mine& t) { return !t.present; });
        }
    };

    std::thread a(client, 1), b(client, 2);
    std::uint64_t called = 0, last_cursor = 0, noshows = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    while (std::chrono::steady_clock::now() < deadline) {
        const millis now = clock.fetch_add(10) + 10;
        const auto adv = r->advance(50, now);
        called += adv.called;
        if (adv.cursor < last_cursor) violations.fetch_add(1);
        last_cursor = adv.cursor;
        noshows += r->expire_calls(now, 1'000);
        r->sweep(4'096, now);
        r->publish_index();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    stop = true;
    a.join();
    b.join();
    CHECK(violations.load() == 0);
    CHECK(polls.load() > 1'000);
    CHECK(called > 0);
    CHECK(claims.load() > 0);
    CHECK(claims.load() <= called);
    // Every call ends as exactly one claim or one no-show.
    noshows += r->expire_calls(clock.load() + 10'000, 1'000);
    CHECK(r->calls_pending() == 0);
    CHECK(claims.load() + noshows == called);
}

// ---- shared seqs (several gateway nodes numbering one line) ------------------------------------

TEST_CASE("shared seqs: tickets handed out elsewhere are taken in, and the walk settles holes", "[ring][shared]") {
    auto r = make_ring();
    // This node handed out 0 and 1; another node 4 and 5 (2 and 3: a range nobody used).
    CHECK(r->join_at(0, t0));
    CHECK(r->join_at(1, t0));
    CHECK(r->next_seq() == 2);
    r->see(5, t0);  // a poll here for another node's ticket
    CHECK(r->next_seq() == 6);
    CHECK(r->locate(5).st == state::waiting);
    // Never heard of here: the holes count as ahead until settled.
    CHECK(r->locate(5).ahead == 5);  // 0 to 4
    // The holder read the liveness bits: 4 was seen somewhere; everything up to 6 is settled.
    r->see(4, t0);
    CHECK(r->settle_unseen(0, 6) == 2);  // 2 and 3
    r->publish_index();
    CHECK(r->locate(5).ahead == 3);
    // The walk calls 0, 1, 4 and 5 and skips the holes.
    const ring::advance_result a = r->advance(10, t0 + 100);
    CHECK(a.called == 4);
    CHECK(a.cursor == 6);
    CHECK(r->locate(2).st == state::abandoned);
    // A ticket taken in twice is still one ticket; one already settled stays settled.
    CHECK_FALSE(r->join_at(3, t0 + 200));
}

TEST_CASE("shared seqs: a follower follows the holder's cursor and its abandoned marks", "[ring][shared]") {
    auto r = make_ring();
    for (std::uint64_t s = 0; s < 8; ++s) CHECK(r->join_at(s, t0));
    // The holder found 2 abandoned and called up to 5: the dead mark comes first, then the cursor.
    CHECK(r->mark_abandoned(2));
    CHECK_FALSE(r->mark_abandoned(2));
    r->publish_index();
    CHECK(r->locate(7).ahead == 6);
    CHECK(r->follow(5, t0 + 100) == 4);  // 0, 1, 3, 4
    CHECK(r->cursor() == 5);
    CHECK(r->walk_cursor() == 5);
    CHECK(r->calls_pending() == 4);
    CHECK(r->locate(3).st == state::called);
    CHECK(r->locate(2).st == state::abandoned);
    CHECK(r->claim(4) == ring::claim_status::claimed);
    CHECK(r->locate(7).ahead == 2);
    // Never backwards; a mark behind the cursor changes nothing.
    CHECK(r->follow(3, t0 + 200) == 0);
    CHECK(r->cursor() == 5);
    CHECK_FALSE(r->mark_abandoned(1));
    // A cursor beyond anything heard of here calls the unheard tickets too (the holder knew them).
    CHECK(r->follow(10, t0 + 300) == 5);  // 5, 6, 7, 8, 9
    CHECK(r->next_seq() == 10);
    // Unclaimed calls become no-shows after the claim window, as for the holder's own.
    CHECK(r->expire_calls(t0 + 100 + 60'000 + 100, 60'000) == 3);  // 0, 1, 3
}

TEST_CASE("shared seqs: a ticket given up here is not revived by another node's sighting", "[ring][shared]") {
    auto r = make_ring();
    CHECK(r->join_at(0, t0));
    CHECK(r->join_at(1, t0));
    CHECK(r->leave(0));
    r->see(0, t0 + 1000);
    const ring::advance_result a = r->advance(10, t0 + 2000);
    CHECK(a.called == 1);
    CHECK(r->locate(0).st == state::abandoned);
    CHECK(r->locate(1).st == state::called);
}
