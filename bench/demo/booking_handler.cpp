#include "booking_handler.hpp"

#include <boost/json.hpp>
#include <boost/url/parse_query.hpp>

#include <optional>
#include <variant>

#include "booking_pages.hpp"

namespace floodgate::demo {

namespace json = boost::json;
namespace urls = boost::urls;

namespace {

constexpr std::size_t max_name_bytes = 100;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char a = s[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

response make_response(const request& req, http::status status, std::string_view content_type,
                       std::string body) {
    response res{status, req.version()};
    res.set(http::field::server, "floodgate-demo-booking");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
    return res;
}

response json_response(const request& req, http::status status, const json::value& v) {
    auto res = make_response(req, status, "application/json", json::serialize(v) + "\n");
    res.set(http::field::cache_control, "no-store");
    return res;
}

response json_error(const request& req, http::status status, std::string_view message) {
    return json_response(req, status, json::object{{"error", message}});
}

response html_response(const request& req, http::status status, std::string body) {
    return make_response(req, status, "text/html; charset=utf-8", std::move(body));
}

response method_not_allowed(const request& req, std::string_view allow) {
    auto res = json_error(req, http::status::method_not_allowed,
                          std::string("method not allowed; use ") + std::string(allow));
    res.set(http::field::allow, allow);
    return res;
}

bool is_get(const request& req) {
    return req.method() == http::verb::get || req.method() == http::verb::head;
}

struct booking_form {
    std::string slot;
    std::string name;
};

// The body of POST /api/reserve, JSON or form-encoded; or what is wrong with it.
std::variant<booking_form, std::string> parse_booking(const request& req) {
    const std::string_view type = req[http::field::content_type];
    const std::string& body = req.body();
    booking_form f;
    bool has_slot = false, has_name = false;
    const bool form = starts_with_ci(type, "application/x-www-form-urlencoded");
    const bool as_json = starts_with_ci(type, "application/json") ||
                         (type.empty() && !body.empty() && body.front() == '{');
    if (as_json) {
        error_code ec;
        json::value v = json::parse(body, ec);
        if (ec) return "the body is not valid JSON (" + ec.message() + ")";
        const json::object* o = v.if_object();
        if (!o) return "expected a JSON object such as {\"slot\": \"sch-1001\", \"name\": \"Kim\"}";
        if (const json::value* s = o->if_contains("slot")) {
            if (!s->is_string()) return "\"slot\" must be a string";
            f.slot = std::string(s->get_string());
            has_slot = true;
        }
        if (const json::value* n = o->if_contains("name")) {
            if (!n->is_string()) return "\"name\" must be a string";
            f.name = std::string(n->get_string());
            has_name = true;
        }
    } else if (form) {
        auto params = urls::parse_query(body);
        if (!params) return "the form body is not valid application/x-www-form-urlencoded";
        urls::encoding_opts opt;
        opt.space_as_plus = true;
        for (auto p : *params) {
            if (!p.has_value) continue;
            const std::string key = p.key.decode(opt);
            if (key == "slot") f.slot = p.value.decode(opt), has_slot = true;
            else if (key == "name") f.name = p.value.decode(opt), has_name = true;
        }
    } else {
        return "expected Content-Type application/json or application/x-www-form-urlencoded";
    }
    if (!has_slot || f.slot.empty()) return "missing \"slot\" (a performance id from GET /api/slots)";
    if (!has_name || f.name.empty()) return "missing \"name\"";
    if (f.name.size() > max_name_bytes)
        return "\"name\" is longer than " + std::to_string(max_name_bytes) + " bytes";
    return f;
}

json::object slot_json(const performance& p) {
    return {{"id", p.id}, {"time", p.time}, {"title", p.title}, {"seats", p.seats},
            {"remaining", p.remaining}};
}

}  // namespace

booking_handler::booking_handler(const demo_options& options, booking_state& state,
                                 load_meter& meter)
    : options_(options), state_(state), meter_(meter) {}

net::awaitable<response> booking_handler::handle(request req) {
    std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));

    if (path == "/ping") {
        meter_.count_ping();
        if (!is_get(req)) co_return method_not_allowed(req, "GET, HEAD");
        co_return make_response(req, http::status::ok, "text/plain", "pong");
    }
    if (path == "/api/stats" || path == "/api/stats/reset") co_return stats(req);

