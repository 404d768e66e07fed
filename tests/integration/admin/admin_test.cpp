// The admin API as an operator on call uses it, through the real binary:
// who may do what (401/403), every change with its validation errors, a
// rate change felt by the queue within a second, runtime changes and the
// audit log surviving a restart, the event stream, runtime rooms, key
// rotation and reload.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "admin_env.hpp"
#include "harness.hpp"
#include "room_helpers.hpp"

namespace floodgate::itest::rooms {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

reply admin(const gateway_process& gw, http::verb method, std::string target, std::string body = {},
            std::string_view token = operator_token) {
    auto h = bearer(token);
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    return fetch(gw.admin_port(), method, std::move(target), h, std::move(body));
}

double number(const json::value& v) { return v.to_number<double>(); }

const json::value& at(const json::object& o, std::string_view a, std::string_view b) {
    return o.at(a).as_object().at(b);
}

}  // namespace

TEST_CASE_METHOD(sale_gateway,
                 "the admin API answers 401 without a token or with a wrong one and nothing else",
                 "[admin][auth]") {
    for (const auto& h : std::vector<header_list>{{},
                                                  {{"Authorization", "Bearer wrong-token-0123456789"}},
                                                  {{"Authorization", "Basic YWxpY2U6cHc="}},
                                                  {{"Authorization", "Bearer"}}}) {
        for (const char* target : {"/admin/v1/rooms", "/admin/v1/rooms/sale", "/metrics", "/admin/v1/audit"}) {
            auto r = fetch(gw.admin_port(), http::verb::get, target, h);
            INFO(target);
            CHECK(r.status == 401);
            CHECK(r.header("WWW-Authenticate").value_or("").starts_with("Bearer"));
            CHECK(r.body.find("sale") == std::string::npos);
            CHECK(r.json().at("error").as_string() == "unauthorized");
        }
        auto p = fetch(gw.admin_port(), http::verb::patch, "/admin/v1/rooms/sale", h, R"({"rate": 100})");
        CHECK(p.status == 401);
    }
    CHECK(number(at(room_of(gw, "sale"), "settings", "rate")) == 2);
    // Health and readiness stay open for load balancers and probes.
    CHECK(get(gw.admin_port(), "/healthz").status == 200);
    CHECK(get(gw.admin_port(), "/readyz").status == 200);
}

TEST_CASE_METHOD(sale_gateway, "a viewer token reads everything but changes nothing",
                 "[admin][auth]") {
    for (const char* target : {"/admin/v1/rooms", "/admin/v1/rooms/sale", "/metrics", "/admin/v1/audit",
                               "/admin/v1/history"})
        CHECK(admin(gw, http::verb::get, target, {}, viewer_token).status == 200);
    struct change {
        http::verb method;
        const char* target;
        const char* body;
    };
    for (const auto& c : {change{http::verb::patch, "/admin/v1/rooms/sale", R"({"rate": 100})"},
                          change{http::verb::post, "/admin/v1/rooms/sale/pause", ""},
                          change{http::verb::post, "/admin/v1/rooms/sale/close", ""},
                          change{http::verb::post, "/admin/v1/rooms", R"({"name":"x","match":{"paths":["/x"]},"admission":{"rate":1}})"},
                          change{http::verb::post, "/admin/v1/keys/rotate", ""},
                          change{http::verb::post, "/admin/v1/reload", ""}}) {
        INFO(c.target);
        auto r = admin(gw, c.method, c.target, c.body, viewer_token);
        CHECK(r.status == 403);
        CHECK(r.json().at("error").as_string() == "forbidden");
    }
    const auto room = room_of(gw, "sale");
    CHECK(number(at(room, "settings", "rate")) == 2);
    CHECK(room.at("mode").as_string() == "queue_all");
    CHECK(admin(gw, http::verb::get, "/admin/v1/rooms/x", {}, viewer_token).status == 404);
    CHECK(admin(gw, http::verb::get, "/admin/v1/audit").json().at("entries").as_array().empty());
}

