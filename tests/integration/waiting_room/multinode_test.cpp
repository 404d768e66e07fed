// Several gateway nodes, one line (store: redis://..., docs/redis.md): three real floodgate
// processes share one real redis-server, and scripted people spread their requests over all
// three, as behind a round-robin load balancer. What the people and the site notice: one global
// first-come-first-served order, the rate held across nodes, the same place whichever node
// answers, the line going on when the node that calls people dies, and each store_failure mode
// doing what it says while Redis is down, with the sale going on when it is back.
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "harness.hpp"
#include "redis_server.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"

namespace floodgate::itest::rooms {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How long a node uses a seq range it reserved (shared_room::options::range_max_age): people
// who joined further apart than this are always called in the order they joined.
constexpr auto range_max_age = milliseconds(1000);

std::size_t max_in_window(std::vector<steady::time_point> times, steady::duration width) {
    std::sort(times.begin(), times.end());
    std::size_t best = 0;
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
        while (j < times.size() && times[j] < times[i] + width) ++j;
        best = std::max(best, j - i);
    }
    return best;
}

std::string node_config(const site_upstream& site, const test_upstream& app, std::uint16_t redis_port,
                        const std::string& keys_file, std::string_view node, std::string_view admission,
                        std::string_view failure = "hold", std::string_view room_extra = "    mode: queue_all\n") {
    return room_config(app.address(), site.address(),
                       "  concert:\n"
                       "    match: {paths: [/reserve]}\n"
                       "    upstream: site\n"
                       "    admission: {" + std::string(admission) + "}\n" + std::string(room_extra),
                       "store: redis://127.0.0.1:" + std::to_string(redis_port) + "/0\n" +
                           "store_failure: " + std::string(failure) + "\n" + "node_id: " + std::string(node) +
                           "\n" + "keys_file: " + keys_file);
}

// Waits until /readyz of gw answers `status` with a body containing `text`.
bool wait_readyz(const gateway_process& gw, unsigned status, std::string_view text, std::chrono::milliseconds timeout) {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
        const reply r = get(gw.admin_port(), "/readyz");
        if (r.status == status && r.body.find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
}

bool wait_ready(const std::vector<gateway_process*>& nodes, unsigned want, std::chrono::milliseconds timeout) {
    const auto end = steady::now() + timeout;
    while (steady::now() < end) {
        bool all = true;
        for (auto* n : nodes) {
            const reply r = get(n->admin_port(), "/readyz");
            all = all && r.status == want && (want != 200 || r.body == "ready\n");
        }
        if (all) return true;
        std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
}

// Admin tokens, handed to every gateway through the environment: a viewer for /metrics and an
// operator for changes.
const std::string metrics_token = "multinode-viewer-token-0123456789";
const std::string operator_token = "multinode-operator-token-0123456789";
const bool tokens_set = [] {
    const std::string lines = "viewer tests " + metrics_token + "\noperator ops " + operator_token + "\n";
    return ::setenv("FLOODGATE_ADMIN_TOKENS", lines.c_str(), 1) == 0;
}();

// Whether this node is the one calling people: floodgate_room_calling on its /metrics.
bool calling(const gateway_process& gw) {
    const reply r = get(gw.admin_port(), "/metrics", {{"Authorization", "Bearer " + metrics_token}});
    return r.body.find("floodgate_room_calling{room=\"concert\"} 1") != std::string::npos;
}

struct person {
    int id = 0;
    std::string ticket;
    steady::time_point join_sent, join_answered;
    std::map<std::size_t, std::int64_t> last_ahead;  // by node
    std::int64_t last_ahead_any = -1;
    steady::time_point next_poll;
    std::size_t polls = 0;
    std::optional<steady::time_point> admitted_at;
    std::string pass;
    bool reached_site = false;
};

// One join: GET /reserve as an app (JSON), on `port`.
void join(person& p, std::uint16_t port) {
    p.join_sent = steady::now();
    const reply r = get(port, "/reserve", {accept_json, {"X-Person", std::to_string(p.id)}});
    p.join_answered = steady::now();
    INFO("person " << p.id << " joined: " << r.status << " " << r.body);
    REQUIRE(r.status == 503);
    CHECK(json_string(r.json(), "state") == "waiting");
    const auto ticket = r.cookie("fg_ticket_concert");
    REQUIRE(ticket.has_value());
    p.ticket = *ticket;
    p.next_poll = steady::now() + milliseconds(std::max<std::int64_t>(1, json_int(r.json(), "poll_after_ms")));
}

// Polls the person's status on `port` (node index `node`); on admission goes to the site with
// the pass on `site_port`. Returns the state. Checks that the place never got worse on one node,
// and by at most `lag` places between nodes (each node follows the caller's cursor within a
// sync interval).
std::string poll(person& p, std::uint16_t port, std::size_t node, std::uint16_t site_port, std::int64_t lag,
                 const header_list& extra = {}) {
    header_list h = extra;
    h.push_back(cookie_header("fg_ticket_concert", p.ticket));
    const reply r = get(port, "/__fg/v1/rooms/concert/status", h);
    ++p.polls;
    INFO("person " << p.id << " polled node " << node << ": " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
    const auto j = r.json();
    const std::string state = json_string(j, "state");
    if (state == "admitted") {
        p.admitted_at = steady::now();
        p.pass = json_string(j, "pass");
        REQUIRE_FALSE(p.pass.empty());
        const reply in =
            get(site_port, "/reserve", {cookie_header("fg_pass_concert", p.pass), {"X-Person", std::to_string(p.id)}});
        INFO("with the pass: " << in.status << " " << in.body.substr(0, 200));
        p.reached_site = in.status == 200 && in.from_site();
        CHECK(p.reached_site);
        return state;
    }
    if (state == "waiting" || state == "paused") {
        const std::int64_t ahead = json_int(j, "ahead");
        REQUIRE(ahead >= 0);
        if (auto it = p.last_ahead.find(node); it != p.last_ahead.end()) CHECK(ahead <= it->second);
        if (p.last_ahead_any >= 0) CHECK(ahead <= p.last_ahead_any + lag);
        p.last_ahead[node] = ahead;
        p.last_ahead_any = ahead;
        p.next_poll = steady::now() + milliseconds(std::max<std::int64_t>(1, json_int(j, "poll_after_ms")));
    }
    return state;
}

// People who joined more than range_max_age after another were called after them.
std::size_t order_violations(const std::vector<person>& people) {
    std::size_t bad = 0;
    for (const person& early : people)
        for (const person& late : people)
            if (late.join_sent > early.join_answered + range_max_age && early.admitted_at && late.admitted_at &&
                *late.admitted_at < *early.admitted_at)
                ++bad;
    return bad;
}

// Pairs admitted in the opposite order of joining (Kendall tau distance), for the report.
std::size_t inversions(const std::vector<person>& people) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < people.size(); ++i)
        for (std::size_t j = i + 1; j < people.size(); ++j)
            if (people[i].admitted_at && people[j].admitted_at && *people[j].admitted_at < *people[i].admitted_at)
                ++n;
    return n;
}

}  // namespace