    meter_.count_request();
    const bool api = path.starts_with("/api/");
    const bool booking = api || path == "/reserve" || path.starts_with("/reserve/");
    if (!booking) {
        if (path == "/") {
            if (!is_get(req)) co_return method_not_allowed(req, "GET, HEAD");
            co_return html_response(req, http::status::ok, home_page());
        }
        co_return api ? json_error(req, http::status::not_found, "not found")
                      : html_response(req, http::status::not_found,
                                      message_page("Not found", "There is no page at this address."));
    }

    load_meter::ticket ticket = meter_.try_enter();
    if (!ticket) {
        auto res = api ? json_error(req, http::status::service_unavailable,
                                    "the booking site is over capacity; try again shortly")
                       : html_response(req, http::status::service_unavailable,
                                       message_page("Too busy",
                                                    "Too many people are booking right now. "
                                                    "Please try again in a moment."));
        res.set(http::field::retry_after, "1");
        co_return res;
    }
    if (auto delay = meter_.latency_for(ticket.load()); delay.count() > 0) {
        net::steady_timer timer(co_await net::this_coro::executor, delay);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    co_return booking_route(req, path);
}

response booking_handler::booking_route(const request& req, std::string_view path) {
    if (path == "/reserve") {
        if (!is_get(req)) return method_not_allowed(req, "GET, HEAD");
        return html_response(req, http::status::ok, reserve_page(state_.performances()));
    }
    if (path == "/api/slots") {
        if (!is_get(req)) return method_not_allowed(req, "GET, HEAD");
        json::array slots;
        for (const auto& p : state_.performances()) slots.push_back(slot_json(p));
        return json_response(req, http::status::ok, json::object{{"slots", std::move(slots)}});
    }
    if (path == "/api/reserve") {
        if (req.method() != http::verb::post) return method_not_allowed(req, "POST");
        return reserve(req);
    }
    if (path.starts_with("/api/")) return json_error(req, http::status::not_found, "not found");
    return html_response(req, http::status::not_found,
                         message_page("Not found", "There is no page at this address."));
}

response booking_handler::reserve(const request& req) {
    // A plain HTML form (no JavaScript) gets pages back; everything else JSON.
    const bool html = starts_with_ci(req[http::field::content_type],
                                     "application/x-www-form-urlencoded") &&
                      req[http::field::accept].find("text/html") != std::string_view::npos;
    auto parsed = parse_booking(req);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return html ? html_response(req, http::status::bad_request,
                                    message_page("Cannot book", *why))
                    : json_error(req, http::status::bad_request, *why);
    }
    const auto& form = std::get<booking_form>(parsed);
    const reservation r = state_.reserve(form.slot, form.name);
    switch (r.outcome) {
        case reserve_outcome::no_such_slot: {
            const std::string why =
                "no performance with id \"" + form.slot + "\"; see GET /api/slots";
            return html ? html_response(req, http::status::bad_request,
                                        message_page("Cannot book", why))
                        : json_error(req, http::status::bad_request, why);
        }
        case reserve_outcome::sold_out: {
            const std::string why = "\"" + r.slot.title + "\" on " + r.slot.time + " is sold out";
            return html ? html_response(req, http::status::conflict,
                                        message_page("Sold out", why))
                        : json_error(req, http::status::conflict, why);
        }
        case reserve_outcome::reserved: break;
    }
    meter_.count_reservation();
    auto res = html ? html_response(req, http::status::ok, confirmation_page(r, form.name))
                    : json_response(req, http::status::ok,
                                    json::object{{"reservation", r.id},
                                                 {"slot", r.slot.id},
                                                 {"time", r.slot.time},
                                                 {"title", r.slot.title},
                                                 {"name", form.name},
                                                 {"remaining", r.slot.remaining}});
    if (options_.release_on_reserve) res.set("Floodgate-Release", "1");
    return res;
}

response booking_handler::stats(const request& req) {
    if (req.target().starts_with("/api/stats/reset")) {
        if (req.method() != http::verb::post) return method_not_allowed(req, "POST");
        meter_.reset();
    } else if (!is_get(req)) {
        return method_not_allowed(req, "GET, HEAD");
    }
    const auto s = meter_.read();
    return json_response(req, http::status::ok,
                         json::object{{"in_flight", s.in_flight},
                                      {"max_in_flight", s.max_in_flight},
                                      {"requests_total", s.requests_total},
                                      {"rejected_total", s.rejected_total},
                                      {"reservations_total", s.reservations_total},
                                      {"ping_total", s.ping_total},
                                      {"capacity", s.capacity},
                                      {"hard_limit", s.hard_limit},
                                      {"base_latency_ms", s.base_latency_ms}});
}

}  // namespace floodgate::demo
