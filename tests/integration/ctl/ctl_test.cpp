// floodgatectl as an operator on call uses it, against the real floodgate
// binary: the rooms table, changes shown as before -> after and landing in the
// audit log under the token's name, watch's line a second, and the errors a
// person can act on with their exit codes (1 the API refused, 2 usage, 3
// cannot connect). The admin API's answers are checked directly, not through
// floodgatectl, so a test sees what really changed.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <sstream>

#include "admin_env.hpp"
#include "harness.hpp"
#include "room_helpers.hpp"

namespace floodgate::itest::rooms {
namespace {

namespace json = boost::json;


std::string admin_of(const gateway_process& gw) {
    return "127.0.0.1:" + std::to_string(gw.admin_port());
}

// floodgatectl with `args` as given, in an environment without the test
// runner's own FLOODGATE_* variables, plus `env`.
process_result ctl_raw(std::vector<std::string> args, const env_vars& env = {}, ms timeout = 10s) {
    std::map<std::string, std::string> vars{
        {"FLOODGATE_ADMIN", ""}, {"FLOODGATE_TOKEN", ""}, {"FLOODGATE_TOKEN_FILE", ""}};
    for (const auto& [k, v] : env) vars[k] = v;
    args.insert(args.begin(), FLOODGATECTL_BIN);
    auto r = run_process(args, timeout, env_vars(vars.begin(), vars.end()));
    UNSCOPED_INFO("floodgatectl exit " << r.exit_code << "\nstdout:\n"
                                       << r.out << "stderr:\n"
                                       << r.err);
    return r;
}

// floodgatectl --admin <gw> --token-file <alice's> args...
process_result ctl(const gateway_process& gw, const admin_env& env, std::vector<std::string> args,
                   ms timeout = 10s) {
    std::vector<std::string> all{"--admin", admin_of(gw), "--token-file",
                                 env.dir.file("alice.token")};
    all.insert(all.end(), args.begin(), args.end());
    return ctl_raw(std::move(all), {}, timeout);
}

double rate_of(const gateway_process& gw) {
    return room_of(gw, "sale").at("settings").at("rate").to_number<double>();
}

json::array audit_of(const gateway_process& gw) {
    return viewer_get(gw, "/admin/v1/audit").at("entries").as_array();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

// The words of a table line: "sale  queue_all  yellow  5 ..." -> {"sale", "queue_all", ...}.
std::vector<std::string> words_of(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool contains(const std::string& text, std::string_view what) {
    return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("rooms lists each room with its mode and its numbers", "[ctl]") {
    test_upstream app;
    admin_env env;
    gateway_process gw(env.config(
        app.address(), std::string(sale_room) + "  shop:\n    match: {paths: [/shop]}\n"
                                                "    admission: {rate: 0, max_active: 300}\n"));
    join_people(gw.port(), 5);
    auto r = ctl(gw, env, {"rooms"});
    REQUIRE(r.exit_code == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 3);
    CHECK(words_of(lines[0]) == std::vector<std::string>{"ROOM", "MODE", "LIGHT", "WAITING",
                                                         "ACTIVE", "ARRIVALS/S", "ADMITTED/S",
                                                         "RATE", "MAX_ACTIVE", "ETA"});
    const auto sale = words_of(lines[1]);
    REQUIRE(sale.size() == 10);
    CHECK(sale[0] == "sale");
    CHECK(sale[1] == "queue_all");
    // Five people joined at a rate of two a second; a few may have been called since.
    CHECK(std::stoi(sale[3]) >= 1);
    CHECK(std::stoi(sale[3]) <= 5);
    CHECK(sale[7] == "2");
    CHECK(sale[8] == "unlimited");
    const auto shop = words_of(lines[2]);
    REQUIRE(shop.size() == 10);
    CHECK(shop[0] == "shop");
    CHECK(shop[1] == "auto");
    CHECK(shop[7] == "unlimited");
    CHECK(shop[8] == "300");
    CHECK(r.err.empty());
}

TEST_CASE_METHOD(sale_gateway, "room shows one room's settings and queue in words", "[ctl]") {
    REQUIRE(ctl(gw, env, {"set", "sale", "max_active=40"}).exit_code == 0);
    auto r = ctl(gw, env, {"room", "sale"});
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, "room sale (from the config file, upstream app)"));
    CHECK(std::regex_search(r.out, std::regex(R"(\n  mode +queue_all\n)")));
    CHECK(std::regex_search(r.out, std::regex(R"(\n  matches +paths /reserve\n)")));
    CHECK(std::regex_search(r.out, std::regex(R"(\n  rate +2/s\n)")));
    CHECK(
        std::regex_search(r.out, std::regex(R"(\n  max_active +40 \*\n)")));  // changed at run time
    CHECK(std::regex_search(r.out, std::regex(R"(\n  waiting +0\n)")));
    CHECK(std::regex_search(r.out, std::regex(R"(\n  banner +\(none\)\n)")));
}

TEST_CASE_METHOD(sale_gateway, "set-rate changes the room's rate and the audit log names the token",
                 "[ctl]") {
    auto r = ctl(gw, env, {"set-rate", "sale", "50", "--burst", "10"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "sale: rate 2/s -> 50/s, burst 1 -> 10\n");
    CHECK(rate_of(gw) == 50);
    CHECK(room_of(gw, "sale").at("settings").at("burst").to_number<int>() == 10);
    const auto entries = audit_of(gw);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].at("token").as_string() == "alice");
    CHECK(entries[0].at("action").as_string() == "room.patch");
    CHECK(entries[0].at("room").as_string() == "sale");
    // floodgatectl's own audit view says the same, in one line.
    auto a = ctl(gw, env, {"audit"});
    REQUIRE(a.exit_code == 0);
    const auto lines = lines_of(a.out);
    REQUIRE(lines.size() == 1);
    CHECK(std::regex_search(
        lines[0],
        std::regex(R"(^\S+Z  alice  room\.patch  sale  rate 2/s -> 50/s, burst 1 -> 10$)")));
    // The same value again changes nothing and says so.
    auto again = ctl(gw, env, {"set-rate", "sale", "50"});
    CHECK(again.exit_code == 0);
    CHECK(again.out == "sale: no change (rate 50)\n");
}

TEST_CASE_METHOD(sale_gateway, "pause and resume change the mode and print it before and after",
                 "[ctl]") {
    auto p = ctl(gw, env, {"pause", "sale"});
    REQUIRE(p.exit_code == 0);
    CHECK(p.out == "sale: mode queue_all -> paused\n");
    CHECK(room_of(gw, "sale").at("mode").as_string() == "paused");
    auto r = ctl(gw, env, {"resume", "sale"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "sale: mode paused -> auto\n");
    CHECK(room_of(gw, "sale").at("mode").as_string() == "auto");
    auto q = ctl(gw, env, {"queue-all", "sale"});
    CHECK(q.out == "sale: mode auto -> queue_all\n");
    auto c = ctl(gw, env, {"close", "sale"});
    CHECK(c.out == "sale: mode queue_all -> closed\n");
    CHECK(room_of(gw, "sale").at("mode").as_string() == "closed");
    const auto entries = audit_of(gw);
    REQUIRE(entries.size() == 4);
    CHECK(entries[0].at("action").as_string() == "room.pause");
    CHECK(entries[3].at("action").as_string() == "room.close");
}

TEST_CASE_METHOD(sale_gateway, "watch prints one line a second and stops after the count",
                 "[ctl]") {
    join_people(gw.port(), 3);
    const auto start = steady::now();
    auto r = ctl(gw, env, {"watch", "sale", "--count", "2"});
    const auto took = steady::now() - start;
    REQUIRE(r.exit_code == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 2);
    const std::regex line(
        R"(^(\d\d):(\d\d):(\d\d)  waiting +\d+  active +\d+  arrivals +[\d.]+/s  admitted +[\d.]+/s of 2/s  p99 [\d.]+ms  (green|yellow|red)  queue_all$)");
    std::smatch m0, m1;
    REQUIRE(std::regex_match(lines[0], m0, line));
    REQUIRE(std::regex_match(lines[1], m1, line));
    auto secs = [](const std::smatch& m) {
        return std::stoi(m[1]) * 3600 + std::stoi(m[2]) * 60 + std::stoi(m[3]);
    };
    // The server stamps each line; one tick apart (two clock seconds at most, from rounding).
    const int apart = (secs(m1) - secs(m0) + 86400) % 86400;
    CHECK(apart >= 1);
    CHECK(apart <= 2);
    // Lines come on the server's ticks: the first within a second, the second a second later.
    CHECK(took >= 900ms);
    CHECK(took < 4s);
}

TEST_CASE_METHOD(sale_gateway, "a wrong token exits 1 and says the token was refused", "[ctl]") {
    const std::string wrong = "wrong-token-0123456789abc";
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"rooms"}, {"set-rate", "sale", "50"}, {"watch", "sale"}}) {
        std::vector<std::string> args{"--admin", admin_of(gw), "--token", wrong};
        args.insert(args.end(), cmd.begin(), cmd.end());
        auto r = ctl_raw(args);
        CHECK(r.exit_code == 1);
        CHECK(r.err ==
              "floodgatectl: the token was refused; check --token / FLOODGATE_TOKEN (or "
              "--token-file / FLOODGATE_TOKEN_FILE)\n");
        CHECK(!contains(r.out + r.err, wrong));
    }
    auto none = ctl_raw({"--admin", admin_of(gw), "rooms"});
    CHECK(none.exit_code == 1);
    CHECK(contains(none.err, "no token given"));
    CHECK(rate_of(gw) == 2);
}