TEST_CASE("three nodes sharing Redis keep one line: order, rate and places across nodes", "[rooms][multinode]") {
    floodgate::test::redis_server redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    write_file(keys.file("keys"), key_file_text("k1"));
    const std::string admission = "rate: 5, burst: 2, max_active: 1000";
    gateway_process a(node_config(site, app, redis.port(), keys.file("keys"), "gw-a", admission));
    gateway_process b(node_config(site, app, redis.port(), keys.file("keys"), "gw-b", admission));
    gateway_process c(node_config(site, app, redis.port(), keys.file("keys"), "gw-c", admission));
    std::vector<gateway_process*> nodes{&a, &b, &c};
    REQUIRE(wait_ready(nodes, 200, seconds(10)));
    // Every line carries the node's id, so merged logs stay readable.
    CHECK(a.stderr_text().find("gw-a") != std::string::npos);

    constexpr int crowd = 30;
    std::vector<person> people(crowd);
    // They arrive 100 ms apart, each at the next node.
    for (int i = 0; i < crowd; ++i) {
        people[i].id = i;
        join(people[i], nodes[i % 3]->port());
        std::this_thread::sleep_until(people[i].join_sent + milliseconds(100));
    }
    CHECK(site.request_count() == 0);

    // The same ticket asked at all three nodes at once: the same place, give or take the few
    // people the cursor moved within one sync interval (200 ms at 5/s + a burst of 2). Right
    // after joins, places also count the unused rest of the nodes' seq ranges, until the
    // ranges retire (range_max_age) and their holes are announced (a sync): ask after that.
    constexpr std::int64_t lag = 3;
    std::this_thread::sleep_for(range_max_age + milliseconds(500));
    {
        const person& last = people.back();
        std::vector<std::int64_t> places;
        for (auto* n : nodes) {
            const reply r = get(n->port(), "/__fg/v1/rooms/concert/status",
                                {cookie_header("fg_ticket_concert", last.ticket)});
            REQUIRE(r.status == 200);
            places.push_back(json_int(r.json(), "ahead"));
        }
        INFO("the last person's place at the three nodes: " << places[0] << ", " << places[1] << ", " << places[2]);
        CHECK(*std::max_element(places.begin(), places.end()) - *std::min_element(places.begin(), places.end()) <=
              lag);
        // 30 joined 3 s ago at 5/s after a 3 s settle: nobody called yet, or a handful.
        CHECK(*std::min_element(places.begin(), places.end()) >= 20);
        CHECK(*std::max_element(places.begin(), places.end()) <= 29);
    }

    // Each polls when told, each time at the next node; once admitted, goes to the site through
    // yet another node.
    const auto deadline = steady::now() + seconds(40);
    int waiting = crowd;
    for (int step = 0; step < 3000 && waiting > 0; ++step) {
        auto it = std::min_element(people.begin(), people.end(), [](const person& x, const person& y) {
            if (x.admitted_at.has_value() != y.admitted_at.has_value()) return !x.admitted_at.has_value();
            return x.next_poll < y.next_poll;
        });
        person& p = *it;
        REQUIRE_FALSE(p.admitted_at.has_value());
        if (p.next_poll > deadline) FAIL("person " << p.id << " still waits at the deadline");
        std::this_thread::sleep_until(p.next_poll);
        const std::size_t node = (static_cast<std::size_t>(p.id) + p.polls + 1) % 3;
        const std::string state =
            poll(p, nodes[node]->port(), node, nodes[(node + 1) % 3]->port(), lag);
        if (state == "admitted") --waiting;
        else REQUIRE(state == "waiting");
    }
    REQUIRE(waiting == 0);
    for (const person& p : people) CHECK(p.reached_site);

    // One order for the whole line.
    INFO("pairs admitted out of join order: " << inversions(people) << " of " << crowd * (crowd - 1) / 2);
    CHECK(order_violations(people) == 0);

    // The rate held across the three nodes, not three times over. One node calls: at most
    // rate x W + burst people in any W seconds. A called person reaches the site at the next
    // poll (poll_after_ms is at least 1 s) and a node other than the caller hears of the call
    // within a sync (0.25 s), so the site sees at most rate x (W + 1.25) + burst new people
    // in any W seconds, and the whole crowd takes at least (crowd - burst) / rate - 1.25 s.
    std::map<std::string, steady::time_point> first_seen;
    for (const auto& r : site.requests()) first_seen.emplace(r.header("X-Person").value_or("?"), r.at);
    CHECK(first_seen.size() == people.size());
    std::vector<steady::time_point> arrivals;
    for (const auto& [who, at] : first_seen) arrivals.push_back(at);
    std::sort(arrivals.begin(), arrivals.end());
    const double span = std::chrono::duration<double>(arrivals.back() - arrivals.front()).count();
    INFO("new people at the site: most in 1 s " << max_in_window(arrivals, seconds(1)) << ", most in 2 s "
                                               << max_in_window(arrivals, seconds(2)) << "; all " << crowd
                                               << " within " << span << " s");
    CHECK(max_in_window(arrivals, seconds(2)) <= 18);  // 5 x 3.25 + 2
    CHECK(span >= (crowd - 2) / 5.0 - 1.25);

    // Exactly one node calls people.
    int callers = 0;
    for (auto* n : nodes) callers += calling(*n) ? 1 : 0;
    CHECK(callers == 1);
}

