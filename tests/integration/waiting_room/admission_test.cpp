// Admission as the people in line see it: first come first served at the
// configured rate, max_active slots freed by release, direct admission in
// auto mode, one place per person, and a reload that keeps everyone's place.
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <map>
#include <thread>

#include "harness.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"

namespace floodgate::itest::rooms {
namespace {

using std::chrono::milliseconds;

double seconds_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// The most time points that fall in any half-open window [t, t + width).
std::size_t max_in_window(std::vector<steady::time_point> times, steady::duration width) {
    std::sort(times.begin(), times.end());
    std::size_t best = 0;
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
        while (j < times.size() && times[j] < times[i] + width) ++j;
        best = std::max(best, j - i);
    }
    return best;
}

// A scripted person in line: what they were told, when.
struct person {
    int id = 0;
    std::string ticket;
    bool ticket_as_header = false;  // half the crowd polls with Floodgate-Ticket instead of the cookie
    std::int64_t last_ahead = -1;
    steady::time_point next_poll;
    std::vector<steady::time_point> told_to_wait;  // send times of polls answered "waiting"
    std::optional<steady::time_point> admitted_at;  // when the "admitted" answer arrived
    std::string pass;
    unsigned reserve_status = 0;
    bool reserve_from_site = false;
};

}  // namespace

TEST_CASE("a crowd is admitted first come first served and never faster than the rate", "[rooms][admission]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  concert:\n"
                                   "    match: {paths: [/reserve]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 5, burst: 1}\n"
                                   "    mode: queue_all\n"));
    constexpr int crowd = 20;
    constexpr std::size_t rate_plus_burst = 6;
    std::vector<person> people(static_cast<std::size_t>(crowd));

    // Everyone arrives, in a known order.
    for (int i = 0; i < crowd; ++i) {
        person& p = people[static_cast<std::size_t>(i)];
        p.id = i;
        p.ticket_as_header = i % 2 == 1;
        const reply r = get(gw.port(), "/reserve", {accept_json, {"X-Person", std::to_string(i)}});
        INFO("person " << i << " joined: " << r.status << " " << r.body);
        REQUIRE(r.status == 503);
        REQUIRE(r.header("Retry-After").has_value());
        CHECK(std::stol(*r.header("Retry-After")) >= 1);
        CHECK_FALSE(r.from_site());
        const auto j = r.json();
        CHECK(json_string(j, "state") == "waiting");
        const std::int64_t ahead = json_int(j, "ahead");
        CHECK(ahead >= 0);
        CHECK(ahead <= i);
        CHECK(json_int(j, "position") == ahead + 1);
        const auto ticket = r.cookie("fg_ticket_concert");
        REQUIRE(ticket.has_value());
        REQUIRE_FALSE(ticket->empty());
        CHECK(json_string(j, "ticket") == *ticket);
        p.ticket = *ticket;
        p.last_ahead = ahead;
        const std::int64_t wait_ms = json_int(j, "poll_after_ms");
        REQUIRE(wait_ms > 0);
        p.next_poll = steady::now() + milliseconds(wait_ms);
    }
    CHECK(site.request_count() == 0);

    // Each polls when the server said to; once admitted, goes straight to /reserve with the pass.
    const auto deadline = steady::now() + std::chrono::seconds(25);
    int waiting = crowd;
    for (int step = 0; step < 2000 && waiting > 0; ++step) {
        auto it = std::min_element(people.begin(), people.end(), [](const person& a, const person& b) {
            if (a.admitted_at.has_value() != b.admitted_at.has_value()) return !a.admitted_at.has_value();
            return a.next_poll < b.next_poll;
        });
        person& p = *it;
        REQUIRE_FALSE(p.admitted_at.has_value());
        if (p.next_poll > deadline) FAIL("person " << p.id << " still waits at the deadline");
        std::this_thread::sleep_until(p.next_poll);
        header_list h;
        if (p.ticket_as_header) h.emplace_back("Floodgate-Ticket", p.ticket);
        else h.push_back(cookie_header("fg_ticket_concert", p.ticket));
        const auto sent = steady::now();
        const reply r = get(gw.port(), "/__fg/v1/rooms/concert/status", h);
        INFO("person " << p.id << " polled: " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        const auto j = r.json();
        const std::string state = json_string(j, "state");
        if (state == "admitted") {
            p.admitted_at = steady::now();
            p.pass = json_string(j, "pass");
            REQUIRE_FALSE(p.pass.empty());
            CHECK(r.cookie("fg_pass_concert").value_or("<no cookie>") == p.pass);
            const reply in = get(gw.port(), "/reserve",
                                 {cookie_header("fg_pass_concert", p.pass), {"X-Person", std::to_string(p.id)}});
            p.reserve_status = in.status;
            p.reserve_from_site = in.from_site();
            --waiting;
            continue;
        }
        REQUIRE(state == "waiting");
        const std::int64_t ahead = json_int(j, "ahead");
        CHECK(ahead <= p.last_ahead);  // a live person's place never gets worse
        p.last_ahead = ahead;
        p.told_to_wait.push_back(sent);
        const std::int64_t wait_ms = json_int(j, "poll_after_ms");
        REQUIRE(wait_ms > 0);
        p.next_poll = steady::now() + milliseconds(wait_ms);
    }

    // Everyone got in, and reached the site with the pass.
    for (const person& p : people) {
        INFO("person " << p.id);
        CHECK(p.admitted_at.has_value());
        CHECK(p.reserve_status == 200);
        CHECK(p.reserve_from_site);
    }
    REQUIRE(waiting == 0);

    // FIFO: in the order they joined; and nobody was told to wait after
    // someone who joined later had been let in.
    std::vector<int> order;
    for (const person& p : people) order.push_back(p.id);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
        return *people[static_cast<std::size_t>(a)].admitted_at < *people[static_cast<std::size_t>(b)].admitted_at;
    });
    std::vector<int> join_order;
    for (int i = 0; i < crowd; ++i) join_order.push_back(i);
    CHECK(order == join_order);
    for (const person& early : people)
        for (const person& late : people) {
            if (late.id <= early.id) continue;
            for (const auto& t : early.told_to_wait) {
                INFO("person " << early.id << " was told to wait " << seconds_between(*late.admitted_at, t)
                               << " s after person " << late.id << " (who joined later) was admitted");
                CHECK(t < *late.admitted_at);
            }
        }

    // The site never saw more than rate + burst new people in any second.
    std::map<std::string, steady::time_point> first_seen;
    for (const auto& r : site.requests()) {
        const auto who = r.header("X-Person");
        REQUIRE(who.has_value());
        first_seen.emplace(*who, r.at);  // keeps the first
    }
    CHECK(first_seen.size() == people.size());
    std::vector<steady::time_point> arrivals;
    for (const auto& [who, at] : first_seen) arrivals.push_back(at);
    std::vector<steady::time_point> admissions;
    for (const person& p : people) admissions.push_back(*p.admitted_at);
    INFO("most new people at the site in one second: " << max_in_window(arrivals, std::chrono::seconds(1))
                                                         << "; most admitted in one second: "
                                                         << max_in_window(admissions, std::chrono::seconds(1)));
    CHECK(max_in_window(arrivals, std::chrono::seconds(1)) <= rate_plus_burst);
    CHECK(max_in_window(admissions, std::chrono::seconds(1)) <= rate_plus_burst);
}

