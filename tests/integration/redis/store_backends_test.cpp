// One suite, two backends: a room's waiting-room calls (join, poll, touch, release, and the
// admitter's tick) behave the same whether the room lives in this process's memory
// (store: memory) or is shared through Redis (store: redis://..., with a real redis-server).
// Each case runs once per backend (GENERATE). The room runs in a room_registry with its admitter
// thread, as in the gateway; Redis I/O runs on its own io_context thread.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.hpp"
#include "room_runtime.hpp"
#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;
namespace ts = tokenstore;

enum class backend { memory, redis };

const char* name_of(backend b) { return b == backend::memory ? "memory" : "redis"; }

// A room as the gateway has it, on either backend.
class room_fixture {
public:
    room_fixture(backend b, room_config cfg) {
        if (b == backend::redis) {
            redis_ = std::make_unique<test::redis_server>();
            conn_ = ts::redis::redis_connection::create(ioc_.get_executor(), {.port = redis_->port()});
            conn_->start();
            io_ = std::thread([this] { ioc_.run(); });
            registry_.set_shared_store({.conn = conn_, .node_id = "suite"});
        }
        registry_.start();
        auto r = registry_.get_or_create(cfg, ts::wall_clock_ms());
        REQUIRE(r.ok());
        room_ = *r;
        if (b == backend::redis) {
            // In step with Redis before anyone arrives, as /readyz would say.
            const auto end = steady::now() + seconds(10);
            while (!room_->shared()->ever_synced() && steady::now() < end) std::this_thread::sleep_for(milliseconds(20));
            REQUIRE(room_->shared()->ever_synced());
        }
    }
    ~room_fixture() {
        registry_.stop();
        room_.reset();
        if (conn_) conn_->stop();
        guard_.reset();
        ioc_.stop();
        if (io_.joinable()) io_.join();
    }

    room_runtime& room() { return *room_; }

    // A newcomer; one told "no place right now, retry" (a shared room whose reserved seq ranges
    // ran out: joins here come microseconds apart) retries a millisecond later, for at most 1 s.
    std::uint64_t join(std::string_view identity = {}) {
        auto j = room_->join(ts::wall_clock_ms(), identity, /*allow_direct=*/false);
        for (int i = 0; i < 1000 && j.outcome == ts::waiting_room::join_outcome::unavailable; ++i) {
            std::this_thread::sleep_for(milliseconds(1));
            j = room_->join(ts::wall_clock_ms(), identity, false);
        }
        REQUIRE(j.outcome == ts::waiting_room::join_outcome::queued);
        if (room_->shared()) room_->shared()->saw(j.seq, ts::wall_clock_ms());
        return j.seq;
    }
    ts::waiting_room::poll_result poll(std::uint64_t seq) { return room_->poll(seq, ts::wall_clock_ms(), {}); }

    // Polls everyone in `seqs` (in that order) every 100 ms until each has a pass (or the
    // deadline); returns the passes in the order they were handed out, as (index into seqs,
    // lease), and in `rounds` the polling round in which each index got its pass.
    std::vector<std::pair<std::size_t, ts::lease>> admit_all(const std::vector<std::uint64_t>& seqs,
                                                              seconds deadline, std::vector<int>* rounds = nullptr) {
        std::vector<std::pair<std::size_t, ts::lease>> out;
        if (rounds) rounds->assign(seqs.size(), -1);
        int round = 0;
        std::vector<bool> done(seqs.size(), false);
        std::vector<std::int64_t> ahead(seqs.size(), -1);
        const auto end = steady::now() + deadline;
        while (out.size() < seqs.size() && steady::now() < end) {
            for (std::size_t i = 0; i < seqs.size(); ++i) {
                if (done[i]) continue;
                const auto p = poll(seqs[i]);
                if (p.pass) {
                    done[i] = true;
                    out.emplace_back(i, *p.pass);
                    if (rounds) (*rounds)[i] = round;
                    continue;
                }
                INFO(name_of(b_) << ": seq " << seqs[i] << " state " << int(p.st));
                REQUIRE((p.st == ts::ring::state::waiting || p.st == ts::ring::state::called));
                if (p.st == ts::ring::state::waiting) {
                    if (ahead[i] >= 0) CHECK(static_cast<std::int64_t>(p.ahead) <= ahead[i]);
                    ahead[i] = static_cast<std::int64_t>(p.ahead);
                }
            }
            std::this_thread::sleep_for(milliseconds(100));
            ++round;
        }
        return out;
    }