TEST_CASE("when the node calling people dies, another takes over and nobody loses a place",
          "[rooms][multinode]") {
    floodgate::test::redis_server redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    write_file(keys.file("keys"), key_file_text("k1"));
    const std::string admission = "rate: 2, burst: 1, max_active: 1000";
    std::vector<std::unique_ptr<gateway_process>> nodes;
    for (const char* id : {"gw-a", "gw-b", "gw-c"})
        nodes.push_back(std::make_unique<gateway_process>(
            node_config(site, app, redis.port(), keys.file("keys"), id, admission)));
    REQUIRE(wait_ready({nodes[0].get(), nodes[1].get(), nodes[2].get()}, 200, seconds(10)));

    constexpr int crowd = 16;
    std::vector<person> people(crowd);
    for (int i = 0; i < crowd; ++i) {
        people[i].id = i;
        join(people[i], nodes[i % 3]->port());
        std::this_thread::sleep_until(people[i].join_sent + milliseconds(100));
    }

    std::vector<std::size_t> alive{0, 1, 2};
    std::optional<steady::time_point> killed_at;
    std::optional<steady::time_point> first_after_kill;
    const auto deadline = steady::now() + seconds(45);
    int waiting = crowd;
    for (int step = 0; step < 3000 && waiting > 0; ++step) {
        // Once a few are in, the node calling people is killed (SIGKILL: no hand-over).
        if (!killed_at && waiting <= crowd - 4) {
            std::optional<std::size_t> holder;
            for (std::size_t n : alive)
                if (calling(*nodes[n])) holder = n;
            REQUIRE(holder.has_value());
            nodes[*holder]->signal(SIGKILL);
            REQUIRE(nodes[*holder]->wait_exit(seconds(5)).has_value());
            killed_at = steady::now();
            alive.erase(std::find(alive.begin(), alive.end(), *holder));
        }
        auto it = std::min_element(people.begin(), people.end(), [](const person& x, const person& y) {
            if (x.admitted_at.has_value() != y.admitted_at.has_value()) return !x.admitted_at.has_value();
            return x.next_poll < y.next_poll;
        });
        person& p = *it;
        if (p.next_poll > deadline) FAIL("person " << p.id << " still waits at the deadline");
        std::this_thread::sleep_until(p.next_poll);
        // The load balancer sends people only to the nodes still alive.
        const std::size_t node = alive[(static_cast<std::size_t>(p.id) + p.polls) % alive.size()];
        const std::size_t other = alive[(static_cast<std::size_t>(p.id) + p.polls + 1) % alive.size()];
        const std::string state = poll(p, nodes[node]->port(), node, nodes[other]->port(), 3);
        if (state == "admitted") {
            --waiting;
            if (killed_at && !first_after_kill) first_after_kill = p.admitted_at;
        } else {
            REQUIRE(state == "waiting");  // never "expired": nobody lost a place
        }
    }
    REQUIRE(waiting == 0);
    REQUIRE(killed_at.has_value());
    REQUIRE(first_after_kill.has_value());
    const double gap = std::chrono::duration<double>(*first_after_kill - *killed_at).count();
    INFO("first admission " << gap << " s after the calling node died");
    // The lease runs out within 3 s, the next node takes it within a renewal (1 s), reads the
    // line (1 s), and the called person hears it at the next poll (1 s).
    CHECK(gap < 7.0);
    CHECK(order_violations(people) == 0);
    for (const person& p : people) CHECK(p.reached_site);
}

