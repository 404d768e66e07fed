// The Redis store (tokenstore/redis) against a real redis-server: the connection (pipelining,
// outage and recovery, timeouts) and one room's protocol shared by two store instances (seq
// ranges, the cursor lease and its takeover, the fenced cursor, liveness bitmaps).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "connection_helpers.hpp"
#include "redis_server.hpp"
#include "tokenstore/redis/redis_connection.hpp"
#include "tokenstore/redis/redis_room.hpp"

using namespace floodgate;
using namespace floodgate::tokenstore::redis;
using namespace std::chrono_literals;
using floodgate::tokenstore::millis;
using floodgate::tokenstore::wall_clock_ms;
using floodgate::test::call;
using floodgate::test::io_thread;
using floodgate::test::wait_until;

namespace {

std::shared_ptr<redis_connection> connect(io_thread& io, std::uint16_t port,
                                          redis_connection::options o = {}) {
    o.port = port;
    auto c = redis_connection::create(io.ioc.get_executor(), o);
    c->start();
    REQUIRE(wait_until([&] { return c->current_state() == redis_connection::state::connected; }, 5s));
    return c;
}

// Runs an async store call and waits for its callback's values.
template <class... T, class Start>
std::tuple<error_code, T...> await(Start start) {
    auto p = std::make_shared<std::promise<std::tuple<error_code, T...>>>();
    auto f = p->get_future();
    start([p](error_code ec, T... v) { p->set_value({ec, std::move(v)...}); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
}

redis_room::options room_opts(std::string node) {
    return {.room = "vaccine", .node_id = std::move(node), .lease_ttl = 900ms,
            .cursor_interval = 50ms};
}

}  // namespace

TEST_CASE("pipelined commands get their replies in order", "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto conn = connect(io, redis.port());

    constexpr int n = 2000;
    std::vector<std::promise<std::pair<error_code, redis_reply>>> replies(3 * n);
    // All of them are issued before the first reply can arrive: many commands in flight.
    for (int i = 0; i < n; ++i) {
        const std::string k = "k" + std::to_string(i);
        conn->command({"SET", k, "v" + std::to_string(i)},
                      [&, i](error_code ec, redis_reply r) { replies[3 * i].set_value({ec, r}); });
        conn->command({"GET", k},
                      [&, i](error_code ec, redis_reply r) { replies[3 * i + 1].set_value({ec, r}); });
        conn->command({"INCR", "counter"},
                      [&, i](error_code ec, redis_reply r) { replies[3 * i + 2].set_value({ec, r}); });
    }
    for (int i = 0; i < n; ++i) {
        auto set = replies[3 * i].get_future().get();
        auto get = replies[3 * i + 1].get_future().get();
        auto incr = replies[3 * i + 2].get_future().get();
        REQUIRE(!set.first);
        REQUIRE(set.second.str == "OK");
        REQUIRE(get.second.is_string());
        REQUIRE(get.second.str == "v" + std::to_string(i));
        REQUIRE(incr.second.is_integer());
        REQUIRE(incr.second.integer == i + 1);
    }

    // An error reply is a reply, not a broken connection.
    auto [ec, r] = call(*conn, {"INCRBY", "counter", "not-a-number"});
    CHECK(!ec);
    CHECK(r.is_error());
    CHECK(call(*conn, {"GET", "counter"}).second.str == std::to_string(n));
    conn->stop();
}

TEST_CASE("the connection reconnects after redis restarts and reports its state meanwhile",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto conn = connect(io, redis.port(),
                        {.command_timeout = 300ms, .backoff_min = 50ms, .backoff_max = 400ms});
    REQUIRE(call(*conn, {"SET", "before", "1"}).second.str == "OK");

    // A timer on the same io_context: if anything blocked the I/O thread during the outage,
    // it would stop ticking.
    std::atomic<int> ticks{0};
    net::steady_timer ticker(io.ioc);
    std::function<void(error_code)> tick = [&](error_code ec) {
        if (ec) return;
        ++ticks;
        ticker.expires_after(10ms);
        ticker.async_wait(tick);
    };
    net::post(io.ioc, [&] { tick({}); });

    redis.stop();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::reconnecting; },
                       3s));
    CHECK(!conn->status().last_error.empty());

    // While Redis is away, commands fail quickly instead of hanging.
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, r] = call(*conn, {"GET", "before"});
    CHECK(ec);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);

    const int ticks_before = ticks.load();
    std::this_thread::sleep_for(1s);
    CHECK(ticks.load() - ticks_before >= 50);  // about 100 at 10 ms, on a busy machine fewer
    CHECK(conn->current_state() == redis_connection::state::reconnecting);
    CHECK(conn->status().failures >= 2);  // the lost connection and failed attempts since

    redis.start();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       5s));
    auto [ec2, r2] = call(*conn, {"SET", "after", "1"});
    CHECK(!ec2);
    CHECK(r2.str == "OK");
    CHECK(conn->status().connects == 2);

    conn->stop();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::down; }, 2s));
    CHECK(call(*conn, {"GET", "after"}).first == make_error_code(redis_errc::stopped));
    net::post(io.ioc, [&] { ticker.cancel(); });
}