    backend b_ = backend::memory;

private:
    net::io_context ioc_{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_{ioc_.get_executor()};
    std::unique_ptr<test::redis_server> redis_;
    std::shared_ptr<ts::redis::redis_connection> conn_;
    std::thread io_;
    room_registry registry_;
    std::shared_ptr<room_runtime> room_;
};

room_config sale(double rate, std::uint32_t burst, std::uint64_t max_active) {
    room_config c;
    c.name = "sale";
    c.rate = rate;
    c.burst = burst;
    c.max_active = max_active;
    c.mode = room_mode::queue_all;
    return c;
}

}  // namespace

TEST_CASE("both stores: people are called in the order they joined, at the rate", "[store]") {
    const backend b = GENERATE(backend::memory, backend::redis);
    INFO("backend " << name_of(b));
    room_fixture f(b, sale(10, 2, 0));
    f.b_ = b;
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 12; ++i) seqs.push_back(f.join());
    // Every place is distinct, and the first in line has nobody ahead.
    std::vector<std::uint64_t> sorted = seqs;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    // The last has the other eleven ahead. Through Redis the places may also count unused seqs
    // of ranges this node reserved before (holes, given up within a few seconds): the same
    // number ahead of the first and the last, so only the memory store has none for certain.
    const std::uint64_t first_ahead = f.poll(seqs.front()).ahead;
    CHECK(f.poll(seqs.back()).ahead == first_ahead + 11);
    if (b == backend::memory) CHECK(first_ahead == 0);

    const auto start = steady::now();
    std::vector<int> rounds;
    const auto passes = f.admit_all(seqs, seconds(20), &rounds);
    const double took = std::chrono::duration<double>(steady::now() - start).count();
    REQUIRE(passes.size() == seqs.size());
    // Join order: when someone got a pass in a round, everyone who joined earlier had theirs
    // by the next round (a call can land between two polls of one round).
    for (std::size_t i = 0; i < seqs.size(); ++i)
        for (std::size_t j = i + 1; j < seqs.size(); ++j) {
            INFO("joined " << i << " got in at round " << rounds[i] << ", joined " << j << " at round " << rounds[j]);
            CHECK(rounds[i] <= rounds[j] + 1);
        }
    // 12 people at 10/s with a burst of 2: at least a second.
    INFO("all admitted in " << took << " s");
    CHECK(took >= 0.9);
    // Every pass names its own slot.
    std::vector<std::uint32_t> slots;
    for (const auto& [i, l] : passes) slots.push_back(l.slot);
    std::sort(slots.begin(), slots.end());
    CHECK(std::adjacent_find(slots.begin(), slots.end()) == slots.end());
}

TEST_CASE("both stores: max_active holds, and a release frees a slot for the next person", "[store]") {
    const backend b = GENERATE(backend::memory, backend::redis);
    INFO("backend " << name_of(b));
    room_fixture f(b, sale(100, 10, 2));
    f.b_ = b;
    const std::vector<std::uint64_t> first{f.join(), f.join()};
    const std::uint64_t third = f.join();
    const auto in = f.admit_all(first, seconds(15));
    REQUIRE(in.size() == 2);
    // The third stays out while two sessions are held, and a touch keeps a session alive.
    for (int i = 0; i < 10; ++i) {
        CHECK_FALSE(f.poll(third).pass);
        CHECK(f.room().touch(in[0].second, ts::wall_clock_ms()));
        std::this_thread::sleep_for(milliseconds(100));
    }
    CHECK(f.room().release(in[0].second, ts::release_reason::explicit_));
    const auto next = f.admit_all({third}, seconds(10));
    CHECK(next.size() == 1);
    // A released pass no longer touches its slot.
    CHECK_FALSE(f.room().touch(in[0].second, ts::wall_clock_ms()));
}

TEST_CASE("both stores: someone who leaves is skipped, and the people behind move up", "[store]") {
    const backend b = GENERATE(backend::memory, backend::redis);
    INFO("backend " << name_of(b));
    room_config cfg = sale(5, 1, 0);
    cfg.mode = room_mode::paused;
    room_fixture f(b, cfg);
    f.b_ = b;
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 4; ++i) seqs.push_back(f.join());
    CHECK(f.room().wr().leave(seqs[1]));
    // Paused: nobody is called, whatever the time.
    std::this_thread::sleep_for(milliseconds(500));
    for (auto s : seqs) CHECK_FALSE(f.poll(s).pass);
    cfg.mode = room_mode::queue_all;
    f.room().apply(cfg, ts::wall_clock_ms());
    std::vector<int> rounds;
    const auto passes = f.admit_all({seqs[0], seqs[2], seqs[3]}, seconds(15), &rounds);
    REQUIRE(passes.size() == 3);
    CHECK(rounds[0] <= rounds[1] + 1);
    CHECK(rounds[1] <= rounds[2] + 1);
    // The one who left hears it, and holds no pass.
    const auto gone = f.poll(seqs[1]);
    CHECK_FALSE(gone.pass);
    CHECK(gone.st == ts::ring::state::abandoned);
}

}  // namespace floodgate
