#include "room_gate.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <cstring>
#include <optional>

#include "access_log.hpp"
#include "gateway/text.hpp"
#include "tokenstore/token.hpp"

namespace floodgate {

namespace ts = tokenstore;
using namespace std::string_view_literals;

namespace {

constexpr std::string_view pass_header = "Floodgate-Pass";
constexpr std::string_view ticket_header = "Floodgate-Ticket";

std::string cookie_name(std::string_view kind, const room_binding& room) {
    return text::cat("fg_", kind, "_", room.cfg->name);
}

// The client's network for bound tokens: /24 for IPv4, /48 for IPv6, so a
// phone moving between addresses of one carrier keeps its place.
std::string ip_prefix(std::string_view ip) {
    error_code ec;
    auto addr = net::ip::make_address(std::string(ip), ec);
    if (ec) return std::string(ip);
    if (addr.is_v4()) {
        auto b = addr.to_v4().to_bytes();
        return text::cat(int(b[0]), ".", int(b[1]), ".", int(b[2]), ".0/24");
    }
    auto b = addr.to_v6().to_bytes();
    for (std::size_t i = 6; i < b.size(); ++i) b[i] = 0;
    return text::cat(net::ip::make_address_v6(b).to_string(), "/48");
}

// The value of cookie `name` in one Cookie field's value, or "".
std::string_view cookie_value(std::string_view field, std::string_view name) {
    while (!field.empty()) {
        const auto semi = field.find(';');
        const std::string_view pair = text::trim(field.substr(0, semi));
        field = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
        if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=')
            return pair.substr(name.size() + 1);
    }
    return {};
}

struct request_view {
    const room_binding& room;
    const http::request_header<>& req;
    const client_info& client;
    ts::millis now;
    std::uint32_t now_s;
    std::string prefix;                   // bound tokens only
    ts::client_binding binding;           // bound tokens only
    bool bound = false;

    request_view(const room_binding& r, const http::request_header<>& q, const client_info& c)
        : room(r), req(q), client(c), now(ts::wall_clock_ms()), now_s(static_cast<std::uint32_t>(now / 1000)) {
        bound = r.cfg->bind_ip || r.cfg->bind_user_agent;
        if (bound) {
            if (r.cfg->bind_ip) prefix = ip_prefix(c.ip);
            binding.ip_prefix = prefix;
            if (r.cfg->bind_user_agent) binding.user_agent = q[http::field::user_agent];
        }
        // The token fields and the Cookie fields in one pass: each lookup by
        // name would be a search of the fields of its own. The first of each
        // counts, as with req[name].
        for (const auto& f : q) {
            if (f.name() == http::field::cookie) {
                if (cookie_fields < cookies.size()) cookies[cookie_fields] = f.value();
                ++cookie_fields;
            } else if (f.name() == http::field::unknown) {
                const std::string_view n = f.name_string();
                if (!pass_field && text::iequals(n, pass_header)) pass_field = f.value();
                else if (!ticket_field && text::iequals(n, ticket_header)) ticket_field = f.value();
            }
        }
    }
    const ts::client_binding* client_binding() const { return bound ? &binding : nullptr; }

    std::string_view identity() const {
        if (!room.cfg->identity_header.empty()) return req[room.cfg->identity_header];
        if (!room.cfg->identity_cookie.empty()) return find_cookie(req, room.cfg->identity_cookie);
        return {};
    }

    // The person's pass or ticket: its header, else its cookie.
    std::string_view token(ts::token_type type) const {
        const bool pass = type == ts::token_type::pass;
        const std::optional<std::string_view>& field = pass ? pass_field : ticket_field;
        if (field && !field->empty()) return *field;
        const std::string& name = pass ? room.pass_cookie : room.ticket_cookie;
        if (cookie_fields > cookies.size()) return find_cookie(req, name);
        for (std::size_t i = 0; i < cookie_fields; ++i)
            if (auto v = cookie_value(cookies[i], name); !v.empty()) return v;
        return {};
    }

    std::optional<ts::token> verify(ts::token_type type) const {
        auto text = token(type);
        if (text.empty()) return std::nullopt;
        auto r = ts::verify_token(*keys, text,
                                  {.room = room.rt->id(), .type = type, .now_s = now_s,
                                   .client = client_binding()},
                                  client.tokens);
        if (r.status != ts::verify_status::ok) {
            if (metrics) metrics->token_rejected(r.status);
            return std::nullopt;
        }
        return r.claims;
    }

    // A pass is being minted from this ticket: its time in line.
    void count_wait(const ts::token& ticket) const {
        if (metrics) metrics->waited(room.cfg->name, static_cast<double>(now) / 1000.0 - ticket.iat);
    }