TEST_CASE_METHOD(sale_gateway, "invalid changes get 400 naming the field and change nothing",
                 "[admin][validation]") {
    struct bad {
        const char* body;
        const char* field;  // "" when the body as a whole is wrong
    };
    for (const auto& b : {bad{R"({"rate": "fast"})", "rate"}, bad{R"({"rate": -1})", "rate"},
                          bad{R"({"rate": 1e9})", "rate"}, bad{R"({"burst": 0})", "burst"},
                          bad{R"({"burst": 1.5})", "burst"}, bad{R"({"max_active": -3})", "max_active"},
                          bad{R"({"idle_timeout_s": 0})", "idle_timeout_s"}, bad{R"({"mode": "open"})", "mode"},
                          bad{R"({"banner": 42})", "banner"}, bad{R"({"rates": 5})", "rates"},
                          bad{R"({"rate": 0})", "rate"},  // with max_active 0 nobody would ever be admitted
                          bad{"{}", ""}, bad{"[1,2]", ""}, bad{"{\"rate\": ", ""}, bad{"rate=5", ""}}) {
        INFO(b.body);
        auto r = admin(gw, http::verb::patch, "/admin/v1/rooms/sale", b.body);
        CHECK(r.status == 400);
        const auto j = r.json();
        CHECK(j.at("error").as_string() == "bad_request");
        CHECK(!j.at("message").as_string().empty());
        if (*b.field) {
            REQUIRE(j.contains("field"));
            CHECK(j.at("field").as_string() == b.field);
            CHECK(std::string_view(j.at("message").as_string()).find(b.field) != std::string_view::npos);
        }
    }
    std::string long_banner(501, 'x');
    CHECK(admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"banner":")" + long_banner + "\"}").status == 400);
    // Runtime rooms are checked like the config file's, and the message names the field.
    auto c = admin(gw, http::verb::post, "/admin/v1/rooms",
                   R"({"name":"concert","match":{"paths":["/concert"]},"admission":{"rate":"fast"}})");
    CHECK(c.status == 400);
    CHECK(c.json().at("field").as_string() == "admission.rate");
    CHECK(admin(gw, http::verb::post, "/admin/v1/rooms", R"({"match":{"paths":["/x"]}})").json().at("field").as_string() == "name");
    CHECK(admin(gw, http::verb::post, "/admin/v1/rooms",
                R"({"name":"Bad Name","match":{"paths":["/x"]},"admission":{"rate":1}})").status == 400);
    CHECK(admin(gw, http::verb::post, "/admin/v1/rooms",
                R"({"name":"sale","match":{"paths":["/x"]},"admission":{"rate":1}})").status == 409);
    CHECK(admin(gw, http::verb::patch, "/admin/v1/rooms/nosuch", R"({"rate": 1})").status == 404);
    CHECK(admin(gw, http::verb::post, "/admin/v1/rooms/sale/explode").status == 404);
    CHECK(admin(gw, http::verb::delete_, "/admin/v1/rooms/sale").status == 409);
    CHECK(admin(gw, http::verb::get, "/admin/v1/audit?limit=zero").status == 400);
    // Nothing above changed the room or reached the audit log.
    const auto room = room_of(gw, "sale");
    CHECK(number(at(room, "settings", "rate")) == 2);
    CHECK(room.at("settings").as_object().at("banner").as_string().empty());
    CHECK(room.at("overrides").as_array().empty());
    CHECK(admin(gw, http::verb::get, "/admin/v1/audit").json().at("entries").as_array().empty());
    CHECK(admin(gw, http::verb::get, "/admin/v1/rooms").json().at("rooms").as_array().size() == 1);
}