TEST_CASE("a command that gets no reply in time fails and the connection recovers", "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto conn = connect(io, redis.port(), {.command_timeout = 300ms, .backoff_min = 20ms});

    // BLPOP on an empty list holds the reply for 5 s: longer than the command timeout.
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, r] = call(*conn, {"BLPOP", "empty", "5"});
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(ec == make_error_code(redis_errc::timed_out));
    CHECK(took < 2s);
    CHECK(conn->status().timeouts == 1);

    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       3s));
    CHECK(call(*conn, {"PING"}).second.str == "PONG");
    conn->stop();
}

TEST_CASE("seq ranges from two store instances never overlap", "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));

    std::mutex mu;
    std::vector<redis_room::seq_range> ranges;
    std::atomic<int> left{400};
    for (int i = 0; i < 200; ++i) {
        for (auto* room : {&a, &b}) {
            (*room)->reserve_seqs(1 + (i * 37) % 500, [&](error_code ec, redis_room::seq_range r) {
                CHECK(!ec);
                std::lock_guard lock(mu);
                ranges.push_back(r);
                --left;
            });
        }
    }
    REQUIRE(wait_until([&] { return left.load() == 0; }, 10s));
    std::lock_guard lock(mu);
    std::sort(ranges.begin(), ranges.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    REQUIRE(ranges.front().first == 0);
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        REQUIRE(ranges[i - 1].last == ranges[i].first);  // no overlap, no gap
    }
}

TEST_CASE("only one of two instances holds the cursor lease and the other takes over when the "
          "holder stops renewing",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));
    a->start(true);
    REQUIRE(wait_until([&] { return a->holds_lease(); }, 2s));
    b->start(true);

    // For two seconds (several renewals of both), never both, never neither.
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < until) {
        const bool ha = a->holds_lease();
        const bool hb = b->holds_lease();
        REQUIRE(ha);
        REQUIRE(!hb);
        std::this_thread::sleep_for(20ms);
    }

    // The holder dies (stops renewing, does not release): b takes over within ttl + ttl / 3.
    a->stop();
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] { return b->holds_lease(); }, 3s));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < 900ms + 300ms + 300ms);
    CHECK(!a->holds_lease());

    // A clean handover: b releases, a (running again) takes it at its next attempt.
    a->start(true);
    auto [ec, released] = await<bool>([&](auto cb) { b->release_lease(cb); });
    CHECK(!ec);
    CHECK(released);
    CHECK(!b->holds_lease());
    REQUIRE(wait_until([&] { return a->holds_lease(); }, 1s));
    a->stop();
    b->stop();
}

TEST_CASE("only the lease holder moves the cursor and only forwards and every node reads it",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));
    auto [ec0, held] = await<bool>([&](auto cb) { a->try_lease(cb); });
    REQUIRE(held);
    b->start(false);  // a follower: reads the cursor every 50 ms

    const millis now = wall_clock_ms();
    auto [ec1, ok1] = await<bool>([&](auto cb) { a->publish_cursor({100, 7, now}, cb); });
    CHECK(ok1);
    auto [ec2, ok2] = await<bool>([&](auto cb) { b->publish_cursor({200, 9, now}, cb); });
    CHECK(!ec2);
    CHECK(!ok2);  // b does not hold the lease
    auto [ec3, ok3] = await<bool>([&](auto cb) { a->publish_cursor({50, 1, now}, cb); });
    CHECK(!ok3);  // never backwards

    REQUIRE(wait_until([&] { return b->cursor().has_value(); }, 2s));
    const auto c = *b->cursor();
    CHECK(c.cursor == 100);
    CHECK(c.dead_below == 7);
    CHECK(c.at == now);

    auto [ec4, ok4] = await<bool>([&](auto cb) { a->publish_cursor({150, 8, now + 1}, cb); });
    CHECK(ok4);
    REQUIRE(wait_until([&] { return b->cursor()->cursor == 150; }, 2s));
    b->stop();
}