TEST_CASE("nothing listening at the admin address exits 3 and says what to check", "[ctl]") {
    const auto port = unused_port();
    const std::string addr = "127.0.0.1:" + std::to_string(port);
    auto r = ctl_raw({"--admin", addr, "--token", std::string(operator_token), "rooms"});
    CHECK(r.exit_code == 3);
    CHECK(r.err == "floodgatectl: cannot reach the admin API at " + addr +
                       ": connection refused; is floodgate running, and is admin.address right?\n");
    CHECK(r.out.empty());
    CHECK(!contains(r.err, operator_token));
    // The same from the environment, which the message then names.
    auto e = ctl_raw({"pause", "sale"},
                     {{"FLOODGATE_ADMIN", addr}, {"FLOODGATE_TOKEN", std::string(operator_token)}});
    CHECK(e.exit_code == 3);
    CHECK(contains(e.err, "(the address comes from FLOODGATE_ADMIN)"));
}

TEST_CASE_METHOD(sale_gateway,
                 "the public listener given as the admin address is recognised and exits 3",
                 "[ctl]") {
    const std::string addr = "127.0.0.1:" + std::to_string(gw.port());
    for (const auto& cmd : std::vector<std::string>{"rooms", "metrics"}) {
        auto r = ctl_raw({"--admin", addr, "--token", std::string(operator_token), cmd});
        CHECK(r.exit_code == 3);
        CHECK(r.err == "floodgatectl: the answer from " + addr +
                           " (HTTP 404) is not the admin API's; is --admin the admin listener "
                           "(admin.address), not the public one?\n");
        CHECK(r.out.empty());
    }
    CHECK(app.request_count() == 2);  // it was the site behind the public listener that answered
}

