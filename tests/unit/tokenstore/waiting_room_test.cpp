#include "tokenstore/waiting_room.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <random>
#include <thread>
#include <vector>

using namespace floodgate::tokenstore;
using state = ring::state;
using outcome = waiting_room::join_outcome;

namespace {

constexpr millis t0 = 1'700'000'000'000;

std::unique_ptr<waiting_room> make_room(const room_policy& p, millis now = t0,
                                        admitter::options a = {}) {
    auto r = waiting_room::create({.policy = p, .queue = {}, .admission = a}, now);
    REQUIRE(r.ok());
    return *std::move(r);
}

}  // namespace

TEST_CASE("an empty room admits at once while capacity allows, then queues", "[room]") {
    auto room = make_room({.rate = 100, .burst = 2, .max_active = 10});
    CHECK(room->join(t0).outcome == outcome::admitted);
    CHECK(room->join(t0).outcome == outcome::admitted);
    const auto third = room->join(t0);  // burst spent
    CHECK(third.outcome == outcome::queued);
    CHECK(third.pos.ahead == 0);
    // Once someone waits, nobody overtakes them, whatever the budget says.
    CHECK(room->join(t0 + 5'000).outcome == outcome::queued);
    CHECK(room->join(t0 + 5'000, "", false).outcome == outcome::queued);
}

TEST_CASE("a called user gets a pass on the next poll, exactly once", "[room]") {
    auto room = make_room({.rate = 1, .burst = 1, .max_active = 10});
    const auto j = room->join(t0, "", false);
    REQUIRE(j.outcome == outcome::queued);
    CHECK(room->poll(j.seq, t0).st == state::waiting);
    room->tick(t0 + 100);
    const auto p = room->poll(j.seq, t0 + 200);
    CHECK(p.st == state::claimed);
    REQUIRE(p.pass);
    CHECK(room->touch(*p.pass, t0 + 300));
    const auto again = room->poll(j.seq, t0 + 400);
    CHECK(again.st == state::claimed);
    CHECK_FALSE(again.pass);
    CHECK(room->snapshot().active == 1);
    CHECK(room->snapshot().admitted_total == 1);
}

TEST_CASE("five tabs hold one place and a second device is refused while the pass is active",
          "[room]") {
    auto room = make_room({.rate = 10, .burst = 1, .max_active = 10});
    const auto first = room->join(t0, "user-1", false);
    REQUIRE(first.outcome == outcome::queued);
    for (int tab = 0; tab < 4; ++tab) {
        const auto again = room->join(t0 + tab, "user-1", false);
        CHECK(again.outcome == outcome::queued);
        CHECK(again.seq == first.seq);
    }
    CHECK(room->join(t0, "user-2", false).seq != first.seq);
    room->tick(t0 + 1'000);
    const auto p = room->poll(first.seq, t0 + 1'100, "user-1");
    REQUIRE(p.pass);
    CHECK(room->join(t0 + 2'000, "user-1").outcome == outcome::already_admitted);
    CHECK(room->poll(first.seq, t0 + 2'000, "user-1").pass == std::nullopt);
    room->release(*p.pass, release_reason::explicit_);
    CHECK(room->join(t0 + 3'000, "user-1").outcome != outcome::already_admitted);
}

TEST_CASE("a paused room calls nobody and resumes in order", "[room]") {
    room_policy p{.rate = 100, .burst = 10, .max_active = 100, .paused = true};
    auto room = make_room(p);
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 5; ++i) seqs.push_back(room->join(t0).seq);
    CHECK(room->join(t0).outcome == outcome::queued);  // no direct admission while paused
    CHECK(room->tick(t0 + 1'000).called == 0);
    p.paused = false;
    room->set_policy(p, t0 + 1'000);
    CHECK(room->tick(t0 + 1'100).called == 6);
    for (auto s : seqs) CHECK(room->poll(s, t0 + 1'200).pass);
}

TEST_CASE("a no-show's capacity returns to the budget after the claim window", "[room]") {
    auto room = make_room({.rate = 100, .burst = 5, .max_active = 1, .claim_window = 10'000});
    const auto absent = room->join(t0, "", false);
    const auto next = room->join(t0, "", false);
    CHECK(room->tick(t0 + 100).called == 1);
    CHECK(room->tick(t0 + 5'000).called == 0);  // the absent user's call holds the only slot
    CHECK(room->poll(next.seq, t0 + 5'000).st == state::waiting);
    const auto r = room->tick(t0 + 10'100);
    CHECK(r.noshows == 1);
    CHECK(r.called == 1);
    CHECK(room->poll(absent.seq, t0 + 10'200).st == state::missed);
    CHECK(room->poll(next.seq, t0 + 10'200).pass);
}

TEST_CASE("random joins, polls, abandonments, releases and policy changes keep every invariant",
          "[room][property]") {
    const double rates[] = {0, 0.5, 2, 10, 40};
    const std::uint32_t bursts[] = {1, 3, 10};
    const std::uint64_t max_actives[] = {0, 5, 20, 60};
    const millis abandon = 4'000, claim_window = 5'000;
    std::uint64_t total_admitted = 0, total_missed = 0, total_abandoned = 0, total_expired = 0;

    for (std::uint32_t seed = 1; seed <= 10; ++seed) {
        std::mt19937_64 rng(seed);
        auto pick_policy = [&] {
            return room_policy{.rate = rates[rng() % 5],
                               .burst = bursts[rng() % 3],
                               .max_active = max_actives[rng() % 4],
                               .idle_timeout = 6'000,
                               .session_ttl = 30'000,
                               .claim_window = claim_window,
                               .abandon_after = abandon};
        };
        room_policy policy = pick_policy();
        millis now = t0;
        auto room = make_room(policy, now, {.max_calls_per_tick = 1'000, .sweep_per_second = 2'000});

        struct user {
            std::uint64_t seq = 0;
            bool waiting = false, admitted = false, gone = false;
            bool present = true;  // polls (while waiting) or touches (while admitted)
            millis last_poll = 0, last_touch = 0, admitted_at = 0, called_at = -1;
            std::uint64_t last_ahead = ~std::uint64_t(0);
            lease pass;
        };
        std::vector<user> users;  // in join order, so waiting users are in seq order
        std::deque<std::pair<millis, std::uint64_t>> calls;
        struct setting {
            millis from;
            double rate;
            std::uint32_t burst;
        };
        std::deque<setting> settings{{now, policy.rate, policy.burst}};
        std::uint64_t prev_committed = 0, prev_cursor = 0, admitted = 0, missed = 0;

        for (int step = 0; step < 1'200; ++step) {
            INFO("seed " << seed << " step " << step);
            now += std::uniform_int_distribution<millis>(20, 400)(rng);
            if (rng() % 80 == 0) {
                policy = pick_policy();
                room->set_policy(policy, now);
                settings.push_back({now, policy.rate, policy.burst});
            }
            for (int k = std::uniform_int_distribution<int>(0, 4)(rng); k > 0; --k) {
                const auto j = room->join(now, "", rng() % 2 == 0);
                user u;
                u.seq = j.seq;
                u.present = rng() % 5 != 0;
                if (j.outcome == outcome::admitted) {
                    calls.emplace_back(now, 1);
                    u.admitted = true;
                    u.pass = *j.pass;
                    u.admitted_at = u.last_touch = now;
                } else {
                    REQUIRE(j.outcome == outcome::queued);
                    u.waiting = true;
                    u.last_poll = now;
                    u.last_ahead = j.pos.ahead;
                }
                users.push_back(u);
            }

            for (auto& u : users) {
                if (u.gone) continue;
                if (u.present && rng() % 150 == 0) u.present = false;  // walks away
                if (u.waiting && u.present &&
                    (rng() % 2 == 0 || now - u.last_poll >= abandon - 500)) {
                    const auto p = room->poll(u.seq, now);
                    if (p.st == state::waiting) {
                        REQUIRE(p.ahead <= u.last_ahead);  // never moves back
                        u.last_ahead = p.ahead;
                        u.last_poll = now;
                    } else {
                        // Present users poll often enough to be neither abandoned nor missed.
                        REQUIRE(p.st == state::claimed);
                        REQUIRE(p.pass);
                        u.waiting = false;
                        u.admitted = true;
                        u.pass = *p.pass;
                        u.admitted_at = u.last_touch = now;
                        ++admitted;
                    }
                } else if (u.admitted && u.present) {
                    if (rng() % 40 == 0) {
                        room->release(u.pass, rng() % 2 ? release_reason::explicit_
                                                        : release_reason::upstream);
                        u.gone = true;
                    } else if (rng() % 2 == 0) {
                        const bool ok = room->touch(u.pass, now);
                        if (now - u.last_touch < policy.idle_timeout - 1'000 &&
                            now - u.admitted_at < policy.session_ttl - 1'000)
                            REQUIRE(ok);
                        if (ok)
                            u.last_touch = now;
                        else
                            u.gone = true;
                    }
                }
            }

            const auto rep = room->tick(now);
            if (rep.called > 0) calls.emplace_back(now, rep.called);
            missed += rep.noshows;

            // Called per second <= rate + burst (the largest in force during the second).
            while (!calls.empty() && calls.front().first <= now - 1'000) calls.pop_front();
            while (settings.size() > 1 && settings[1].from <= now - 1'000) settings.pop_front();
            bool unlimited = false;
            double max_rate = 0;
            std::uint32_t max_burst = 0;
            for (const auto& s : settings) {
                unlimited |= s.rate == 0;
                max_rate = std::max(max_rate, s.rate);
                max_burst = std::max(max_burst, s.burst);
            }
            std::uint64_t in_second = 0;
            for (const auto& c : calls) in_second += c.second;
            if (!unlimited) REQUIRE(double(in_second) <= max_rate + max_burst);

            // Active + outstanding calls <= max_active; a lowered limit only drains.
            const ring& q = room->queue();
            const std::uint64_t committed = room->slots().committed();
            REQUIRE(committed == room->slots().active() + q.calls_pending());
            if (policy.max_active > 0 && committed > policy.max_active)
                REQUIRE(committed <= prev_committed);
            prev_committed = committed;

            // The cursor only moves forward; FIFO among live tickets; `ahead` never undercounts;
            // no call stays unclaimed past the claim window.
            const std::uint64_t cursor = q.cursor();
            REQUIRE(cursor >= prev_cursor);
            prev_cursor = cursor;
            std::uint64_t live_before = 0;
            for (auto& u : users) {
                if (!u.waiting) continue;
                const ring::position p = q.locate(u.seq);
                const bool live = now - u.last_poll <= abandon;
                if (live) REQUIRE(p.st != state::abandoned);  // never skipped while live
                if (u.seq < cursor) {
                    REQUIRE(p.st != state::waiting);
                } else {
                    REQUIRE((p.st == state::waiting || p.st == state::abandoned));
                }
                if (p.st == state::waiting) {
                    REQUIRE(p.ahead >= live_before);
                    REQUIRE(p.ahead <= u.seq - cursor);
                    if (live) ++live_before;
                }
                if (p.st == state::called) {
                    if (u.called_at < 0) u.called_at = now;
                    // Calls within 100 ms share a batch, which may lengthen the window by that.
                    REQUIRE(now - u.called_at < claim_window + 100);
                }
                if (p.st == state::missed || p.st == state::abandoned ||
                    p.st == state::expired) {
                    u.waiting = false;
                    u.gone = true;
                }
            }
        }
        const auto s = room->snapshot();
        CHECK(s.noshows_total == missed);
        total_admitted += admitted;
        total_missed += missed;
        total_abandoned += s.abandoned_total;
        total_expired += s.released.by_reason[std::size_t(release_reason::idle)] +
                         s.released.by_reason[std::size_t(release_reason::ttl)];
    }
    // The runs exercised every path.
    CHECK(total_admitted > 1'000);
    CHECK(total_missed > 10);
    CHECK(total_abandoned > 100);
    CHECK(total_expired > 10);
    WARN("admitted " << total_admitted << ", no-shows " << total_missed << ", abandoned "
                     << total_abandoned << ", expired leases " << total_expired);
}

TEST_CASE("two threads joining and polling while the admitter ticks never break the limits",
          "[room][threads]") {
    const room_policy policy{.rate = 2'000,
                             .burst = 20,
                             .max_active = 40,
                             .idle_timeout = 1'000,
                             .claim_window = 500,
                             .abandon_after = 1'000};
    auto room = make_room(policy);
    std::atomic<millis> clock{t0};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> violations{0}, passes{0};

    auto client = [&](std::uint32_t seed) {
        std::mt19937_64 rng(seed);
        struct mine {
            std::uint64_t seq;
            std::uint64_t last_ahead;
        };
        std::vector<mine> waiting;
        std::vector<lease> held;
        while (!stop.load(std::memory_order_relaxed)) {
            const millis now = clock.load(std::memory_order_relaxed);
            if (waiting.size() < 500) {
                const auto j = room->join(now, "", rng() % 2 == 0);
                if (j.outcome == outcome::queued) waiting.push_back({j.seq, j.pos.ahead});
                if (j.pass) held.push_back(*j.pass);
            }
            for (auto it = waiting.begin(); it != waiting.end();) {
                const auto p = room->poll(it->seq, clock.load(std::memory_order_relaxed));
                if (p.st == state::waiting) {
                    if (p.ahead > it->last_ahead) violations.fetch_add(1);
                    it->last_ahead = p.ahead;
                    ++it;
                    continue;
                }
                if (p.pass) {
                    held.push_back(*p.pass);
                    passes.fetch_add(1);
                }
                it = waiting.erase(it);
            }
            if (!held.empty() && rng() % 3 == 0) {
                room->release(held.back(), release_reason::explicit_);
                held.pop_back();
            }
        }
    };

    std::thread a(client, 1), b(client, 2);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    while (std::chrono::steady_clock::now() < deadline) {
        const millis now = clock.fetch_add(5) + 5;
        room->tick(now);
        const auto& slots = room->slots();
        if (slots.committed() > policy.max_active) violations.fetch_add(1);
        if (slots.active() > policy.max_active) violations.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    stop = true;
    a.join();
    b.join();
    CHECK(violations.load() == 0);
    CHECK(passes.load() > 0);
    CHECK(room->slots().committed() == room->slots().active() + room->queue().calls_pending());
}

TEST_CASE("ticking at the recommended interval calls people at the configured rate",
          "[room][admitter]") {
    struct cfg {
        double rate;
        std::uint32_t burst;
        double at_least;  // fraction of the rate delivered
    };
    // Burst 1 leaves no room for a tick's lateness: at 550/s with 1 ms ticks, every call waits
    // for the next whole millisecond (about 500/s).
    for (const cfg c : {cfg{550, 50, 0.99}, cfg{550, 2, 0.99}, cfg{550, 1, 0.9},
                        cfg{0.5, 1, 0.97}, cfg{40, 3, 0.99}, cfg{5'000, 100, 0.99}}) {
        auto room = make_room({.rate = c.rate, .burst = c.burst, .abandon_after = 3'600'000});
        for (int i = 0; i < 60'000; ++i) room->join(t0, "", false);
        const millis interval = room->tick_interval();
        CHECK(interval >= 1);
        CHECK(interval <= 100);
        std::uint64_t called = 0;
        const millis seconds = c.rate < 1 ? 60 : 10;
        for (millis t = t0 + interval; t <= t0 + seconds * 1'000; t += interval)
            called += room->tick(t).called;
        INFO("rate " << c.rate << " burst " << c.burst << " interval " << interval);
        CHECK(double(called) <= c.rate * double(seconds) + c.burst);
        CHECK(double(called) >= c.at_least * c.rate * double(seconds));
    }
}

TEST_CASE("a restored room keeps places and lets restored calls claim", "[room]") {
    auto r = waiting_room::create(
        {.policy = {.rate = 10, .burst = 1, .max_active = 2},
         .queue = {.next_seq = 500, .cursor = 400, .tail = 395}},
        t0);
    REQUIRE(r.ok());
    waiting_room& room = **r;
    CHECK(room.poll(450, t0).ahead == 50);
    CHECK(room.slots().committed() == 5);  // five restored calls hold capacity
    CHECK(room.poll(396, t0 + 10).pass);
    CHECK(room.tick(t0 + 100).called == 0);  // still over max_active
    const auto after = room.tick(t0 + 60'100);
    CHECK(after.noshows == 4);
    CHECK(after.called == 1);  // the freed capacity is used in the same tick
    CHECK(room.poll(400, t0 + 60'200).pass);
    CHECK(room.join(t0 + 60'300, "", false).seq == 500);
}