    bool secure() const { return room.cfg->secure_cookies.value_or(client.tls); }

    const ts::key_ring* keys = nullptr;
    thread_metrics* metrics = nullptr;

private:
    std::optional<std::string_view> pass_field, ticket_field;
    std::array<std::string_view, 4> cookies{};
    std::size_t cookie_fields = 0;  // more than cookies.size(): find_cookie() searches them all
};

std::string set_cookie(std::string_view name, std::string_view value, std::int64_t max_age_s, bool secure) {
    return text::cat(name, "=", value, "; Path=/; Max-Age=", max_age_s, "; HttpOnly; SameSite=Lax",
                     secure ? "; Secure" : "");
}

std::string mint(const request_view& v, ts::token t) {
    return ts::sign_token(*v.keys, t, v.client_binding());
}

std::string mint_pass(const request_view& v, std::uint64_t seq, ts::lease l) {
    ts::token t;
    t.type = ts::token_type::pass;
    t.room = v.room.rt->id();
    t.seq = seq;
    t.iat = v.now_s;
    t.exp = v.now_s + static_cast<std::uint32_t>(v.room.cfg->session_ttl.count() / 1000);
    t.slot = l.slot;
    t.slot_gen = l.gen;
    return mint(v, t);
}

std::string mint_ticket(const request_view& v, std::uint64_t seq) {
    ts::token t;
    t.type = ts::token_type::ticket;
    t.room = v.room.rt->id();
    t.seq = seq;
    t.iat = v.now_s;
    t.exp = v.now_s + static_cast<std::uint32_t>(v.room.cfg->ticket_ttl.count() / 1000);
    return mint(v, t);
}

// --- what the waiting person is told --------------------------------------

struct status_view {
    std::string_view state;  // waiting, called, admitted, paused, closed, already_admitted, full
    std::uint64_t position = 0;
    std::uint64_t ahead = 0;
    double eta_s = -1;  // -1: unknown
    std::uint64_t poll_after_ms = 1000;
    std::string_view light;
};


}  // namespace

std::string_view room_light(const room_binding& room) {
    const auto mode = room.cfg->mode;
    if (mode == room_mode::paused || mode == room_mode::closed) return "red";
    if (room.rt->store_failing()) return "red";
    const std::uint64_t waiting = room.rt->wr().waiting();
    if (waiting == 0) return "green";
    const double rate = room.rt->call_rate();
    if (rate <= 0) return "red";
    const double wait_s = static_cast<double>(waiting) / rate;
    return wait_s * 1000.0 < static_cast<double>(room.cfg->yellow_wait.count()) ? "yellow" : "red";
}

namespace {

// Polls come about ten times over the remaining wait: every second near the
// front, every 20 s far back, which keeps poll load flat in a long queue.
std::uint64_t poll_interval_ms(double eta_s, std::uint64_t ahead) {
    double ms = eta_s >= 0 ? eta_s * 100.0 : 1000.0 + static_cast<double>(ahead) * 10.0;
    return static_cast<std::uint64_t>(std::clamp(ms, 1000.0, 20000.0));
}

status_view waiting_status(const room_binding& room, std::uint64_t ahead) {
    status_view s;
    // The shared store unreachable in hold mode: nobody is called until it is back.
    const bool paused = room.cfg->mode == room_mode::paused ||
                        room.rt->store_failing() == store_failure_mode::hold;
    s.state = paused ? "paused" : "waiting";
    s.ahead = ahead;
    s.position = ahead + 1;
    const double rate = room.rt->call_rate();
    // Nobody is called while the shared store is away: no ETA then, whatever the mode.
    if (rate > 0 && !paused && !room.rt->store_failing())
        s.eta_s = std::ceil(static_cast<double>(s.position) / rate);
    s.poll_after_ms = poll_interval_ms(s.eta_s, ahead);
    s.light = room_light(room);
    return s;
}

// Text of bounded length in a buffer on the stack: literal pieces, short words
// from this file (a state, a light) and numbers, without a size check each.
class short_text {
public:
    template <std::size_t N>
    short_text& operator<<(const char (&s)[N]) {
        return put(s, N - 1);
    }
    short_text& operator<<(std::string_view word) { return put(word.data(), word.size()); }
    template <std::integral T>
    short_text& operator<<(T v) {
        p_ = std::to_chars(p_, buf_ + sizeof buf_, v).ptr;
        return *this;
    }
    std::string_view view() const { return {buf_, static_cast<std::size_t>(p_ - buf_)}; }

private:
    short_text& put(const char* s, std::size_t n) {
        assert(n <= static_cast<std::size_t>(buf_ + sizeof buf_ - p_));
        std::memcpy(p_, s, n);
        p_ += n;
        return *this;
    }
    char buf_[256];  // a status's words and four numbers take under 200
    char* p_ = buf_;
};

std::string status_json(const room_binding& room, const status_view& s, std::string_view ticket = {},
                        std::string_view pass = {}) {
    short_text t;
    t << s.state << "\"";
    if (s.state == "waiting" || s.state == "paused" || s.state == "called") {
        t << ",\"position\":" << s.position << ",\"ahead\":" << s.ahead << ",\"eta_s\":";
        if (s.eta_s >= 0 && s.eta_s < 1e15) t << static_cast<long long>(std::nearbyint(s.eta_s));  // as %.0f
        else t << "null";
    }
    t << ",\"poll_after_ms\":" << s.poll_after_ms << ",\"light\":\"" << s.light << "\"";

    std::string out;
    out.reserve(room.status_head.size() + t.view().size() + ticket.size() + pass.size() + 32 +
                (room.cfg->banner.empty() ? 0 : 16 + 6 * room.cfg->banner.size()));
    out.append(room.status_head).append(t.view());
    if (!room.cfg->banner.empty()) {
        out.append(",\"banner\":"sv);
        append_json_string(out, room.cfg->banner, /*escape_non_ascii=*/false);
    }
    if (!ticket.empty()) out.append(",\"ticket\":\""sv).append(ticket).append("\""sv);
    if (!pass.empty()) out.append(",\"pass\":\""sv).append(pass).append("\""sv);
    out.append("}\n"sv);
    return out;
}

// --- the waiting page -------------------------------------------------------

struct texts {
    const char* heading;
    const char* heading_paused;
    const char* heading_admitted;
    const char* position;
    const char* ahead;
    const char* eta;
    const char* eta_unknown;
    const char* eta_under_minute;
    const char* eta_range;
    const char* eta_minutes;
    const char* keep;
    const char* progress;
    const char* light_green;
    const char* light_yellow;
    const char* light_red;
};

constexpr texts en{
    "You are in line",
    "The line is paused for a moment",
    "It's your turn - taking you there",
    "Your place",
    "People ahead of you",
    "Estimated wait:",
    "being measured",
    "less than a minute",
    "{lo} to {hi} minutes",
    "about {n} minutes",
    "Your place is kept. There is no need to refresh this page; it updates by itself and takes "
    "you to the site when it is your turn.",
    "Progress to the front of the line",
    "No wait",
    "Short wait",
    "Busy",
};

constexpr texts ko{
    "대기 중입니다",
    "잠시 입장이 멈췄습니다",
    "입장 차례입니다 - 이동합니다",
    "내 순서",
    "내 앞의 대기 인원",
    "예상 대기 시간:",
    "측정 중",
    "1분 미만",
    "{lo}~{hi}분",
    "약 {n}분",
    "순서가 유지되고 있습니다. 새로고침할 필요가 없습니다. 이 페이지는 자동으로 갱신되며 "
    "차례가 되면 사이트로 이동합니다.",
    "대기열 진행률",
    "원활",
    "지연",
    "혼잡",
};

// Korean or English from Accept-Language (highest q wins), else the room's default.
std::string_view choose_language(std::string_view accept, std::string_view fallback) {
    double best_q = -1;
    std::string_view best;
    std::size_t pos = 0;
    while (pos <= accept.size()) {
        std::size_t comma = accept.find(',', pos);
        if (comma == std::string_view::npos) comma = accept.size();
        std::string_view item = text::trim(accept.substr(pos, comma - pos));
        pos = comma + 1;
        if (item.empty()) continue;
        std::string_view tag = text::trim(item.substr(0, item.find(';')));
        double q = 1;
        if (auto qp = item.find("q="); qp != std::string_view::npos) q = std::atof(std::string(item.substr(qp + 2)).c_str());
        std::string_view lang;
        if (text::iequals(tag.substr(0, 2), "ko")) lang = "ko";
        else if (text::iequals(tag.substr(0, 2), "en")) lang = "en";
        if (!lang.empty() && q > best_q) {
            best_q = q;
            best = lang;
        }
    }
    return best.empty() ? fallback : best;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out.append("&amp;"); break;
            case '<': out.append("&lt;"); break;
            case '>': out.append("&gt;"); break;
            case '"': out.append("&quot;"); break;
            case '\'': out.append("&#39;"); break;
            default: out.push_back(c);
        }
    }
    return out;
}