TEST_CASE("Redis down and back: hold, fail_open and fail_closed each do what they say, and the sale goes on",
          "[rooms][multinode]") {
    floodgate::test::redis_server redis(floodgate::test::redis_server::persistence::aof);
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    write_file(keys.file("keys"), key_file_text("k1"));
    const std::string admission = "rate: 2, burst: 1, max_active: 1000";
    gateway_process hold(node_config(site, app, redis.port(), keys.file("keys"), "gw-hold", admission, "hold"));
    gateway_process open(node_config(site, app, redis.port(), keys.file("keys"), "gw-open", admission, "fail_open"));
    gateway_process closed(
        node_config(site, app, redis.port(), keys.file("keys"), "gw-closed", admission, "fail_closed"));
    std::vector<gateway_process*> nodes{&hold, &open, &closed};
    REQUIRE(wait_ready(nodes, 200, seconds(10)));

    // Ten people join; the first two get in before Redis goes away.
    constexpr int crowd = 10;
    std::vector<person> people(crowd);
    for (int i = 0; i < crowd; ++i) {
        people[i].id = i;
        join(people[i], nodes[i % 3]->port());
        std::this_thread::sleep_until(people[i].join_sent + milliseconds(100));
    }
    auto run_until = [&](auto done, steady::time_point deadline, const std::vector<std::size_t>& use) {
        for (int step = 0; step < 3000 && !done(); ++step) {
            auto it = std::min_element(people.begin(), people.end(), [](const person& x, const person& y) {
                if (x.admitted_at.has_value() != y.admitted_at.has_value()) return !x.admitted_at.has_value();
                return x.next_poll < y.next_poll;
            });
            person& p = *it;
            if (p.admitted_at) return;
            if (p.next_poll > deadline) return;
            std::this_thread::sleep_until(p.next_poll);
            const std::size_t node = use[(static_cast<std::size_t>(p.id) + p.polls) % use.size()];
            const std::string state = poll(p, nodes[node]->port(), node, nodes[use[0]]->port(), 3);
            REQUIRE(state != "expired");
        }
    };
    auto admitted = [&] {
        return static_cast<int>(std::count_if(people.begin(), people.end(), [](const person& p) {
            return p.admitted_at.has_value();
        }));
    };
    run_until([&] { return admitted() >= 2; }, steady::now() + seconds(20), {0, 2});
    REQUIRE(admitted() >= 2);
    const int before = admitted();

    redis.stop();
    // Out of step within ~2 s. Only the fail_closed node leaves the balancer's rotation: the
    // others still serve their store_failure mode, and say so.
    CHECK(wait_readyz(closed, 503, "store_failure fail_closed", seconds(5)));
    CHECK(wait_readyz(hold, 200, "store_failure hold", seconds(5)));
    CHECK(wait_readyz(open, 200, "store_failure fail_open", seconds(5)));
    // People called just before the outage still claim their call at their next poll (the
    // call is theirs); after that, nobody in line gets in until Redis is back.
    run_until([] { return false; }, steady::now() + milliseconds(2500), {0, 2});
    const std::size_t site_before = site.request_count();
    const int admitted_before = admitted();

    // Admitted people keep access on every node: passes verify by themselves.
    const person& in = *std::find_if(people.begin(), people.end(), [](const person& p) { return p.admitted_at; });
    for (auto* n : nodes) {
        const reply r = get(n->port(), "/reserve", {cookie_header("fg_pass_concert", in.pass)});
        CHECK(r.status == 200);
        CHECK(r.from_site());
    }
    // hold: a waiting person hears "paused" and keeps the place; a newcomer is asked to retry.
    {
        const person& w = *std::find_if(people.begin(), people.end(), [](const person& p) { return !p.admitted_at; });
        const reply r = get(hold.port(), "/__fg/v1/rooms/concert/status", {cookie_header("fg_ticket_concert", w.ticket)});
        INFO(r.body);
        CHECK(r.status == 200);
        CHECK(json_string(r.json(), "state") == "paused");
        CHECK(json_int(r.json(), "ahead") >= 0);
        const reply n = get(hold.port(), "/reserve", {accept_json});
        INFO(n.body);
        CHECK(n.status == 503);
        CHECK(n.header("Retry-After").has_value());
        CHECK(json_string(n.json(), "state") == "paused");
        CHECK_FALSE(n.cookie("fg_ticket_concert").has_value());
        CHECK_FALSE(n.from_site());
        const reply page = get(hold.port(), "/reserve");
        CHECK(page.status == 503);
        CHECK(page.body.find("paused") != std::string::npos);
    }
    // fail_closed: newcomers are turned away; waiting people keep their place.
    {
        const reply n = get(closed.port(), "/reserve", {accept_json});
        INFO(n.body);
        CHECK(n.status == 503);
        CHECK(json_string(n.json(), "state") == "closed");
        CHECK_FALSE(n.from_site());
        const person& w = *std::find_if(people.begin(), people.end(), [](const person& p) { return !p.admitted_at; });
        const reply r = get(closed.port(), "/__fg/v1/rooms/concert/status", {cookie_header("fg_ticket_concert", w.ticket)});
        CHECK(json_string(r.json(), "state") == "waiting");
    }
    // fail_open: the room stops gating on that node.
    {
        const reply n = get(open.port(), "/reserve", {{"X-Person", "walk-in"}});
        CHECK(n.status == 200);
        CHECK(n.from_site());
    }
    // Nobody in line was called while Redis was away (the hold and fail_closed nodes).
    run_until([] { return false; }, steady::now() + seconds(3), {0, 2});
    CHECK(admitted() == admitted_before);
    std::size_t walk_ins = 0;
    for (const auto& r : site.requests()) walk_ins += r.header("X-Person") == std::optional<std::string>("walk-in");
    CHECK(site.request_count() == site_before + nodes.size() + walk_ins);

    // Redis comes back (AOF: the line's numbers survived); every node is ready again and the
    // rest of the line gets in, in order.
    redis.start();
    REQUIRE(wait_ready(nodes, 200, seconds(10)));
    run_until([&] { return admitted() == crowd; }, steady::now() + seconds(30), {0, 1, 2});
    CHECK(admitted() == crowd);
    CHECK(admitted() > before);
    CHECK(order_violations(people) == 0);
    // A newcomer gets a place behind them.
    person late;
    late.id = 100;
    join(late, hold.port());
    CHECK_FALSE(late.ticket.empty());
}

