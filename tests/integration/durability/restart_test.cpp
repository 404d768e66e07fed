// A waiting room survives kill -9: the people in line keep their place and
// order, the admitted keep their pass, the restored slots still count against
// max_active, and calling resumes at the configured rate, not in a burst.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace floodgate::itest {
namespace {

using steady = std::chrono::steady_clock;

constexpr double rate = 2;
constexpr unsigned burst = 1;

// The room protects /echo (the test upstream answers it); two people at most
// are admitted at once, so that the people in line stay in line.
std::string durable_config(const std::string& upstream, const std::string& state_dir) {
    return make_config({.servers = upstream,
                        .extra = "state_dir: " + state_dir +
                                 "\n"
                                 "rooms:\n"
                                 "  concert:\n"
                                 "    match: {paths: [/echo]}\n"
                                 "    admission: {rate: 2, burst: 1, max_active: 2}\n"
                                 "    mode: queue_all\n"});
}

// One request on a fresh connection, as a phone coming back would make it.
response fetch(std::uint16_t port, http::verb method, const std::string& target,
               const header_list& headers) {
    http_client c(port, 5s);
    return c.request(method, target, {}, headers);
}

// The value `Set-Cookie: name=value; ...` sets, if the response sets it.
std::optional<std::string> cookie(const response& r, std::string_view name) {
    for (auto it = r.find(http::field::set_cookie); it != r.end() && it->name() == http::field::set_cookie;
         ++it) {
        std::string_view v = it->value();
        if (v.size() > name.size() && v.substr(0, name.size()) == name && v[name.size()] == '=') {
            v.remove_prefix(name.size() + 1);
            return std::string(v.substr(0, v.find(';')));
        }
    }
    return std::nullopt;
}

boost::json::object json_of(const response& r) {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body(), ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
}

std::string state_of(const boost::json::object& o) {
    auto it = o.find("state");
    return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "<none>";
}

std::int64_t int_of(const boost::json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it != o.end() && it->value().is_int64() ? it->value().as_int64() : -1;
}

struct person {
    std::string ticket;
    std::int64_t ahead_at_join = -1;
    std::int64_t ahead_before_kill = -1;
    std::string pass;
    std::optional<steady::time_point> admitted_at;
};

// The status endpoint with the person's ticket.
boost::json::object poll(std::uint16_t port, const person& p, std::string* pass = nullptr) {
    const response r = fetch(port, http::verb::get, "/__fg/v1/rooms/concert/status",
                             {{"Cookie", "fg_ticket_concert=" + p.ticket}});
    auto o = json_of(r);
    if (pass != nullptr) {
        if (auto c = cookie(r, "fg_pass_concert")) *pass = *c;
    }
    return o;
}

bool use_pass(std::uint16_t port, const std::string& pass) {
    const response r = fetch(port, http::verb::get, "/echo", {{"Cookie", "fg_pass_concert=" + pass}});
    return r.result_int() == 200 && r.body().find("\"method\"") != std::string::npos;
}

bool release(std::uint16_t port, const std::string& pass) {
    const response r = fetch(port, http::verb::post, "/__fg/v1/rooms/concert/release",
                             {{"Cookie", "fg_pass_concert=" + pass}});
    return r.body().find("\"released\":true") != std::string::npos;
}

// The most time points in any window [t, t + 1 s).
std::size_t max_in_one_second(std::vector<steady::time_point> times) {
    std::sort(times.begin(), times.end());
    std::size_t best = 0;
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
        while (j < times.size() && times[j] < times[i] + 1s) ++j;
        best = std::max(best, j - i);
    }
    return best;
}

}  // namespace

