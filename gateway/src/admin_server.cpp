#include "admin_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <ctime>

#include "dashboard/assets.hpp"
#include "gateway/text.hpp"
#include "room_gate.hpp"
#include "stream.hpp"
#include "tokenstore/clock.hpp"

namespace floodgate {

namespace json = boost::json;
using response = http::response<http::string_body>;
using request = http::request<http::string_body>;

struct admin_server::subscriber {
    explicit subscriber(net::any_io_executor ex) : wake(std::move(ex)) {}
    std::deque<std::string> queue;
    net::steady_timer wake;
    bool closed = false;
};

struct admin_server::request_context {
    std::shared_ptr<const admin_tokens> tokens;  // keeps `who` alive across a reload
    const admin_identity* who = nullptr;
};

namespace {

constexpr std::size_t history_len = 600;     // ten minutes, one sample a second
constexpr std::size_t stream_backlog = 30;   // events queued for a slow client before it is dropped

std::string iso_time(std::int64_t unix_ms) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];  // room for any int the format could be given
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
    return buf;
}

response make(http::status status, std::string body, std::string_view type = "application/json") {
    response res{status, 11};
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

response json_response(const json::value& v, http::status status = http::status::ok) {
    return make(status, json::serialize(v) + "\n");
}

response error(http::status status, std::string_view code, std::string_view message,
               std::string_view field = {}) {
    json::object o;
    o["error"] = code;
    o["message"] = message;
    if (!field.empty()) o["field"] = field;
    return json_response(o, status);
}

std::string message_of(const absl::Status& st) { return std::string(st.message()); }

double round2(double v) { return std::round(v * 100.0) / 100.0; }

// Whole numbers as JSON integers (5, not 5E0): what jq users and dashboards expect.
json::value num(double v) {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) return static_cast<std::int64_t>(v);
    return v;
}

json::object settings_json(const room_config& c) {
    json::object s;
    s["rate"] = num(c.rate);
    s["burst"] = c.burst;
    s["max_active"] = c.max_active;
    s["idle_timeout_s"] = num(static_cast<double>(c.idle_timeout.count()) / 1000.0);
    s["session_ttl_s"] = num(static_cast<double>(c.session_ttl.count()) / 1000.0);
    s["banner"] = c.banner;
    return s;
}

json::array string_array(const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
}

// Splits "/admin/v1/rooms/x/pause" after the prefix into its segments.
std::vector<std::string_view> segments(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const std::size_t slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash);
    }
    return out;
}

