#include "crowd.hpp"

#include <algorithm>
#include <cmath>

#include "loadgen/protocol.hpp"
#include "loadgen/stats.hpp"

namespace floodgate::bench {

using namespace std::chrono_literals;

// What a person's devices share.
struct crowd::person {
    std::size_t index = 0;  // into rec_.people
    std::string identity;   // X-User-Id (or the room's header); one per person
    unsigned devices = 1;
    unsigned devices_running = 0;
    bool abandoner = false;
    double abandon_after_s = 0;
    bool releases = true;
    bool counted_waiting = false;
    bool admitted = false;  // some device holds (or held) the pass
    bool in_session = false;
    bool gone = false;  // abandoned, lost the place, or finished
};

crowd::crowd(net::any_io_executor ex, const scenario& sc, tcp::endpoint gateway, run_record& rec,
             std::chrono::steady_clock::time_point t0, target t)
    : ex_(ex),
      target_(t),
      sc_(sc),
      gateway_(gateway),
      rec_(rec),
      t0_(t0),
      pool_(ex, gateway, sc.bench.connections),
      rng_(sc.seed * 7919 + 1) {
    const std::string& room = sc.gateway.room.name;
    ticket_cookie_ = "fg_ticket_" + room;
    pass_cookie_ = "fg_pass_" + room;
    status_target_ = "/__fg/v1/rooms/" + room + "/status";
    release_target_ = "/__fg/v1/rooms/" + room + "/release";
}

double crowd::now_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

double crowd::uniform(const value_range& r) {
    if (r.hi <= r.lo) return r.lo;
    return std::uniform_real_distribution<double>(r.lo, r.hi)(rng_);
}

void crowd::error(std::string_view kind) {
    ++rec_.errors_by_kind[std::string(kind)];
    rec_.errors.add(now_s());
}

net::awaitable<void> crowd::sleep_until(net::steady_timer& timer, double t_s) {
    timer.expires_at(t0_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(std::min(t_s, deadline_s_))));
    error_code ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
}

request crowd::make_request(http::verb method, std::string_view target, const person& p) const {
    request req{method, target, 11};
    req.set(http::field::host, "bench.local");
    req.set(http::field::user_agent, "floodgate-bench");
    req.set(http::field::accept, "application/json");
    if (!sc_.gateway.room.identity_header.empty()) req.set(sc_.gateway.room.identity_header, p.identity);
    return req;
}

net::awaitable<crowd::reply> crowd::pooled(request req) {
    const double asked = now_s();
    auto c = co_await pool_.acquire();
    reply r;
    r.sent_s = now_s();
    if (rec_.pool_wait_ms.size() < 2'000'000) rec_.pool_wait_ms.push_back((r.sent_s - asked) * 1000);
    req.prepare_payload();
    r.ec = co_await c->exchange(req, r.res, std::chrono::milliseconds(sc_.bench.request_timeout_ms));
    r.received_s = now_s();
    pool_.release(std::move(c));
    co_return r;
}

void crowd::classify_failure(const reply& r) {
    if (r.ec) {
        if (r.ec == beast::error::timeout) error("timeout");
        else if (r.ec == net::error::connection_refused) error("connect_refused");
        else error("io_" + r.ec.message());
        return;
    }
    const unsigned code = r.res.result_int();
    if (code == 502) error("gateway_502");
    else if (code == 504) error("gateway_504");
    else if (code == 503) error("site_503");  // from the site itself: it was over its hard limit
    else error("unexpected_status_" + std::to_string(code));
}

// A "waiting" answer proves the person was not yet called when it was sent, unless
// it says nobody is ahead: the person at the front may be called that instant
// (a second device's join answers "waiting" for a called place, and a poll racing
// the admitter's tick answers "waiting, 0 ahead"). Those answers prove nothing.
void crowd::note_waiting(person_record& rec, const status_answer& st, double sent_s) {
    if (st.ahead && *st.ahead > 0) rec.last_waiting_s = std::max(rec.last_waiting_s, sent_s);
}

void crowd::stop_waiting(person& p) {
    if (p.counted_waiting) {
        p.counted_waiting = false;
        --waiting_;
    }
}