TEST_CASE("one place per person across nodes, and a settings change on one node reaches all", "[rooms][multinode]") {
    REQUIRE(tokens_set);
    floodgate::test::redis_server redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    write_file(keys.file("keys"), key_file_text("k1"));
    const std::string admission = "rate: 5, burst: 1, max_active: 1000";
    const std::string room = "    mode: paused\n    identity: {header: X-User-Id}\n";
    std::vector<std::unique_ptr<gateway_process>> nodes;
    for (const char* id : {"gw-a", "gw-b", "gw-c"})
        nodes.push_back(std::make_unique<gateway_process>(
            node_config(site, app, redis.port(), keys.file("keys"), id, admission, "hold", room)));
    REQUIRE(wait_ready({nodes[0].get(), nodes[1].get(), nodes[2].get()}, 200, seconds(10)));

    auto join_as = [&](std::size_t node, std::string_view user) {
        header_list h{accept_json};
        if (!user.empty()) h.emplace_back("X-User-Id", std::string(user));
        const reply r = get(nodes[node]->port(), "/reserve", h);
        INFO("join at node " << node << " as '" << user << "': " << r.status << " " << r.body);
        REQUIRE(r.status == 503);
        REQUIRE(json_string(r.json(), "state") == "paused");
        REQUIRE(r.cookie("fg_ticket_concert").has_value());
        return *r.cookie("fg_ticket_concert");
    };
    auto ahead_at = [&](std::size_t node, const std::string& ticket) {
        const reply r = get(nodes[node]->port(), "/__fg/v1/rooms/concert/status",
                            {cookie_header("fg_ticket_concert", ticket)});
        INFO("status at node " << node << ": " << r.body);
        REQUIRE(r.status == 200);
        return json_int(r.json(), "ahead");
    };

    // Five people, then one person on two devices, each at another node.
    for (int i = 0; i < 5; ++i) join_as(static_cast<std::size_t>(i % 3), "person-" + std::to_string(i));
    const std::string first_device = join_as(0, "u-17");
    const std::string second_device = join_as(1, "u-17");
    // The second device holds the same place as the first, whichever node answers; so does a
    // third that joins through the API's join endpoint at a third node.
    const reply api_join = fetch(nodes[2]->port(), http::verb::post, "/__fg/v1/rooms/concert/join",
                                 {accept_json, {"X-User-Id", "u-17"}});
    INFO("POST join as u-17 at node 2: " << api_join.status << " " << api_join.body);
    REQUIRE(api_join.status == 200);
    REQUIRE(api_join.cookie("fg_ticket_concert").has_value());
    const std::string third_device = *api_join.cookie("fg_ticket_concert");
    for (std::size_t n = 0; n < 3; ++n) {
        CHECK(ahead_at(n, first_device) == ahead_at(n, second_device));
        CHECK(ahead_at(n, first_device) == ahead_at(n, third_device));
    }
    // The place the second device was given first and gave up never counts for anyone: one
    // more person, joining later than range_max_age after all of them (so certainly behind
    // them), is seventh, not eighth, at every node once the line has settled (unused and
    // given-up seqs are settled within a few seconds).
    std::this_thread::sleep_for(range_max_age + milliseconds(200));
    const std::string next = join_as(2, "person-6");
    bool settled = false;
    std::int64_t seen[3] = {-1, -1, -1};
    for (int i = 0; i < 100 && !settled; ++i) {
        for (std::size_t n = 0; n < 3; ++n) seen[n] = ahead_at(n, next);
        settled = seen[0] == 6 && seen[1] == 6 && seen[2] == 6;
        if (!settled) std::this_thread::sleep_for(milliseconds(100));
    }
    INFO("the last person's place at the three nodes: " << seen[0] << ", " << seen[1] << ", " << seen[2]);
    CHECK(settled);

    // An operator resumes the line on node B; the node calling people (whichever it is) hears it.
    const reply resumed = fetch(nodes[1]->admin_port(), http::verb::post, "/admin/v1/rooms/concert/resume",
                                {{"Authorization", "Bearer " + operator_token}});
    INFO(resumed.body);
    REQUIRE(resumed.status == 200);
    for (std::size_t n : {0u, 2u}) {
        bool heard = false;
        for (int i = 0; i < 30 && !heard; ++i) {
            const reply r = get(nodes[n]->admin_port(), "/admin/v1/rooms/concert",
                                {{"Authorization", "Bearer " + metrics_token}});
            heard = r.status == 200 && r.body.find("\"mode\":\"auto\"") != std::string::npos;
            if (!heard) std::this_thread::sleep_for(milliseconds(100));
        }
        INFO("node " << n << " has the resumed mode");
        CHECK(heard);
    }

    // The person gets in on the first device; a third device, at a third node, is told so.
    person u;
    u.id = 17;
    u.ticket = first_device;
    u.next_poll = steady::now();
    const auto deadline = steady::now() + seconds(20);
    std::string state;
    while (state != "admitted" && steady::now() < deadline) {
        std::this_thread::sleep_until(u.next_poll);
        const std::size_t n = u.polls % 3;
        state = poll(u, nodes[n]->port(), n, nodes[(n + 1) % 3]->port(), 3, {{"X-User-Id", "u-17"}});
        REQUIRE((state == "waiting" || state == "admitted"));
    }
    REQUIRE(state == "admitted");
    CHECK(u.reached_site);
    std::this_thread::sleep_for(milliseconds(200));
    const reply third = get(nodes[2]->port(), "/reserve", {accept_json, {"X-User-Id", "u-17"}});
    INFO(third.body);
    CHECK(third.status == 409);
    CHECK(json_string(third.json(), "state") == "already_admitted");
    CHECK_FALSE(third.from_site());
    const reply api_third = fetch(nodes[0]->port(), http::verb::post, "/__fg/v1/rooms/concert/join",
                                  {accept_json, {"X-User-Id", "u-17"}});
    INFO(api_third.body);
    CHECK(api_third.status == 409);
    CHECK(json_string(api_third.json(), "state") == "already_admitted");

    // The person is done and releases the pass on one node: within a sync it gets nobody
    // through at any node.
    for (std::size_t n = 0; n < 3; ++n) {
        const reply r = get(nodes[n]->port(), "/reserve", {cookie_header("fg_pass_concert", u.pass)});
        CHECK(r.from_site());
    }
    const reply released = fetch(nodes[1]->port(), http::verb::post, "/__fg/v1/rooms/concert/release",
                                 {cookie_header("fg_pass_concert", u.pass)});
    CHECK(released.body.find("\"released\":true") != std::string::npos);
    std::this_thread::sleep_for(milliseconds(800));
    for (std::size_t n = 0; n < 3; ++n) {
        const reply r = get(nodes[n]->port(), "/reserve", {accept_json, cookie_header("fg_pass_concert", u.pass)});
        INFO("node " << n << " after the release: " << r.status << " " << r.body);
        CHECK_FALSE(r.from_site());
    }
}

