#include "tokenstore/journal.hpp"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

using namespace floodgate::tokenstore;
using state = ring::state;
using outcome = waiting_room::join_outcome;
namespace fs = std::filesystem;

namespace {

constexpr millis t0 = 1'700'000'000'000;

// A room with its journal, as the gateway wires them. Dropping it without close() is a crash:
// the journal's destructor writes nothing.
struct durable_room {
    std::unique_ptr<journal> j;
    std::unique_ptr<waiting_room> room;  // after j: destroyed first

    admitter::tick_report tick(millis now) {
        const auto r = room->tick(now);
        const absl::Status st = j->after_tick(*room, now);
        INFO(st.ToString());
        REQUIRE(st.ok());
        return r;
    }
    void crash() {
        room.reset();
        j.reset();
    }
};

journal::options quick(journal::options o = {}) {
    o.write_every = 0;              // a progress record after every tick
    o.sync_every = 1'000'000'000;   // the tests simulate kill -9, not power cuts
    return o;
}

durable_room open_room(const std::string& dir, const room_policy& p, millis now,
                       journal::options jo = quick(), admitter::options a = {}) {
    jo.dir = dir;
    auto j = journal::open(jo);
    INFO(j.status().ToString());
    REQUIRE(j.ok());
    waiting_room::options o{.policy = p, .queue = {}, .admission = a};
    o.queue.capacity = std::uint64_t(1) << 21;
    o.restore = (*j)->restored();
    o.journal = j->get();
    auto r = waiting_room::create(o, now);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    const absl::Status st = (*j)->start(**r, now);
    INFO(st.ToString());
    REQUIRE(st.ok());
    return {std::move(*j), std::move(*r)};
}

std::uint64_t join(waiting_room& room, millis now) {
    const auto j = room.join(now, "", false);
    REQUIRE(j.outcome == outcome::queued);
    return j.seq;
}

std::vector<std::string> logs_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind("log.", 0) == 0) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

void copy_dir(const std::string& from, const std::string& to) {
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(from))
        fs::copy_file(e.path(), to + "/" + e.path().filename().string(),
                      fs::copy_options::overwrite_existing);
}

// The most calls in any window (t - 1000, t] ending at a call.
std::uint64_t max_per_second(const std::vector<std::pair<millis, std::uint64_t>>& calls) {
    std::uint64_t best = 0;
    for (const auto& [t, n] : calls) {
        std::uint64_t sum = 0;
        for (const auto& [u, m] : calls)
            if (u > t - 1'000 && u <= t) sum += m;
        best = std::max(best, sum);
    }
    return best;
}

}  // namespace

TEST_CASE("the journal's frames use CRC-32C", "[journal]") {
    CHECK(crc32c("123456789") == 0xE3069283u);
    CHECK(crc32c("") == 0);
    // Incremental use gives the same answer.
    CHECK(crc32c("6789", crc32c("12345")) == 0xE3069283u);
    const std::string long_text(1000, 'x');
    CHECK(crc32c(long_text) == crc32c(long_text.substr(3), crc32c(long_text.substr(0, 3))));
}

TEST_CASE("a new directory restores nothing and is created with its parents", "[journal]") {
    temp_dir tmp("fg-journal");
    const std::string dir = tmp.sub("state/rooms/concert");
    auto d = open_room(dir, {.rate = 10}, t0);
    CHECK_FALSE(d.j->report().found);
    CHECK(fs::is_directory(dir));
    CHECK(fs::exists(dir + "/snapshot"));
    CHECK(logs_in(dir).size() == 1);
    CHECK(((fs::status(dir).permissions() & fs::perms::others_all) == fs::perms::none));
}