TEST_CASE_METHOD(sale_gateway, "a viewer token cannot change the rate and is told why", "[ctl]") {
    auto r = ctl_raw(
        {"--admin", admin_of(gw), "--token", std::string(viewer_token), "set-rate", "sale", "50"});
    CHECK(r.exit_code == 1);
    CHECK(
        r.err ==
        "floodgatectl: not allowed: the token \"bob\" is a viewer token: it can read, not change; "
        "changes need an operator token\n");
    CHECK(r.out.empty());
    CHECK(rate_of(gw) == 2);
    CHECK(audit_of(gw).empty());
    // Reading is fine.
    CHECK(ctl_raw({"--admin", admin_of(gw), "--token", std::string(viewer_token), "rooms"})
              .exit_code == 0);
}

TEST_CASE("a rate that is not a number is refused before anything is sent", "[ctl]") {
    // Nothing listens: exit 2 (not 3) shows that floodgatectl did not try to connect.
    const std::string addr = "127.0.0.1:" + std::to_string(unused_port());
    auto r = ctl_raw(
        {"--admin", addr, "--token", std::string(operator_token), "set-rate", "sale", "fast"});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err,
                   "floodgatectl: RATE must be a number of people per second (0: no rate limit), "
                   "got \"fast\""));
    CHECK(contains(r.err, "usage: floodgatectl [options] set-rate ROOM RATE [--burst N]"));
    CHECK(r.out.empty());
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"set-rate", "sale"},                       // missing RATE
             {"set-rate", "sale", "5", "--limit", "3"},  // an option of another command
             {"set-max-active", "sale", "many"},
             {"set", "sale", "rate"},
             {"set", "sale", "burst=1.5"},
             {"watch", "sale", "--count", "0"},
             {"room", "Sale!"}}) {
        std::vector<std::string> all{"--admin", addr, "--token", std::string(operator_token)};
        all.insert(all.end(), args.begin(), args.end());
        auto u = ctl_raw(all);
        CHECK(u.exit_code == 2);
        CHECK(contains(u.err, "usage: floodgatectl [options] " + args[0] + " "));
    }
    auto unknown = ctl_raw({"frobnicate"});
    CHECK(unknown.exit_code == 2);
    CHECK(contains(unknown.err, "no command named \"frobnicate\""));
    CHECK(contains(unknown.err, "commands:"));
    auto help = ctl_raw({"help", "set-rate"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "usage: floodgatectl [options] set-rate ROOM RATE [--burst N]"));
}