namespace {

std::optional<std::string> set_cookie(const response& res, std::string_view name) {
    for (auto it = res.find(http::field::set_cookie); it != res.end() && it->name() == http::field::set_cookie; ++it)
        if (auto v = cookie_value(it->value(), name)) return std::string(*v);
    return std::nullopt;
}

}  // namespace

void crowd::stop() {
    stopped_ = true;
    deadline_s_ = std::min(deadline_s_, now_s());
    rec_.outcomes["interrupted"] = 1;
}

net::awaitable<void> crowd::run() {
    arrival_schedule schedule(sc_.people.arrivals, sc_.people.process, sc_.seed);
    std::mt19937_64 plan_rng(sc_.seed);
    std::uniform_real_distribution<double> u01(0, 1);
    net::steady_timer timer(ex_);
    const auto& pp = sc_.people;
    while (auto t = schedule.next()) {
        co_await sleep_until(timer, *t);
        if (stopped_) break;
        auto p = std::make_shared<person>();
        p->index = rec_.people.size();
        p->identity = "u" + std::to_string(p->index);
        const double roll = u01(plan_rng);
        if (roll < pp.abandon_share) {
            p->abandoner = true;
            p->abandon_after_s = std::uniform_real_distribution<double>(
                pp.abandon_after_s.lo, std::max(pp.abandon_after_s.lo, pp.abandon_after_s.hi))(plan_rng);
        } else if (roll < pp.abandon_share + pp.multi_device_share) {
            p->devices = static_cast<unsigned>(std::uniform_int_distribution<int>(
                static_cast<int>(pp.devices.lo), static_cast<int>(pp.devices.hi))(plan_rng));
        }
        p->releases = u01(plan_rng) < pp.release_share;
        person_record r;
        r.arrived_s = now_s();
        r.devices = static_cast<std::uint8_t>(p->devices);
        rec_.people.push_back(r);
        rec_.arrivals.add(r.arrived_s);
        for (unsigned d = 0; d < p->devices; ++d) {
            const double start = d == 0 ? *t : *t + std::uniform_real_distribution<double>(
                                                        pp.device_spread_s.lo,
                                                        std::max(pp.device_spread_s.lo, pp.device_spread_s.hi))(plan_rng);
            ++devices_running_;
            ++p->devices_running;
            net::co_spawn(ex_, device(p, start), net::detached);
        }
    }
    rec_.arrivals_end_s = now_s();
    deadline_s_ = std::min(deadline_s_, rec_.arrivals_end_s + sc_.bench.drain_s);
    // Wait for everyone to finish, or the end of the drain.
    while (devices_running_ > 0 && now_s() < deadline_s_) {
        timer.expires_after(100ms);
        error_code ec;
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    rec_.outcomes["devices_unfinished_at_end"] = devices_running_;
    rec_.outcomes["people_waiting_at_end"] = waiting_;
    rec_.ended_s = now_s();
}

net::awaitable<void> crowd::device(std::shared_ptr<person> p, double start_s) {
    struct running_guard {
        crowd& c;
        person& p;
        ~running_guard() {
            --c.devices_running_;
            --p.devices_running;
        }
    } guard{*this, *p};
    net::steady_timer timer(ex_);
    co_await sleep_until(timer, start_s);
    if (now_s() >= deadline_s_) co_return;
    if (p->gone) {  // the person finished on another device before this one was opened
        outcome("device_not_needed");
        co_return;
    }
    person_record& rec = rec_.people[p->index];
    if (target_ == target::nginx_limit) {
        co_await refreshing_device(p, timer);
        co_return;
    }
    const bool header_ticket =
        std::uniform_real_distribution<double>(0, 1)(rng_) < sc_.people.ticket_header_share;

    // Arrive: ask for the first page.
    ++rec_.joins;
    reply r = co_await pooled(make_request(http::verb::get, sc_.people.requests.front().path, *p));
    std::string ticket;
    std::optional<status_answer> st;
    if (!r.ec) {
        if (auto pass = set_cookie(r.res, pass_cookie_); pass && !pass->empty()) {
            // Admitted at once: the page itself came back from the site.
            if (p->admitted) {
                ++rec_.double_admissions;
                error("double_admission");
                co_return;
            }
            p->admitted = true;
            rec.at_once = true;
            rec.admitted_s = r.received_s;
            rec_.admitted.add(r.received_s);
            co_await session(p, *pass, /*first_done=*/true);
            co_return;
        }
        st = parse_status(r.res.body());
    }
    if (!st) {
        classify_failure(r);
        co_return;
    }
    if (st->state == "already_admitted") {
        // Another device holds the pass, or claimed the call a moment ago (its answer is on the way).
        if (p->devices > 1) outcome("other_device_refused");
        else error("already_admitted");
        co_return;
    }
    if (st->state != "waiting" && st->state != "paused") {
        error("join_" + st->state);  // full, closed
        ++rec.refusals;
        ++rec_.refusals_by_kind["join_" + st->state];
        co_return;
    }
    ticket = set_cookie(r.res, ticket_cookie_).value_or(st->ticket);
    if (ticket.empty()) {
        error("ticket_missing");
        co_return;
    }
    if (!rec.has_seq) {
        rec_.tickets.add(r.received_s);
        if (auto seq = ticket_seq(ticket)) {
            rec.seq = *seq;
            rec.has_seq = true;
        }
        rec.joined_s = r.sent_s;
        rec.eta_at_join_s = st->eta_s.value_or(-1);
    }
    note_waiting(rec, *st, r.sent_s);
    if (!p->counted_waiting && !p->admitted && !p->gone) {
        p->counted_waiting = true;
        ++waiting_;
    }

    // Wait in line: poll exactly when told.
    std::optional<std::uint64_t> last_ahead = st->ahead;
    double next_poll = r.received_s + static_cast<double>(st->poll_after_ms) / 1000.0;
    while (true) {
        const double give_up = p->abandoner ? rec.joined_s + p->abandon_after_s : 1e18;
        co_await sleep_until(timer, std::min(next_poll, give_up));
        if (now_s() >= deadline_s_) co_return;
        if (p->gone && !p->admitted) co_return;
        if (p->abandoner && now_s() >= give_up && !p->admitted) {
            if (!rec.abandoned) {
                rec.abandoned = true;
                outcome("abandoned");
            }
            p->gone = true;
            stop_waiting(*p);
            co_return;
        }
        request req = make_request(http::verb::get, status_target_, *p);
        if (header_ticket) req.set("Floodgate-Ticket", ticket);
        else req.set(http::field::cookie, ticket_cookie_ + "=" + ticket);
        r = co_await pooled(std::move(req));
        rec_.polls.add(r.sent_s);
        if (rec_.poll_lag_ms.size() < 2'000'000) rec_.poll_lag_ms.push_back((r.sent_s - next_poll) * 1000);
        st.reset();
        if (!r.ec && r.res.result_int() == 200) st = parse_status(r.res.body());
        if (!st) {
            classify_failure(r);
            if (r.ec || r.res.result_int() >= 500) {  // try again as the page would, a little later
                next_poll = now_s() + 5;
                continue;
            }
            p->gone = true;
            stop_waiting(*p);
            co_return;
        }
        if (st->state == "waiting" || st->state == "paused") {
            if (last_ahead && st->ahead && *st->ahead > *last_ahead) ++rec_.position_increases;
            if (st->ahead) last_ahead = st->ahead;
            note_waiting(rec, *st, r.sent_s);
            next_poll = r.received_s + static_cast<double>(st->poll_after_ms) / 1000.0;
            continue;
        }
        if (st->state == "admitted") {
            std::string pass = set_cookie(r.res, pass_cookie_).value_or(st->pass);
            if (p->admitted) {  // two devices of one person both got a pass
                ++rec_.double_admissions;
                error("double_admission");
                co_return;
            }
            if (pass.empty()) {
                error("pass_missing");
                co_return;
            }
            p->admitted = true;
            rec.admitted_s = r.received_s;
            rec_.admitted.add(r.received_s);
            stop_waiting(*p);
            co_await session(p, std::move(pass), /*first_done=*/false);
            co_return;
        }
        if (st->state == "expired" && p->devices > 1) {
            // Another device of this person may have claimed the call a moment ago.
            for (int i = 0; i < 40 && !p->admitted && !p->gone; ++i) {
                timer.expires_after(50ms);
                error_code ec;
                co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
            }
            if (p->admitted) {
                co_await other_device(p);
                co_return;
            }
        }
        if (st->state == "expired") {
            rec.lost_place = true;
            error("lost_place");
        } else {
            error("poll_" + st->state);
        }
        p->gone = true;
        stop_waiting(*p);
        co_return;
    }
}

// An answer from the limiter (or the site behind it) that refuses the page: nginx's limit_req
// (429, as bench/peers/nginx-limit.conf.in sets it), its limit_conn (503 with nginx's own HTML
// page), the site's own 503 over its hard limit, or a failure. Counts it for the person and
// returns its kind; empty for a 200.
std::string crowd::refusal(const reply& r, person_record& rec, std::string_view when) {
    if (!r.ec && r.res.result_int() == 200) return {};
    std::string kind;
    if (r.ec) {
        classify_failure(r);
        kind = "error";
    } else if (r.res.result_int() == 429) {
        kind = "limit_req_429";
    } else if (r.res.result_int() == 503 && r.res.body().find("nginx") != std::string::npos) {
        kind = "limit_conn_503";
    } else {
        classify_failure(r);  // site_503, gateway_502, unexpected_status_*
        kind = "status_" + std::to_string(r.res.result_int());
    }
    ++rec.refusals;
    ++rec_.refusals_by_kind[std::string(when) + kind];
    return kind;
}

// A person without a waiting room in front of the site (target::nginx_limit): asks for the
// first page; refused, reloads it after people.refresh, until it comes back 200 (then books
// like everyone else) or their patience ends (the abandoners' abandon.after from their first
// try, as in the line; everyone else keeps reloading until the drain ends). A person's place
// in the join order is their arrival; the send time of the last refused try stands for the
// last "wait" answer, so fifo.inversions counts later arrivals let in before an earlier one
// was refused again.
net::awaitable<void> crowd::refreshing_device(std::shared_ptr<person> p, net::steady_timer& timer) {
    person_record& rec = rec_.people[p->index];
    std::uniform_real_distribution<double> u01(0, 1);
    while (true) {
        if (p->admitted || p->gone) {  // in (or gone) on another device: this one is closed
            outcome("other_device_closed");
            co_return;
        }
        ++rec_.joins;
        reply r = co_await pooled(make_request(http::verb::get, sc_.people.requests.front().path, *p));
        if (!rec.has_seq) {
            rec.seq = p->index;
            rec.has_seq = true;
            rec.joined_s = r.sent_s;
        }
        if (refusal(r, rec, "").empty()) {
            if (p->admitted) {  // nginx let two devices of one person in
                outcome("other_device_also_in");
                co_return;
            }
            p->admitted = true;
            rec.at_once = rec.refusals == 0;
            rec.admitted_s = r.received_s;
            rec_.admitted.add(r.received_s);
            stop_waiting(*p);
            co_await session(p, {}, /*first_done=*/true);
            co_return;
        }
        rec.last_waiting_s = std::max(rec.last_waiting_s, r.sent_s);
        if (!p->counted_waiting && !p->admitted && !p->gone) {
            p->counted_waiting = true;
            ++waiting_;
        }
        const double give_up = p->abandoner ? rec.joined_s + p->abandon_after_s : 1e18;
        const auto next = next_refresh_s(r.received_s, sc_.people.refresh_s, u01(rng_), give_up);
        if (!next) {
            if (!p->admitted && !rec.abandoned) {
                rec.abandoned = true;
                outcome("abandoned");
            }
            if (!p->admitted) p->gone = true;
            stop_waiting(*p);
            co_return;
        }
        co_await sleep_until(timer, *next);
        if (now_s() >= deadline_s_) co_return;
    }
}

// A second device learns its person was admitted on another one: the page
// reloads the page first asked for, which the gateway must refuse while the
// other device holds the pass.
net::awaitable<void> crowd::other_device(std::shared_ptr<person> p) {
    if (!p->in_session) {
        outcome("other_device_closed");
        co_return;
    }
    reply r = co_await pooled(make_request(http::verb::get, sc_.people.requests.front().path, *p));
    if (r.ec) {
        classify_failure(r);
        co_return;
    }
    if (auto pass = set_cookie(r.res, pass_cookie_); pass && !pass->empty()) {
        if (p->in_session) {
            ++rec_.double_admissions;
            error("double_admission");
        } else {
            outcome("other_device_after_session");
        }
        request rel = make_request(http::verb::post, release_target_, *p);
        rel.set(http::field::cookie, pass_cookie_ + "=" + *pass);
        co_await pooled(std::move(rel));
        co_return;
    }
    auto st = parse_status(r.res.body());
    if (st && st->state == "already_admitted") outcome("other_device_refused");
    else if (st && (st->state == "waiting" || st->state == "paused")) outcome("other_device_requeued");
    else classify_failure(r);
}

// An admitted person on the site: the booking requests with think times, on a
// connection of its own, then release (or just leave).
net::awaitable<void> crowd::session(std::shared_ptr<person> p, std::string pass, bool first_done) {
    ++in_session_;
    p->in_session = true;
    connection conn(ex_, gateway_);
    net::steady_timer timer(ex_);
    const auto timeout = std::chrono::milliseconds(sc_.bench.request_timeout_ms);
    const auto& reqs = sc_.people.requests;
    bool ok = true;
    if (first_done) rec_.booking.add(now_s());
    for (std::size_t i = first_done ? 1 : 0; i < reqs.size() && ok; ++i) {
        if (i > 0) co_await sleep_until(timer, now_s() + uniform(sc_.people.think_s));
        if (now_s() >= deadline_s_) break;
        request req = make_request(reqs[i].method == "POST" ? http::verb::post : http::verb::get, reqs[i].path, *p);
        if (target_ == target::floodgate) req.set(http::field::cookie, pass_cookie_ + "=" + pass);
        if (reqs[i].method == "POST") {
            const int slot = 1001 + static_cast<int>(p->index % 6);
            req.set(http::field::content_type, "application/json");
            req.body() = "{\"slot\":\"sch-" + std::to_string(slot) + "\",\"name\":\"" + p->identity + "\"}";
        }
        req.prepare_payload();
        response res;
        const double sent = now_s();
        error_code ec = co_await conn.exchange(req, res, timeout);
        rec_.booking.add(sent);
        if (ec) {
            classify_failure({ec, {}, sent, now_s()});
            ok = false;
            break;
        }
        const unsigned code = res.result_int();
        if (code == 200) continue;
        if (code == 409) {
            outcome("sold_out");
            continue;
        }
        if (target_ == target::nginx_limit) {
            // Let in, then refused in the middle of booking: the limiter knows requests, not people.
            const std::string kind = refusal({ec, std::move(res), sent, now_s()}, rec_.people[p->index], "in_session_");
            if (kind.rfind("limit_", 0) == 0) error("session_refused");
            ok = false;
            break;
        }
        auto st = parse_status(res.body());
        if (st && (st->state == "waiting" || st->state == "paused")) error("pass_rejected");
        else classify_failure({ec, std::move(res), sent, now_s()});
        ok = false;
    }
    if (target_ == target::nginx_limit) {
        // Nothing to give back: nginx holds no place for anyone.
    } else if (p->releases && now_s() < deadline_s_) {
        request rel = make_request(http::verb::post, release_target_, *p);
        rel.set(http::field::cookie, pass_cookie_ + "=" + pass);
        rel.prepare_payload();
        response res;
        error_code ec = co_await conn.exchange(rel, res, timeout);
        ++rec_.releases;
        if (ec || res.result_int() != 200) classify_failure({ec, std::move(res), 0, 0});
    } else {
        outcome("left_without_release");
    }
    rec_.connects += conn.connects();
    conn.close();
    --in_session_;
    p->in_session = false;
    p->gone = true;
    if (ok) outcome("completed");
}

}  // namespace floodgate::bench