TEST_CASE("max_active holds and a release frees a slot at once", "[rooms][admission]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  shop:\n"
                                   "    match: {paths: [/reserve]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 1000, burst: 10, max_active: 3}\n"));
    auto person_header = [](int id) { return std::pair<std::string, std::string>{"X-Person", std::to_string(id)}; };

    // Three people walk straight in.
    std::vector<std::string> passes;
    for (int i = 1; i <= 3; ++i) {
        const reply r = get(gw.port(), "/reserve", {person_header(i)});
        INFO("person " << i << ": " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        REQUIRE(r.from_site());
        const auto pass = r.cookie("fg_pass_shop");
        REQUIRE(pass.has_value());
        REQUIRE_FALSE(pass->empty());
        CHECK_FALSE(r.cookie("fg_ticket_shop").has_value());
        passes.push_back(*pass);
    }

    // The fourth waits, and keeps waiting while the three hold their slots.
    reply r4 = get(gw.port(), "/reserve", {accept_json, person_header(4)});
    INFO("person 4 joined: " << r4.status << " " << r4.body);
    REQUIRE(r4.status == 503);
    REQUIRE_FALSE(r4.from_site());
    const std::string ticket4 = r4.cookie("fg_ticket_shop").value_or("");
    REQUIRE_FALSE(ticket4.empty());
    CHECK(json_string(r4.json(), "state") == "waiting");
    CHECK(json_int(r4.json(), "ahead") == 0);
    std::int64_t wait_ms = json_int(r4.json(), "poll_after_ms");
    REQUIRE(wait_ms > 0);
    std::this_thread::sleep_for(milliseconds(wait_ms));
    const std::string status_url = "/__fg/v1/rooms/shop/status";
    reply s4 = get(gw.port(), status_url, {cookie_header("fg_ticket_shop", ticket4)});
    INFO("person 4 polled: " << s4.body);
    CHECK(json_string(s4.json(), "state") == "waiting");
    CHECK(json_string(s4.json(), "pass").empty());
    const reply again4 = get(gw.port(), "/reserve", {cookie_header("fg_ticket_shop", ticket4), person_header(4)});
    CHECK_FALSE(again4.from_site());
    for (const auto& p : passes)  // the three are still in
        CHECK(get(gw.port(), "/reserve", {cookie_header("fg_pass_shop", p)}).from_site());

    // Person 1 leaves: the next poll of person 4 gets the pass.
    const reply rel = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/shop/release", {cookie_header("fg_pass_shop", passes[0])});
    INFO("release: " << rel.status << " " << rel.body);
    CHECK(rel.status == 200);
    CHECK(rel.json().contains("released"));
    CHECK(rel.json()["released"] == true);
    CHECK(rel.cookie("fg_pass_shop").value_or("<not cleared>").empty());
    wait_ms = json_int(s4.json(), "poll_after_ms");
    REQUIRE(wait_ms > 0);
    std::this_thread::sleep_for(milliseconds(wait_ms));
    s4 = get(gw.port(), status_url, {cookie_header("fg_ticket_shop", ticket4)});
    INFO("person 4 polled after the release: " << s4.body);
    REQUIRE(json_string(s4.json(), "state") == "admitted");
    const std::string pass4 = json_string(s4.json(), "pass");
    REQUIRE_FALSE(pass4.empty());
    CHECK(get(gw.port(), "/reserve", {cookie_header("fg_pass_shop", pass4), person_header(4)}).from_site());

    // Person 1's released pass no longer lets them in: they join the line again.
    const reply back1 = get(gw.port(), "/reserve", {accept_json, cookie_header("fg_pass_shop", passes[0]), person_header(1)});
    INFO("person 1 came back with the released pass: " << back1.status << " " << back1.body);
    CHECK_FALSE(back1.from_site());
    CHECK(back1.status == 503);
    CHECK(json_string(back1.json(), "state") == "waiting");
    const std::string ticket1 = back1.cookie("fg_ticket_shop").value_or("");
    REQUIRE_FALSE(ticket1.empty());

    // The site says person 2 is done (Floodgate-Release: 1): the slot is freed, the
    // header does not reach person 2, and the pass cookie is cleared.
    const reply done2 = get(gw.port(), "/reserve/done?release=1", {cookie_header("fg_pass_shop", passes[1]), person_header(2)});
    INFO("person 2 finished: " << done2.status << " " << done2.body);
    CHECK(done2.status == 200);
    CHECK(done2.from_site());
    CHECK(done2.count("Floodgate-Release") == 0);
    CHECK(done2.cookie("fg_pass_shop").value_or("<not cleared>").empty());
    bool released_header_seen_by_site = false;
    for (const auto& req : site.requests())
        if (req.target == "/reserve/done?release=1") released_header_seen_by_site = true;
    CHECK(released_header_seen_by_site);

    // ... so person 1, waiting again, is admitted on the next poll.
    wait_ms = json_int(back1.json(), "poll_after_ms");
    REQUIRE(wait_ms > 0);
    std::this_thread::sleep_for(milliseconds(wait_ms));
    const reply s1 = get(gw.port(), status_url, {cookie_header("fg_ticket_shop", ticket1)});
    INFO("person 1 polled after the site released person 2: " << s1.body);
    CHECK(json_string(s1.json(), "state") == "admitted");
    const reply back2 = get(gw.port(), "/reserve", {accept_json, cookie_header("fg_pass_shop", passes[1]), person_header(2)});
    CHECK_FALSE(back2.from_site());
}