std::string_view query_param(std::string_view target, std::string_view name) {
    const std::size_t q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view kv = rest.substr(0, amp);
        if (kv.substr(0, kv.find('=')) == name && kv.find('=') != std::string_view::npos)
            return kv.substr(kv.find('=') + 1);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

// A PATCH field: a JSON number in [lo, hi] (whole when integral), or null to drop the override.
struct patch_error {
    std::string field, message;
};

std::optional<patch_error> read_number(const json::value& v, std::string_view field, double lo, double hi,
                                       bool integral, double& out) {
    if (!v.is_number())
        return patch_error{std::string(field), text::cat("expected a number from ", lo, " to ", hi, " or null")};
    const double d = v.to_number<double>();
    if (!std::isfinite(d) || d < lo || d > hi)
        return patch_error{std::string(field), text::cat("expected a number from ", lo, " to ", hi, ", got ",
                                                         json::serialize(v))};
    if (integral && d != std::floor(d))
        return patch_error{std::string(field), text::cat("expected a whole number, got ", json::serialize(v))};
    out = d;
    return std::nullopt;
}

// Applies a PATCH body to o. Unknown fields and wrong values name the field.
std::optional<patch_error> apply_patch(const json::object& body, room_overrides& o) {
    if (body.empty())
        return patch_error{"", "nothing to change: send one or more of rate, burst, max_active, "
                               "idle_timeout_s, session_ttl_s, mode, banner"};
    for (const auto& [key, v] : body) {
        const std::string_view k = key;
        const bool reset = v.is_null();
        double d = 0;
        if (k == "rate") {
            if (reset) o.rate.reset();
            else if (auto e = read_number(v, k, 0, 10'000'000, false, d)) return e;
            else o.rate = d;
        } else if (k == "burst") {
            if (reset) o.burst.reset();
            else if (auto e = read_number(v, k, 1, 10'000'000, true, d)) return e;
            else o.burst = static_cast<std::uint32_t>(d);
        } else if (k == "max_active") {
            if (reset) o.max_active.reset();
            else if (auto e = read_number(v, k, 0, 1'000'000'000, true, d)) return e;
            else o.max_active = static_cast<std::uint64_t>(d);
        } else if (k == "idle_timeout_s" || k == "session_ttl_s") {
            auto& slot = k == "idle_timeout_s" ? o.idle_timeout : o.session_ttl;
            if (reset) slot.reset();
            else if (auto e = read_number(v, k, 1, 30 * 86400, false, d)) return e;
            else slot = duration(static_cast<std::int64_t>(d * 1000.0));
        } else if (k == "mode") {
            if (reset) {
                o.mode.reset();
            } else {
                std::optional<room_mode> m;
                if (v.is_string()) m = parse_room_mode(std::string_view(v.as_string()));
                if (!m) return patch_error{"mode", "expected \"auto\", \"queue_all\", \"paused\" or \"closed\""};
                o.mode = *m;
            }
        } else if (k == "banner") {
            if (reset) {
                o.banner.reset();
            } else {
                if (!v.is_string()) return patch_error{"banner", "expected a string (empty: no banner) or null"};
                if (v.as_string().size() > 500)
                    return patch_error{"banner", text::cat("at most 500 bytes, got ", v.as_string().size())};
                o.banner = std::string(v.as_string());
            }
        } else {
            return patch_error{std::string(k), "unknown field; the fields are rate, burst, max_active, "
                                               "idle_timeout_s, session_ttl_s, mode, banner"};
        }
    }
    return std::nullopt;
}

bool is_change(http::verb m) { return m != http::verb::get && m != http::verb::head; }

}  // namespace

admin_server::admin_server(net::io_context& ioc, tcp::acceptor acceptor, admin_backend& backend,
                           std::string audit_path)
    : ioc_(ioc), acceptor_(std::move(acceptor)), backend_(backend), audit_path_(std::move(audit_path)) {}

absl::Status admin_server::start() {
    if (auto st = audit_.open(audit_path_); !st.ok()) return st;
    sample_rooms();  // primes the rates
    net::co_spawn(ioc_, accept_loop(), net::detached);
    net::co_spawn(ioc_, sample_loop(), net::detached);
    return absl::OkStatus();
}

void admin_server::stop() {
    stopped_ = true;
    error_code ec;
    acceptor_.close(ec);
    sample_timer_.cancel();
    for (auto& sub : subscribers_) {
        sub->closed = true;
        sub->wake.cancel();
    }
}

net::awaitable<void> admin_server::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
            spdlog::warn("admin accept: {}", ec.message());
            continue;
        }
        net::co_spawn(ioc_, serve(std::move(socket)), net::detached);
    }
}

net::awaitable<void> admin_server::serve(tcp::socket socket) {
    beast::tcp_stream s(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> p;
        p.header_limit(16 * 1024);
        p.body_limit(1024 * 1024);
        s.expires_after(std::chrono::seconds(30));
        auto [ec, n] = co_await http::async_read(s, buffer, p, use_nothrow);
        if (ec == http::error::end_of_stream || ec == net::error::eof) break;
        response res;
        request_context ctx;
        bool keep_alive = false;
        bool head = false;
        if (ec == http::error::body_limit) {
            res = error(http::status::payload_too_large, "payload_too_large", "request bodies are at most 1 MiB");
        } else if (ec) {
            if (ec == beast::error::timeout || ec == net::error::operation_aborted) break;
            res = error(http::status::bad_request, "bad_request", "malformed HTTP request");
        } else {
            const request& req = p.get();
            keep_alive = req.keep_alive();
            const std::string_view path = req.target().substr(0, req.target().find('?'));
            if (path == "/admin/v1/stream" && req.method() == http::verb::get) {
                ctx.tokens = backend_.tokens();
                ctx.who = ctx.tokens->check(req[http::field::authorization]);
                if (ctx.who) {
                    auto sub = std::make_shared<subscriber>(ioc_.get_executor());
                    co_await stream(s, sub);
                    break;
                }
            }
            res = handle(req, ctx);
            if (req.method() == http::verb::head) {
                head = true;
                const auto len = res.body().size();
                res.body().clear();
                res.content_length(len);
            }
        }
        res.keep_alive(keep_alive);
        if (!head) res.prepare_payload();
        s.expires_after(std::chrono::seconds(30));
        auto [wec, wn] = co_await http::async_write(s, res, use_nothrow);
        if (wec || !keep_alive) break;
    }
    error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
}

