// Whose pass is it, across nodes (docs/redis.md, "Node numbers", "Touches and releases"): real
// floodgate processes share one real redis-server. A pass carries the number of the node that
// minted it; that node holds the number's lease. What a user notices: a pass minted on one node
// gets through every other node, and a release on any node ends it on all of them, also when a
// starting node's first choice of number is one a running node holds, when the node that minted
// the pass died and a new one started, when a node finds its number taken, and when the release
// was made while Redis was down.
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "harness.hpp"
#include "redis_server.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"

namespace floodgate::itest::rooms {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool ready(const gateway_process& gw, seconds timeout) {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
        const reply r = get(gw.admin_port(), "/readyz");
        if (r.status == 200 && r.body == "ready\n") return true;
        std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
}

struct cluster {
    explicit cluster(floodgate::test::redis_server::persistence p = floodgate::test::redis_server::persistence::none)
        : redis(p) {
        write_file(keys.file("keys"), key_file_text("k1"));
    }

    // A node of the room "concert" (every join waits in line; 20 calls a second), once it is in
    // step with Redis.
    std::unique_ptr<gateway_process> start(std::string_view node) const {
        auto gw = std::make_unique<gateway_process>(room_config(
            app.address(), site.address(),
            "  concert:\n"
            "    match: {paths: [/reserve]}\n"
            "    upstream: site\n"
            "    admission: {rate: 20, burst: 5, max_active: 1000}\n"
            "    mode: queue_all\n",
            "store: redis://127.0.0.1:" + std::to_string(redis.port()) + "/0\n" + "node_id: " + std::string(node) +
                "\n" + "keys_file: " + keys.file("keys")));
        REQUIRE(ready(*gw, seconds(10)));
        return gw;
    }

    // The same, its first choice of number being `first` (held by a running node, say).
    std::unique_ptr<gateway_process> start_trying(std::string_view node, std::uint32_t first) const {
        REQUIRE(cli("SET 'fg:{concert}:node_next' " + std::to_string(first)) == "OK");
        return start(node);
    }

    // What redis-cli answers, trimmed.
    std::string cli(const std::string& args) const {
        const std::string cmd = "redis-cli -p " + std::to_string(redis.port()) + " " + args + " 2>&1";
        std::string out;
        if (FILE* f = ::popen(cmd.c_str(), "r")) {
            char buf[256];
            while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
            ::pclose(f);
        }
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        return out;
    }

    floodgate::test::redis_server redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
};

// The number the node's log says it holds now (its last "holds number" line).
std::uint32_t number_of(const gateway_process& gw, std::string_view node) {
    const std::string text = gw.stderr_text();
    const std::string needle = "node " + std::string(node) + " holds number ";
    const auto at = text.rfind(needle);
    REQUIRE(at != std::string::npos);  // a node in step has a number
    return static_cast<std::uint32_t>(std::strtoul(text.c_str() + at + needle.size(), nullptr, 10));
}

// Someone joins at `gw` and waits there until called: the pass is minted by that node.
std::string pass_from(const gateway_process& gw) {
    const reply r = get(gw.port(), "/reserve", {accept_json});
    INFO("join: " << r.status << " " << r.body);
    REQUIRE(r.cookie("fg_ticket_concert").has_value());
    return wait_for_pass(gw.port(), "concert", *r.cookie("fg_ticket_concert"), seconds(20));
}

std::uint32_t number_in(const std::string& pass) {
    const auto claims = decode_pass(pass);
    REQUIRE(claims.has_value());
    return claims->slot >> 24;
}

bool gets_through(const gateway_process& gw, const std::string& pass) {
    return get(gw.port(), "/reserve", {cookie_header("fg_pass_concert", pass)}).from_site();
}

bool release(const gateway_process& gw, const std::string& pass) {
    const reply r = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/concert/release",
                          {cookie_header("fg_pass_concert", pass)});
    return r.body.find("\"released\":true") != std::string::npos;
}