// JSON for a <script> element: "<" escaped so the text can never close the element.
std::string script_safe(std::string json) {
    std::string out;
    out.reserve(json.size());
    for (char c : json) {
        if (c == '<') out.append("\\u003c");
        else out.push_back(c);
    }
    return out;
}

std::string format_count(std::uint64_t n) { return std::to_string(n); }

std::string eta_text(const texts& t, double eta_s) {
    if (eta_s < 0) return t.eta_unknown;
    if (eta_s < 60) return t.eta_under_minute;
    const long lo = std::max(1L, static_cast<long>(eta_s / 60));
    const long hi = static_cast<long>(std::ceil(eta_s * 1.25 / 60));
    std::string s = hi > lo ? t.eta_range : t.eta_minutes;
    auto put = [&](std::string_view key, long v) {
        if (auto p = s.find(key); p != std::string::npos) s.replace(p, key.size(), std::to_string(v));
    };
    put("{lo}", lo);
    put("{hi}", hi);
    put("{n}", lo);
    return s;
}

// Replaces every {{name}} in the template; unknown names become empty.
std::string render(std::string_view tpl, const std::vector<std::pair<std::string_view, std::string>>& vars) {
    std::string out;
    out.reserve(tpl.size() + 512);
    std::size_t pos = 0;
    while (true) {
        auto open = tpl.find("{{", pos);
        if (open == std::string_view::npos) break;
        auto close = tpl.find("}}", open + 2);
        if (close == std::string_view::npos) break;
        out.append(tpl.substr(pos, open - pos));
        std::string_view name = tpl.substr(open + 2, close - open - 2);
        for (const auto& [k, v] : vars)
            if (k == name) {
                out.append(v);
                break;
            }
        pos = close + 2;
    }
    out.append(tpl.substr(pos));
    return out;
}