TEST_CASE("after a crash a room keeps its places, passes, pending calls and abandoned tickets",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 10,
                             .burst = 2,
                             .max_active = 5,
                             .idle_timeout = 60'000,
                             .session_ttl = 600'000,
                             .claim_window = 10'000,
                             .abandon_after = 20'000};
    millis now = t0;
    auto d = open_room(tmp.path(), policy, now);
    for (std::uint64_t i = 0; i < 30; ++i) CHECK(join(*d.room, now) == i);
    for (int k = 0; k < 10; ++k, now += 100) d.tick(now);
    CHECK(d.room->queue().cursor() == 5);  // max_active 5: five calls out
    std::vector<lease> passes;
    for (std::uint64_t s = 0; s < 3; ++s) {
        auto p = d.room->poll(s, now);
        REQUIRE(p.pass);
        passes.push_back(*p.pass);
    }
    CHECK(d.room->release(passes[0], release_reason::explicit_));
    CHECK(d.room->leave(10));
    now += 100;
    d.tick(now);  // calls 5 into the freed slot; the sweep abandons 10
    CHECK(d.room->queue().cursor() == 6);
    CHECK(d.room->queue().locate(10).st == state::abandoned);
    std::vector<std::uint64_t> ahead(30, 0);
    for (std::uint64_t s = 6; s < 30; ++s) ahead[s] = d.room->queue().locate(s).ahead;
    CHECK(ahead[11] == 4);
    const std::uint64_t limit = d.room->seq_limit();
    CHECK(limit >= 30);

    d.crash();
    now += 5'000;  // five seconds later, the gateway is back
    auto r = open_room(tmp.path(), policy, now);
    REQUIRE(r.j->report().found);
    CHECK(r.j->report().warnings.empty());
    ring& q = r.room->queue();
    CHECK(q.cursor() == 6);
    // Everyone waiting keeps seq, order and place.
    for (std::uint64_t s = 6; s < 30; ++s) {
        INFO("seq " << s);
        if (s == 10) {
            CHECK(q.locate(s).st == state::abandoned);
            continue;
        }
        const auto p = r.room->poll(s, now);
        CHECK(p.st == state::waiting);
        CHECK(p.ahead == ahead[s]);
    }
    // Admitted users keep access; the released pass stays dead.
    CHECK(r.room->touch(passes[1], now));
    CHECK(r.room->touch(passes[2], now));
    CHECK_FALSE(r.room->touch(passes[0], now));
    // Two active plus three pending calls: nobody new until one of them ends.
    CHECK(r.room->slots().active() == 2);
    CHECK(q.calls_pending() == 3);
    CHECK(r.room->slots().committed() == 5);
    CHECK(r.tick(now).called == 0);
    // Pending calls keep their claim; a claimed one does not claim twice.
    CHECK(r.room->poll(3, now).pass);
    const auto again = r.room->poll(1, now);
    CHECK_FALSE(again.pass);
    CHECK(again.st == state::claimed);
    // No seq is handed out twice.
    CHECK(join(*r.room, now) >= limit);
    // A released slot comes back under a new generation.
    CHECK(r.room->release(passes[1], release_reason::explicit_));
    const auto direct = r.room->slots().acquire(now);
    REQUIRE(direct);
    for (const lease& l : passes) CHECK_FALSE(*direct == l);
}