TEST_CASE_METHOD(sale_gateway, "a value the API refuses exits 1 with the API's field and message",
                 "[ctl]") {
    auto r = ctl(gw, env, {"set-rate", "sale", "-3"});
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "floodgatectl: the API refused the request: rate: expected a number from 0 to 10000000, "
          "got -3\n");
    auto b = ctl(gw, env, {"set", "sale", "burst=0"});
    CHECK(b.exit_code == 1);
    CHECK(contains(b.err, "floodgatectl: the API refused the request: burst: "));
    auto m = ctl(gw, env, {"set", "sale", "mode=open"});
    CHECK(m.exit_code == 1);
    CHECK(contains(m.err, "mode: expected \"auto\""));
    CHECK(rate_of(gw) == 2);
    CHECK(audit_of(gw).empty());
}

TEST_CASE_METHOD(sale_gateway, "an unknown room is named in the error", "[ctl]") {
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"room", "nosuch"},
                                                                 {"pause", "nosuch"},
                                                                 {"set-rate", "nosuch", "5"},
                                                                 {"watch", "nosuch"}}) {
        auto r = ctl(gw, env, cmd);
        CHECK(r.exit_code == 1);
        CHECK(r.err == "floodgatectl: no room named \"nosuch\"; `floodgatectl rooms` lists them\n");
    }
}

TEST_CASE_METHOD(sale_gateway, "the token and the address can come from the environment", "[ctl]") {
    auto r = ctl_raw({"set-rate", "sale", "7"}, {{"FLOODGATE_ADMIN", admin_of(gw)},
                                                 {"FLOODGATE_TOKEN", std::string(operator_token)}});
    REQUIRE(r.exit_code == 0);
    CHECK(rate_of(gw) == 7);
    auto f = ctl_raw({"rooms"}, {{"FLOODGATE_ADMIN", admin_of(gw)},
                                 {"FLOODGATE_TOKEN_FILE", env.dir.file("alice.token")}});
    CHECK(f.exit_code == 0);
    CHECK(contains(f.out, "sale"));
    // The command line wins over the environment.
    auto w = ctl_raw(
        {"--token", std::string(viewer_token), "set-rate", "sale", "8"},
        {{"FLOODGATE_ADMIN", admin_of(gw)}, {"FLOODGATE_TOKEN", std::string(operator_token)}});
    CHECK(w.exit_code == 1);
    CHECK(rate_of(gw) == 7);
    CHECK(audit_of(gw).size() == 1);
}