std::string waiting_page(const request_view& v, const status_view& s, std::string_view return_to) {
    const room_binding& room = v.room;
    const std::string_view lang = choose_language(v.req[http::field::accept_language], room.cfg->default_language);
    const texts& t = lang == "ko" ? ko : en;
    const std::string title = room.cfg->title.empty() ? room.cfg->name : room.cfg->title;
    const std::string status_url = text::cat("/__fg/v1/rooms/", room.cfg->name, "/status");

    std::string data = "{\"room\":";
    append_json_string(data, room.cfg->name);
    data.append(",\"lang\":\"").append(lang).append("\",\"status_url\":");
    append_json_string(data, status_url);
    data.append(",\"return_to\":");
    append_json_string(data, return_to);
    data.append(",\"position\":").append(std::to_string(s.position));
    data.append(",\"poll_after_ms\":").append(std::to_string(s.poll_after_ms));
    data.append(",\"texts\":{");
    const std::pair<const char*, const char*> entries[] = {
        {"heading", t.heading}, {"heading_paused", t.heading_paused},
        {"heading_admitted", t.heading_admitted}, {"eta_unknown", t.eta_unknown},
        {"eta_under_minute", t.eta_under_minute}, {"eta_range", t.eta_range},
        {"eta_minutes", t.eta_minutes}, {"light_green", t.light_green},
        {"light_yellow", t.light_yellow}, {"light_red", t.light_red}};
    bool first = true;
    for (const auto& [k, val] : entries) {
        if (!first) data.push_back(',');
        first = false;
        append_json_string(data, k);
        data.push_back(':');
        append_json_string(data, val, /*escape_non_ascii=*/false);
    }
    data.append("}}");

    const char* light_label = s.light == "green" ? t.light_green : s.light == "yellow" ? t.light_yellow : t.light_red;
    return render(room.page_template,
                  {{"lang", std::string(lang)},
                   {"title", html_escape(title)},
                   {"room", html_escape(room.cfg->name)},
                   {"heading", s.state == "paused" ? t.heading_paused : t.heading},
                   {"position_label", t.position},
                   {"position", format_count(s.position)},
                   {"ahead_label", t.ahead},
                   {"ahead", format_count(s.ahead)},
                   {"eta_label", t.eta},
                   {"eta", eta_text(t, s.eta_s)},
                   {"keep_message", t.keep},
                   {"progress_label", t.progress},
                   {"progress", "0"},
                   {"light", std::string(s.light)},
                   {"light_label", light_label},
                   {"banner", html_escape(room.cfg->banner)},
                   {"banner_hidden", room.cfg->banner.empty() ? "hidden" : ""},
                   {"poll_after_s", std::to_string(std::max<std::uint64_t>(1, s.poll_after_ms / 1000))},
                   {"data", script_safe(data)}});
}

local_response make_response(http::status st, std::string_view type, std::string body) {
    return {st, type, std::move(body)};
}

local_response json_response(http::status st, std::string body) {
    return make_response(st, "application/json", std::move(body));
}