TEST_CASE("a direct admission's pass survives a crash", "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 100, .burst = 5, .max_active = 3};
    auto d = open_room(tmp.path(), policy, t0);
    const auto j = d.room->join(t0, "", true);
    REQUIRE(j.outcome == outcome::admitted);
    d.crash();
    auto r = open_room(tmp.path(), policy, t0 + 1'000);
    CHECK(r.room->touch(*j.pass, t0 + 1'000));
    CHECK(r.room->slots().active() == 1);
}

TEST_CASE("idle and too-old leases that expired before a crash stay expired", "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 100, .burst = 5, .idle_timeout = 2'000};
    auto d = open_room(tmp.path(), policy, t0);
    const auto a = d.room->join(t0, "", true);
    const auto b = d.room->join(t0, "", true);
    REQUIRE(a.pass);
    REQUIRE(b.pass);
    CHECK(d.room->touch(*b.pass, t0 + 2'500));
    CHECK(d.tick(t0 + 4'000).expired == 1);  // a idled out, b was seen
    d.crash();
    auto r = open_room(tmp.path(), policy, t0 + 4'100);
    CHECK_FALSE(r.room->touch(*a.pass, t0 + 4'100));
    CHECK(r.room->touch(*b.pass, t0 + 4'100));
}

TEST_CASE("calling does not burst after a restart", "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 10, .burst = 5};
    millis now = t0;
    auto d = open_room(tmp.path(), policy, now);
    std::vector<std::pair<millis, std::uint64_t>> calls;
    // The budget is full; 20 people arrive and the first tick spends the whole burst.
    for (int i = 0; i < 20; ++i) join(*d.room, now);
    calls.emplace_back(now, d.tick(now).called);
    CHECK(calls.back().second == 5);
    d.crash();  // a millisecond later
    now += 1;
    auto r = open_room(tmp.path(), policy, now);
    for (int k = 0; k < 200; ++k, now += 10) {
        const auto rep = r.tick(now);
        if (rep.called > 0) calls.emplace_back(now, rep.called);
    }
    INFO("calls in one second across the restart");
    CHECK(max_per_second(calls) <= 15);  // rate + burst
    // The people called before the crash can still claim.
    for (std::uint64_t s = 0; s < 5; ++s) CHECK(r.room->poll(s, now).pass);
}

TEST_CASE("a claim journaled before the cursor's progress moves the cursor on restore",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 100, .burst = 3};
    auto d = open_room(tmp.path(), policy, t0);
    for (int i = 0; i < 10; ++i) join(*d.room, t0);
    d.tick(t0);  // calls 0..2 and writes the progress
    // Two more calls; one is claimed before the journal heard of the tick.
    d.room->tick(t0 + 20);
    CHECK(d.room->queue().cursor() == 5);
    const auto p = d.room->poll(4, t0 + 21);
    REQUIRE(p.pass);
    d.crash();
    auto r = open_room(tmp.path(), policy, t0 + 500);
    CHECK(r.room->queue().cursor() == 5);
    CHECK(r.room->touch(*p.pass, t0 + 500));
    CHECK(r.room->poll(3, t0 + 500).pass);  // called too: it keeps its claim
    CHECK(r.room->poll(5, t0 + 500).st == state::waiting);
}

TEST_CASE("joins reserve seq ranges ahead, so no seq is handed out twice across a crash",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 1, .burst = 1, .abandon_after = 60'000};
    journal::options jo = quick();
    jo.min_range = 16;
    jo.unconfirmed_grace = 10'000;
    millis now = t0;
    auto d = open_room(tmp.path(), policy, now, jo);
    std::uint64_t last = 0;
    for (int i = 0; i < 1'000; ++i) {
        last = join(*d.room, now);
        if (i % 100 == 99) d.tick(now += 50);
    }
    const journal::counters c = d.j->stats();
    CHECK(c.ranges_reserved < 12);  // doubling ranges: a handful of fsyncs for 1000 joins
    // Joins after the last progress record: the journal never heard of them one by one.
    const std::uint64_t quiet_from = d.room->queue().next_seq();
    std::vector<std::uint64_t> unjournaled;
    for (int i = 0; i < 5; ++i) unjournaled.push_back(last = join(*d.room, now));
    d.crash();

    now += 2'000;
    auto r = open_room(tmp.path(), policy, now, jo);
    const std::uint64_t next = join(*r.room, now);
    CHECK(next > last);
    ring& q = r.room->queue();
    CHECK(q.locate(quiet_from).st == state::waiting);
    // Tickets nobody may hold (the unused rest of the range) are not called before their
    // holder polls: the people who did get them poll and keep their order.
    for (std::uint64_t s : unjournaled) CHECK(r.room->poll(s, now).st == state::waiting);
    const std::uint64_t a1 = q.locate(unjournaled[0]).ahead;
    const std::uint64_t a2 = q.locate(unjournaled[4]).ahead;
    CHECK(a1 < a2);
}

TEST_CASE("the unused rest of a reserved range is never called and is dropped after the grace",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 1'000, .burst = 100, .abandon_after = 60'000};
    journal::options jo = quick();
    jo.min_range = 64;
    jo.unconfirmed_grace = 5'000;
    millis now = t0;
    {
        auto d = open_room(tmp.path(), {.rate = 1'000, .burst = 100, .paused = true}, now, jo);
        for (int i = 0; i < 10; ++i) join(*d.room, now);
        d.tick(now += 10);
        join(*d.room, now);  // seq 10: handed out after the last progress record
        d.crash();
    }
    auto r = open_room(tmp.path(), policy, now, jo);
    ring& q = r.room->queue();
    const std::uint64_t limit = q.next_seq();
    REQUIRE(limit > 11);
    r.tick(now += 10);
    CHECK(q.cursor() == 10);  // everyone confirmed was called; 10 has not polled yet
    CHECK(r.room->poll(10, now).st == state::waiting);
    r.tick(now += 10);
    CHECK(q.cursor() == 11);  // it polled: called in order; 11 and up nobody holds
    const std::uint64_t newcomer = join(*r.room, now);
    CHECK(newcomer >= limit);
    for (int k = 0; k < 10; ++k) r.tick(now += 100);
    CHECK(q.cursor() == 11);
    CHECK(q.locate(newcomer).ahead == limit - 11);
    // After the grace the unused seqs are abandoned and the newcomer is called.
    for (int k = 0; k < 60; ++k) r.tick(now += 100);
    CHECK(q.cursor() > newcomer);
    CHECK(r.room->poll(newcomer, now).pass);
}

TEST_CASE("after a clean stop numbering resumes where it stopped and nobody waits for a "
          "reserved seq", "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 100, .burst = 10};
    journal::options jo = quick();
    jo.min_range = 64;
    auto d = open_room(tmp.path(), {.rate = 100, .burst = 10, .paused = true}, t0, jo);
    for (int i = 0; i < 10; ++i) join(*d.room, t0);
    REQUIRE(d.room->seq_limit() > 10);
    REQUIRE(d.j->close(*d.room, t0 + 10).ok());
    d.crash();
    auto r = open_room(tmp.path(), policy, t0 + 1'000, jo);
    CHECK(r.room->queue().next_seq() == 10);
    const std::uint64_t next = join(*r.room, t0 + 1'000);
    CHECK(next == 10);
    r.tick(t0 + 1'200);
    r.tick(t0 + 1'400);
    CHECK(r.room->queue().cursor() == 11);  // everyone called, the newcomer too, no waiting
}

TEST_CASE("a torn tail at any byte is ignored and everything before it is restored",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 10, .burst = 2, .max_active = 4};
    millis now = t0;
    const std::string dir = tmp.sub("room");
    std::vector<lease> passes;
    std::vector<std::uint64_t> pass_pos;  // the log's size once each pass's record was written
    std::uint64_t joined_pos = 0;         // ... once the twelve tickets were handed out
    {
        auto d = open_room(dir, policy, now);
        for (int i = 0; i < 12; ++i) join(*d.room, now);
        joined_pos = fs::file_size(logs_in(dir).back());
        for (int k = 0; k < 6; ++k) {
            d.tick(now += 100);
            for (std::uint64_t s = 0; s < 12; ++s)
                if (auto p = d.room->poll(s, now); p.pass) {
                    passes.push_back(*p.pass);
                    pass_pos.push_back(fs::file_size(logs_in(dir).back()));
                }
        }
        d.crash();
    }
    REQUIRE(passes.size() >= 3);
    const std::string log = logs_in(dir).back();
    const std::uintmax_t size = fs::file_size(log);
    std::uint64_t torn_seen = 0;
    for (std::uintmax_t cut = 0; cut <= size; ++cut) {
        INFO("log cut at " << cut << " of " << size);
        const std::string copy = tmp.sub("cut");
        fs::remove_all(copy);
        copy_dir(dir, copy);
        fs::resize_file(logs_in(copy).back(), cut);
        auto j = journal::open({.dir = copy});
        INFO(j.status().ToString());
        REQUIRE(j.ok());
        torn_seen += (*j)->report().ignored_bytes > 0 ? 1 : 0;
        waiting_room::options o{.policy = policy};
        o.queue.capacity = std::uint64_t(1) << 17;
        o.restore = (*j)->restored();
        auto room = waiting_room::create(o, now);
        REQUIRE(room.ok());
        for (std::size_t i = 0; i < passes.size(); ++i)
            if (pass_pos[i] <= cut) CHECK((*room)->touch(passes[i], now));
        // Whatever the cut, the seqs handed out come back waiting or called, never unknown.
        if (cut >= joined_pos)
            for (std::uint64_t s = 0; s < 12; ++s)
                CHECK((*room)->queue().locate(s).st != state::unknown);
        CHECK((*room)->slots().committed() <= 4);
    }
    CHECK(torn_seen > size / 2);  // most cuts land inside a frame
}

TEST_CASE("a corrupt record ends its log, a bad snapshot is an error naming file and offset",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const std::string dir = tmp.sub("room");
    {
        auto d = open_room(dir, {.rate = 10}, t0);
        for (int i = 0; i < 5; ++i) join(*d.room, t0);
        for (int k = 1; k <= 5; ++k) d.tick(t0 + 200 * k);
        d.crash();
    }
    const std::string log = logs_in(dir).back();
    {
        // Flip a byte in the middle of the log: the rest of the log is ignored, with a warning.
        std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
        const auto mid = std::streamoff(fs::file_size(log) / 2);
        f.seekg(mid);
        char c = 0;
        f.get(c);
        f.seekp(mid);
        f.put(static_cast<char>(c ^ 0x55));
    }
    auto j = journal::open({.dir = dir});
    REQUIRE(j.ok());
    REQUIRE((*j)->report().warnings.size() == 1);
    CHECK((*j)->report().warnings[0].find(log + ": offset ") == 0);
    CHECK((*j)->report().ignored_bytes > 0);

    {
        std::fstream f(dir + "/snapshot", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(0);
        f.put('X');
    }
    auto bad = journal::open({.dir = dir});
    REQUIRE_FALSE(bad.ok());
    const std::string msg(bad.status().message());
    CHECK(msg.find(dir + "/snapshot: offset 0") != std::string::npos);

    auto not_a_dir = journal::open({.dir = log});
    REQUIRE_FALSE(not_a_dir.ok());
    CHECK(std::string(not_a_dir.status().message()).find(log) != std::string::npos);
}

TEST_CASE("random bytes in a log, with or without good CRCs, never crash the reader",
          "[journal]") {
    temp_dir tmp("fg-journal");
    std::mt19937_64 rng(7);
    const std::string dir = tmp.sub("room");
    fs::create_directories(dir);
    auto frame = [&](std::string payload) {
        std::string f(8, '\0');
        const std::uint32_t len = std::uint32_t(payload.size());
        const std::uint32_t crc = crc32c(payload);
        for (int i = 0; i < 4; ++i) {
            f[std::size_t(i)] = char(len >> (8 * i));
            f[std::size_t(4 + i)] = char(crc >> (8 * i));
        }
        return f + payload;
    };
    std::uint64_t ok = 0, refused = 0;
    for (int round = 0; round < 400; ++round) {
        std::string file = std::string("FGJLOG01") + std::string("\x01\0\0\0\0\0\0\0", 8);
        for (int k = int(rng() % 6); k >= 0; --k) {
            std::string payload(1 + rng() % 40, '\0');
            for (auto& c : payload) c = char(rng());
            if (rng() % 2 == 0) payload[0] = char(1 + rng() % 5);  // a known type
            file += rng() % 4 == 0 ? payload : frame(payload);
        }
        std::ofstream(dir + "/log.000000000001", std::ios::binary | std::ios::trunc) << file;
        auto j = journal::open({.dir = dir});
        if (!j.ok()) {
            ++refused;
            CHECK(std::string(j.status().message()).find(dir + "/log.000000000001: offset ") !=
                  std::string::npos);
            continue;
        }
        ++ok;
        if (const auto& r = (*j)->restored()) {
            waiting_room::options o{.policy = {.rate = 1}};
            o.queue.capacity = std::uint64_t(1) << 17;
            o.restore = r;
            auto room = waiting_room::create(o, t0);  // may refuse absurd values, never crash
            if (room.ok()) (*room)->tick(t0 + 1'000);
        }
    }
    CHECK(ok > 50);
    CHECK(refused > 50);
}

TEST_CASE("a crash in the middle of a snapshot leaves a journal that restores everything",
          "[journal]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 5, .burst = 2, .max_active = 6};
    journal::options jo = quick();
    jo.snapshot_every = 1'000;
    const std::string dir = tmp.sub("live");
    millis now = t0;
    auto d = open_room(dir, policy, now, jo);
    for (int i = 0; i < 20; ++i) join(*d.room, now);
    for (int k = 0; k < 5; ++k) {
        d.tick(now += 150);
        d.room->poll(std::uint64_t(k), now);
    }
    copy_dir(dir, tmp.sub("before"));  // the generation before the snapshot
    const auto gens_before = logs_in(dir);
    d.tick(now += 500);  // a snapshot: new log, new snapshot, old log deleted
    d.room->leave(15);
    for (int k = 0; k < 4; ++k) {
        d.tick(now += 150);
        d.room->poll(std::uint64_t(5 + k), now);
    }
    REQUIRE(d.j->stats().snapshots >= 2);
    const auto gens_after = logs_in(dir);
    REQUIRE(gens_after.size() == 1);
    REQUIRE(gens_after != gens_before);
    auto full = journal::open({.dir = dir});
    REQUIRE(full.ok());
    const auto& want = *(*full)->restored();

    auto same = [&](const std::string& where) {
        INFO(where);
        auto j = journal::open({.dir = where});
        INFO(j.status().ToString());
        REQUIRE(j.ok());
        const auto& got = *(*j)->restored();
        CHECK(got.seq_limit == want.seq_limit);
        CHECK(got.state.next_seq == want.state.next_seq);
        CHECK(got.state.cursor == want.state.cursor);
        CHECK(got.state.settled == want.state.settled);
        CHECK(got.state.claimed == want.state.claimed);
        CHECK(got.state.abandoned == want.state.abandoned);
        CHECK(got.state.slots == want.state.slots);
    };
    // (a) The new log exists, the new snapshot does not yet: old snapshot, old log, new log.
    const std::string a = tmp.sub("a");
    copy_dir(tmp.sub("before"), a);
    fs::copy_file(gens_after.back(), a + "/" + fs::path(gens_after.back()).filename().string());
    same(a);
    // (b) The new snapshot is in place, the old log not yet deleted.
    const std::string b = tmp.sub("b");
    copy_dir(tmp.sub("before"), b);
    fs::remove(b + "/snapshot");
    copy_dir(dir, b);
    same(b);
    // And a leftover temporary snapshot is ignored.
    std::ofstream(b + "/snapshot.tmp") << "half a snapshot";
    same(b);
}

TEST_CASE("a crash at a random byte of the journal keeps every place, every pass and the limits",
          "[journal][property]") {
    const double rates[] = {2, 10, 40};
    const std::uint32_t bursts[] = {1, 3, 8};
    const std::uint64_t max_actives[] = {0, 10, 40};
    std::uint64_t checked_waiting = 0, checked_passes = 0, torn = 0;

    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        const room_policy policy{.rate = rates[rng() % 3],
                                 .burst = bursts[rng() % 3],
                                 .max_active = max_actives[rng() % 3],
                                 .idle_timeout = 600'000,
                                 .session_ttl = 3'600'000,
                                 .claim_window = 4'000,
                                 .abandon_after = 6'000};
        journal::options jo = quick();
        jo.snapshot_every = 2'000 + millis(rng() % 3'000);
        jo.min_range = 8;
        jo.max_range = 256;
        temp_dir tmp("fg-journal");
        millis now = t0;
        auto d = open_room(tmp.sub("live"), policy, now, jo);
        auto pos = [&] { return d.j->stats().bytes_written; };

        struct user {
            std::uint64_t seq = 0;
            std::uint64_t join_pos = 0;
            bool present = true;
            bool admitted = false, released = false;
            std::uint64_t admit_pos = 0;
            lease pass{};
            std::vector<std::pair<std::uint64_t, std::uint64_t>> aheads;  // (pos, ahead) told
        };
        std::vector<user> users;
        std::vector<std::pair<millis, std::uint64_t>> calls;
        const int steps = 100 + int(rng() % 500);
        for (int step = 0; step < steps; ++step) {
            now += std::uniform_int_distribution<millis>(20, 300)(rng);
            for (int k = int(rng() % 4); k > 0; --k) {
                user u;
                const auto j = d.room->join(now, "", false);
                REQUIRE(j.outcome == outcome::queued);
                u.seq = j.seq;
                u.join_pos = pos();
                u.present = rng() % 6 != 0;
                u.aheads.emplace_back(u.join_pos, j.pos.ahead);
                users.push_back(std::move(u));
            }
            for (auto& u : users) {
                if (u.released) continue;
                if (u.present && rng() % 120 == 0) u.present = false;
                if (!u.admitted && u.present && rng() % 3 == 0) {
                    if (rng() % 300 == 0) {
                        d.room->leave(u.seq);
                        u.present = false;
                        continue;
                    }
                    const auto p = d.room->poll(u.seq, now);
                    if (p.pass) {
                        u.admitted = true;
                        u.pass = *p.pass;
                        u.admit_pos = pos();
                    } else if (p.st == state::waiting) {
                        u.aheads.emplace_back(pos(), p.ahead);
                    }
                } else if (u.admitted && u.present && rng() % 40 == 0) {
                    d.room->release(u.pass, release_reason::explicit_);
                    u.released = true;
                }
            }
            const auto rep = d.tick(now);
            if (rep.called > 0) calls.emplace_back(now, rep.called);
        }

        // The crash: the files as they are, the current log cut at a random byte.
        const std::string crashed = tmp.sub("crashed");
        copy_dir(tmp.sub("live"), crashed);
        const std::string log = logs_in(crashed).back();
        const std::uint64_t size = fs::file_size(log);
        const std::uint64_t cut = rng() % (size + 1);
        fs::resize_file(log, cut);
        // Bytes of records that made it: the current log holds the last (size - 16) written.
        const std::uint64_t durable = pos() - (size - std::max<std::uint64_t>(cut, 16));
        std::vector<state> at_crash;
        for (const auto& u : users) at_crash.push_back(d.room->queue().locate(u.seq).st);
        d.crash();

        now += millis(rng() % 3'000);  // downtime
        auto r = open_room(crashed, policy, now, jo);
        torn += r.j->report().ignored_bytes > 0 ? 1 : 0;
        ring& q = r.room->queue();
        std::vector<std::pair<std::uint64_t, std::uint64_t>> waiting;  // (seq, ahead)
        for (std::size_t i = 0; i < users.size(); ++i) {
            const user& u = users[i];
            if (u.join_pos > durable) continue;  // handed out after the cut: never happened
            INFO("seq " << u.seq << " state at crash " << int(at_crash[i]));
            REQUIRE(u.seq < q.next_seq());  // never handed out again
            const ring::position p = q.locate(u.seq);
            if (at_crash[i] == state::waiting) {
                // Waiting then, waiting now; never further back than the last thing it was told.
                REQUIRE(p.st == state::waiting);
                std::uint64_t told = ~std::uint64_t(0);
                for (const auto& [at, ahead] : u.aheads)
                    if (at <= durable) told = ahead;
                REQUIRE(p.ahead <= told);
                waiting.emplace_back(u.seq, p.ahead);
                ++checked_waiting;
            } else if (at_crash[i] == state::called) {
                REQUIRE((p.st == state::called || p.st == state::waiting));
            }
            if (u.admitted && !u.released && u.admit_pos <= durable) {
                REQUIRE(r.room->touch(u.pass, now));
                ++checked_passes;
            }
        }
        // Order: everyone waiting strictly behind everyone waiting before them.
        std::sort(waiting.begin(), waiting.end());
        for (std::size_t i = 1; i < waiting.size(); ++i)
            REQUIRE(waiting[i - 1].second < waiting[i].second);
        // max_active holds from the first moment.
        if (policy.max_active > 0) REQUIRE(r.room->slots().committed() <= policy.max_active);
        REQUIRE(r.room->slots().committed() ==
                r.room->slots().active() + q.calls_pending());
        // No burst: calls per second stay within rate + burst across the restart.
        for (int k = 0; k < 150; ++k) {
            now += 20;
            const auto rep = r.tick(now);
            if (rep.called > 0) calls.emplace_back(now, rep.called);
            for (auto& u : users)
                if (u.present && !u.admitted && rng() % 8 == 0) r.room->poll(u.seq, now);
            if (policy.max_active > 0) REQUIRE(r.room->slots().committed() <= policy.max_active);
        }
        std::vector<std::pair<millis, std::uint64_t>> recent;
        for (const auto& c : calls)
            if (c.first > now - 10'000) recent.push_back(c);
        REQUIRE(double(max_per_second(recent)) <= policy.rate + policy.burst);
    }
    CHECK(checked_waiting > 200);
    CHECK(checked_passes > 20);
    CHECK(torn > 3);
    WARN("checked " << checked_waiting << " waiting tickets and " << checked_passes
                    << " passes after 12 crashes, " << torn << " with a torn tail");
}

TEST_CASE("request threads journal while the admitter ticks and snapshots", "[journal][threads]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 2'000, .burst = 50, .max_active = 200};
    journal::options jo = quick();
    jo.snapshot_every = 50;  // a snapshot every few ticks, while the request threads write
    jo.min_range = 8;
    auto d = open_room(tmp.path(), policy, t0, jo);
    std::atomic<millis> clock{t0};
    std::atomic<bool> stop{false};
    struct held {
        std::uint64_t seq;
        lease l;
    };
    std::vector<held> kept[2];
    auto request_thread = [&](int id) {
        std::mt19937_64 rng(std::uint64_t(id) + 1);
        std::vector<std::uint64_t> tickets;
        while (!stop.load()) {
            const millis now = clock.load();
            const auto j = d.room->join(now, "", false);
            if (j.outcome == outcome::queued) tickets.push_back(j.seq);
            for (std::size_t i = 0; i < tickets.size();) {
                const auto p = d.room->poll(tickets[i], now);
                if (p.pass) {
                    if (rng() % 2 == 0) d.room->release(*p.pass, release_reason::explicit_);
                    else kept[id].push_back({tickets[i], *p.pass});
                }
                if (p.st != state::waiting) {
                    tickets[i] = tickets.back();
                    tickets.pop_back();
                } else {
                    ++i;
                }
            }
            // Keep the active count moving: release the oldest kept pass now and then.
            if (kept[id].size() > 40) {
                d.room->release(kept[id].front().l, release_reason::upstream);
                kept[id].erase(kept[id].begin());
            }
        }
    };
    std::thread a(request_thread, 0), b(request_thread, 1);
    for (int k = 0; k < 400; ++k) {
        const millis now = clock.fetch_add(5) + 5;
        d.tick(now);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    stop = true;
    a.join();
    b.join();
    REQUIRE(d.j->stats().snapshots > 10);
    const std::uint64_t issued = d.room->queue().next_seq();
    d.crash();
    auto r = open_room(tmp.path(), policy, clock.load() + 100, jo);
    CHECK(r.room->queue().next_seq() >= issued);
    std::uint64_t touched = 0;
    for (const auto& k : kept)
        for (const held& h : k) {
            CHECK(r.room->touch(h.l, clock.load() + 100));
            ++touched;
        }
    CHECK(r.room->slots().committed() <= policy.max_active);
    WARN(touched << " passes held across the crash, " << issued << " seqs issued");
}

TEST_CASE("a million waiting: bytes per join and restore time", "[journal][scale]") {
    temp_dir tmp("fg-journal");
    const room_policy policy{.rate = 100, .burst = 10, .abandon_after = 3'600'000};
    journal::options jo{};
    jo.sync_every = 1'000;
    millis now = t0;
    auto d = open_room(tmp.path(), policy, now, jo);
    constexpr std::uint64_t n = 1'000'000;
    const auto started = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < n; ++i) {
        join(*d.room, now);
        if (i % 5'000 == 4'999) d.tick(now += 50);  // 100k joins a second
    }
    const double join_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    d.tick(now += 50);
    const journal::counters c = d.j->stats();
    const double per_join = double(c.bytes_written) / double(n);
    CHECK(per_join < 0.5);
    // Abandon every tenth ticket, so the snapshot has marks to carry.
    for (std::uint64_t s = 5'000; s < n; s += 10) d.room->leave(s);
    for (int k = 0; k < 40; ++k) d.tick(now += 50);
    REQUIRE(d.j->close(*d.room, now).ok());  // a clean stop: one snapshot to read
    const auto snapshot_bytes = fs::file_size(tmp.path() + "/snapshot");
    d.crash();

    const auto t_restore = std::chrono::steady_clock::now();
    auto r = open_room(tmp.path(), policy, now + 1'000, jo);
    const double restore_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_restore)
            .count();
    CHECK(r.room->queue().locate(n - 1).st == state::waiting);
    CHECK(r.room->queue().locate(n - 10).st == state::abandoned);
    const auto s = r.room->snapshot();
    CHECK(s.waiting >= 890'000);
    CHECK(restore_ms < 5'000);
    WARN("1M joins with the journal: " << join_ms << " ms, " << c.bytes_written
                                       << " journal bytes (" << per_join << " per join), "
                                       << c.ranges_reserved << " ranges reserved; snapshot of "
                                       << s.waiting << " waiting with ~" << (n - 5'000) / 10
                                       << " abandoned: " << snapshot_bytes
                                       << " bytes; restore (read, rebuild, new snapshot): "
                                       << restore_ms << " ms");
}
