// Sentinel discovery of the Redis primary (store: redis+sentinel://..., docs/redis.md "Sentinel"):
// a real primary, a real replica and a real sentinel on 127.0.0.1. The connection finds the
// primary through the sentinel, follows a failover to the new primary, leaves a node that turned
// replica; a real floodgate process keeps serving its room, in order, across a failover.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <sstream>
#include <thread>

#include "connection_helpers.hpp"
#include "harness.hpp"
#include "redis_server.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"
#include "tokenstore/redis/redis_connection.hpp"

using namespace floodgate;
using namespace floodgate::tokenstore::redis;
using namespace std::chrono_literals;
using floodgate::test::call;
using floodgate::test::io_thread;
using floodgate::test::redis_server;
using floodgate::test::wait_until;
using steady = std::chrono::steady_clock;

namespace {

std::string address_of(const redis_server& s) {
    return "127.0.0.1:" + std::to_string(s.port());
}

// A primary with one replica in sync, watched by one sentinel that knows the replica (so that
// SENTINEL FAILOVER has someone to promote).
struct sentinel_setup {
    redis_server primary;
    redis_server replica{redis_server::replica_of{primary.port()}};
    redis_server sentinel{redis_server::sentinel_for{primary.port()}};

    sentinel_setup() {
        REQUIRE(replica.wait_for({"INFO", "replication"}, "master_link_status:up", 10s));
        REQUIRE(sentinel.wait_for({"SENTINEL", "replicas", redis_server::master_name},
                                  std::to_string(replica.port()), 15s));
    }

    // SENTINEL FAILOVER, retried while the sentinel has no replica it considers good yet.
    void failover() const {
        REQUIRE(sentinel.wait_for({"SENTINEL", "FAILOVER", redis_server::master_name}, "+OK", 15s));
    }

    redis_connection::options options() const {
        redis_connection::options o;
        o.sentinels = {{"127.0.0.1", sentinel.port()}};
        o.master_name = redis_server::master_name;
        return o;
    }
};

}  // namespace

TEST_CASE("a connection through Sentinel asks the sentinels in turn and writes to the primary",
          "[redis][sentinel]") {
    sentinel_setup redis;
    io_thread io;
    auto o = redis.options();
    // The first sentinel in the list is down: the next one is asked at once.
    o.sentinels.insert(o.sentinels.begin(), {"127.0.0.1", itest::unused_port()});
    auto conn = redis_connection::create(io.ioc.get_executor(), o);
    conn->start();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       5s));
    CHECK(conn->status().primary == address_of(redis.primary));

    const auto [ec, r] = call(*conn, {"SET", "fg:sentinel", "hello"});
    REQUIRE(!ec);
    CHECK(r.str == "OK");
    CHECK(redis.primary.query({"GET", "fg:sentinel"}) == "$5\r\nhello\r\n");
    conn->stop();
}

TEST_CASE("a connection through Sentinel never connects when the sentinel knows no such master",
          "[redis][sentinel]") {
    sentinel_setup redis;
    io_thread io;
    auto o = redis.options();
    o.master_name = "nosuchmaster";
    auto conn = redis_connection::create(io.ioc.get_executor(), o);
    conn->start();
    REQUIRE(wait_until([&] { return conn->status().failures >= 2; }, 5s));
    const auto st = conn->status();
    CHECK(st.st == redis_connection::state::reconnecting);
    CHECK(st.last_error.find("sentinel 127.0.0.1:" + std::to_string(redis.sentinel.port())) == 0);
    CHECK(st.primary.empty());
    const auto [ec, r] = call(*conn, {"PING"});
    CHECK(ec == make_error_code(redis_errc::not_connected));
    conn->stop();
}