std::string simple_page(std::string_view lang, std::string_view title, std::string_view message) {
    return text::cat("<!doctype html><html lang=\"", lang,
                     "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                     "content=\"width=device-width,initial-scale=1\"><title>",
                     html_escape(title),
                     "</title><style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:4rem "
                     "auto;padding:0 1rem;color:#1a202c}</style></head><body><h1>",
                     html_escape(title), "</h1><p>", html_escape(message), "</p></body></html>\n");
}

bool wants_json(const room_binding& room, const http::request_header<>& req, std::string_view path) {
    for (const auto& p : room.cfg->api_paths)
        if (path.substr(0, p.size()) == p) return true;
    const std::string_view accept = req[http::field::accept];
    const bool json = accept.find("application/json") != std::string_view::npos;
    const bool html = accept.find("text/html") != std::string_view::npos;
    return json && !html;
}

// The answer for a person who has a place in line (or just got one).
local_response waiting_response(const request_view& v, const status_view& s,
                                                   std::string_view return_to, bool api,
                                                   std::string_view ticket) {
    if (api) {
        auto res = json_response(http::status::service_unavailable, status_json(v.room, s, ticket));
        res.set(http::field::retry_after, std::to_string(std::max<std::uint64_t>(1, s.poll_after_ms / 1000)));
        return res;
    }
    return make_response(http::status::ok, "text/html; charset=utf-8", waiting_page(v, s, return_to));
}

local_response closed_response(const request_view& v, bool api) {
    status_view s;
    s.state = "closed";
    s.light = "red";
    s.poll_after_ms = 20000;
    if (api) return json_response(http::status::service_unavailable, status_json(v.room, s));
    const std::string_view lang = choose_language(v.req[http::field::accept_language], v.room.cfg->default_language);
    const bool k = lang == "ko";
    std::string msg = v.room.cfg->banner.empty()
                          ? std::string(k ? "지금은 예약을 받지 않습니다." : "This sale is closed or sold out.")
                          : v.room.cfg->banner;
    return make_response(http::status::service_unavailable, "text/html; charset=utf-8",
                         simple_page(lang, k ? "마감되었습니다" : "Closed", msg));
}

local_response elsewhere_response(const request_view& v, bool api) {
    status_view s;
    s.state = "already_admitted";
    s.light = room_light(v.room);
    if (api) return json_response(http::status::conflict, status_json(v.room, s));
    const std::string_view lang = choose_language(v.req[http::field::accept_language], v.room.cfg->default_language);
    const bool k = lang == "ko";
    return make_response(http::status::conflict, "text/html; charset=utf-8",
                         simple_page(lang, k ? "다른 기기에서 이미 입장했습니다" : "Already admitted on another device",
                                     k ? "한 사람당 하나의 입장만 허용됩니다. 다른 기기에서 사용을 마치면 다시 시도하세요."
                                       : "One admission per person. Finish on the other device, then try again here."));
}

local_response full_response(const request_view& v, bool api) {
    status_view s;
    s.state = "full";
    s.light = "red";
    s.poll_after_ms = 20000;
    auto res = api ? json_response(http::status::service_unavailable, status_json(v.room, s))
                   : make_response(http::status::service_unavailable, "text/html; charset=utf-8",
                                   simple_page("en", "The line is full", "Please try again in a few minutes."));
    res.set(http::field::retry_after, "20");
    return res;
}

// No place in line can be given right now: the shared store is unreachable. In hold mode the
// person hears the line is paused, in fail_closed mode that it is closed; both say when to retry.
local_response unavailable_response(const request_view& v, bool api) {
    const bool hold = v.room.rt->store_failing().value_or(store_failure_mode::hold) == store_failure_mode::hold;
    status_view s;
    s.state = hold ? "paused" : "closed";
    s.light = "red";
    s.poll_after_ms = 5000;
    local_response res;
    if (api) {
        res = json_response(http::status::service_unavailable, status_json(v.room, s));
    } else {
        const std::string_view lang = choose_language(v.req[http::field::accept_language], v.room.cfg->default_language);
        const bool k = lang == "ko";
        const char* title = hold ? (k ? "잠시 대기열 발급이 멈췄습니다" : "The line is paused for a moment")
                                 : (k ? "지금은 새로 줄을 설 수 없습니다" : "The line is closed to newcomers for a moment");
        res = make_response(http::status::service_unavailable, "text/html; charset=utf-8",
                            simple_page(lang, title,
                                        k ? "잠시 후 다시 시도하세요. 이 페이지는 5초 뒤에 다시 시도합니다."
                                          : "Please try again in a few seconds; this page retries by itself."));
        res.set("Refresh", "5");
    }
    res.set(http::field::retry_after, "5");
    return res;
}