// Waits until the pass gets through none of the nodes; how long it took, or nullopt.
std::optional<milliseconds> wait_refused(const std::vector<const gateway_process*>& nodes, const std::string& pass,
                                         milliseconds timeout) {
    const auto start = steady::now();
    while (steady::now() - start < timeout) {
        bool refused = true;
        for (const auto* n : nodes) refused = refused && !gets_through(*n, pass);
        if (refused) return std::chrono::duration_cast<milliseconds>(steady::now() - start);
        std::this_thread::sleep_for(milliseconds(50));
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("a starting node never takes the number a running node holds; passes work and end across both",
          "[rooms][multinode]") {
    cluster c;
    const auto a = c.start("gw-a");
    const std::uint32_t no_a = number_of(*a, "gw-a");
    const auto b = c.start_trying("gw-b", no_a);
    const std::uint32_t no_b = number_of(*b, "gw-b");
    INFO("node numbers: A " << no_a << ", B " << no_b);
    CHECK(no_b != no_a);

    const std::string pa = pass_from(*a);
    const std::string pb = pass_from(*b);
    CHECK(number_in(pa) == no_a);
    CHECK(number_in(pb) == no_b);
    // Each node's first pass has the same slot and generation there: only the number tells
    // them apart.
    CHECK((decode_pass(pa)->slot & 0xffffff) == (decode_pass(pb)->slot & 0xffffff));
    CHECK(decode_pass(pa)->slot_gen == decode_pass(pb)->slot_gen);
    for (const auto* n : {a.get(), b.get()}) {
        CHECK(gets_through(*n, pa));
        CHECK(gets_through(*n, pb));
    }

    // A's pass, released through B: it ends on both nodes, and B's own pass is not touched
    // (had they shared a number, B would have ended its own session with that slot).
    CHECK(release(*b, pa));
    const auto gone = wait_refused({a.get(), b.get()}, pa, seconds(2));
    REQUIRE(gone.has_value());
    WARN("A's pass refused on both nodes " << gone->count() << " ms after its release on B");
    CHECK(gets_through(*a, pb));
    CHECK(gets_through(*b, pb));

    // And the other way round.
    CHECK(release(*a, pb));
    CHECK(wait_refused({a.get(), b.get()}, pb, seconds(2)).has_value());
}

TEST_CASE("the number of a node that died is not given to the next node while its passes may live",
          "[rooms][multinode]") {
    cluster c;
    const auto a = c.start("gw-a");
    const auto b = c.start("gw-b");
    const std::uint32_t no_a = number_of(*a, "gw-a");
    const std::string pa = pass_from(*a);
    CHECK(gets_through(*b, pa));

    a->signal(SIGKILL);
    REQUIRE(a->wait_exit(seconds(5)).has_value());
    // Its number stays taken (for session_ttl and more), however the next node chooses.
    const std::string ttl = c.cli("PTTL 'fg:{concert}:node:" + std::to_string(no_a) + "'");
    INFO("the dead node's number lease: " << ttl << " ms left");
    CHECK(std::stoll(ttl) > 30 * 60 * 1000);  // session_ttl: 30 min by default
    const auto n = c.start_trying("gw-new", no_a);
    const std::uint32_t no_new = number_of(*n, "gw-new");
    INFO("A had " << no_a << ", the new node has " << no_new);
    CHECK(no_new != no_a);

    // The dead node's pass still gets through the others: neither takes it for its own.
    CHECK(gets_through(*b, pa));
    CHECK(gets_through(*n, pa));
    const std::string pn = pass_from(*n);
    CHECK(gets_through(*b, pn));
    CHECK(release(*b, pn));
    CHECK(wait_refused({b.get(), n.get()}, pn, seconds(2)).has_value());
    CHECK(gets_through(*n, pa));
}

TEST_CASE("a node that finds its number held by another process takes a new one, and its passes still end "
          "everywhere",
          "[rooms][multinode]") {
    cluster c;
    const auto a = c.start("gw-a");
    const auto b = c.start("gw-b");
    const std::uint32_t no_a = number_of(*a, "gw-a");

    // What Redis losing A's lease and another process taking the number looks like.
    REQUIRE(c.cli("SET 'fg:{concert}:node:" + std::to_string(no_a) + "' 'someone-else 0'") == "OK");
    CHECK(wait_for_log(*a, "is held by another process now", 1, seconds(5)));
    std::uint32_t now_a = no_a;
    for (int i = 0; i < 50 && now_a == no_a; ++i) {
        std::this_thread::sleep_for(milliseconds(100));
        now_a = number_of(*a, "gw-a");
    }
    INFO("A had " << no_a << ", now " << now_a << "; B has " << number_of(*b, "gw-b"));
    CHECK(now_a != no_a);
    CHECK(now_a != number_of(*b, "gw-b"));
    REQUIRE(ready(*a, seconds(5)));

    // New passes from A carry its new number and behave on both nodes.
    const std::string pa = pass_from(*a);
    CHECK(number_in(pa) == now_a);
    CHECK(gets_through(*b, pa));
    CHECK(release(*b, pa));
    CHECK(wait_refused({a.get(), b.get()}, pa, seconds(2)).has_value());
}

TEST_CASE("a release made on another node while Redis is down ends the session on its node once Redis is back",
          "[rooms][multinode]") {
    cluster c(floodgate::test::redis_server::persistence::aof);
    const auto a = c.start("gw-a");
    const auto b = c.start("gw-b");
    // Two people get in through A.
    const std::string released_on_b = pass_from(*a);
    const std::string released_on_a = pass_from(*a);
    for (const auto* n : {a.get(), b.get()}) {
        CHECK(gets_through(*n, released_on_b));
        CHECK(gets_through(*n, released_on_a));
    }

    c.redis.stop();
    bool out_of_step = false;
    for (int i = 0; i < 50 && !out_of_step; ++i) {
        std::this_thread::sleep_for(milliseconds(100));
        out_of_step = get(b->admin_port(), "/readyz").body.find("store_failure hold") != std::string::npos;
    }
    REQUIRE(out_of_step);

    // One releases on B, the other on A. Each ends at once where it was released; the other
    // node cannot hear of it while Redis is down.
    CHECK(release(*b, released_on_b));
    CHECK(release(*a, released_on_a));
    CHECK_FALSE(gets_through(*b, released_on_b));
    CHECK_FALSE(gets_through(*a, released_on_a));
    CHECK(gets_through(*a, released_on_b));
    CHECK(gets_through(*b, released_on_a));
    std::this_thread::sleep_for(seconds(2));  // several syncs fail meanwhile

    c.redis.start();
    const auto back = steady::now();
    const auto gone_b = wait_refused({a.get(), b.get()}, released_on_b, seconds(15));
    const auto gone_a = wait_refused({a.get(), b.get()}, released_on_a, seconds(15));
    const double took = std::chrono::duration<double>(steady::now() - back).count();
    REQUIRE(gone_b.has_value());
    REQUIRE(gone_a.has_value());
    WARN("both passes refused on both nodes " << took << " s after Redis came back");
    // Reconnecting (backoff up to a few seconds), then a sync on each side.
    CHECK(took < 10.0);
    CHECK(ready(*a, seconds(10)));
}

}  // namespace floodgate::itest::rooms