TEST_CASE(
    "a primary that turns replica is left: READONLY reaches the caller, and the connection "
    "comes back only to a primary",
    "[redis][sentinel]") {
    // No replica: the sentinel cannot fail over, and keeps naming this node.
    redis_server primary;
    redis_server other;
    redis_server sentinel{redis_server::sentinel_for{primary.port()}};
    io_thread io;
    redis_connection::options o;
    o.sentinels = {{"127.0.0.1", sentinel.port()}};
    o.master_name = redis_server::master_name;
    o.backoff_max = 500ms;
    auto conn = redis_connection::create(io.ioc.get_executor(), o);
    conn->start();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       5s));
    REQUIRE(call(*conn, {"SET", "k", "1"}).second.str == "OK");

    REQUIRE(
        primary.query({"REPLICAOF", "127.0.0.1", std::to_string(other.port())}).starts_with("+OK"));
    const auto [ec, r] = call(*conn, {"SET", "k", "2"});
    INFO(ec.message() << " " << r.str);
    // Redis keeps its clients on REPLICAOF: the write reaches the node, and its READONLY reply
    // reaches the caller as an error reply.
    CHECK(!ec);
    CHECK(r.is_error());
    CHECK(r.str.starts_with("READONLY"));
    // ROLE now says "slave": the connection does not come back while the sentinel names it.
    std::this_thread::sleep_for(1500ms);
    CHECK(conn->current_state() == redis_connection::state::reconnecting);
    CHECK(conn->status().last_error.find("is slave") != std::string::npos);

    REQUIRE(primary.query({"REPLICAOF", "NO", "ONE"}).starts_with("+OK"));
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       5s));
    CHECK(call(*conn, {"SET", "k", "3"}).second.str == "OK");
    conn->stop();
}