// Joins the line (or is admitted at once). Fills in the result for a new person.
void join(const request_view& v, std::string_view return_to, bool api, gate_result& out) {
    const room_binding& room = v.room;
    const auto mode = room.cfg->mode;
    const bool direct = mode == room_mode::automatic;
    auto j = room.rt->join(v.now, v.identity(), direct);
    switch (j.outcome) {
        case ts::waiting_room::join_outcome::admitted: {
            room.rt->direct_admissions.fetch_add(1, std::memory_order_relaxed);
            const std::string pass = mint_pass(v, j.seq, *j.pass);
            out.proceed = true;
            out.outcome = request_outcome::admitted;
            out.lease = j.pass;
            out.set_cookies.push_back(set_cookie(cookie_name("pass", room), pass,
                                                 room.cfg->session_ttl.count() / 1000, v.secure()));
            return;
        }
        case ts::waiting_room::join_outcome::queued: {
            room.rt->tickets_issued.fetch_add(1, std::memory_order_relaxed);
            if (room.rt->shared() && !v.identity().empty()) {
                out.joined_seq = j.seq;
                out.identity = std::string(v.identity());
            }
            const std::string ticket = mint_ticket(v, j.seq);
            auto res = waiting_response(v, waiting_status(room, j.pos.ahead), return_to, api, api ? ticket : "");
            res.insert(http::field::set_cookie,
                       set_cookie(cookie_name("ticket", room), ticket, room.cfg->ticket_ttl.count() / 1000, v.secure()));
            out.response = std::move(res);
            out.outcome = request_outcome::queued;
            return;
        }
        case ts::waiting_room::join_outcome::already_admitted:
            out.response = elsewhere_response(v, api);
            out.outcome = request_outcome::rejected;
            return;
        case ts::waiting_room::join_outcome::full:
            out.response = full_response(v, api);
            out.outcome = request_outcome::rejected;
            return;
        case ts::waiting_room::join_outcome::unavailable:
            out.response = unavailable_response(v, api);
            out.outcome = request_outcome::rejected;
            return;
    }
}

}  // namespace

void local_response::set(std::string_view name, std::string value) {
    std::erase_if(fields, [name](const auto& f) { return text::iequals(f.first, name); });
    fields.emplace_back(name, std::move(value));
}

std::size_t local_response::count(http::field name) const {
    const std::string_view n = http::to_string(name);
    return static_cast<std::size_t>(
        std::count_if(fields.begin(), fields.end(), [n](const auto& f) { return text::iequals(f.first, n); }));
}

std::string_view find_cookie(const http::fields& f, std::string_view name) {
    for (auto it = f.find(http::field::cookie); it != f.end() && it->name() == http::field::cookie; ++it)
        if (auto v = cookie_value(it->value(), name); !v.empty()) return v;
    return {};
}

gate_result gate_request(const generation& gen, const room_binding& room, const http::request_header<>& req,
                         const client_info& client, std::string_view return_to, thread_metrics* metrics) {
    request_view v(room, req, client);
    v.keys = gen.keys.get();
    v.metrics = metrics;
    gate_result out;

    // A valid pass whose slot is still held: straight through.
    if (auto pass = v.verify(ts::token_type::pass)) {
        const ts::lease l{pass->slot, pass->slot_gen};
        if (room.rt->touch(l, v.now)) {
            out.proceed = true;
            out.lease = l;
            return out;
        }
    }
    const bool api = wants_json(room, req, return_to.substr(0, return_to.find('?')));
    if (room.cfg->mode == room_mode::closed) {
        out.response = closed_response(v, api);
        out.outcome = request_outcome::rejected;
        return out;
    }
    // The shared store unreachable and store_failure: fail_open: the room does not gate.
    if (room.rt->store_failing() == store_failure_mode::fail_open) {
        out.proceed = true;
        return out;
    }
    // A place in line already: poll it; a call is claimed here too.
    if (auto ticket = v.verify(ts::token_type::ticket)) {
        auto p = room.rt->poll(ticket->seq, v.now, v.identity());
        if (p.pass) {
            const std::string pass = mint_pass(v, ticket->seq, *p.pass);
            v.count_wait(*ticket);
            out.proceed = true;
            out.outcome = request_outcome::admitted;
            out.lease = p.pass;
            out.set_cookies.push_back(
                set_cookie(cookie_name("pass", room), pass, room.cfg->session_ttl.count() / 1000, v.secure()));
            out.set_cookies.push_back(set_cookie(cookie_name("ticket", room), "", 0, v.secure()));
            return out;
        }
        if (p.st == ts::ring::state::waiting || p.st == ts::ring::state::called) {
            out.response = waiting_response(v, waiting_status(room, p.ahead), return_to, api, "");
            out.outcome = request_outcome::queued;
            return out;
        }
        // Abandoned, missed or forgotten: a new place at the back of the line.
    }
    join(v, return_to, api, out);
    return out;
}