net::awaitable<void> admin_server::stream(beast::tcp_stream& s, std::shared_ptr<subscriber> sub) {
    http::response<http::empty_body> head{http::status::ok, 11};
    head.set(http::field::content_type, "text/event-stream; charset=utf-8");
    head.set(http::field::cache_control, "no-store");
    head.set("X-Accel-Buffering", "no");
    head.keep_alive(false);
    http::response_serializer<http::empty_body> sr{head};
    s.expires_after(std::chrono::seconds(10));
    if (auto [ec, n] = co_await http::async_write_header(s, sr, use_nothrow); ec) co_return;
    // The current state at once, so a dashboard has numbers before the next tick.
    sub->queue.push_back(text::cat("retry: 2000\nevent: stats\ndata: ", rooms_json(), "\n\n"));
    subscribers_.push_back(sub);
    while (!sub->closed) {
        if (sub->queue.empty()) {
            sub->wake.expires_at(net::steady_timer::time_point::max());
            co_await sub->wake.async_wait(use_nothrow);
            continue;
        }
        std::string out;
        for (auto& e : sub->queue) out += e;
        sub->queue.clear();
        s.expires_after(std::chrono::seconds(10));
        auto [ec, n] = co_await net::async_write(s, net::buffer(out), use_nothrow);
        if (ec) break;
    }
    sub->closed = true;
    subscribers_.remove(sub);
}

void admin_server::broadcast(std::string_view event, const std::string& data) {
    const std::string msg = text::cat("event: ", event, "\ndata: ", data, "\n\n");
    for (auto& sub : subscribers_) {
        if (sub->queue.size() >= stream_backlog) {
            sub->closed = true;  // a client this far behind is gone or stuck
        } else {
            sub->queue.push_back(msg);
        }
        sub->wake.cancel();
    }
}

net::awaitable<void> admin_server::sample_loop() {
    while (!stopped_) {
        sample_timer_.expires_after(std::chrono::seconds(1));
        co_await sample_timer_.async_wait(use_nothrow);  // cancelled by stop(): stopped_ says so
        if (stopped_) co_return;
        sample_rooms();
        if (!subscribers_.empty()) broadcast("stats", rooms_json());
    }
}

void admin_server::sample_rooms() {
    backend_.metrics().sample();
    const auto gen = backend_.current();
    const std::int64_t now = tokenstore::wall_clock_ms();
    std::map<std::string, room_track> next;
    for (const auto& b : gen->rooms) {
        room_track t;
        if (auto it = tracks_.find(b.cfg->name); it != tracks_.end()) t = std::move(it->second);
        const auto st = b.rt->wr().snapshot();
        const std::uint64_t arrivals = b.rt->tickets_issued.load(std::memory_order_relaxed) +
                                       b.rt->direct_admissions.load(std::memory_order_relaxed);
        sample smp;
        smp.t = now;
        smp.waiting = st.waiting;
        smp.active = st.active;
        if (t.primed && now > t.at) {
            const double dt = static_cast<double>(now - t.at) / 1000.0;
            smp.arrivals_per_s = round2(static_cast<double>(arrivals - std::min(arrivals, t.arrivals)) / dt);
            smp.admitted_per_s = round2(static_cast<double>(st.admitted_total - std::min(st.admitted_total, t.admitted)) / dt);
            smp.called_per_s = round2(static_cast<double>(st.cursor - std::min(st.cursor, t.cursor)) / dt);
        }
        const auto up = backend_.metrics().upstream_recent(b.upstream ? b.upstream->cfg.name : std::string());
        smp.p50_ms = round2(up.p50_s * 1000.0);
        smp.p99_ms = round2(up.p99_s * 1000.0);
        smp.error_rate = std::round(up.error_rate * 10000.0) / 10000.0;
        smp.upstream_rps = round2(up.requests_per_s);
        t.primed = true;
        t.at = now;
        t.arrivals = arrivals;
        t.admitted = st.admitted_total;
        t.cursor = st.cursor;
        t.last = smp;
        t.history.push_back(smp);
        while (t.history.size() > history_len) t.history.pop_front();
        next.emplace(b.cfg->name, std::move(t));
    }
    tracks_ = std::move(next);
}