TEST_CASE("after a Sentinel failover the connection writes to the new primary within 15 s",
          "[redis][sentinel]") {
    sentinel_setup redis;
    io_thread io;
    auto conn = redis_connection::create(io.ioc.get_executor(), redis.options());
    conn->start();
    REQUIRE(wait_until([&] { return conn->current_state() == redis_connection::state::connected; },
                       5s));
    REQUIRE(call(*conn, {"SET", "before", "1"}).second.str == "OK");

    redis.failover();
    const auto start = steady::now();
    // One write every 50 ms, as a busy gateway would, until one lands on the new primary.
    int acked = 0, failed = 0, errors = 0;
    std::vector<std::string> acked_keys;
    std::string first_error;
    bool on_new_primary = false;
    while (!on_new_primary && steady::now() - start < 20s) {
        const auto [ec, r] =
            call(*conn, {"SET", "w" + std::to_string(acked + failed + errors), "x"});
        if (ec) {
            ++failed;
            if (first_error.empty()) first_error = ec.message();
        } else if (r.is_error()) {
            ++errors;
            if (first_error.empty()) first_error = r.str;
        } else {
            ++acked;
            acked_keys.push_back("w" + std::to_string(acked + failed + errors - 1));
            on_new_primary = conn->status().primary == address_of(redis.replica);
        }
        if (!on_new_primary) std::this_thread::sleep_for(50ms);
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
    // Acknowledged writes that the new primary does not have: lost to asynchronous replication
    // (written to the old primary after the replica's promotion).
    int lost = 0;
    for (const auto& k : acked_keys) lost += redis.replica.query({"EXISTS", k}) == ":0\r\n" ? 1 : 0;
    std::fprintf(
        stderr,
        "sentinel failover: a write reached the new primary %lld ms after SENTINEL FAILOVER; "
        "%d writes acknowledged (%d of them lost), %d failed, %d error replies (first: %s); "
        "primary changes %llu\n",
        static_cast<long long>(took.count()), acked, lost, failed, errors, first_error.c_str(),
        static_cast<unsigned long long>(conn->status().primary_changes));
    REQUIRE(on_new_primary);
    CHECK(took < 15s);
    CHECK(conn->status().primary_changes == 1);
    // The write before the failover was replicated; the last one is on the new primary.
    CHECK(redis.replica.query({"GET", "before"}) == "$1\r\n1\r\n");
    CHECK(redis.replica.query({"ROLE"}).find("master") != std::string::npos);
    conn->stop();
}

namespace floodgate::itest::rooms {
namespace {

// A paused room: people join and keep their place, nobody is called, so places can be compared
// before and after the failover.
std::string sentinel_config(const site_upstream& site, const test_upstream& app,
                            std::uint16_t sentinel_port, const std::string& keys_file) {
    return room_config(app.address(), site.address(),
                       "  concert:\n"
                       "    match: {paths: [/reserve]}\n"
                       "    upstream: site\n"
                       "    admission: {rate: 5, burst: 1, max_active: 1000}\n"
                       "    mode: paused\n",
                       "store: redis+sentinel://127.0.0.1:" + std::to_string(sentinel_port) + "/" +
                           redis_server::master_name + "/0\n" +
                           "store_failure: hold\nnode_id: gw-s\nkeys_file: " + keys_file);
}

// Whether a client other than a sentinel, a replica or the test itself is connected to `s`:
// the gateway's store connection.
bool gateway_connected(const redis_server& s) {
    std::istringstream list(s.query({"CLIENT", "LIST"}));
    for (std::string line; std::getline(list, line);) {
        if (line.find(" name= ") != std::string::npos && line.find(" flags=N ") != std::string::npos &&
            line.find(" cmd=client|list ") == std::string::npos)
            return true;
    }
    return false;
}

bool ready(const gateway_process& gw) {
    const reply r = get(gw.admin_port(), "/readyz");
    return r.status == 200 && r.body == "ready\n";
}

// A join: the ticket, or empty when the room did not give a place (out of step with Redis).
std::string try_join(const gateway_process& gw) {
    const reply r = get(gw.port(), "/reserve", {accept_json});
    if (r.status != 503 || json_string(r.json(), "state") != "paused") return {};
    return r.cookie("fg_ticket_concert").value_or("");
}

std::int64_t ahead(const gateway_process& gw, const std::string& ticket) {
    const reply r = get(gw.port(), "/__fg/v1/rooms/concert/status",
                        {cookie_header("fg_ticket_concert", ticket)});
    INFO("status: " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
    return json_int(r.json(), "ahead");
}

}  // namespace
}  // namespace floodgate::itest::rooms

TEST_CASE("a gateway with a redis+sentinel store serves its room in order across a failover",
          "[redis][sentinel][gateway]") {
    using namespace floodgate::itest;
    using namespace floodgate::itest::rooms;
    sentinel_setup redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    write_file(keys.file("keys"), key_file_text("k1"));
    gateway_process gw(sentinel_config(site, app, redis.sentinel.port(), keys.file("keys")));
    REQUIRE(wait_until([&] { return ready(gw); }, 10s));
    CHECK(gw.stderr_text().find(
              "rooms are shared through Redis at the primary 'mymaster' named by Sentinel "
              "127.0.0.1:" +
              std::to_string(redis.sentinel.port()) + " db 0") != std::string::npos);

    // Three people join one after another. An idle node holds a range of only two seqs and
    // asks Redis for more at the first join; a join that comes before the answer gets no place
    // and "try again" (Retry-After), as a person would in a burst: they try again.
    std::vector<std::string> before;
    for (int i = 0; i < 3; ++i) {
        std::string ticket;
        REQUIRE(wait_until([&] { return !(ticket = try_join(gw)).empty(); }, 5s));
        before.push_back(ticket);
    }
    // The line settles (unused seqs of the node's range are given up within a few seconds).
    REQUIRE(wait_until([&] { return ahead(gw, before[2]) == 2; }, 10s));
    CHECK(ahead(gw, before[0]) == 0);
    CHECK(ahead(gw, before[1]) == 1);

    REQUIRE(gateway_connected(redis.primary));
    REQUIRE_FALSE(gateway_connected(redis.replica));
    redis.failover();
    const auto start = steady::now();
    auto ms_since_start = [&] {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
    };
    REQUIRE(wait_until([&] { return gateway_connected(redis.replica); }, 15s));
    const long long switched = ms_since_start();
    // The room goes on: /readyz 200 and a newcomer gets a place. Only once Sentinel has turned
    // the old primary into a replica, so that the join certainly went to the new primary.
    REQUIRE(wait_until(
        [&] { return redis.primary.query({"ROLE"}).find("slave") != std::string::npos; }, 30s));
    const long long demoted = ms_since_start();
    std::string after;
    REQUIRE(wait_until(
        [&] {
            after = ready(gw) ? try_join(gw) : std::string();
            return !after.empty();
        },
        15s));
    std::fprintf(stderr,
                 "sentinel failover, gateway: on the new primary %lld ms after SENTINEL FAILOVER; the "
                 "old primary a replica after %lld ms; a join got a place after %lld ms\n",
                 switched, demoted, ms_since_start());

    // The people from before keep their places, and the newcomer is behind them.
    REQUIRE(wait_until([&] { return ahead(gw, after) == 3; }, 10s));
    CHECK(ahead(gw, before[0]) == 0);
    CHECK(ahead(gw, before[1]) == 1);
    CHECK(ahead(gw, before[2]) == 2);
    CHECK(ready(gw));
}