TEST_CASE("liveness recorded on one node is seen from another and each seq is sent once per "
          "epoch",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));

    const millis now = wall_clock_ms();
    std::vector<std::uint64_t> polled = {3, 8, 9, 1000, 5000};
    for (int round = 0; round < 5; ++round) {  // people poll many times; one bit each
        for (auto s : polled) a->mark_live(s, now);
    }
    for (std::uint64_t s = 10'000; s < 13'000; ++s) a->mark_live(s, now);  // several BITFIELDs
    auto [ec, written] = await<std::size_t>([&](auto cb) { a->flush_liveness(now, cb); });
    REQUIRE(!ec);
    CHECK(written == polled.size() + 3000);
    auto [ec_again, none] = await<std::size_t>([&](auto cb) { a->flush_liveness(now, cb); });
    CHECK(none == 0);  // nothing new this epoch

    auto [ec2, live] = await<std::vector<bool>>(
        [&](auto cb) { b->read_liveness(0, 6000, now, 2, cb); });
    REQUIRE(!ec2);
    REQUIRE(live.size() == 6000);
    for (std::uint64_t s = 0; s < 6000; ++s) {
        const bool expect = std::find(polled.begin(), polled.end(), s) != polled.end();
        if (live[s] != expect) FAIL("seq " << s);
    }
    auto [ec3, live2] = await<std::vector<bool>>(
        [&](auto cb) { b->read_liveness(9'999, 3'002, now, 2, cb); });
    REQUIRE(!ec3);
    CHECK(!live2.front());
    CHECK(!live2.back());
    CHECK(std::count(live2.begin(), live2.end(), true) == 3000);

    // The next epoch starts empty; the previous one is still read when asked for two.
    const millis later = now + 10'000;
    auto [ec4, next_only] = await<std::vector<bool>>(
        [&](auto cb) { b->read_liveness(0, 10, later, 1, cb); });
    CHECK(std::count(next_only.begin(), next_only.end(), true) == 0);
    auto [ec5, both] = await<std::vector<bool>>(
        [&](auto cb) { b->read_liveness(0, 10, later, 2, cb); });
    CHECK(both[3]);
    CHECK(both[8]);
    CHECK(both[9]);
}