TEST_CASE_METHOD(sale_gateway, "a rate change is felt by the queue within a second",
                 "[admin][rate]") {
    join_people(gw.port(), 120);
    auto waiting = [&] { return at(room_of(gw, "sale"), "stats", "waiting").to_number<std::int64_t>(); };
    // At 2 people a second, a second calls about two.
    const auto w0 = waiting();
    std::this_thread::sleep_for(milliseconds(1000));
    const auto w1 = waiting();
    CHECK(w0 - w1 <= 4);
    auto r = admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"rate": 100, "burst": 10})");
    REQUIRE(r.status == 200);
    CHECK(number(at(r.json(), "settings", "rate")) == 100);
    std::this_thread::sleep_for(milliseconds(1000));
    const auto w2 = waiting();
    INFO("waiting " << w0 << " -> " << w1 << " (rate 2) -> " << w2 << " one second after rate 100");
    CHECK(w1 - w2 >= 50);
    CHECK(w1 - w2 <= 100 + 10 + 5);
}

TEST_CASE_METHOD(sale_gateway, "pause and resume stop and restart calling and people see the pause",
                 "[admin][mode]") {
    auto first = get(gw.port(), "/reserve", {accept_json});
    const std::string ticket = first.cookie("fg_ticket_sale").value();
    join_people(gw.port(), 20);
    REQUIRE(admin(gw, http::verb::post, "/admin/v1/rooms/sale/pause").status == 200);
    const auto paused = room_of(gw, "sale");
    CHECK(paused.at("mode").as_string() == "paused");
    CHECK(at(paused, "stats", "light").as_string() == "red");
    CHECK(at(paused, "stats", "eta_s").is_null());
    const auto w0 = at(paused, "stats", "waiting").to_number<std::int64_t>();
    std::this_thread::sleep_for(milliseconds(1500));
    CHECK(at(room_of(gw, "sale"), "stats", "waiting").to_number<std::int64_t>() == w0);
    auto st = get(gw.port(), "/__fg/v1/rooms/sale/status", {cookie_header("fg_ticket_sale", ticket)}).json();
    CHECK(json_string(st, "state") == "paused");
    REQUIRE(admin(gw, http::verb::post, "/admin/v1/rooms/sale/resume").status == 200);
    CHECK(room_of(gw, "sale").at("mode").as_string() == "auto");
    std::this_thread::sleep_for(milliseconds(1500));
    CHECK(at(room_of(gw, "sale"), "stats", "waiting").to_number<std::int64_t>() < w0);
    // Closing: newcomers get no ticket.
    REQUIRE(admin(gw, http::verb::post, "/admin/v1/rooms/sale/close").status == 200);
    auto closed = get(gw.port(), "/reserve", {accept_json});
    CHECK(!closed.cookie("fg_ticket_sale"));
}

TEST_CASE_METHOD(sale_gateway, "a banner set at run time is shown on the waiting page",
                 "[admin][banner]") {
    REQUIRE(admin(gw, http::verb::patch, "/admin/v1/rooms/sale",
                  R"({"banner": "Sold out at 10:00 <b>today</b> 오늘 매진"})").status == 200);
    auto page = get(gw.port(), "/reserve", {{"Accept", "text/html"}});
    CHECK(page.status == 200);
    CHECK(page.body.find("Sold out at 10:00 &lt;b&gt;today&lt;/b&gt; 오늘 매진") != std::string::npos);
    CHECK(page.body.find("<b>today</b>") == std::string::npos);
    // null drops the override: the config file's (empty) banner again.
    auto r = admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"banner": null})");
    CHECK(r.json().at("overrides").as_array().empty());
    CHECK(get(gw.port(), "/reserve", {{"Accept", "text/html"}}).body.find("Sold out") == std::string::npos);
}

