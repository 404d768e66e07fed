// What a waiting person is shown: the waiting page in their language, the
// status JSON with poll intervals that grow with the distance to the front,
// and the traffic light of every room.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "harness.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"

namespace floodgate::itest::rooms {
namespace {

// The JSON in the page's <script type="application/json" id="fg-data"> element.
boost::json::object page_data(const std::string& page) {
    const std::string open = "id=\"fg-data\">";
    const auto start = page.find(open);
    if (start == std::string::npos) return {};
    const auto end = page.find("</script>", start);
    if (end == std::string::npos) return {};
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string_view(page).substr(start + open.size(), end - start - open.size()), ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
}

}  // namespace

TEST_CASE("the waiting page speaks the person's language and the status says how long to wait", "[rooms][page]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  hall:\n"
                                   "    match: {paths: [/reserve]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 1, burst: 1}\n"
                                   "    mode: queue_all\n"
                                   "    page: {default_language: en, title: Seoul Concert Hall}\n"
                                   "  crowd:\n"
                                   "    match: {paths: [/crowd]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 1, burst: 1}\n"
                                   "    mode: queue_all\n"));
    // A few people are ahead, so the browsers below stay in line for a while.
    for (int i = 0; i < 3; ++i) REQUIRE(get(gw.port(), "/reserve", {accept_json}).status == 503);

    const header_list browser_ko = {
        {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
        {"Accept-Language", "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"},
        {"User-Agent", "Mozilla/5.0 (Linux; Android 13) Chrome/120.0 Mobile"}};
    const reply ko = get(gw.port(), "/reserve?date=2021-07-26", browser_ko);
    INFO("Korean browser: " << ko.status << "\n" << ko.body);
    CHECK(ko.status == 200);
    CHECK_FALSE(ko.from_site());
    CHECK_THAT(ko.header("Content-Type").value_or(""), Catch::Contains("text/html"));
    CHECK_THAT(ko.header("Cache-Control").value_or(""), Catch::Contains("no-store"));
    CHECK_THAT(ko.body, Catch::Contains("<html lang=\"ko\""));
    CHECK_THAT(ko.body, Catch::Contains("대기 중입니다"));  // "You are in line"
    CHECK_THAT(ko.body, Catch::Contains("aria-live"));
    CHECK_THAT(ko.body, Catch::Contains("<noscript>") && Catch::Contains("http-equiv=\"refresh\""));
    CHECK_THAT(ko.body, Catch::Contains("Seoul Concert Hall"));
    CHECK_THAT(ko.body, !Catch::Contains("{{"));  // every placeholder filled
    const std::string ko_ticket = ko.cookie("fg_ticket_hall").value_or("");
    REQUIRE_FALSE(ko_ticket.empty());

    // The data the page's script reads: it shows these texts when the state
    // changes, so they must be the same Korean text, not mojibake.
    const auto data = page_data(ko.body);
    INFO("page data: " << boost::json::serialize(data));
    CHECK(json_string(data, "lang") == "ko");
    CHECK(json_string(data, "status_url") == "/__fg/v1/rooms/hall/status");
    CHECK(json_string(data, "return_to") == "/reserve?date=2021-07-26");
    REQUIRE(data.contains("texts"));
    REQUIRE(data.at("texts").is_object());
    CHECK(json_string(data.at("texts").as_object(), "heading") == "대기 중입니다");
    CHECK(json_string(data.at("texts").as_object(), "light_green") == "원활");

    const reply en = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "en-GB,en;q=0.9"}});
    INFO("English browser: " << en.status << "\n" << en.body);
    CHECK(en.status == 200);
    CHECK_THAT(en.header("Cache-Control").value_or(""), Catch::Contains("no-store"));
    CHECK_THAT(en.body, Catch::Contains("<html lang=\"en\""));
    CHECK_THAT(en.body, Catch::Contains("You are in line"));
    CHECK_THAT(en.body, !Catch::Contains("대기 중입니다"));

    // The plain forms too.
    const reply ko_plain = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "ko-KR"}});
    CHECK(ko_plain.status == 200);
    CHECK_THAT(ko_plain.body, Catch::Contains("<html lang=\"ko\"") && Catch::Contains("대기 중입니다"));
    const reply en_plain = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "en"}});
    CHECK(en_plain.status == 200);
    CHECK_THAT(en_plain.body, Catch::Contains("<html lang=\"en\"") && Catch::Contains("You are in line"));

    // The highest q wins, wherever it is in the list.
    const reply prefers_ko = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "en;q=0.3, ko;q=0.8"}});
    CHECK_THAT(prefers_ko.body, Catch::Contains("<html lang=\"ko\""));

    // The status JSON the page polls.
    const reply st = get(gw.port(), "/__fg/v1/rooms/hall/status", {cookie_header("fg_ticket_hall", ko_ticket)});
    INFO("status: " << st.status << " " << st.body);
    CHECK(st.status == 200);
    CHECK_THAT(st.header("Content-Type").value_or(""), Catch::Contains("application/json"));
    const auto j = st.json();
    for (const char* field : {"state", "position", "ahead", "eta_s", "poll_after_ms", "light"}) {
        INFO("field " << field);
        CHECK(j.contains(field));
    }
    CHECK(json_string(j, "state") == "waiting");
    CHECK(json_int(j, "position") >= 1);
    CHECK(json_int(j, "ahead") == json_int(j, "position") - 1);
    CHECK(json_int(j, "poll_after_ms") > 0);
    const std::set<std::string> lights = {"green", "yellow", "red"};
    CHECK(lights.count(json_string(j, "light")) == 1);
    CHECK(site.request_count() == 0);

    // Poll intervals grow with the distance to the front: 50 people join at 1/s.
    struct joined {
        std::string ticket;
        std::int64_t position = 0;
        std::int64_t poll_after_ms = 0;
        std::int64_t retry_after_s = 0;
    };
    std::vector<joined> crowd;
    for (int i = 0; i < 50; ++i) {
        const reply r = get(gw.port(), "/crowd", {accept_json});
        INFO("person " << i << ": " << r.status << " " << r.body);
        REQUIRE(r.status == 503);
        const auto cj = r.json();
        crowd.push_back({r.cookie("fg_ticket_crowd").value_or(""), json_int(cj, "position"),
                         json_int(cj, "poll_after_ms"), std::stol(r.header("Retry-After").value_or("0"))});
    }
    const joined& front = crowd.front();
    const joined& back = crowd.back();
    INFO("first: position " << front.position << ", poll_after_ms " << front.poll_after_ms << ", Retry-After "
                            << front.retry_after_s << "; fiftieth: position " << back.position << ", poll_after_ms "
                            << back.poll_after_ms << ", Retry-After " << back.retry_after_s);
    CHECK(front.position == 1);
    CHECK(back.position >= 45);
    CHECK(front.poll_after_ms >= 500);
    CHECK(front.poll_after_ms <= 2000);  // about a second near the front
    CHECK(back.poll_after_ms > front.poll_after_ms);
    CHECK(back.poll_after_ms <= 30000);
    CHECK(back.retry_after_s >= front.retry_after_s);

    // The same from the status endpoint: the fiftieth against the fifth.
    const reply s5 = get(gw.port(), "/__fg/v1/rooms/crowd/status", {cookie_header("fg_ticket_crowd", crowd[4].ticket)});
    const reply s50 = get(gw.port(), "/__fg/v1/rooms/crowd/status", {cookie_header("fg_ticket_crowd", crowd[49].ticket)});
    INFO("fifth: " << s5.body << "fiftieth: " << s50.body);
    CHECK(json_string(s5.json(), "state") == "waiting");
    CHECK(json_string(s50.json(), "state") == "waiting");
    CHECK(json_int(s50.json(), "poll_after_ms") > json_int(s5.json(), "poll_after_ms"));
    CHECK(json_int(s50.json(), "eta_s") > json_int(s5.json(), "eta_s"));
}