TEST_CASE("two nodes together never hold more than max_active slots and a freed slot gets a new "
          "generation",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));
    const millis now = wall_clock_ms();
    constexpr std::uint32_t max_active = 50;

    // 80 claims from two nodes at once: exactly 50 granted, all distinct slots.
    std::mutex mu;
    std::vector<redis_room::slot_claim> granted;
    std::atomic<int> left{80};
    std::atomic<int> refused{0};
    for (int i = 0; i < 40; ++i) {
        for (auto* room : {&a, &b}) {
            (*room)->claim_slot(max_active, now, now + 60'000,
                                [&](error_code ec, redis_room::slot_claim c) {
                                    CHECK(!ec);
                                    std::lock_guard lock(mu);
                                    if (c.granted) granted.push_back(c);
                                    else ++refused;
                                    --left;
                                });
        }
    }
    REQUIRE(wait_until([&] { return left.load() == 0; }, 10s));
    {
        std::lock_guard lock(mu);
        REQUIRE(granted.size() == max_active);
        CHECK(refused.load() == 30);
        std::vector<std::uint32_t> slots;
        for (auto& c : granted) slots.push_back(c.slot);
        std::sort(slots.begin(), slots.end());
        CHECK(std::adjacent_find(slots.begin(), slots.end()) == slots.end());
        CHECK(slots.back() < max_active);
    }
    auto [ec0, active] = await<std::uint64_t>([&](auto cb) { b->count_active(now, cb); });
    CHECK(active == max_active);

    // Released on one node, claimed on the other: same slot, next generation; the old pass's
    // (slot, gen) no longer touches or releases anything.
    const auto old = granted.front();
    auto [ec1, released] = await<bool>([&](auto cb) { a->release_slot(old.slot, old.gen, cb); });
    CHECK(released);
    auto [ec2, again] = await<redis_room::slot_claim>(
        [&](auto cb) { b->claim_slot(max_active, now, now + 60'000, cb); });
    REQUIRE(again.granted);
    CHECK(again.slot == old.slot);
    CHECK(again.gen == old.gen + 1);
    auto [ec3, touched_old] = await<bool>(
        [&](auto cb) { a->touch_slot(old.slot, old.gen, now, now + 90'000, cb); });
    CHECK(!touched_old);
    auto [ec4, released_old] = await<bool>([&](auto cb) { a->release_slot(old.slot, old.gen, cb); });
    CHECK(!released_old);
    auto [ec5, touched] = await<bool>(
        [&](auto cb) { a->touch_slot(again.slot, again.gen, now, now + 90'000, cb); });
    CHECK(touched);

    // When every other slot's lease has run out, a claim takes an expired one (new generation)
    // and the touched one is still held.
    const millis later = now + 70'000;
    auto [ec6, still] = await<std::uint64_t>([&](auto cb) { a->count_active(later, cb); });
    CHECK(still == 1);
    auto [ec7, reused] = await<redis_room::slot_claim>(
        [&](auto cb) { a->claim_slot(max_active, later, later + 60'000, cb); });
    REQUIRE(reused.granted);
    CHECK(reused.slot != again.slot);
    CHECK(reused.gen == 2);
}

TEST_CASE("an identity holds one place across nodes until it is released", "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));

    auto [ec1, first] = await<std::optional<std::string>>(
        [&](auto cb) { a->claim_identity("alice", "q 17", 60'000, cb); });
    REQUIRE(!ec1);
    CHECK(!first.has_value());  // alice's first join: this node took the identity
    auto [ec2, second] = await<std::optional<std::string>>(
        [&](auto cb) { b->claim_identity("alice", "q 99", 60'000, cb); });
    REQUIRE(second.has_value());
    CHECK(*second == "q 17");  // the second device gets alice's existing place

    auto [ec3, wrong] = await<bool>([&](auto cb) { b->release_identity("alice", "q 99", cb); });
    CHECK(!wrong);
    auto [ec4, right] = await<bool>([&](auto cb) { a->release_identity("alice", "q 17", cb); });
    CHECK(right);
    auto [ec5, third] = await<std::optional<std::string>>(
        [&](auto cb) { b->claim_identity("alice", "q 120", 60'000, cb); });
    CHECK(!third.has_value());

    // The ttl ends an identity that nobody released.
    auto [ec6, bob] = await<std::optional<std::string>>(
        [&](auto cb) { a->claim_identity("bob", "q 1", 100, cb); });
    CHECK(!bob.has_value());
    std::this_thread::sleep_for(300ms);
    auto [ec7, bob2] = await<std::optional<std::string>>(
        [&](auto cb) { b->claim_identity("bob", "q 2", 60'000, cb); });
    CHECK(!bob2.has_value());
}

TEST_CASE("a room change written on one node reaches the other within about a second",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(connect(io, redis.port()), room_opts("a"));
    auto b = redis_room::create(connect(io, redis.port()), room_opts("b"));

    std::mutex mu;
    std::uint64_t seen_version = 0;
    redis_room::config_fields seen;
    b->on_config_change([&](std::uint64_t v, const redis_room::config_fields& f) {
        std::lock_guard lock(mu);
        seen_version = v;
        seen = f;
    });
    b->start(false);

    auto [ec1, v1] = await<std::uint64_t>(
        [&](auto cb) { a->write_config({{"rate", "550"}, {"mode", "queue_all"}}, cb); });
    REQUIRE(!ec1);
    CHECK(v1 == 1);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] { std::lock_guard lock(mu); return seen_version == 1; }, 3s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    {
        std::lock_guard lock(mu);
        std::sort(seen.begin(), seen.end());
        CHECK(seen == redis_room::config_fields{{"mode", "queue_all"}, {"rate", "550"}});
    }

    auto [ec2, v2] = await<std::uint64_t>([&](auto cb) { a->write_config({{"mode", "paused"}}, cb); });
    CHECK(v2 == 2);
    REQUIRE(wait_until([&] { std::lock_guard lock(mu); return seen_version == 2; }, 3s));
    {
        std::lock_guard lock(mu);
        std::sort(seen.begin(), seen.end());
        CHECK(seen == redis_room::config_fields{{"mode", "paused"}, {"rate", "550"}});
    }

    auto [ec3, v3] = await<std::uint64_t>([&](auto cb) { a->write_config({{"version", "9"}}, cb); });
    CHECK(ec3);  // reserved
    b->stop();
}

TEST_CASE("a lease holder cut off from redis stops calling within the lease ttl and takes the lease "
          "again when redis returns",
          "[redis]") {
    test::redis_server redis;
    io_thread io;
    auto a = redis_room::create(
        connect(io, redis.port(), {.command_timeout = 300ms, .backoff_min = 50ms, .backoff_max = 300ms}),
        room_opts("a"));
    a->start(true);
    REQUIRE(wait_until([&] { return a->holds_lease(); }, 2s));

    redis.stop();
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] { return !a->holds_lease(); }, 2s));
    CHECK(std::chrono::steady_clock::now() - t0 <= 900ms + 100ms);  // at most one ttl

    redis.start();
    REQUIRE(wait_until([&] { return a->holds_lease(); }, 5s));
    a->stop();
}