TEST_CASE("runtime changes and the audit log survive a restart", "[admin][durability]") {
    test_upstream app;
    admin_env env;
    const std::string cfg = env.config(app.address(), sale_room);
    {
        gateway_process gw(cfg);
        REQUIRE(admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"rate": 7.5, "max_active": 40})").status == 200);
        REQUIRE(admin(gw, http::verb::post, "/admin/v1/rooms/sale/pause").status == 200);
        REQUIRE(admin(gw, http::verb::post, "/admin/v1/rooms",
                      R"({"name":"concert","match":{"paths":["/concert"]},"admission":{"rate":3}})").status == 201);
        gw.signal(SIGTERM);
        REQUIRE(gw.wait_exit(5s).has_value());
    }
    gateway_process gw(cfg);
    const auto sale = room_of(gw, "sale");
    CHECK(number(at(sale, "settings", "rate")) == 7.5);
    CHECK(number(at(sale, "settings", "max_active")) == 40);
    CHECK(sale.at("mode").as_string() == "paused");
    const auto concert = room_of(gw, "concert");
    CHECK(concert.at("source").as_string() == "runtime");
    CHECK(get(gw.port(), "/concert", {accept_json}).status == 503);  // protected again after the restart
    const auto entries = admin(gw, http::verb::get, "/admin/v1/audit").json().at("entries").as_array();
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].at("action").as_string() == "room.patch");
    CHECK(entries[0].at("token").as_string() == "alice");
    CHECK(number(entries[0].at("before").at("settings").at("rate")) == 2);
    CHECK(number(entries[0].at("after").at("settings").at("rate")) == 7.5);
    CHECK(entries[1].at("action").as_string() == "room.pause");
    CHECK(entries[1].at("before").at("mode").as_string() == "queue_all");
    CHECK(entries[1].at("after").at("mode").as_string() == "paused");
    CHECK(entries[2].at("action").as_string() == "room.create");
    CHECK(entries[2].at("room").as_string() == "concert");
    // The audit log is a file of JSON lines an operator can grep.
    const std::string log = read_file(env.dir.file("state/admin/audit.log"));
    CHECK(std::count(log.begin(), log.end(), '\n') == 3);
    CHECK(log.find("\"token\":\"alice\"") != std::string::npos);
}

TEST_CASE_METHOD(sale_gateway, "a room created at run time protects its path until it is deleted",
                 "[admin][rooms]") {
    CHECK(get(gw.port(), "/echo").status == 200);  // straight to the site
    auto c = admin(gw, http::verb::post, "/admin/v1/rooms",
                   R"({"name":"concert","match":{"paths":["/echo"]},"admission":{"rate":1},"mode":"queue_all"})");
    REQUIRE(c.status == 201);
    CHECK(c.json().at("source").as_string() == "runtime");
    auto q = get(gw.port(), "/echo", {accept_json});
    CHECK(q.status == 503);
    CHECK(q.cookie("fg_ticket_concert").has_value());
    CHECK(admin(gw, http::verb::get, "/admin/v1/rooms").json().at("rooms").as_array().size() == 2);
    CHECK(admin(gw, http::verb::delete_, "/admin/v1/rooms/concert").status == 204);
    CHECK(get(gw.port(), "/echo").status == 200);
    CHECK(admin(gw, http::verb::get, "/admin/v1/rooms/concert").status == 404);
    CHECK(admin(gw, http::verb::delete_, "/admin/v1/rooms/concert").status == 404);
}

TEST_CASE_METHOD(sale_gateway,
                 "the event stream sends every room's stats each second and every change",
                 "[admin][stream]") {
    raw_connection unauth(gw.admin_port());
    unauth.send("GET /admin/v1/stream HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(unauth.read_until("\r\n\r\n", 3s));
    CHECK(status_of(unauth.received()) == 401);

    raw_connection s(gw.admin_port());
    s.send("GET /admin/v1/stream HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + std::string(viewer_token) +
           "\r\n\r\n");
    REQUIRE(s.read_until("\r\n\r\n", 3s));
    CHECK(status_of(s.received()) == 200);
    CHECK(s.received().find("text/event-stream") != std::string::npos);
    const auto start = steady::now();
    auto count = [&](std::string_view what) {
        std::size_t n = 0;
        for (std::size_t at = s.received().find(what); at != std::string::npos; at = s.received().find(what, at + 1)) ++n;
        return n;
    };
    while (count("event: stats\n") < 3 && steady::now() - start < 5s) s.read_some(500ms);
    CHECK(count("event: stats\n") >= 3);
    CHECK(steady::now() - start >= 1500ms);  // once a second, not a flood
    // Each stats event carries the rooms as the API shows them.
    const std::string& got = s.received();
    const auto data = got.find("data: ", got.rfind("event: stats\n"));
    const auto end = got.find("\n\n", data);
    REQUIRE(end != std::string::npos);
    auto ev = json::parse(got.substr(data + 6, end - data - 6)).as_object();
    CHECK(ev.at("rooms").as_array().at(0).at("name").as_string() == "sale");
    REQUIRE(admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"rate": 9})").status == 200);
    CHECK(s.read_until("event: audit\n", 3s));
    CHECK(s.read_until("\"rate\":9", 3s));
}

