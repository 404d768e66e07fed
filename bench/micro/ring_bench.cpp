// The ring's request-path operations on one core (goal >= 5M ops/s each) with 10M waiting, and
// an admitter tick with 10M waiting.
#include <benchmark/benchmark.h>

#include <memory>

#include "tokenstore/active_slots.hpp"
#include "tokenstore/ring.hpp"
#include "tokenstore/waiting_room.hpp"

using namespace floodgate::tokenstore;

namespace {

constexpr millis t0 = 1'700'000'000'000;
constexpr std::uint64_t waiting = 10'000'000;

// Cheap, inlined randomness so the benchmark measures the ring, not the generator.
struct xorshift {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

// One ring with 10M waiting tickets (a tenth of them abandoned and swept), shared by the
// position benchmarks.
ring& ten_million() {
    static std::unique_ptr<ring> r = [] {
        auto q = *ring::create({.abandon_after = 3'600'000}, t0);
        for (std::uint64_t i = 0; i < waiting; ++i) q->join(t0);
        for (std::uint64_t s = 0; s < waiting; s += 10) q->leave(s);
        for (int i = 0; i < 10; ++i) q->sweep(1u << 20, t0 + 1'000);
        q->publish_index();
        q->advance(1'000, t0 + 1'000);
        return q;
    }();
    return *r;
}

void BM_ring_join(benchmark::State& state) {
    auto r = *ring::create({.capacity = std::uint64_t(1) << 26}, t0);
    millis now = t0;
    for (auto _ : state) {
        auto s = r->join(now);
        if (!s) {
            state.PauseTiming();
            r = *ring::create({.capacity = std::uint64_t(1) << 26}, t0);
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(s);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_join);

void BM_ring_heartbeat_10M(benchmark::State& state) {
    ring& r = ten_million();
    xorshift rng{88172645463325252ULL};
    millis now = t0 + 2'000;
    std::uint64_t i = 0;
    for (auto _ : state) {
        // Random tickets, and the clock moves: most heartbeats really write.
        benchmark::DoNotOptimize(r.heartbeat(rng.next() % waiting, now + millis(++i / 64)));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_heartbeat_10M);

void BM_ring_locate_10M(benchmark::State& state) {
    ring& r = ten_million();
    xorshift rng{88172645463325252ULL};
    for (auto _ : state) {
        ring::position p = r.locate(rng.next() % waiting);
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_locate_10M);

void BM_ring_poll_10M(benchmark::State& state) {
    ring& r = ten_million();
    xorshift rng{1234567ULL};
    millis now = t0 + 2'000;
    std::uint64_t i = 0;
    for (auto _ : state) {
        ring::position p = r.poll(rng.next() % waiting, now + millis(++i / 64));
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_poll_10M);

// Same, from two threads at once (the machine has two cores shared with others).
void BM_ring_poll_10M_threads(benchmark::State& state) {
    ring& r = ten_million();
    xorshift rng{1234567ULL + std::uint64_t(state.thread_index()) * 77};
    millis now = t0 + 2'000;
    std::uint64_t i = 0;
    for (auto _ : state) {
        ring::position p = r.poll(rng.next() % waiting, now + millis(++i / 64));
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_poll_10M_threads)->Threads(2)->UseRealTime();

// The worst case of the index: a ticket at the very front was abandoned, so every group
// behind it (156K groups for 10M waiting) is rewritten. The admitter does this at most every
// index_every (100 ms).
void BM_ring_publish_index_10M_worst(benchmark::State& state) {
    auto r = *ring::create({.abandon_after = 3'600'000}, t0);
    for (std::uint64_t i = 0; i < waiting; ++i) r->join(t0);
    r->publish_index();
    for (auto _ : state) {
        r->leave(r->cursor());
        r->advance(1, t0 + 1'000);  // skips the abandoned ticket, calls the next
        r->publish_index();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ring_publish_index_10M_worst)->Unit(benchmark::kMicrosecond);

void BM_slots_touch(benchmark::State& state) {
    active_slots s({.max_active = 3'000});
    std::vector<lease> leases;
    for (int i = 0; i < 3'000; ++i) leases.push_back(*s.acquire(t0));
    xorshift rng{99};
    std::uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(s.touch(leases[rng.next() % leases.size()], t0 + millis(++i / 64)));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_slots_touch);

void BM_slots_acquire_release(benchmark::State& state) {
    active_slots s({.max_active = 3'000});
    for (auto _ : state) {
        auto l = s.acquire(t0);
        s.release(*l, release_reason::explicit_);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_slots_acquire_release);

// One admitter tick of a room with 10M waiting at 550/s (burst 50), ticking at the room's
// recommended interval (45 ms of manual time), where 1% of the queue has walked away: no-show
// expiry, lease expiry, the walk, a paced sweep (4M tickets/s) and, every 100 ms, the index
// rewrite that follows the abandoned tickets found.
void BM_admitter_tick_10M(benchmark::State& state) {
    static std::unique_ptr<waiting_room> room = [] {
        auto r = *waiting_room::create(
            {.policy = {.rate = 550, .burst = 50, .max_active = 300'000,
                        .abandon_after = 3'600'000}},
            t0);
        for (std::uint64_t i = 0; i < waiting; ++i) r->join(t0, "", false);
        for (std::uint64_t s = 7; s < waiting; s += 100) r->leave(s);
        return r;
    }();
    static millis now = t0 + 1'000;
    const millis interval = room->tick_interval();
    std::uint64_t called = 0, abandoned = 0;
    for (auto _ : state) {
        now += interval;
        const auto r = room->tick(now);
        called += r.called;
        abandoned += r.abandoned;
    }
    state.counters["interval_ms"] = double(interval);
    state.counters["called/s"] =
        double(called) / (double(state.iterations()) * double(interval) / 1000.0);
    state.counters["abandoned/tick"] = double(abandoned) / double(state.iterations());
    state.counters["waiting"] = double(room->snapshot().waiting);
}
BENCHMARK(BM_admitter_tick_10M)->Unit(benchmark::kMicrosecond);

// The same room when nothing needs doing beyond the walk: what a 1 ms ticker pays.
void BM_admitter_tick_10M_idle_queue(benchmark::State& state) {
    static std::unique_ptr<waiting_room> room = [] {
        auto r = *waiting_room::create(
            {.policy = {.rate = 550, .burst = 1, .abandon_after = 3'600'000}}, t0);
        for (std::uint64_t i = 0; i < waiting; ++i) r->join(t0, "", false);
        return r;
    }();
    static millis now = t0 + 1'000;
    for (auto _ : state) {
        now += 1;
        benchmark::DoNotOptimize(room->tick(now));
    }
}
BENCHMARK(BM_admitter_tick_10M_idle_queue)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