TEST_CASE("in auto mode with capacity and nobody waiting the first request goes straight through", "[rooms][admission]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  fair:\n"
                                   "    match: {paths: [/reserve]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 100, burst: 10, max_active: 100}\n"
                                   "    mode: auto\n"));
    const reply r = get(gw.port(), "/reserve?seat=12", {{"Accept", "text/html"}});
    INFO(r.status << " " << r.body);
    CHECK(r.status == 200);
    CHECK(r.from_site());
    CHECK_FALSE(r.cookie("fg_ticket_fair").has_value());
    const auto pass = r.cookie("fg_pass_fair");
    REQUIRE(pass.has_value());
    REQUIRE_FALSE(pass->empty());
    std::string set_cookie;
    for (const auto& [n, v] : r.headers)
        if (v.rfind("fg_pass_fair=", 0) == 0) set_cookie = v;
    CHECK_THAT(set_cookie, Catch::Contains("HttpOnly") && Catch::Contains("SameSite=Lax") && Catch::Contains("Path=/"));
    CHECK_THAT(set_cookie, !Catch::Contains("Secure"));  // plain HTTP
    REQUIRE(site.request_count() == 1);
    CHECK(site.requests()[0].target == "/reserve?seat=12");

    // The pass keeps working on the next request, without a new one being minted.
    const reply again = get(gw.port(), "/reserve/step2", {cookie_header("fg_pass_fair", *pass)});
    CHECK(again.status == 200);
    CHECK(again.from_site());
    CHECK(site.request_count() == 2);
}