TEST_CASE("rotating the keys keeps issued passes and tickets valid", "[admin][keys]") {
    test_upstream app;
    admin_env env;
    gateway_process gw(env.config(app.address(), "  sale:\n    match: {paths: [/echo]}\n    admission: {rate: 50, burst: 10}\n"));
    auto first = get(gw.port(), "/echo", {accept_json});
    REQUIRE(first.status == 200);  // auto mode, free capacity: admitted at once
    const std::string pass = first.cookie("fg_pass_sale").value();
    auto r = admin(gw, http::verb::post, "/admin/v1/keys/rotate");
    REQUIRE(r.status == 200);
    const std::string kid(r.json().at("kid").as_string());
    CHECK(r.json().at("keys").to_number<int>() == 2);
    CHECK(get(gw.port(), "/echo", {cookie_header("fg_pass_sale", pass)}).status == 200);
    auto second = get(gw.port(), "/echo", {accept_json});
    const std::string pass2 = second.cookie("fg_pass_sale").value();
    CHECK(token_parts(pass2).at(1) == kid);
    CHECK(token_parts(pass).at(1) != kid);
    CHECK(read_file(env.dir.file("state/token-keys")).find(kid) != std::string::npos);
}

TEST_CASE_METHOD(sale_gateway,
                 "a reload through the API keeps the running config when the file is wrong",
                 "[admin][reload]") {
    REQUIRE(admin(gw, http::verb::patch, "/admin/v1/rooms/sale", R"({"rate": 4})").status == 200);
    gw.rewrite_config(env.config(app.address(), "  sale:\n    match: {paths: [/reserve]}\n    admission: {rate: lots}\n"));
    auto bad = admin(gw, http::verb::post, "/admin/v1/reload");
    CHECK(bad.status == 422);
    CHECK(bad.json().at("error").as_string() == "invalid_config");
    CHECK(std::string_view(bad.json().at("message").as_string()).find("floodgate.yaml:") != std::string_view::npos);
    CHECK(std::string_view(bad.json().at("message").as_string()).find("rate") != std::string_view::npos);
    CHECK(get(gw.port(), "/reserve", {accept_json}).status == 503);  // still protected
    // A good file: its new room serves, and the runtime rate of "sale" still wins over the file.
    gw.rewrite_config(env.config(app.address(), std::string(sale_room) +
                                                    "  concert:\n    match: {paths: [/concert]}\n"
                                                    "    admission: {rate: 1}\n    mode: queue_all\n"));
    CHECK(admin(gw, http::verb::post, "/admin/v1/reload").status == 200);
    CHECK(get(gw.port(), "/concert", {accept_json}).status == 503);
    CHECK(number(at(room_of(gw, "sale"), "settings", "rate")) == 4);
    const auto entries = admin(gw, http::verb::get, "/admin/v1/audit").json().at("entries").as_array();
    REQUIRE(entries.size() == 3);
    CHECK(entries[1].at("action").as_string() == "config.reload");
    CHECK(entries[1].at("after").at("error").is_string());
    CHECK(entries[2].at("after").at("reloaded").as_bool());
}

}  // namespace floodgate::itest::rooms
