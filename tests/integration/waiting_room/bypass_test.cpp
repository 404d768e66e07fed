// No way around the line: forged, tampered, foreign, expired and misplaced
// tokens, path and Host tricks, odd methods and framings all end at the
// waiting answer (or a 400), and the site behind the room sees none of them.
// Also: passes are per room, and a closed room issues no tickets but honours
// the passes it already gave out.
#include <catch2/catch.hpp>
#include <cctype>
#include <csignal>
#include <set>
#include <thread>

#include "harness.hpp"
#include "room_helpers.hpp"
#include "site_upstream.hpp"

namespace floodgate::itest::rooms {
namespace {

using std::chrono::milliseconds;

enum class expect {
    waiting,             // the waiting page (200) or 503 + JSON, state "waiting"
    bad_request,         // 400
    waiting_or_bad,      // either is a correct refusal
};

struct attempt {
    std::string name;
    std::string raw;  // the bytes sent, on a fresh connection
    expect outcome = expect::waiting;
    bool head = false;       // a HEAD: the answer has no body
    bool pipelined = false;  // an unprotected request first, answered by the app upstream
};

std::string request(std::string_view method, std::string_view target, const std::vector<std::string>& fields,
                    std::string_view body = {}, std::string_view version = "HTTP/1.1",
                    std::string_view host = "127.0.0.1") {
    std::string r = std::string(method) + " " + std::string(target) + " " + std::string(version) + "\r\n";
    if (!host.empty()) r += "Host: " + std::string(host) + "\r\n";
    for (const auto& f : fields) r += f + "\r\n";
    if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "Connection: close\r\n\r\n";
    r += body;
    return r;
}

std::string get_reserve(const std::vector<std::string>& fields) { return request("GET", "/reserve", fields); }

// The waiting answer, and nothing in it about why a token was refused.
bool is_waiting_answer(const raw_response& r, std::string_view room) {
    if (r.status == 200) {
        std::string lower = r.body;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const char* word : {"expired", "signature", "tamper", "invalid", "forged"})
            if (lower.find(word) != std::string::npos) return false;
        return r.body.find("/__fg/v1/rooms/" + std::string(room) + "/status") != std::string::npos &&
               r.field("Cache-Control").find("no-store") != std::string::npos;
    }
    if (r.status == 503) {
        boost::system::error_code ec;
        auto v = boost::json::parse(r.body, ec);
        if (ec || !v.is_object()) return false;
        static const std::set<std::string> known = {"room", "state", "position", "ahead", "eta_s",
                                                    "poll_after_ms", "light", "banner", "ticket"};
        for (const auto& kv : v.as_object())
            if (known.count(std::string(kv.key())) == 0) return false;
        return json_string(v.as_object(), "state") == "waiting" && r.header("Retry-After").has_value();
    }
    return false;
}

std::string printable(std::string_view s, std::size_t max = 600) {
    std::string out;
    for (char c : s.substr(0, max)) {
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n\n";
        else out += c;
    }
    return out;
}

}  // namespace