std::string admin_server::room_json(const room_binding& b) const {
    const room_config& c = *b.cfg;
    json::object r;
    r["name"] = c.name;
    r["source"] = backend_.runtime().is_runtime_room(c.name) ? "runtime" : "config";
    r["upstream"] = c.upstream;
    r["mode"] = to_string(c.mode);
    r["settings"] = settings_json(c);
    const room_overrides* ov = backend_.runtime().overrides(c.name);
    r["overrides"] = string_array(ov ? ov->names() : std::vector<std::string>{});
    json::object m;
    m["hosts"] = string_array(c.hosts);
    m["paths"] = string_array(c.paths);
    m["exact"] = string_array(c.exact);
    r["match"] = std::move(m);

    const auto st = b.rt->wr().snapshot();
    json::object s;
    s["waiting"] = st.waiting;
    s["active"] = st.active;
    s["issued_total"] = b.rt->tickets_issued.load(std::memory_order_relaxed);
    s["admitted_total"] = st.admitted_total;
    s["abandoned_total"] = st.abandoned_total;
    s["noshows_total"] = st.noshows_total;
    sample last;
    if (auto it = tracks_.find(c.name); it != tracks_.end()) last = it->second.last;
    s["arrivals_per_s"] = num(last.arrivals_per_s);
    s["called_per_s"] = num(last.called_per_s);
    s["admitted_per_s"] = num(last.admitted_per_s);
    const double rate = b.rt->call_rate();
    if (c.mode == room_mode::paused || c.mode == room_mode::closed) s["eta_s"] = nullptr;
    else if (st.waiting == 0) s["eta_s"] = 0;
    else if (rate > 0) s["eta_s"] = num(std::ceil(static_cast<double>(st.waiting + 1) / rate));
    else s["eta_s"] = nullptr;
    s["light"] = room_light(b);
    json::object up;
    up["p50_ms"] = num(last.p50_ms);
    up["p99_ms"] = num(last.p99_ms);
    up["error_rate"] = num(last.error_rate);
    up["requests_per_s"] = num(last.upstream_rps);
    s["upstream"] = std::move(up);
    r["stats"] = std::move(s);
    return json::serialize(r);
}

std::string admin_server::rooms_json() const {
    const auto gen = backend_.current();
    std::string out = text::cat("{\"time\":", tokenstore::wall_clock_ms(), ",\"rooms\":[");
    bool first = true;
    for (const auto& b : gen->rooms) {
        if (!first) out += ',';
        first = false;
        out += room_json(b);
    }
    out += "]}";
    return out;
}

void admin_server::audit(request_context& ctx, std::string_view action, std::string_view room, std::string before,
                         std::string after) {
    json::object e;
    e["time"] = iso_time(tokenstore::wall_clock_ms());
    e["token"] = ctx.who ? ctx.who->name : std::string("-");
    e["action"] = action;
    if (!room.empty()) e["room"] = room;
    e["before"] = before.empty() ? json::value(nullptr) : json::parse(before);
    e["after"] = after.empty() ? json::value(nullptr) : json::parse(after);
    std::string line = json::serialize(e);
    spdlog::info("admin: {} by {}{}{}", action, ctx.who ? ctx.who->name : "-", room.empty() ? "" : " on room ",
                 room);
    if (auto st = audit_.append(line); !st.ok()) spdlog::error("audit log: {}", std::string(message_of(st)));
    broadcast("audit", line);
}