TEST_CASE("after kill -9 everyone in line keeps their place and every pass keeps working",
          "[durability]") {
    temp_dir state;
    test_upstream up;
    const std::string cfg = durable_config(up.address(), state.path() + "/state");
    auto gw = std::make_unique<gateway_process>(cfg);

    // Ten people join, in a known order.
    std::vector<person> people(10);
    for (std::size_t i = 0; i < people.size(); ++i) {
        const response r = fetch(gw->port(), http::verb::get, "/echo", {{"Accept", "application/json"}});
        INFO("person " << i << ": " << r.result_int() << " " << r.body());
        REQUIRE(r.result_int() == 503);
        const auto o = json_of(r);
        REQUIRE(state_of(o) == "waiting");
        auto t = cookie(r, "fg_ticket_concert");
        REQUIRE(t.has_value());
        people[i].ticket = *t;
        people[i].ahead_at_join = int_of(o, "ahead");
        CHECK(people[i].ahead_at_join >= 0);
        CHECK(people[i].ahead_at_join <= static_cast<std::int64_t>(i));
    }
    const std::size_t before = up.request_count();
    CHECK(before == 0);  // nobody got past the room yet

    // The first two are admitted (max_active 2), at the rate.
    const auto deadline = steady::now() + 15s;
    for (std::size_t i = 0; i < 2; ++i) {
        while (people[i].pass.empty()) {
            REQUIRE(steady::now() < deadline);
            const auto o = poll(gw->port(), people[i], &people[i].pass);
            const std::string st = state_of(o);
            INFO("person " << i << " polled: " << st);
            REQUIRE((st == "waiting" || st == "admitted"));
            if (people[i].pass.empty()) std::this_thread::sleep_for(100ms);
        }
        CHECK(use_pass(gw->port(), people[i].pass));
    }
    CHECK(up.request_count() == before + 2);
    // Everyone else waits, in order, with nobody called while both slots are held.
    for (std::size_t i = 2; i < people.size(); ++i) {
        const auto o = poll(gw->port(), people[i]);
        INFO("person " << i);
        REQUIRE(state_of(o) == "waiting");
        people[i].ahead_before_kill = int_of(o, "ahead");
        CHECK(people[i].ahead_before_kill == static_cast<std::int64_t>(i - 2));
    }

    // kill -9, and the same config (same state_dir) again.
    const pid_t pid = gw->pid();
    REQUIRE(::kill(pid, SIGKILL) == 0);
    const auto status = gw->wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK(*status == 128 + SIGKILL);
    gw.reset();
    gw = std::make_unique<gateway_process>(cfg);
    const auto restarted = steady::now();

    // Every ticket still shows a place, in the same order, none further back.
    std::int64_t prev = -1;
    for (std::size_t i = 2; i < people.size(); ++i) {
        const auto o = poll(gw->port(), people[i]);
        INFO("person " << i << " after the restart: " << boost::json::serialize(o));
        REQUIRE(state_of(o) == "waiting");
        const std::int64_t ahead = int_of(o, "ahead");
        CHECK(ahead <= people[i].ahead_before_kill);
        CHECK(ahead > prev);
        prev = ahead;
    }
    // The passes still reach the site.
    for (std::size_t i = 0; i < 2; ++i) CHECK(use_pass(gw->port(), people[i].pass));
    CHECK(up.request_count() == before + 4);
    // The two restored slots still count: for a while nobody is called.
    while (steady::now() < restarted + 1500ms) {
        const auto o = poll(gw->port(), people[2]);
        REQUIRE(state_of(o) == "waiting");
        std::this_thread::sleep_for(200ms);
    }

    // The two leave; the rest are called in order, never faster than rate + burst.
    for (std::size_t i = 0; i < 2; ++i) CHECK(release(gw->port(), people[i].pass));
    const auto until = steady::now() + 20s;
    std::size_t next = 2;
    while (next < people.size() && steady::now() < until) {
        for (std::size_t i = next; i < people.size(); ++i) {
            std::string pass;
            const auto o = poll(gw->port(), people[i], &pass);
            const std::string st = state_of(o);
            INFO("person " << i << ": " << boost::json::serialize(o));
            REQUIRE((st == "waiting" || st == "admitted"));
            if (st == "admitted") {
                REQUIRE_FALSE(pass.empty());
                CHECK(i == next);  // first come, first served
                people[i].pass = pass;
                people[i].admitted_at = steady::now();
                CHECK(use_pass(gw->port(), pass));
                CHECK(release(gw->port(), pass));  // makes room for the next
                ++next;
            }
        }
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(next == people.size());
    std::vector<steady::time_point> admitted;
    for (std::size_t i = 2; i < people.size(); ++i) admitted.push_back(*people[i].admitted_at);
    INFO("admissions in one second after the restart");
    CHECK(max_in_one_second(admitted) <= static_cast<std::size_t>(rate) + burst);
    // Eight people at two a second take a few seconds, not an instant.
    CHECK(admitted.back() - admitted.front() >= 2500ms);
    CHECK((gw->stdout_text() + gw->stderr_text()).find("restored from") != std::string::npos);
}

}  // namespace floodgate::itest