// Redis, the site, the default upstream and a shared key file, for nodes started one by one.
struct shared_sale {
    floodgate::test::redis_server redis;
    site_upstream site;
    test_upstream app;
    temp_dir keys;
    shared_sale() { write_file(keys.file("keys"), key_file_text("k1")); }
    std::unique_ptr<gateway_process> node(std::string_view id, std::string_view room_extra = "    mode: queue_all\n") {
        return std::make_unique<gateway_process>(node_config(site, app, redis.port(), keys.file("keys"), id,
                                                             "rate: 5, burst: 1", "hold", room_extra));
    }
};

TEST_CASE("a room created at run time on one node is served by every node, and deleting it on another ends it",
          "[rooms][multinode]") {
    REQUIRE(tokens_set);
    shared_sale sale;
    std::vector<std::unique_ptr<gateway_process>> nodes;
    for (const char* id : {"gw-a", "gw-b", "gw-c"}) nodes.push_back(sale.node(id));
    REQUIRE(wait_ready({nodes[0].get(), nodes[1].get(), nodes[2].get()}, 200, seconds(10)));
    const header_list operator_auth{{"Authorization", "Bearer " + operator_token}};
    const header_list viewer_auth{{"Authorization", "Bearer " + metrics_token}};

    // Whether node n gates /flash: a newcomer gets a place in the flash room's line.
    auto gated = [&](const gateway_process& gw) {
        const reply r = get(gw.port(), "/flash", {accept_json});
        return r.status == 503 && r.cookie("fg_ticket_flash").has_value();
    };
    // How long until every node in `which` answers `want` for /flash, or nullopt after 5 s.
    auto until_all = [&](const std::vector<gateway_process*>& which, bool want) -> std::optional<milliseconds> {
        const auto start = steady::now();
        while (steady::now() - start < seconds(5)) {
            bool all = true;
            for (auto* n : which) all = all && gated(*n) == want;
            if (all) return std::chrono::duration_cast<milliseconds>(steady::now() - start);
            std::this_thread::sleep_for(milliseconds(20));
        }
        return std::nullopt;
    };
    for (auto& n : nodes) REQUIRE_FALSE(gated(*n));
    // Each node holds its own number in the room (the one its passes carry), shown in /metrics.
    std::set<int> numbers;
    for (auto& n : nodes) {
        const reply m = get(n->admin_port(), "/metrics", viewer_auth);
        const std::string key = "floodgate_room_node_number{room=\"concert\"} ";
        const auto at = m.body.find(key);
        REQUIRE(at != std::string::npos);
        const int no = std::atoi(m.body.c_str() + at + key.size());
        INFO("node number " << no);
        CHECK((no >= 1 && no <= 255));
        numbers.insert(no);
    }
    CHECK(numbers.size() == 3);

    // An operator creates the room on node A, in the middle of a sale.
    const reply created =
        fetch(nodes[0]->admin_port(), http::verb::post, "/admin/v1/rooms", operator_auth,
              R"({"name":"flash","match":{"paths":["/flash"]},"upstream":"site","admission":{"rate":1},"mode":"paused"})");
    INFO(created.body);
    REQUIRE(created.status == 201);
    const auto everywhere = until_all({nodes[1].get(), nodes[2].get()}, true);
    REQUIRE(everywhere.has_value());
    INFO("the room reached nodes B and C after " << everywhere->count() << " ms");
    CHECK(*everywhere <= milliseconds(1500));  // the issue asks for "within a second"; the catalog reads every 250 ms
    for (auto& n : nodes) {
        const reply r = get(n->admin_port(), "/admin/v1/rooms/flash", viewer_auth);
        CHECK(r.status == 200);
        CHECK(r.body.find("\"mode\":\"paused\"") != std::string::npos);
    }

    // It is one line, like any shared room: the place of someone who joined at B is the same at C.
    const reply joined = get(nodes[1]->port(), "/flash", {accept_json});
    REQUIRE(joined.cookie("fg_ticket_flash").has_value());
    auto ahead_at = [&](const gateway_process& gw) {
        const reply r = get(gw.port(), "/__fg/v1/rooms/flash/status",
                            {cookie_header("fg_ticket_flash", *joined.cookie("fg_ticket_flash"))});
        INFO(r.body);
        REQUIRE(r.status == 200);
        return json_int(r.json(), "ahead");
    };
    std::this_thread::sleep_for(seconds(4));  // the line settles (seq-range holes) within a few seconds
    CHECK(ahead_at(*nodes[2]) == ahead_at(*nodes[1]));

    // A node that starts later learns the room from Redis.
    nodes.push_back(sale.node("gw-d"));
    REQUIRE(wait_ready({nodes[3].get()}, 200, seconds(10)));
    CHECK(until_all({nodes[3].get()}, true).has_value());

    // Deleted on node C: within a second nobody is held at /flash at any node.
    const reply deleted = fetch(nodes[2]->admin_port(), http::verb::delete_, "/admin/v1/rooms/flash", operator_auth);
    INFO(deleted.body);
    REQUIRE(deleted.status == 204);
    const auto gone = until_all({nodes[0].get(), nodes[1].get(), nodes[3].get()}, false);
    REQUIRE(gone.has_value());
    INFO("the deletion reached nodes A, B and D after " << gone->count() << " ms");
    CHECK(*gone <= milliseconds(1500));
    for (auto& n : nodes) CHECK(get(n->admin_port(), "/admin/v1/rooms/flash", viewer_auth).status == 404);
    // The room from the config file was never touched.
    for (auto& n : nodes) CHECK(get(n->admin_port(), "/admin/v1/rooms/concert", viewer_auth).status == 200);
}