namespace {

std::optional<gate_result> rejoin(const generation& gen, const room_binding& room, const http::request_header<>& req,
                                  const client_info& client, std::string_view return_to, std::uint64_t joined,
                                  std::string_view holder, thread_metrics* metrics, bool api) {
    request_view v(room, req, client);
    v.keys = gen.keys.get();
    v.metrics = metrics;
    gate_result out;
    if (holder.starts_with("p ")) {  // admitted on another device
        room.rt->wr().leave(joined);
        out.response = elsewhere_response(v, api);
        out.outcome = request_outcome::rejected;
        return out;
    }
    std::uint64_t seq = 0;
    if (!holder.starts_with("q ") || !text::parse_u64(holder.substr(2), seq) || seq == joined) return std::nullopt;
    // Where that place is, without claiming a call: the person's next poll does that.
    auto& q = room.rt->wr().queue();
    q.see(seq, v.now);
    const ts::ring::position p = q.locate(seq);
    if (p.st != ts::ring::state::waiting && p.st != ts::ring::state::called) return std::nullopt;
    room.rt->shared()->saw(seq, v.now);
    room.rt->wr().leave(joined);
    const std::string ticket = mint_ticket(v, seq);
    auto res = waiting_response(v, waiting_status(room, p.ahead), return_to, api, api ? ticket : "");
    res.insert(http::field::set_cookie,
               set_cookie(cookie_name("ticket", room), ticket, room.cfg->ticket_ttl.count() / 1000, v.secure()));
    out.response = std::move(res);
    out.outcome = request_outcome::queued;
    return out;
}

}  // namespace

std::optional<gate_result> rejoin_duplicate(const generation& gen, const room_binding& room,
                                            const http::request_header<>& req, const client_info& client,
                                            std::string_view return_to, std::uint64_t joined,
                                            std::string_view holder, thread_metrics* metrics) {
    return rejoin(gen, room, req, client, return_to, joined, holder, metrics,
                  wants_json(room, req, return_to.substr(0, return_to.find('?'))));
}

std::optional<local_response> public_join_duplicate(const generation& gen,
                                                                       const public_join_claim& claim,
                                                                       const http::request_header<>& req,
                                                                       const client_info& client,
                                                                       std::string_view holder,
                                                                       thread_metrics* metrics) {
    auto g = rejoin(gen, *claim.room, req, client, "/", claim.seq, holder, metrics, /*api=*/true);
    if (!g) return std::nullopt;
    auto res = std::move(*g->response);
    if (res.result() == http::status::service_unavailable && res.count(http::field::set_cookie))
        res.result(http::status::ok);  // as join: an explicit join that has a place succeeded
    return res;
}

std::string release_by_upstream(const room_binding& room, ts::lease lease, bool tls) {
    room.rt->release(lease, ts::release_reason::upstream);
    return set_cookie(cookie_name("pass", room), "", 0, room.cfg->secure_cookies.value_or(tls));
}