TEST_CASE("one person holds one place and a second device is refused while the first holds a pass", "[rooms][identity]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  vaccine:\n"
                                   "    match: {paths: [/reserve]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 1, burst: 1}\n"
                                   "    mode: queue_all\n"
                                   "    identity: {header: X-User-Id}\n"));
    auto join = [&](std::string_view user, std::string_view device) {
        return get(gw.port(), "/reserve",
                   {accept_json, {"X-User-Id", std::string(user)}, {"X-Device", std::string(device)}});
    };
    const std::string status_url = "/__fg/v1/rooms/vaccine/status";
    auto poll = [&](std::string_view user, const std::string& ticket) {
        return get(gw.port(), status_url, {cookie_header("fg_ticket_vaccine", ticket), {"X-User-Id", std::string(user)}});
    };

    // Others are in line first, so a new place would be visibly further back.
    for (const char* other : {"zed", "carol", "dave"}) REQUIRE(join(other, "phone").status == 503);

    const reply d1 = join("alice", "phone");
    INFO("alice, phone: " << d1.body);
    REQUIRE(d1.status == 503);
    const std::string t1 = d1.cookie("fg_ticket_vaccine").value_or("");
    REQUIRE_FALSE(t1.empty());
    const std::int64_t pos1 = json_int(d1.json(), "position");
    REQUIRE(pos1 >= 1);

    // The laptop: no shared cookies, same person.
    const reply d2 = join("alice", "laptop");
    INFO("alice, laptop: " << d2.body);
    REQUIRE(d2.status == 503);
    const std::string t2 = d2.cookie("fg_ticket_vaccine").value_or("");
    REQUIRE_FALSE(t2.empty());
    CHECK(json_int(d2.json(), "position") <= pos1);  // the same place (or better, if someone was called meanwhile)

    // Polled back to back, both devices report the same place.
    const std::int64_t a1 = json_int(poll("alice", t1).json(), "ahead");
    const std::int64_t a2 = json_int(poll("alice", t2).json(), "ahead");
    const std::int64_t a1_after = json_int(poll("alice", t1).json(), "ahead");
    INFO("ahead: phone " << a1 << ", laptop " << a2 << ", phone again " << a1_after);
    CHECK(a2 <= a1);
    CHECK(a2 >= a1_after);
    const reply second_join = join("alice", "laptop");
    CHECK(json_int(second_join.json(), "position") <= pos1);

    // The phone gets in.
    const std::string pass = wait_for_pass(gw.port(), "vaccine", t1, std::chrono::seconds(15), false,
                                           {{"X-User-Id", "alice"}});
    const reply in = get(gw.port(), "/reserve", {cookie_header("fg_pass_vaccine", pass), {"X-User-Id", "alice"}, {"X-Device", "phone"}});
    CHECK(in.status == 200);
    CHECK(in.from_site());

    // The laptop is refused while the phone holds the pass: with its ticket, without
    // anything, and through the join endpoint; its polls never mint a second pass.
    const reply l1 = get(gw.port(), "/reserve", {cookie_header("fg_ticket_vaccine", t2), {"X-User-Id", "alice"}, {"X-Device", "laptop"}});
    INFO("laptop with its ticket: " << l1.status << " " << l1.body);
    CHECK(l1.status == 409);
    const reply l2 = join("alice", "laptop");
    INFO("laptop without cookies: " << l2.status << " " << l2.body);
    CHECK(l2.status == 409);
    CHECK_FALSE(l2.cookie("fg_ticket_vaccine").has_value());
    const reply l3 = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/vaccine/join", {{"X-User-Id", "alice"}});
    INFO("laptop via join: " << l3.status << " " << l3.body);
    CHECK(l3.status == 409);
    const reply l4 = poll("alice", t2);
    INFO("laptop polls: " << l4.status << " " << l4.body);
    CHECK(json_string(l4.json(), "state") != "admitted");
    CHECK(json_string(l4.json(), "pass").empty());
    CHECK_FALSE(l4.cookie("fg_pass_vaccine").has_value());
    for (const auto& req : site.requests()) CHECK(req.header("X-Device").value_or("") != "laptop");

    // Once the phone is done, the laptop is no longer refused.
    const reply rel = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/vaccine/release", {cookie_header("fg_pass_vaccine", pass)});
    CHECK(rel.status == 200);
    const reply l5 = join("alice", "laptop");
    INFO("laptop after the phone released: " << l5.status << " " << l5.body);
    CHECK(l5.status != 409);
    CHECK((l5.status == 503 || l5.status == 200));
}