TEST_CASE("a token key rotated on one node signs on every node, and no node ever refuses a token",
          "[rooms][multinode]") {
    REQUIRE(tokens_set);
    shared_sale sale;
    std::vector<std::unique_ptr<gateway_process>> nodes;
    for (const char* id : {"gw-a", "gw-b", "gw-c"}) nodes.push_back(sale.node(id, "    mode: paused\n"));
    REQUIRE(wait_ready({nodes[0].get(), nodes[1].get(), nodes[2].get()}, 200, seconds(10)));

    auto join_at = [&](std::size_t n) {
        const reply r = get(nodes[n]->port(), "/reserve", {accept_json});
        INFO("join at node " << n << ": " << r.status << " " << r.body);
        REQUIRE(r.cookie("fg_ticket_concert").has_value());
        return *r.cookie("fg_ticket_concert");
    };
    // Whether node n knows the ticket (a poll gets its place, not "join first").
    auto known_at = [&](std::size_t n, const std::string& ticket) {
        const reply r =
            get(nodes[n]->port(), "/__fg/v1/rooms/concert/status", {cookie_header("fg_ticket_concert", ticket)});
        INFO("status at node " << n << ": " << r.status << " " << r.body);
        return r.status == 200 && json_string(r.json(), "state") == "paused";
    };
    const std::string before = join_at(0);
    REQUIRE(before.starts_with("v1.k1."));

    const reply rotated = fetch(nodes[1]->admin_port(), http::verb::post, "/admin/v1/keys/rotate",
                                {{"Authorization", "Bearer " + operator_token}});
    INFO(rotated.body);
    REQUIRE(rotated.status == 200);
    const std::string kid = json_string(rotated.json(), "kid");
    REQUIRE_FALSE(kid.empty());

    // For the next 5 s, people join at every node in turn and poll at the two others: every
    // ticket is known everywhere, whichever key signed it; the new key takes over everywhere.
    std::size_t refused = 0, checked = 0;
    std::map<std::size_t, steady::time_point> first_new;  // node -> first ticket with the new kid
    const auto start = steady::now();
    for (std::size_t i = 0; steady::now() - start < seconds(5); ++i) {
        const std::size_t n = i % 3;
        const std::string t = join_at(n);
        if (t.starts_with("v1." + kid + ".") && !first_new.count(n)) first_new[n] = steady::now();
        for (std::size_t m : {(n + 1) % 3, (n + 2) % 3}) {
            ++checked;
            if (!known_at(m, t)) ++refused;
        }
        std::this_thread::sleep_for(milliseconds(30));
    }
    INFO(checked << " polls of fresh tickets at other nodes");
    CHECK(refused == 0);
    CHECK(checked > 30);
    REQUIRE(first_new.size() == 3);
    for (const auto& [n, at] : first_new) {
        INFO("node " << n << " signed with the new key " << std::chrono::duration_cast<milliseconds>(at - start).count()
                     << " ms after the rotation");
        CHECK(at - start < seconds(4));
        CHECK(at - start >= milliseconds(1500));  // not before every node could know it
    }
    // The ticket from before the rotation is still good everywhere.
    for (std::size_t n = 0; n < 3; ++n) CHECK(known_at(n, before));
}

}  // namespace floodgate::itest::rooms