local_response serve_public(const generation& gen, const http::request_header<>& req,
                                               const client_info& client, std::string_view path,
                                               thread_metrics* metrics, public_join_claim* claim) {
    auto error = [](http::status st, std::string_view msg) {
        std::string body = "{\"error\":";
        append_json_string(body, msg);
        body.append("}\n");
        return json_response(st, std::move(body));
    };
    constexpr std::string_view rooms_prefix = "/__fg/v1/rooms/";
    if (path == "/__fg/v1/lights") {
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            return error(http::status::method_not_allowed, "use GET");
        std::string body = "{\"rooms\":[";
        bool first = true;
        for (const auto& r : gen.rooms) {
            if (!first) body.push_back(',');
            first = false;
            body.append("{\"room\":");
            append_json_string(body, r.cfg->name);
            body.append(",\"light\":\"").append(room_light(r)).append("\"}");
        }
        body.append("]}\n");
        return json_response(http::status::ok, std::move(body));
    }
    if (path.substr(0, rooms_prefix.size()) != rooms_prefix) return error(http::status::not_found, "not found");
    std::string_view rest = path.substr(rooms_prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return error(http::status::not_found, "not found");
    const std::string_view name = rest.substr(0, slash);
    const std::string_view action = rest.substr(slash + 1);
    const room_binding* room = gen.find_room(name);
    if (!room) return error(http::status::not_found, "no such room");

    request_view v(*room, req, client);
    v.keys = gen.keys.get();
    v.metrics = metrics;
    const bool post = req.method() == http::verb::post;
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;

    if (action == "status") {
        if (!get) return error(http::status::method_not_allowed, "use GET");
        if (auto pass = v.verify(ts::token_type::pass);
            pass && room->rt->touch({pass->slot, pass->slot_gen}, v.now)) {
            status_view s{.state = "admitted", .poll_after_ms = 20000, .light = room_light(*room)};
            return json_response(http::status::ok, status_json(*room, s));
        }
        auto ticket = v.verify(ts::token_type::ticket);
        if (!ticket) {
            if (room->cfg->mode == room_mode::closed) return closed_response(v, true);
            return error(http::status::not_found, "no ticket for this room: join first");
        }
        auto p = room->rt->poll(ticket->seq, v.now, v.identity());
        if (p.pass) {
            const std::string pass = mint_pass(v, ticket->seq, *p.pass);
            v.count_wait(*ticket);
            status_view s{.state = "admitted", .poll_after_ms = 20000, .light = room_light(*room)};
            auto res = json_response(http::status::ok, status_json(*room, s, "", pass));
            res.insert(http::field::set_cookie, set_cookie(cookie_name("pass", *room), pass,
                                                           room->cfg->session_ttl.count() / 1000, v.secure()));
            res.insert(http::field::set_cookie, set_cookie(cookie_name("ticket", *room), "", 0, v.secure()));
            return res;
        }
        if (p.st == ts::ring::state::waiting || p.st == ts::ring::state::called)
            return json_response(http::status::ok, status_json(*room, waiting_status(*room, p.ahead)));
        status_view s{.state = "expired", .poll_after_ms = 1000, .light = room_light(*room)};
        return json_response(http::status::ok, status_json(*room, s));
    }
    if (action == "join") {
        if (!post) return error(http::status::method_not_allowed, "use POST");
        if (room->cfg->mode == room_mode::closed) return closed_response(v, true);
        if (auto ticket = v.verify(ts::token_type::ticket)) {
            auto p = room->rt->poll(ticket->seq, v.now, v.identity());
            if (!p.pass && (p.st == ts::ring::state::waiting || p.st == ts::ring::state::called))
                return json_response(http::status::ok, status_json(*room, waiting_status(*room, p.ahead),
                                                                   v.token(ts::token_type::ticket)));
            if (p.pass) {
                const std::string pass = mint_pass(v, ticket->seq, *p.pass);
                v.count_wait(*ticket);
                status_view s{.state = "admitted", .poll_after_ms = 20000, .light = room_light(*room)};
                auto res = json_response(http::status::ok, status_json(*room, s, "", pass));
                res.insert(http::field::set_cookie, set_cookie(cookie_name("pass", *room), pass,
                                                               room->cfg->session_ttl.count() / 1000, v.secure()));
                return res;
            }
        }
        gate_result g;
        join(v, "/", /*api=*/true, g);
        if (g.joined_seq) {
            // A shared room: the caller claims the identity across nodes (or the place stands).
            if (claim) *claim = {.room = room, .seq = *g.joined_seq, .identity = std::move(g.identity)};
            else room->rt->shared()->saw(*g.joined_seq, v.now);
        }
        if (g.proceed) {
            // Admitted at once: the pass is in the cookie and in the body.
            std::string pass(g.set_cookies.front());
            const auto eq = pass.find('=');
            const auto semi = pass.find(';');
            status_view s{.state = "admitted", .poll_after_ms = 20000, .light = room_light(*room)};
            auto res = json_response(http::status::ok,
                                     status_json(*room, s, "", std::string_view(pass).substr(eq + 1, semi - eq - 1)));
            for (auto& c : g.set_cookies) res.insert(http::field::set_cookie, c);
            return res;
        }
        auto res = std::move(*g.response);
        if (res.result() == http::status::service_unavailable && res.count(http::field::set_cookie))
            res.result(http::status::ok);  // an explicit join that got a place succeeded
        return res;
    }
    if (action == "release") {
        if (!post) return error(http::status::method_not_allowed, "use POST");
        bool released = false;
        if (auto pass = v.verify(ts::token_type::pass))
            released = room->rt->release({pass->slot, pass->slot_gen}, ts::release_reason::explicit_);
        auto res = json_response(http::status::ok, released ? "{\"released\":true}\n" : "{\"released\":false}\n");
        res.insert(http::field::set_cookie, set_cookie(cookie_name("pass", *room), "", 0, v.secure()));
        return res;
    }
    return error(http::status::not_found, "not found");
}

}  // namespace floodgate