TEST_CASE("a reload that changes the rate keeps everyone's place", "[rooms][reload]") {
    site_upstream site;
    test_upstream app;
    auto config = [&](std::string_view rate) {
        return room_config(app.address(), site.address(),
                           "  expo:\n"
                           "    match: {paths: [/reserve]}\n"
                           "    upstream: site\n"
                           "    admission: {rate: " + std::string(rate) + ", burst: 1}\n"
                           "    mode: queue_all\n");
    };
    gateway_process gw(config("1"));
    constexpr std::size_t crowd = 8;
    std::vector<std::string> tickets;
    for (std::size_t i = 0; i < crowd; ++i) {
        const reply r = get(gw.port(), "/reserve", {accept_json});
        REQUIRE(r.status == 503);
        tickets.push_back(r.cookie("fg_ticket_expo").value_or(""));
        REQUIRE_FALSE(tickets.back().empty());
    }
    const std::string status_url = "/__fg/v1/rooms/expo/status";
    std::vector<std::string> passes(crowd);
    std::vector<std::int64_t> ahead(crowd, -1);
    std::int64_t longest_wait_ms = 0;  // the longest poll_after_ms of the last round
    auto poll_all = [&](std::string_view when) {
        longest_wait_ms = 0;
        for (std::size_t i = 0; i < crowd; ++i) {
            if (!passes[i].empty()) continue;
            const reply r = get(gw.port(), status_url, {cookie_header("fg_ticket_expo", tickets[i])});
            INFO(when << ": person " << i << " polled: " << r.status << " " << r.body);
            REQUIRE(r.status == 200);
            const auto j = r.json();
            const std::string state = json_string(j, "state");
            if (state == "admitted") {
                passes[i] = json_string(j, "pass");
                CHECK_FALSE(passes[i].empty());
                continue;
            }
            REQUIRE(state == "waiting");
            const std::int64_t a = json_int(j, "ahead");
            if (ahead[i] >= 0) CHECK(a <= ahead[i]);
            ahead[i] = a;
            longest_wait_ms = std::max(longest_wait_ms, json_int(j, "poll_after_ms"));
        }
    };
    poll_all("before the reload");
    const std::vector<std::int64_t> before = ahead;

    const std::size_t reloads = count_in_logs(gw, "configuration reloaded");
    gw.rewrite_config(config("3"));
    gw.signal(SIGHUP);
    REQUIRE(wait_for_log(gw, "configuration reloaded", reloads + 1, std::chrono::seconds(5)));
    CHECK(gw.running());
    poll_all("after the reload");
    for (std::size_t i = 0; i < crowd; ++i) {
        INFO("person " << i << ": ahead " << before[i] << " before the reload, " << ahead[i] << " after");
        if (passes[i].empty() && before[i] >= 0) CHECK(ahead[i] <= before[i]);
    }

    // Everyone still gets in at the new rate (7 left at 3/s: a few seconds).
    const auto deadline = steady::now() + std::chrono::seconds(15);
    for (int round = 0; round < 40; ++round) {
        if (std::all_of(passes.begin(), passes.end(), [](const std::string& p) { return !p.empty(); })) break;
        REQUIRE(steady::now() < deadline);
        REQUIRE(longest_wait_ms > 0);
        std::this_thread::sleep_for(milliseconds(longest_wait_ms));  // nobody polls before the server said
        poll_all("later");
    }
    for (std::size_t i = 0; i < crowd; ++i) {
        INFO("person " << i);
        REQUIRE_FALSE(passes[i].empty());
        CHECK(get(gw.port(), "/reserve", {cookie_header("fg_pass_expo", passes[i])}).from_site());
    }
}

}  // namespace floodgate::itest::rooms