response admin_server::handle(const request& req, request_context& ctx) {
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    const auto method = req.method();
    const bool read = method == http::verb::get || method == http::verb::head;

    // Open: health, readiness and the dashboard's static files (the page asks for a token).
    if (path == "/healthz" || path == "/readyz") {
        if (!read) return error(http::status::method_not_allowed, "method_not_allowed", "use GET");
        if (path == "/readyz" && backend_.stopping())
            return make(http::status::service_unavailable, "shutting down\n", "text/plain; charset=utf-8");
        if (path == "/readyz") {
            // A shared room out of step with the store: its store_failure mode applies here.
            // Only fail_closed takes the node out of rotation: in hold and fail_open the node
            // still has something to say to everyone (and when Redis is down, every node is
            // out of step at once; a balancer that dropped them all would serve nobody).
            for (const auto& r : backend_.rooms().list()) {
                if (r->shared() && !r->shared()->ever_synced())
                    return make(http::status::service_unavailable,
                                "starting: room " + r->name() + " is not yet in step with the shared store\n",
                                "text/plain; charset=utf-8");
                const auto failing = r->store_failing();
                if (!failing) continue;
                const std::string why = "shared store unreachable (room " + r->name() + "): store_failure " +
                                        std::string(to_string(*failing)) + " applies\n";
                return make(*failing == store_failure_mode::fail_closed ? http::status::service_unavailable
                                                                       : http::status::ok,
                            why, "text/plain; charset=utf-8");
            }
        }
        return make(http::status::ok, path == "/healthz" ? "ok\n" : "ready\n", "text/plain; charset=utf-8");
    }
    if (path == "/" || path == "/dashboard") {
        auto res = make(http::status::found, "", "text/plain");
        res.set(http::field::location, "/dashboard/");
        return res;
    }
    if (path.starts_with("/dashboard/")) {
        if (!read) return error(http::status::method_not_allowed, "method_not_allowed", "use GET");
        std::string_view name = path.substr(std::string_view("/dashboard/").size());
        if (name.empty()) name = "dashboard.html";
        const auto* a = name.find('/') == std::string_view::npos && name != "waiting.html"
                            ? dashboard::find_asset(name)
                            : nullptr;
        if (!a) return error(http::status::not_found, "not_found", "no such dashboard file");
        auto res = make(http::status::ok, std::string(a->data), a->content_type);
        res.set(http::field::cache_control, "no-cache");
        res.set("X-Content-Type-Options", "nosniff");
        if (name == "dashboard.html")
            res.set("Content-Security-Policy",
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
        return res;
    }

    ctx.tokens = backend_.tokens();
    ctx.who = ctx.tokens->check(req[http::field::authorization]);
    if (!ctx.who) {
        auto res = error(http::status::unauthorized, "unauthorized",
                         backend_.tokens()->empty()
                             ? "no admin tokens are configured (admin.tokens_file or $FLOODGATE_ADMIN_TOKENS)"
                             : "send Authorization: Bearer <token>");
        res.set(http::field::www_authenticate, "Bearer realm=\"floodgate-admin\"");
        return res;
    }
    if (is_change(method) && ctx.who->role != admin_role::operator_)
        return error(http::status::forbidden, "forbidden",
                     text::cat("the token \"", ctx.who->name, "\" is a viewer token: it can read, not change"));

    if (path == "/metrics") {
        if (!read) return error(http::status::method_not_allowed, "method_not_allowed", "use GET");
        const auto gen = backend_.current();
        return make(http::status::ok, backend_.metrics().scrape(*gen, backend_.rooms()),
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    const auto seg = segments(path);
    auto not_allowed = [](std::string_view allow) {
        auto res = error(http::status::method_not_allowed, "method_not_allowed", text::cat("use ", allow));
        res.set(http::field::allow, allow);
        return res;
    };
    if (seg.size() < 3 || seg[0] != "admin" || seg[1] != "v1")
        return error(http::status::not_found, "not_found", "no such endpoint; see deploy/openapi.yaml");

    const std::string_view what = seg[2];
    if (what == "rooms" && seg.size() == 3) {
        if (read) return make(http::status::ok, rooms_json() + "\n");
        if (method == http::verb::post) return handle_create(req, ctx);
        return not_allowed("GET, POST");
    }
    if (what == "rooms" && (seg.size() == 4 || seg.size() == 5)) {
        const std::string room(seg[3]);
        const auto gen = backend_.current();
        const room_binding* b = gen->find_room(room);
        if (!b) return error(http::status::not_found, "not_found", text::cat("no room named \"", room, "\""));
        if (seg.size() == 5) {
            if (method != http::verb::post) return not_allowed("POST");
            const std::string_view action = seg[4];
            if (action != "pause" && action != "resume" && action != "queue-all" && action != "close")
                return error(http::status::not_found, "not_found",
                             "room actions are pause, resume, queue-all and close");
            return handle_room_change(req, ctx, room, action);
        }
        if (read) return make(http::status::ok, room_json(*b) + "\n");
        if (method == http::verb::patch) return handle_room_change(req, ctx, room, {});
        if (method == http::verb::delete_) return handle_delete(ctx, room);
        return not_allowed("GET, PATCH, DELETE");
    }
    if (what == "keys" && seg.size() == 4 && seg[3] == "rotate") {
        if (method != http::verb::post) return not_allowed("POST");
        const std::size_t before = backend_.key_count();
        auto kid = backend_.rotate_keys();
        if (!kid.ok())
            return error(http::status::internal_server_error, "rotate_failed", message_of(kid.status()));
        json::object o;
        o["kid"] = *kid;
        o["keys"] = backend_.key_count();
        audit(ctx, "keys.rotate", {}, text::cat("{\"keys\":", before, "}"), json::serialize(o));
        return json_response(o);
    }
    if (what == "reload" && seg.size() == 3) {
        if (method != http::verb::post) return not_allowed("POST");
        if (auto st = backend_.reload(); !st.ok()) {
            audit(ctx, "config.reload", {}, {}, json::serialize(json::object{{"error", message_of(st)}}));
            return error(http::status::unprocessable_entity, "invalid_config", message_of(st));
        }
        audit(ctx, "config.reload", {}, {}, "{\"reloaded\":true}");
        return json_response(json::object{{"reloaded", true}});
    }
    if (what == "audit" && seg.size() == 3) {
        if (!read) return not_allowed("GET");
        std::uint64_t limit = 100;
        if (auto l = query_param(target, "limit"); !l.empty() && (!text::parse_u64(l, limit) || limit == 0))
            return error(http::status::bad_request, "bad_request", "limit: expected a whole number from 1",
                         "limit");
        std::string out = "{\"entries\":[";
        bool first = true;
        for (const auto& e : audit_.last(static_cast<std::size_t>(std::min<std::uint64_t>(limit, audit_log::kept)))) {
            if (!first) out += ',';
            first = false;
            out += e;
        }
        out += "]}\n";
        return make(http::status::ok, std::move(out));
    }
    if (what == "history" && seg.size() == 3) {
        if (!read) return not_allowed("GET");
        json::object rooms;
        for (const auto& [name, t] : tracks_) {
            json::array a;
            for (const auto& s : t.history)
                a.emplace_back(json::object{{"t", s.t},
                                            {"arrivals_per_s", num(s.arrivals_per_s)},
                                            {"admitted_per_s", num(s.admitted_per_s)},
                                            {"called_per_s", num(s.called_per_s)},
                                            {"waiting", s.waiting},
                                            {"active", s.active},
                                            {"p50_ms", num(s.p50_ms)},
                                            {"p99_ms", num(s.p99_ms)},
                                            {"error_rate", num(s.error_rate)}});
            rooms[name] = std::move(a);
        }
        return json_response(json::object{{"rooms", std::move(rooms)}});
    }
    if (what == "stream" && seg.size() == 3) return not_allowed("GET");
    return error(http::status::not_found, "not_found", "no such endpoint; see deploy/openapi.yaml");
}

response admin_server::handle_room_change(const request& req, request_context& ctx, const std::string& room,
                                          std::string_view action) {
    room_overrides o;
    if (const auto* cur = backend_.runtime().overrides(room)) o = *cur;
    const room_overrides previous = o;
    std::string audit_action;
    if (action.empty()) {
        json::error_code ec;
        json::value body = json::parse(req.body(), ec);
        if (ec || !body.is_object())
            return error(http::status::bad_request, "bad_request",
                         ec ? text::cat("the body is not valid JSON: ", ec.message())
                            : std::string("the body must be a JSON object"));
        if (auto e = apply_patch(body.as_object(), o))
            return error(http::status::bad_request, "bad_request",
                         e->field.empty() ? e->message : text::cat(e->field, ": ", e->message), e->field);
        audit_action = "room.patch";
    } else {
        o.mode = action == "pause"       ? room_mode::paused
                 : action == "close"     ? room_mode::closed
                 : action == "queue-all" ? room_mode::queue_all
                                         : room_mode::automatic;
        audit_action = text::cat("room.", action);
    }
    // The result must still be a room that admits somebody.
    const auto gen = backend_.current();
    const room_binding* b = gen->find_room(room);
    room_config next = *b->cfg;
    if (const config* fc = &backend_.file_config(); const room_config* base = fc->find_room(room)) next = *base;
    o.apply_to(next);
    if (next.rate == 0 && next.max_active == 0)
        return error(http::status::bad_request, "bad_request",
                     "rate and max_active cannot both be 0: the room would never admit anyone", "rate");
    const std::string before = json::serialize(json::object{{"mode", to_string(b->cfg->mode)},
                                                            {"settings", settings_json(*b->cfg)}});
    if (auto st = backend_.runtime().set_overrides(room, o); !st.ok()) {
        (void)backend_.runtime().set_overrides(room, previous);
        return error(http::status::internal_server_error, "not_saved",
                     text::cat("the change was not applied because it could not be saved: ", message_of(st)));
    }
    if (auto st = backend_.apply_runtime(); !st.ok()) {
        (void)backend_.runtime().set_overrides(room, previous);
        return error(http::status::bad_request, "bad_request", message_of(st));
    }
    const auto now_gen = backend_.current();
    const room_binding* nb = now_gen->find_room(room);
    const std::string after = json::serialize(json::object{{"mode", to_string(nb->cfg->mode)},
                                                           {"settings", settings_json(*nb->cfg)}});
    audit(ctx, audit_action, room, before, after);
    return make(http::status::ok, room_json(*nb) + "\n");
}

response admin_server::handle_create(const request& req, request_context& ctx) {
    json::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec || !body.is_object())
        return error(http::status::bad_request, "bad_request",
                     ec ? text::cat("the body is not valid JSON: ", ec.message())
                        : std::string("the body must be a JSON object"));
    const auto* name = body.as_object().if_contains("name");
    if (!name || !name->is_string())
        return error(http::status::bad_request, "bad_request", "name: missing (a-z, 0-9, '_' and '-')", "name");
    const std::string room(name->as_string());
    if (backend_.current()->find_room(room) || backend_.file_config().find_room(room))
        return error(http::status::conflict, "conflict", text::cat("a room named \"", room, "\" exists"), "name");
    // The same checks as a room in the config file; messages name the field.
    const std::string definition = json::serialize(body);
    auto rc = parse_room_definition(definition, "body", backend_.file_config());
    if (!rc.ok()) {
        // "body:1:70: rooms.x.admission.rate: expected ..." -> "admission.rate: expected ...", field admission.rate
        std::string msg(rc.status().message());
        std::string field;
        const std::string prefix = text::cat("rooms.", room);
        if (const std::size_t at = msg.find(prefix); at != std::string::npos) {
            msg.erase(0, at + prefix.size());
            if (msg.starts_with(".")) {
                msg.erase(0, 1);
                field = msg.substr(0, msg.find(':'));
            } else if (msg.starts_with(": ")) {
                msg.erase(0, 2);
            }
        } else if (msg.starts_with("body")) {
            msg.erase(0, msg.find(' ') + 1);
        }
        return error(http::status::bad_request, "bad_request", msg, field);
    }
    if (auto st = backend_.runtime().add_room(room, definition); !st.ok())
        return error(http::status::internal_server_error, "not_saved", message_of(st));
    if (auto st = backend_.apply_runtime(); !st.ok()) {
        (void)backend_.runtime().remove_room(room);
        return error(http::status::bad_request, "bad_request", message_of(st));
    }
    const auto gen = backend_.current();
    const room_binding* b = gen->find_room(room);
    if (!b) return error(http::status::internal_server_error, "not_created", "the room was not created");
    audit(ctx, "room.create", room, {}, definition);
    backend_.announce_room(room, definition);
    return make(http::status::created, room_json(*b) + "\n");
}

response admin_server::handle_delete(request_context& ctx, const std::string& room) {
    if (!backend_.runtime().is_runtime_room(room))
        return error(http::status::conflict, "conflict",
                     text::cat("room \"", room, "\" comes from the config file: remove it there and reload"));
    const auto gen = backend_.current();
    const std::string before = room_json(*gen->find_room(room));
    std::string definition;
    if (auto st = backend_.runtime().remove_room(room); !st.ok())
        return error(http::status::internal_server_error, "not_saved", message_of(st));
    if (auto st = backend_.apply_runtime(); !st.ok())
        return error(http::status::internal_server_error, "not_applied", message_of(st));
    backend_.rooms().remove(room);
    audit(ctx, "room.delete", room, before, {});
    backend_.announce_room(room, std::nullopt);
    response res{http::status::no_content, 11};
    res.set(http::field::cache_control, "no-store");
    return res;
}

}  // namespace floodgate