TEST_CASE("no request reaches a protected path without a valid pass", "[rooms][bypass]") {
    temp_dir keys;
    write_file(keys.file("main-keys"), key_file_text("k1"));
    write_file(keys.file("other-keys"), key_file_text("k1"));  // same kid, another secret
    site_upstream site;  // only room a's upstream: it must see nothing until the final control
    test_upstream app;   // everything else

    // A pass that has expired: minted by a gateway with the same keys and a 1 s session.
    std::string expired_pass;
    steady::time_point expired_minted;
    {
        gateway_process other(room_config(app.address(), app.address(),
                                          "  a:\n"
                                          "    match: {paths: [/reserve]}\n"
                                          "    admission: {rate: 100, burst: 10, session_ttl: 1s}\n",
                                          "keys_file: " + keys.file("main-keys")));
        const reply r = fetch(other.port(), http::verb::post, "/__fg/v1/rooms/a/join");
        INFO(r.status << " " << r.body);
        REQUIRE(json_string(r.json(), "state") == "admitted");
        expired_pass = json_string(r.json(), "pass");
        expired_minted = steady::now();
    }
    // A pass signed with another key file.
    std::string foreign_key_pass;
    {
        gateway_process other(room_config(app.address(), app.address(),
                                          "  a:\n"
                                          "    match: {paths: [/reserve]}\n"
                                          "    admission: {rate: 100, burst: 10}\n",
                                          "keys_file: " + keys.file("other-keys")));
        const reply r = fetch(other.port(), http::verb::post, "/__fg/v1/rooms/a/join");
        INFO(r.status << " " << r.body);
        REQUIRE(json_string(r.json(), "state") == "admitted");
        foreign_key_pass = json_string(r.json(), "pass");
    }
    REQUIRE_FALSE(expired_pass.empty());
    REQUIRE_FALSE(foreign_key_pass.empty());

    gateway_process gw(room_config(app.address(), site.address(),
                                   "  a:\n"
                                   "    match: {paths: [/reserve], case_insensitive: true}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 2, burst: 1, max_active: 1}\n"
                                   "    mode: queue_all\n"
                                   "  b:\n"
                                   "    match: {paths: [/other]}\n"
                                   "    admission: {rate: 100, burst: 10}\n",
                                   "keys_file: " + keys.file("main-keys")));

    // Genuine material to forge from: a pass for room a (via the status endpoint, so the
    // site sees nothing), a ticket for room a, and a pass for room b.
    const reply joined = get(gw.port(), "/reserve", {accept_json});
    REQUIRE(joined.status == 503);
    const std::string pass_a =
        wait_for_pass(gw.port(), "a", joined.cookie("fg_ticket_a").value_or(""), std::chrono::seconds(10));
    const reply second = get(gw.port(), "/reserve", {accept_json});
    REQUIRE(second.status == 503);
    const std::string ticket_a = second.cookie("fg_ticket_a").value_or("");
    REQUIRE_FALSE(ticket_a.empty());
    const reply b_join = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/b/join");
    REQUIRE(json_string(b_join.json(), "state") == "admitted");
    const std::string pass_b = json_string(b_join.json(), "pass");
    REQUIRE_FALSE(pass_b.empty());
    auto pass_a_is_valid = [&] {
        const reply r = get(gw.port(), "/__fg/v1/rooms/a/status", {cookie_header("fg_pass_a", pass_a)});
        return json_string(r.json(), "state") == "admitted";
    };
    REQUIRE(pass_a_is_valid());
    REQUIRE(token_parts(pass_a).size() == 4);
    // The expired pass names the very slot the genuine pass holds right now, so
    // only its expiry stands between it and the site.
    const auto genuine_claims = decode_pass(pass_a);
    const auto expired_claims = decode_pass(expired_pass);
    REQUIRE(genuine_claims.has_value());
    REQUIRE(expired_claims.has_value());
    REQUIRE(expired_claims->slot == genuine_claims->slot);
    REQUIRE(expired_claims->slot_gen == genuine_claims->slot_gen);
    REQUIRE(site.request_count() == 0);

    auto parts = token_parts(pass_a);
    const std::size_t mac_len = parts[3].size();
    const std::size_t payload_len = parts[2].size();
    auto with_part = [&](std::size_t i, std::string value) {
        auto p = parts;
        p[i] = std::move(value);
        return join_parts(p);
    };
    const std::string html = "Accept: text/html";
    const std::string json = "Accept: application/json";
    auto cookie = [](std::string_view value) { return "Cookie: fg_pass_a=" + std::string(value); };
    auto pass_header = [](std::string_view value) { return "Floodgate-Pass: " + std::string(value); };

    std::this_thread::sleep_until(expired_minted + milliseconds(2200));  // the 1 s pass is now expired

    std::vector<attempt> attempts = {
        {"no cookie (browser)", get_reserve({html})},
        {"no cookie (API client)", get_reserve({json})},
        {"forged pass: random base64url", get_reserve({json, cookie(random_base64url(66))})},
        {"forged pass: v1 shape with random parts",
         get_reserve({json, cookie("v1.k1." + random_base64url(45) + "." + random_base64url(16))})},
        {"forged pass: genuine kid and payload with a random MAC", get_reserve({json, cookie(with_part(3, random_base64url(16)))})},
        {"pass with a MAC character changed (middle)", get_reserve({json, cookie(change_char(pass_a, 3, mac_len / 2))})},
        {"pass with a MAC character changed (first)", get_reserve({html, cookie(change_char(pass_a, 3, 0))})},
        {"pass with a MAC character changed (last)", get_reserve({json, cookie(change_char(pass_a, 3, mac_len - 1))})},
        {"pass with a payload character changed (middle)", get_reserve({json, cookie(change_char(pass_a, 2, payload_len / 2))})},
        {"pass with a payload character changed (first: the type)", get_reserve({json, cookie(change_char(pass_a, 2, 0))})},
        {"pass with a payload character changed (last: slot generation)",
         get_reserve({json, pass_header(change_char(pass_a, 2, payload_len - 1))})},
        {"pass for room b in room a's cookie", get_reserve({json, cookie(pass_b)})},
        {"pass for room b in the Floodgate-Pass header", get_reserve({json, pass_header(pass_b)})},
        {"pass for room b in its own cookie on room a's path", get_reserve({json, "Cookie: fg_pass_b=" + pass_b})},
        {"a ticket presented as a pass (cookie)", get_reserve({json, cookie(ticket_a)})},
        {"a ticket presented as a pass (header)", get_reserve({json, pass_header(ticket_a)})},
        {"expired pass (cookie)", get_reserve({json, cookie(expired_pass)})},
        {"expired pass (header)", get_reserve({html, pass_header(expired_pass)})},
        {"unknown kid", get_reserve({json, cookie(with_part(1, "kZZZZ9"))})},
        {"pass from a gateway with a different key file", get_reserve({json, cookie(foreign_key_pass)})},
        {"empty cookie value", get_reserve({json, "Cookie: fg_pass_a="})},
        {"empty Floodgate-Pass header", get_reserve({json, "Floodgate-Pass: "})},
        {"cookie name in capitals", get_reserve({json, "Cookie: FG_PASS_a=" + pass_a})},
        {"cookie name with a different room case", get_reserve({json, "Cookie: fg_pass_A=" + pass_a})},
        {"pass in the query string", request("GET", "/reserve?fg_pass_a=" + pass_a, {json})},
        {"pass in the query string as Floodgate-Pass", request("GET", "/reserve?Floodgate-Pass=" + pass_a, {json})},
        {"pass presented as a ticket", get_reserve({json, "Floodgate-Ticket: " + pass_a})},
        {"pass truncated by one character", get_reserve({json, cookie(pass_a.substr(0, pass_a.size() - 1))})},
        {"pass with an extra part", get_reserve({json, cookie(pass_a + ".AAAA")})},
        {"pass with version v2", get_reserve({json, cookie("v2" + pass_a.substr(2))})},
        {"forged pass in quotes", get_reserve({json, cookie("\"" + with_part(3, random_base64url(16)) + "\"")})},
        {"Floodgate-Pass: garbage", get_reserve({json, "Floodgate-Pass: garbage"})},
        {"a bad header and a bad cookie", get_reserve({json, "Floodgate-Pass: garbage", cookie("garbage2")})},
        {"a bad cookie among several Cookie fields", get_reserve({json, "Cookie: theme=dark", cookie(random_base64url(66))})},
        {"/RESERVE (case-insensitive room)", request("GET", "/RESERVE", {json})},
        {"//reserve", request("GET", "//reserve", {json})},
        {"/./reserve", request("GET", "/./reserve", {json})},
        {"/x/../reserve", request("GET", "/x/../reserve", {json})},
        {"/%72eserve", request("GET", "/%72eserve", {json})},
        {"/%52%45SERVE", request("GET", "/%52%45SERVE", {json})},
        {"/reserve;jsessionid=1", request("GET", "/reserve;jsessionid=1", {json})},
        {"/reserve%2f", request("GET", "/reserve%2f", {json}), expect::bad_request},
        {"/%2Freserve", request("GET", "/%2Freserve", {json}), expect::bad_request},
        {"/reserve/", request("GET", "/reserve/", {json})},
        {"/reserve?x", request("GET", "/reserve?x", {json})},
        {"/reserve#frag", request("GET", "/reserve#frag", {json}), expect::waiting_or_bad},
        {"/%2e%2e/reserve", request("GET", "/%2e%2e/reserve", {json})},
        {"/public/..;x/reserve", request("GET", "/public/..;x/reserve", {json})},
        {"/reserve%00", request("GET", "/reserve%00", {json}), expect::bad_request},
        {"\\reserve", request("GET", "\\reserve", {json}), expect::bad_request},
        {"/x\\..\\reserve", request("GET", "/x\\..\\reserve", {json}), expect::bad_request},
        {"absolute-form target", request("GET", "http://127.0.0.1/reserve", {json})},
        {"absolute-form target with another host and dot segments", request("GET", "http://example.com/x/../RESERVE", {json})},
        {"Host with a port", request("GET", "/reserve", {json}, {}, "HTTP/1.1", "127.0.0.1:80")},
        {"Host in capitals", request("GET", "/reserve", {json}, {}, "HTTP/1.1", "WWW.EXAMPLE.COM")},
        {"missing Host", request("GET", "/reserve", {json}, {}, "HTTP/1.1", ""), expect::bad_request},
        {"two Host fields", request("GET", "/reserve", {json, "Host: evil.example"}), expect::bad_request},
        {"POST", request("POST", "/reserve", {json, "Content-Type: application/x-www-form-urlencoded"}, "seat=1")},
        {"PUT", request("PUT", "/reserve", {json}, "seat=1")},
        {"HEAD", request("HEAD", "/reserve", {html}), expect::waiting, /*head=*/true},
        {"OPTIONS", request("OPTIONS", "/reserve", {json})},
        {"DELETE", request("DELETE", "/reserve", {json})},
        {"POST with a chunked body", request("POST", "/reserve", {json, "Transfer-Encoding: chunked"}, {}) + "6\r\nseat=1\r\n0\r\n\r\n"},
        {"pipelined after an unprotected request",
         "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_reserve({json}), expect::waiting, false, /*pipelined=*/true},
        {"pipelined with a forged pass after an unprotected request",
         "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_reserve({html, cookie(random_base64url(66))}),
         expect::waiting, false, /*pipelined=*/true},
        {"HTTP/1.0", request("GET", "/reserve", {json}, {}, "HTTP/1.0")},
        {"HTTP/1.0 without Host", request("GET", "/reserve", {html}, {}, "HTTP/1.0", ""), expect::waiting_or_bad},
    };
    REQUIRE(attempts.size() >= 40);

    for (const auto& a : attempts) {
        const std::string bytes = raw_exchange(gw.port(), a.raw, std::chrono::seconds(5));
        INFO("attempt: " << a.name << "\n--- sent:\n" << printable(a.raw) << "\n--- received:\n" << printable(bytes));
        CHECK(bytes.find(site_upstream::marker) == std::string::npos);  // never the site's answer
        if (a.head) {
            CHECK(status_of(bytes) == 200);
            CHECK(bytes.find("\r\n\r\n") == bytes.size() - 4);  // a head, no body
            continue;
        }
        auto responses = parse_responses(bytes, nullptr, /*at_eof=*/true);
        if (a.pipelined) {
            REQUIRE(responses.size() == 2);
            CHECK(responses[0].status == 200);
            CHECK(responses[0].body.find("\"target\"") != std::string::npos);  // app's /echo
            CHECK(is_waiting_answer(responses[1], "a"));
            continue;
        }
        REQUIRE(responses.size() == 1);
        const raw_response& r = responses[0];
        switch (a.outcome) {
            case expect::waiting: CHECK(is_waiting_answer(r, "a")); break;
            case expect::bad_request: CHECK(r.status == 400); break;
            case expect::waiting_or_bad: CHECK((r.status == 400 || is_waiting_answer(r, "a"))); break;
        }
    }

    // The same attempts on one kept-alive connection, each right after the genuine pass was
    // checked on it: a connection remembers the last token that passed its check, and a near
    // miss of it, an expired one or one for another room must still be refused.
    {
        raw_connection c(gw.port());
        REQUIRE(c.connected());
        const std::string genuine = "GET /__fg/v1/rooms/a/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                    cookie(pass_a) + "\r\n\r\n";
        std::size_t tried = 0;
        for (const auto& a : attempts) {
            if (a.outcome != expect::waiting || a.head || a.pipelined ||
                a.raw.find(" HTTP/1.1\r\n") == std::string::npos)
                continue;
            std::string raw = a.raw;
            const std::string close = "Connection: close\r\n";
            raw.erase(raw.find(close), close.size());
            REQUIRE(c.send(genuine));
            REQUIRE(c.read_responses(1, std::chrono::seconds(5)));
            const auto admitted = parse_responses(c.take_received());
            REQUIRE(admitted.size() == 1);
            CHECK(json_string(boost::json::parse(admitted[0].body).as_object(), "state") == "admitted");
            REQUIRE(c.send(raw));
            INFO("attempt on a kept-alive connection: " << a.name << "\n--- sent:\n" << printable(raw));
            REQUIRE(c.read_responses(1, std::chrono::seconds(5)));
            const auto answer = parse_responses(c.take_received());
            REQUIRE(answer.size() == 1);
            CHECK(is_waiting_answer(answer[0], "a"));
            CHECK_FALSE(answer[0].closes());
            ++tried;
        }
        CHECK(tried >= 30);
    }

    // The site behind room a saw nothing; nor did the app upstream see room a's path.
    std::string seen;
    for (const auto& r : site.requests()) seen += r.method + " " + r.target + " (" + r.header("Cookie").value_or("") + ")\n";
    INFO("the site saw:\n" << seen);
    CHECK(site.request_count() == 0);
    for (const auto& r : app.requests()) {
        std::string lower = r.target;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        INFO("the app upstream saw " << r.method << " " << r.target);
        CHECK(lower.find("reserve") == std::string::npos);
    }

    // Controls: the genuine passes still work, so the refusals above were about the tokens.
    CHECK(pass_a_is_valid());
    const reply in = get(gw.port(), "/reserve", {cookie_header("fg_pass_a", pass_a)});
    CHECK(in.status == 200);
    CHECK(in.from_site());
    const reply in_b = get(gw.port(), "/other", {cookie_header("fg_pass_b", pass_b)});
    CHECK(in_b.status == 404);  // answered by the app upstream (it has no /other route)
    CHECK(app.requests().back().path() == "/other");
}

TEST_CASE("a pass for one room is ignored on another room's path", "[rooms][bypass]") {
    site_upstream site;
    test_upstream app;
    gateway_process gw(room_config(app.address(), site.address(),
                                   "  a:\n"
                                   "    match: {paths: [/a]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 100, burst: 10}\n"
                                   "  b:\n"
                                   "    match: {paths: [/b]}\n"
                                   "    upstream: site\n"
                                   "    admission: {rate: 1, burst: 1, max_active: 1}\n"
                                   "    mode: queue_all\n"));
    const reply in_a = get(gw.port(), "/a");
    REQUIRE(in_a.status == 200);
    REQUIRE(in_a.from_site());
    const std::string pass_a = in_a.cookie("fg_pass_a").value_or("");
    REQUIRE_FALSE(pass_a.empty());

    const std::vector<std::pair<std::string, header_list>> tries = {
        {"room a's cookie", {accept_json, cookie_header("fg_pass_a", pass_a)}},
        {"room b's cookie holding room a's pass", {accept_json, cookie_header("fg_pass_b", pass_a)}},
        {"the Floodgate-Pass header", {accept_json, {"Floodgate-Pass", pass_a}}},
        {"both cookies and the header", {accept_json, {"Cookie", "fg_pass_a=" + pass_a + "; fg_pass_b=" + pass_a}, {"Floodgate-Pass", pass_a}}},
        {"a browser with room a's cookie", {{"Accept", "text/html"}, cookie_header("fg_pass_a", pass_a)}},
    };
    for (const auto& [what, headers] : tries) {
        const reply r = get(gw.port(), "/b/book", headers);
        INFO(what << ": " << r.status << " " << r.body);
        CHECK_FALSE(r.from_site());
        CHECK((r.status == 503 || r.status == 200));
        if (r.status == 503) CHECK(json_string(r.json(), "state") == "waiting");
        else CHECK_THAT(r.body, Catch::Contains("/__fg/v1/rooms/b/status"));
    }
    // Room b's endpoints do not take it either, and releasing there does not free room a's slot.
    const reply st = get(gw.port(), "/__fg/v1/rooms/b/status", {{"Floodgate-Pass", pass_a}});
    INFO("room b status with room a's pass: " << st.status << " " << st.body);
    CHECK(json_string(st.json(), "state") != "admitted");
    const reply rel = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/b/release", {cookie_header("fg_pass_b", pass_a)});
    CHECK(rel.json()["released"] == false);

    for (const auto& r : site.requests()) {
        INFO("the site saw " << r.target);
        CHECK(r.path().rfind("/a", 0) == 0);
    }
    // Room a's pass still works where it belongs.
    CHECK(get(gw.port(), "/a/next", {cookie_header("fg_pass_a", pass_a)}).from_site());
}

TEST_CASE("a closed room issues no tickets and honours the passes it gave out", "[rooms][modes]") {
    site_upstream site;
    test_upstream app;
    auto config = [&](std::string_view mode) {
        return room_config(app.address(), site.address(),
                           "  sale:\n"
                           "    match: {paths: [/reserve]}\n"
                           "    upstream: site\n"
                           "    admission: {rate: 100, burst: 10}\n"
                           "    mode: " + std::string(mode) + "\n");
    };
    gateway_process gw(config("auto"));
    const reply early = get(gw.port(), "/reserve", {{"X-Person", "early"}});
    REQUIRE(early.status == 200);
    REQUIRE(early.from_site());
    const std::string pass = early.cookie("fg_pass_sale").value_or("");
    REQUIRE_FALSE(pass.empty());

    const std::size_t reloads = count_in_logs(gw, "configuration reloaded");
    gw.rewrite_config(config("closed"));
    gw.signal(SIGHUP);
    REQUIRE(wait_for_log(gw, "configuration reloaded", reloads + 1, std::chrono::seconds(5)));

    auto no_ticket = [](const reply& r) {
        for (const auto& [n, v] : r.headers)
            if (v.rfind("fg_ticket_", 0) == 0) return false;
        return true;
    };
    const reply page = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "en"}, {"X-Person", "late"}});
    INFO("browser: " << page.status << " " << page.body);
    CHECK(page.status == 503);
    CHECK_FALSE(page.from_site());
    CHECK(no_ticket(page));
    CHECK_THAT(page.body, Catch::Contains("Closed") && Catch::Contains("<html lang=\"en\""));
    const reply page_ko = get(gw.port(), "/reserve", {{"Accept", "text/html"}, {"Accept-Language", "ko-KR"}, {"X-Person", "late"}});
    CHECK(page_ko.status == 503);
    CHECK(no_ticket(page_ko));
    CHECK_THAT(page_ko.body, Catch::Contains("마감되었습니다"));

    const reply api = get(gw.port(), "/reserve", {accept_json, {"X-Person", "late"}});
    INFO("API: " << api.status << " " << api.body);
    CHECK(api.status == 503);
    CHECK(no_ticket(api));
    CHECK(json_string(api.json(), "state") == "closed");
    CHECK(json_string(api.json(), "ticket").empty());

    const reply joined = fetch(gw.port(), http::verb::post, "/__fg/v1/rooms/sale/join", {{"X-Person", "late"}});
    INFO("join: " << joined.status << " " << joined.body);
    CHECK(joined.status == 503);
    CHECK(no_ticket(joined));
    CHECK(json_string(joined.json(), "state") == "closed");
    CHECK(json_string(joined.json(), "ticket").empty());
    CHECK(json_string(joined.json(), "pass").empty());

    // The pass given out before the room closed still works.
    const reply again = get(gw.port(), "/reserve/pay", {cookie_header("fg_pass_sale", pass), {"X-Person", "early"}});
    CHECK(again.status == 200);
    CHECK(again.from_site());
    for (const auto& r : site.requests()) CHECK(r.header("X-Person").value_or("") == "early");
}

}  // namespace floodgate::itest::rooms