TEST_CASE("the lights endpoint lists every room with its traffic light", "[rooms][page]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  open:\n"
                                   "    match: {paths: [/open]}\n"
                                   "    admission: {rate: 100, burst: 10}\n"
                                   "  busy:\n"
                                   "    match: {paths: [/busy]}\n"
                                   "    admission: {rate: 1, burst: 1}\n"
                                   "    mode: queue_all\n"
                                   "    page: {yellow_wait: 5m}\n"
                                   "  slow:\n"
                                   "    match: {paths: [/slow]}\n"
                                   "    admission: {rate: 1, burst: 1}\n"
                                   "    mode: queue_all\n"
                                   "    page: {yellow_wait: 2s}\n"
                                   "  stopped:\n"
                                   "    match: {paths: [/stopped]}\n"
                                   "    admission: {rate: 1}\n"
                                   "    mode: paused\n"
                                   "  shut:\n"
                                   "    match: {paths: [/shut]}\n"
                                   "    admission: {rate: 1}\n"
                                   "    mode: closed\n"));
    auto lights = [&] {
        const reply r = get(gw.port(), "/__fg/v1/lights");
        INFO("lights: " << r.status << " " << r.body);
        REQUIRE(r.status == 200);
        std::map<std::string, std::string> out;
        const auto j = r.json();
        REQUIRE(j.contains("rooms"));
        REQUIRE(j.at("rooms").is_array());
        for (const auto& v : j.at("rooms").as_array()) {
            REQUIRE(v.is_object());
            const std::string room = json_string(v.as_object(), "room");
            CHECK(out.count(room) == 0);  // each room once
            out[room] = json_string(v.as_object(), "light");
        }
        return out;
    };
    const std::set<std::string> rooms = {"open", "busy", "slow", "stopped", "shut"};

    auto before = lights();
    CHECK(before.size() == rooms.size());
    for (const auto& name : rooms) {
        INFO("room " << name);
        CHECK(before.count(name) == 1);
    }
    CHECK(before["open"] == "green");
    CHECK(before["busy"] == "green");
    CHECK(before["slow"] == "green");
    CHECK(before["stopped"] == "red");
    CHECK(before["shut"] == "red");

    // People arrive: a short line in busy (a few seconds against 5 minutes), a long one
    // in slow (several seconds against 2 s), and someone walks into open.
    for (int i = 0; i < 4; ++i) REQUIRE(get(gw.port(), "/busy", {accept_json}).status == 503);
    for (int i = 0; i < 8; ++i) REQUIRE(get(gw.port(), "/slow", {accept_json}).status == 503);
    CHECK(get(gw.port(), "/open").status == 404);  // admitted at once; the app has no /open

    auto after = lights();
    CHECK(after.size() == rooms.size());
    CHECK(after["open"] == "green");
    CHECK(after["busy"] == "yellow");
    CHECK(after["slow"] == "red");
    CHECK(after["stopped"] == "red");
    CHECK(after["shut"] == "red");

    CHECK(fetch(gw.port(), http::verb::post, "/__fg/v1/lights").status == 405);
}

}  // namespace floodgate::itest::rooms