TEST_CASE_METHOD(sale_gateway, "set changes several fields and null goes back to the config file",
                 "[ctl]") {
    auto r = ctl(gw, env,
                 {"set", "sale", "rate=12.5", "idle_timeout_s=5m", "banner=Doors open at 10:00"});
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, "rate 2/s -> 12.5/s"));
    CHECK(contains(r.out, "-> 5m"));
    CHECK(contains(r.out, "banner \"\" -> \"Doors open at 10:00\""));
    auto s = room_of(gw, "sale");
    CHECK(s.at("settings").at("idle_timeout_s").to_number<double>() == 300);
    CHECK(s.at("settings").at("banner").as_string() == "Doors open at 10:00");
    auto back = ctl(gw, env, {"set", "sale", "rate=null"});
    REQUIRE(back.exit_code == 0);
    CHECK(back.out == "sale: rate 12.5/s -> 2/s\n");
    auto cleared = ctl(gw, env, {"banner", "sale", ""});
    REQUIRE(cleared.exit_code == 0);
    CHECK(room_of(gw, "sale").at("settings").at("banner").as_string().empty());
    auto words = ctl(gw, env, {"banner", "sale", "Sold", "out"});
    REQUIRE(words.exit_code == 0);
    CHECK(room_of(gw, "sale").at("settings").at("banner").as_string() == "Sold out");
}

TEST_CASE_METHOD(sale_gateway, "a room created from a file can be deleted again", "[ctl]") {
    write_file(
        env.dir.file("concert.json"),
        R"({"name": "concert", "match": {"paths": ["/concert"]}, "admission": {"rate": 3}, "mode": "queue_all"})");
    auto c = ctl(gw, env, {"create-room", env.dir.file("concert.json")});
    REQUIRE(c.exit_code == 0);
    CHECK(contains(c.out, "created room concert"));
    CHECK(get(gw.port(), "/concert/seats", {accept_json}).status == 503);
    auto d = ctl(gw, env, {"delete-room", "concert"});
    REQUIRE(d.exit_code == 0);
    CHECK(d.out == "deleted room concert\n");
    // Straight to the app again (which has no such page).
    CHECK(get(gw.port(), "/concert/seats", {accept_json}).body == "no route for /concert/seats\n");
    // Rooms from the config file are not deleted at run time; the API says where to go.
    auto f = ctl(gw, env, {"delete-room", "sale"});
    CHECK(f.exit_code == 1);
    CHECK(contains(f.err, "comes from the config file"));
    write_file(env.dir.file("broken.json"), "{\"name\": ");
    auto b = ctl(gw, env, {"create-room", env.dir.file("broken.json")});
    CHECK(b.exit_code == 2);
    CHECK(contains(b.err, "is not valid JSON"));
}

TEST_CASE_METHOD(sale_gateway, "with json the API's own JSON is printed as it is", "[ctl]") {
    auto r = ctl(gw, env, {"rooms", "--json"});
    REQUIRE(r.exit_code == 0);
    auto v = json::parse(r.out).as_object();
    CHECK(v.at("rooms").as_array().at(0).at("name").as_string() == "sale");
    auto p = ctl(gw, env, {"--json", "set-rate", "sale", "9"});
    REQUIRE(p.exit_code == 0);
    CHECK(json::parse(p.out).at("settings").at("rate").to_number<double>() == 9);
    auto e = ctl(gw, env, {"--json", "set", "sale", "burst=0"});
    CHECK(e.exit_code == 1);
    CHECK(json::parse(e.out).at("field").as_string() == "burst");
    auto m = ctl(gw, env, {"metrics"});
    REQUIRE(m.exit_code == 0);
    CHECK(contains(m.out, "floodgate_room_rate_limit{room=\"sale\"} 9"));
}

}  // namespace floodgate::itest::rooms
