#include "loadgen/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace floodgate::bench {

namespace json = boost::json;

namespace {

double round_to(double v, int digits) {
    const double f = std::pow(10.0, digits);
    return std::round(v * f) / f;
}

json::value opt(std::optional<double> v, int digits = 3) {
    if (!v) return nullptr;
    return round_to(*v, digits);
}

json::object pcts(std::vector<double> v, int digits = 3) {
    std::sort(v.begin(), v.end());
    json::object o;
    o["count"] = v.size();
    o["p50"] = opt(percentile_sorted(v, 50), digits);
    o["p90"] = opt(percentile_sorted(v, 90), digits);
    o["p99"] = opt(percentile_sorted(v, 99), digits);
    o["max"] = v.empty() ? json::value(nullptr) : json::value(round_to(v.back(), digits));
    return o;
}

// Per-second value at whole second k from the samples (the sample nearest k).
std::vector<const sample*> samples_by_second(const run_record& rec, std::size_t seconds) {
    std::vector<const sample*> out(seconds + 1, nullptr);
    for (const auto& s : rec.samples) {
        const auto k = static_cast<std::size_t>(std::llround(s.t_s));
        if (k < out.size()) out[k] = &s;
    }
    return out;
}

double get_double(const json::object& o, std::string_view path) {
    const json::object* cur = &o;
    std::string_view rest = path;
    while (true) {
        const auto dot = rest.find('.');
        const std::string_view key = rest.substr(0, dot);
        const json::value* v = cur->if_contains(key);
        if (!v) return std::nan("");
        if (dot == std::string_view::npos) return v->is_number() ? v->to_number<double>() : std::nan("");
        if (!v->is_object()) return std::nan("");
        cur = &v->get_object();
        rest = rest.substr(dot + 1);
    }
}

}  // namespace

json::object build_report(const run_record& rec) {
    const scenario& sc = rec.sc;
    const room_settings& room = sc.gateway.room;
    json::object r;
    r["scenario"] = sc.name;
    r["target"] = rec.target;
    r["models"] = sc.models;
    r["scale"] = sc.scale;
    r["started_at"] = rec.started_at;
    r["duration_s"] = round_to(rec.ended_s, 1);
    r["arrivals_s"] = round_to(rec.arrivals_end_s, 1);
    json::object cfg;
    cfg["room"] = room.name;
    cfg["rate"] = room.rate;
    cfg["burst"] = room.burst;
    cfg["max_active"] = room.max_active;
    cfg["mode"] = room.mode;
    cfg["site_capacity"] = sc.site.capacity;
    cfg["site_hard_limit"] = sc.site.effective_hard_limit();
    cfg["site_base_latency_ms"] = sc.site.base_latency_ms;
    cfg["gateway_threads"] = sc.gateway.threads;
    r["config"] = std::move(cfg);

    // People.
    std::uint64_t admitted = 0, at_once = 0, abandoned = 0, lost = 0, multi = 0, unadmitted = 0;
    std::vector<double> waits, eta_abs, eta_signed, eta_rel;
    struct stayed {
        std::uint64_t seq;
        observed_admission o;
    };
    std::vector<stayed> line;
    std::vector<double> refusals_per_person;
    std::uint64_t refusals = 0, people_refused = 0;
    for (const auto& p : rec.people) {
        refusals_per_person.push_back(p.refusals);
        refusals += p.refusals;
        if (p.refusals > 0) ++people_refused;
        if (p.devices > 1) ++multi;
        if (p.abandoned) ++abandoned;
        if (p.lost_place) ++lost;
        if (p.admitted_s < 0) {
            if (!p.abandoned && !p.lost_place) ++unadmitted;
            continue;
        }
        ++admitted;
        if (p.at_once) ++at_once;
        const double wait = std::max(0.0, p.admitted_s - p.arrived_s);
        waits.push_back(wait);
        if (p.eta_at_join_s >= 0) {
            eta_abs.push_back(std::abs(wait - p.eta_at_join_s));
            eta_signed.push_back(wait - p.eta_at_join_s);
            eta_rel.push_back(std::abs(wait - p.eta_at_join_s) / std::max(1.0, p.eta_at_join_s));
        }
        if (!p.at_once && p.has_seq && !p.abandoned) line.push_back({p.seq, {p.last_waiting_s, p.admitted_s}});
    }
    json::object people;
    people["planned"] = std::llround(sc.expected_people());
    people["arrived"] = rec.people.size();
    people["with_several_devices"] = multi;
    people["admitted"] = admitted;
    people["admitted_at_once"] = at_once;
    people["abandoned"] = abandoned;
    people["lost_place"] = lost;
    people["not_admitted_by_end"] = unadmitted;
    people["got_in_share"] =
        rec.people.empty() ? 0.0 : round_to(double(admitted) / double(rec.people.size()), 4);
    r["people"] = std::move(people);

    // Refusals: a 429 or 503 (or full, closed) instead of the page or a place in line.
    json::object ref = pcts(refusals_per_person, 1);
    ref.erase("count");
    ref["total"] = refusals;
    ref["people_refused"] = people_refused;
    ref["per_person_mean"] =
        rec.people.empty() ? 0.0 : round_to(double(refusals) / double(rec.people.size()), 2);
    json::object ref_kinds;
    for (const auto& [k, n] : rec.refusals_by_kind) ref_kinds[k] = n;
    ref["by_kind"] = std::move(ref_kinds);
    r["refusals"] = std::move(ref);

    json::object arr;
    arr["mean"] = round_to(rec.arrivals_end_s > 0 ? double(rec.arrivals.total()) / rec.arrivals_end_s : 0, 2);
    arr["peak_1s"] = rec.arrivals.max_window(1.0);
    r["arrivals_per_s"] = std::move(arr);

    json::object tickets;
    tickets["bench"] = rec.tickets.total();
    if (!rec.samples.empty() && rec.samples.back().gateway_ok && rec.baseline.gateway_ok)
        tickets["gateway"] = rec.samples.back().gateway_issued_total - rec.baseline.gateway_issued_total;
    r["tickets_issued"] = std::move(tickets);

    // Admission rate over the saturated seconds (see below).
    const auto seconds = static_cast<std::size_t>(std::ceil(rec.ended_s)) + 1;
    const auto by_second = samples_by_second(rec, seconds);
    const auto admitted_series = rec.admitted.series(1.0);
    std::vector<double> sat_bench, sat_gateway, sat_called;
    double worst_gateway = 0;
    const sample* sat_first = nullptr;  // the saturated period, for the gateway's counters
    const sample* sat_last = nullptr;
    for (std::size_t k = 1; k + 1 < by_second.size(); ++k) {
        const sample* a = by_second[k];
        const sample* b = by_second[k + 1];
        if (!a || !b) continue;
        if (a->gateway_ok && b->gateway_ok) {
            const double dt = std::max(0.5, b->t_s - a->t_s);
            worst_gateway = std::max(worst_gateway, double(b->gateway_admitted_total - a->gateway_admitted_total) / dt);
        }
        // Saturated: at least a second's worth of people waiting at both ends of the second, so the
        // admitter had someone to call all along.
        const double need = std::max(1.0, room.rate);
        const bool waiting = a->gateway_ok
                                 ? (double(a->gateway_waiting) >= need && double(b->gateway_waiting) >= need)
                                 : (double(a->bench_waiting) >= need && double(b->bench_waiting) >= need);
        if (!waiting) continue;
        sat_bench.push_back(k < admitted_series.size() ? double(admitted_series[k]) : 0.0);
        if (a->gateway_ok && b->gateway_ok) {
            if (!sat_first) sat_first = a;
            sat_last = b;
            const double dt = std::max(0.5, b->t_s - a->t_s);
            sat_gateway.push_back(double(b->gateway_admitted_total - a->gateway_admitted_total) / dt);
            // The admin API's called_per_s is the cursor's advance, which also counts abandoned
            // places the cursor skipped; take those out (the bench's sample windows are not
            // the admin API's, so this is good to a few people per second).
            const double skipped = double(b->gateway_abandoned_total - a->gateway_abandoned_total) / dt;
            sat_called.push_back(std::max(0.0, b->gateway_called_per_s - skipped));
        }
    }
    auto mean = [](const std::vector<double>& v) -> json::value {
        if (v.empty()) return nullptr;
        double s = 0;
        for (double x : v) s += x;
        return round_to(s / double(v.size()), 2);
    };
    json::object adm;
    adm["configured_rate"] = room.rate;
    adm["rate_plus_burst"] = room.rate + double(room.burst);
    adm["saturated_seconds"] = sat_bench.size();
    adm["mean"] = mean(sat_bench);
    adm["worst_1s_window"] = rec.admitted.max_window(1.0);
    const auto minutes = sliding_means(sat_bench, std::min<std::size_t>(60, sat_bench.size()));
    if (!minutes.empty()) {
        adm["minute_mean_min"] = round_to(*std::min_element(minutes.begin(), minutes.end()), 2);
        adm["minute_mean_max"] = round_to(*std::max_element(minutes.begin(), minutes.end()), 2);
        adm["minute_window_s"] = std::min<std::size_t>(60, sat_bench.size());
    }
    adm["gateway_mean"] = mean(sat_gateway);
    adm["gateway_worst_1s"] = round_to(worst_gateway, 2);
    adm["gateway_called_mean"] = mean(sat_called);
    double called_max = 0;
    if (!sat_called.empty()) {
        called_max = *std::max_element(sat_called.begin(), sat_called.end());
        adm["gateway_called_max"] = round_to(called_max, 2);
    }
    // Calls from the gateway's counters: every call ends as an admission or a no-show.
    std::optional<double> calls_mean;
    if (sat_first && sat_last && sat_last->t_s - sat_first->t_s >= 1) {
        const double calls = double(sat_last->gateway_admitted_total + sat_last->gateway_noshows_total) -
                             double(sat_first->gateway_admitted_total + sat_first->gateway_noshows_total);
        calls_mean = calls / (sat_last->t_s - sat_first->t_s);
        adm["gateway_calls_mean"] = round_to(*calls_mean, 2);
    }
    r["admitted_per_s"] = std::move(adm);

    // The site.
    std::int64_t peak = 0;
    std::uint64_t over = 0, rejected = 0, site_seconds = 0, site_requests = 0, rps_peak = 0, busy_seconds = 0;
    for (const auto& s : rec.samples) {
        if (!s.site_ok) continue;
        ++site_seconds;
        if (s.site_requests > 0) ++busy_seconds;
        peak = std::max(peak, s.site_peak_in_flight);
        if (s.site_peak_in_flight > static_cast<std::int64_t>(sc.site.capacity)) ++over;
        rejected += s.site_rejected;
        site_requests += s.site_requests;
        rps_peak = std::max(rps_peak, s.site_requests);
    }
    json::object up;
    up["capacity"] = sc.site.capacity;
    up["hard_limit"] = sc.site.effective_hard_limit();
    up["peak_in_flight"] = peak;
    up["seconds_over_capacity"] = over;
    up["seconds_sampled"] = site_seconds;
    up["requests_total"] = site_requests;
    up["requests_per_s_peak"] = rps_peak;
    // Over the seconds in which the site served anything (so the idle end of the drain does not count).
    up["requests_per_s_mean"] = busy_seconds ? round_to(double(site_requests) / double(busy_seconds), 1) : 0.0;
    up["throughput_at_capacity_per_s"] =
        sc.site.base_latency_ms ? round_to(double(sc.site.capacity) * 1000.0 / double(sc.site.base_latency_ms), 1) : 0;
    up["rejected_over_hard_limit"] = rejected;
    r["upstream"] = std::move(up);

    r["wait_s"] = pcts(waits, 2);
    json::object eta = pcts(eta_abs, 2);
    eta["signed_p50"] = opt(percentile(eta_signed, 50), 2);
    eta["relative_p50"] = opt(percentile(eta_rel, 50), 3);
    eta["relative_p90"] = opt(percentile(eta_rel, 90), 3);
    r["eta_error_s"] = std::move(eta);
    r["position_increases"] = rec.position_increases;

    std::sort(line.begin(), line.end(), [](const stayed& a, const stayed& b) { return a.seq < b.seq; });
    std::vector<observed_admission> in_order;
    std::vector<std::uint64_t> pass_times;
    in_order.reserve(line.size());
    for (const auto& s : line) {
        in_order.push_back(s.o);
        pass_times.push_back(static_cast<std::uint64_t>(std::llround(s.o.admitted_s * 1e6)));
    }
    json::object fifo;
    fifo["people_compared"] = line.size();
    fifo["inversions"] = fifo_inversions(in_order);
    const std::uint64_t pass_order = kendall_tau_distance(pass_times);
    const double pairs = double(line.size()) * double(line.size() > 0 ? line.size() - 1 : 0) / 2;
    fifo["pass_order_kendall_tau"] = pass_order;
    fifo["pass_order_kendall_tau_normalized"] = pairs > 0 ? round_to(double(pass_order) / pairs, 6) : 0.0;
    r["fifo"] = std::move(fifo);

    json::object errors;
    std::uint64_t total_errors = 0;
    json::object kinds;
    for (const auto& [k, n] : rec.errors_by_kind) {
        kinds[k] = n;
        total_errors += n;
    }
    errors["total"] = total_errors;
    errors["by_kind"] = std::move(kinds);
    errors["double_admissions"] = rec.double_admissions;
    r["errors"] = std::move(errors);
    json::object outcomes;
    for (const auto& [k, n] : rec.outcomes) outcomes[k] = n;
    r["outcomes"] = std::move(outcomes);

    json::object reqs;
    reqs["joins"] = rec.joins;
    reqs["polls"] = rec.polls.total();
    reqs["polls_per_s_peak"] = rec.polls.max_window(1.0);
    reqs["polls_per_s_mean"] = round_to(rec.ended_s > 0 ? double(rec.polls.total()) / rec.ended_s : 0, 1);
    reqs["booking"] = rec.booking.total();
    reqs["releases"] = rec.releases;
    r["requests"] = std::move(reqs);

    // Processes.
    double gcpu_sum = 0, gcpu_peak = 0, bcpu_sum = 0, bcpu_peak = 0, grss_peak = 0, brss_peak = 0;
    std::uint64_t peak_waiting = 0;
    double rss_at_peak_waiting = 0;
    std::size_t n = 0;
    for (const auto& s : rec.samples) {
        ++n;
        gcpu_sum += s.gateway_cpu_percent;
        gcpu_peak = std::max(gcpu_peak, s.gateway_cpu_percent);
        bcpu_sum += s.bench_cpu_percent;
        bcpu_peak = std::max(bcpu_peak, s.bench_cpu_percent);
        grss_peak = std::max(grss_peak, s.gateway_rss_bytes);
        brss_peak = std::max(brss_peak, s.bench_rss_bytes);
        if (s.gateway_waiting > peak_waiting) {
            peak_waiting = s.gateway_waiting;
            rss_at_peak_waiting = s.gateway_rss_bytes;
        }
    }
    json::object gw;
    gw["cpu_percent_mean"] = n ? round_to(gcpu_sum / double(n), 1) : 0;
    gw["cpu_percent_peak"] = round_to(gcpu_peak, 1);
    gw["rss_mb_start"] = round_to(rec.baseline.gateway_rss_bytes / 1048576.0, 1);
    gw["rss_mb_peak"] = round_to(grss_peak / 1048576.0, 1);
    gw["peak_waiting"] = peak_waiting;
    gw["rss_mb_at_peak_waiting"] = round_to(rss_at_peak_waiting / 1048576.0, 1);
    if (peak_waiting > 0 && rec.baseline.gateway_rss_bytes > 0)
        gw["bytes_per_waiting_person"] =
            round_to(std::max(0.0, rss_at_peak_waiting - rec.baseline.gateway_rss_bytes) / double(peak_waiting), 1);
    else
        gw["bytes_per_waiting_person"] = nullptr;
    r["gateway"] = std::move(gw);
    json::object b;
    b["cpu_percent_mean"] = n ? round_to(bcpu_sum / double(n), 1) : 0;
    b["cpu_percent_peak"] = round_to(bcpu_peak, 1);
    b["rss_mb_peak"] = round_to(brss_peak / 1048576.0, 1);
    b["poll_lag_ms"] = pcts(rec.poll_lag_ms, 1);
    b["pool_wait_ms"] = pcts(rec.pool_wait_ms, 1);
    b["connections_opened_by_sessions"] = rec.connects;
    b["pool_connections"] = sc.bench.connections;
    r["bench"] = std::move(b);

    // The goals of issue 5, as measured here.
    json::object goals;
    goals["site_never_over_capacity"] = over == 0 && peak <= static_cast<std::int64_t>(sc.site.capacity);
    goals["no_position_increases"] = rec.position_increases == 0;
    goals["no_fifo_inversions"] = r["fifo"].as_object()["inversions"].as_uint64() == 0;
    goals["no_double_admissions"] = rec.double_admissions == 0;
    // Over at least a minute with a line: calls within 1% of the rate (or the burst a GCRA may
    // add over the window, if larger); never a second above rate + burst.
    if (calls_mean && sat_bench.size() >= 60 && room.rate > 0) {
        const double window_s = sat_last->t_s - sat_first->t_s;
        const double tolerance = std::max(0.01 * room.rate, double(room.burst) / window_s);
        goals["calls_within_1pct_of_rate"] = std::abs(*calls_mean - room.rate) <= tolerance;
    } else {
        goals["calls_within_1pct_of_rate"] = nullptr;
    }
    if (!sat_called.empty() && room.rate > 0)
        goals["called_per_s_within_rate_plus_burst"] = called_max <= room.rate + double(room.burst);
    else
        goals["called_per_s_within_rate_plus_burst"] = nullptr;
    r["goals"] = std::move(goals);
    return r;
}

std::string summary_text(const json::object& r) {
    std::ostringstream o;
    auto d = [&](std::string_view path) { return get_double(r, path); };
    auto num = [&](std::string_view path, int digits = 0) {
        const double v = d(path);
        if (std::isnan(v)) return std::string("-");
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f", digits, v);
        return std::string(buf);
    };
    const json::value* target = r.if_contains("target");
    o << "floodgate-bench: " << r.at("scenario").as_string().c_str() << " against "
      << (target && target->is_string() ? target->as_string().c_str() : "floodgate") << "  ("
      << r.at("started_at").as_string().c_str() << ", " << num("duration_s", 1) << " s)\n"
      << "  scale: " << r.at("scale").as_string().c_str() << "\n\n"
      << "people        arrived " << num("people.arrived") << " (" << num("people.with_several_devices")
      << " with several devices), admitted " << num("people.admitted") << " (" << num("people.admitted_at_once")
      << " at once), abandoned " << num("people.abandoned") << ", lost place " << num("people.lost_place")
      << ", not admitted by the end " << num("people.not_admitted_by_end") << " (got in: "
      << num("people.got_in_share", 3) << ")\n"
      << "refused       " << num("refusals.total") << " times, " << num("refusals.people_refused")
      << " people at least once; per person mean " << num("refusals.per_person_mean", 2) << ", p90 "
      << num("refusals.p90", 1) << ", max " << num("refusals.max") << "\n"
      << "arrivals/s    mean " << num("arrivals_per_s.mean", 1) << ", peak 1 s " << num("arrivals_per_s.peak_1s")
      << "; tickets issued " << num("tickets_issued.bench") << " (gateway " << num("tickets_issued.gateway") << ")\n"
      << "admitted/s    rate " << num("config.rate", 1) << " (+burst " << num("config.burst") << "): mean "
      << num("admitted_per_s.mean", 2) << " over " << num("admitted_per_s.saturated_seconds")
      << " saturated s, minute means " << num("admitted_per_s.minute_mean_min", 2) << ".."
      << num("admitted_per_s.minute_mean_max", 2) << ", worst 1 s window " << num("admitted_per_s.worst_1s_window")
      << "\n              gateway: admitted " << num("admitted_per_s.gateway_mean", 2) << "/s, worst second "
      << num("admitted_per_s.gateway_worst_1s", 1) << "; called "
      << num("admitted_per_s.gateway_calls_mean", 2) << "/s (admitted + no-shows), worst second "
      << num("admitted_per_s.gateway_called_max", 1) << "\n"
      << "site          capacity " << num("upstream.capacity") << " in flight: peak " << num("upstream.peak_in_flight")
      << ", seconds over capacity " << num("upstream.seconds_over_capacity") << " of "
      << num("upstream.seconds_sampled") << "; requests/s peak " << num("upstream.requests_per_s_peak") << ", mean "
      << num("upstream.requests_per_s_mean", 1) << " (at capacity "
      << num("upstream.throughput_at_capacity_per_s") << "), rejected " << num("upstream.rejected_over_hard_limit")
      << "\n"
      << "wait          p50 " << num("wait_s.p50", 1) << " s, p90 " << num("wait_s.p90", 1) << " s, p99 "
      << num("wait_s.p99", 1) << " s, max " << num("wait_s.max", 1) << " s\n"
      << "ETA error     p50 " << num("eta_error_s.p50", 1) << " s, p90 " << num("eta_error_s.p90", 1)
      << " s (relative p50 " << num("eta_error_s.relative_p50", 2) << ", p90 " << num("eta_error_s.relative_p90", 2)
      << "; actual - predicted p50 " << num("eta_error_s.signed_p50", 1) << " s)\n"
      << "order         position increases " << num("position_increases") << ", FIFO inversions "
      << num("fifo.inversions") << " among " << num("fifo.people_compared")
      << " who stayed (pass-receipt order: Kendall tau " << num("fifo.pass_order_kendall_tau_normalized", 4)
      << ", poll timing)\n"
      << "errors        " << num("errors.total");
    if (const auto* k = r.if_contains("errors"); k && k->is_object())
        for (const auto& [name, v] : k->as_object().at("by_kind").as_object()) o << "  " << name << "=" << v;
    o << "\noutcomes     ";
    for (const auto& [name, v] : r.at("outcomes").as_object()) o << " " << name << "=" << v;
    o << "\nrequests      joins " << num("requests.joins") << ", polls " << num("requests.polls") << " (peak "
      << num("requests.polls_per_s_peak") << "/s), booking " << num("requests.booking") << ", releases "
      << num("requests.releases") << "\n"
      << "gateway       CPU mean " << num("gateway.cpu_percent_mean", 1) << "% peak " << num("gateway.cpu_percent_peak", 1)
      << "%; RSS " << num("gateway.rss_mb_start", 1) << " -> peak " << num("gateway.rss_mb_peak", 1)
      << " MB; peak waiting " << num("gateway.peak_waiting") << ", " << num("gateway.bytes_per_waiting_person")
      << " bytes per waiting person\n"
      << "bench         CPU mean " << num("bench.cpu_percent_mean", 1) << "% peak " << num("bench.cpu_percent_peak", 1)
      << "%; RSS peak " << num("bench.rss_mb_peak", 1) << " MB; poll lag p99 " << num("bench.poll_lag_ms.p99", 1)
      << " ms, pool wait p99 " << num("bench.pool_wait_ms.p99", 1) << " ms\n"
      << "goals        ";
    for (const auto& [name, v] : r.at("goals").as_object())
        o << " " << name << "=" << (v.is_bool() ? (v.as_bool() ? "yes" : "NO") : "n/a");
    o << "\n";
    return o.str();
}

std::string timeline_tsv(const run_record& rec) {
    std::ostringstream o;
    o << "t\tarrivals\ttickets\tadmitted\tpolls\tbooking\terrors\tbench_waiting\tbench_in_session\tgw_waiting\t"
         "gw_active\tgw_admitted_per_s\tgw_called_per_s\tsite_peak_in_flight\tsite_requests\tsite_rejected\t"
         "gw_cpu\tgw_rss_mb\tbench_cpu\twait_p50\twait_p90\twait_max\n";
    const auto arrivals = rec.arrivals.series(1.0), tickets = rec.tickets.series(1.0),
               admitted = rec.admitted.series(1.0), polls = rec.polls.series(1.0), booking = rec.booking.series(1.0),
               errors = rec.errors.series(1.0);
    auto at = [](const std::vector<std::uint64_t>& v, std::size_t k) { return k < v.size() ? v[k] : 0; };
    // Waits of the people admitted in each second.
    std::vector<std::vector<double>> waits;
    for (const auto& p : rec.people) {
        if (p.admitted_s < 0) continue;
        const auto k = static_cast<std::size_t>(p.admitted_s);
        if (k >= waits.size()) waits.resize(k + 1);
        waits[k].push_back(std::max(0.0, p.admitted_s - p.arrived_s));
    }
    const sample* prev = &rec.baseline;
    for (const auto& s : rec.samples) {
        const auto k = static_cast<std::size_t>(std::max(0.0, std::floor(s.t_s - 0.5)));  // the second before
        const double dt = std::max(0.5, s.t_s - prev->t_s);
        const double gw_adm = (s.gateway_ok && prev->gateway_ok)
                                  ? double(s.gateway_admitted_total - prev->gateway_admitted_total) / dt
                                  : 0;
        // The cursor's advance less the abandoned places it skipped: the admitter's calls.
        const double called = (s.gateway_ok && prev->gateway_ok)
                                  ? std::max(0.0, s.gateway_called_per_s -
                                                      double(s.gateway_abandoned_total - prev->gateway_abandoned_total) / dt)
                                  : 0;
        std::vector<double> w = k < waits.size() ? waits[k] : std::vector<double>{};
        std::sort(w.begin(), w.end());
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "%.2f\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%.1f\t%.1f\t%lld\t%llu\t%llu\t"
                      "%.1f\t%.1f\t%.1f\t%s\t%s\t%s\n",
                      s.t_s, (unsigned long long)at(arrivals, k), (unsigned long long)at(tickets, k),
                      (unsigned long long)at(admitted, k), (unsigned long long)at(polls, k),
                      (unsigned long long)at(booking, k), (unsigned long long)at(errors, k),
                      (unsigned long long)s.bench_waiting, (unsigned long long)s.bench_in_session,
                      (unsigned long long)s.gateway_waiting, (unsigned long long)s.gateway_active, gw_adm,
                      called, (long long)s.site_peak_in_flight, (unsigned long long)s.site_requests,
                      (unsigned long long)s.site_rejected, s.gateway_cpu_percent, s.gateway_rss_bytes / 1048576.0,
                      s.bench_cpu_percent,
                      w.empty() ? "NaN" : std::to_string(*percentile_sorted(w, 50)).c_str(),
                      w.empty() ? "NaN" : std::to_string(*percentile_sorted(w, 90)).c_str(),
                      w.empty() ? "NaN" : std::to_string(w.back()).c_str());
        o << buf;
        prev = &s;
    }
    return o.str();
}

std::string people_tsv(const run_record& rec) {
    std::ostringstream o;
    o << "person\tarrived\tjoined\tadmitted\twait\teta_at_join\tseq\tabandoned\tat_once\tdevices\n";
    std::size_t i = 0;
    for (const auto& p : rec.people) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "%zu\t%.3f\t%.3f\t%.3f\t%s\t%.0f\t%s\t%d\t%d\t%d\n", i++, p.arrived_s,
                      p.joined_s, p.admitted_s,
                      p.admitted_s >= 0 ? std::to_string(std::max(0.0, p.admitted_s - p.arrived_s)).c_str() : "NaN",
                      p.eta_at_join_s, p.has_seq ? std::to_string(p.seq).c_str() : "NaN", p.abandoned ? 1 : 0,
                      p.at_once ? 1 : 0, int(p.devices));
        o << buf;
    }
    return o.str();
}

std::string gnuplot_script(const run_record& rec) {
    const scenario& sc = rec.sc;
    std::ostringstream o;
    o << "# floodgate-bench charts: gnuplot charts.gp (in the report directory)\n"
      << "rate = " << sc.gateway.room.rate << "\nburst = " << sc.gateway.room.burst
      << "\ncapacity = " << sc.site.capacity << "\nhard_limit = " << sc.site.effective_hard_limit() << "\n"
      << "set datafile separator '\\t'\nset datafile missing 'NaN'\nset key top right font ',9'\n"
      << "set grid lc rgb '#dddddd'\nset xlabel 'seconds' font ',9'\n"
      << "title = '" << sc.name << " (" << rec.started_at << ")'\n"
      << R"(do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1400,1000 font 'sans,10'; set output 'charts.png' } else { set terminal svg size 1400,1000 dynamic font 'sans,10'; set output 'charts.svg' }
  set multiplot layout 2,2 title title
  set title 'People waiting'
  set ylabel 'people'
  plot 'timeline.tsv' using 1:10 with lines lw 2 lc rgb '#1f77b4' title 'gateway: waiting', \
       '' using 1:8 with lines lw 1 dt 2 lc rgb '#ff7f0e' title 'bench: holding a ticket', \
       '' using 1:11 with lines lw 1 lc rgb '#2ca02c' title 'gateway: active (admitted)'
  set title 'Admitted per second vs the configured rate'
  set ylabel 'people / s'
  plot 'timeline.tsv' using 1:4 with steps lw 1 lc rgb '#1f77b4' title 'passes received (bench)', \
       '' using 1:12 with lines lw 1 lc rgb '#9467bd' title 'admitted (gateway)', \
       '' using 1:13 with lines lw 3 lc rgb '#2ca02c' title 'called (gateway admitter)', \
       rate with lines lw 2 dt 2 lc rgb '#d62728' title 'configured rate', \
       rate + burst with lines lw 1 dt 3 lc rgb '#ff9896' title 'rate + burst'
  set title 'Site: booking requests in flight vs its capacity'
  set ylabel 'in flight (peak per second)'
  set yrange [0:hard_limit * 1.05]
  plot 'timeline.tsv' using 1:14 with steps lw 2 lc rgb '#2ca02c' title 'peak in flight', \
       capacity with lines lw 2 dt 2 lc rgb '#d62728' title 'capacity', \
       hard_limit with lines lw 1 dt 3 lc rgb '#7f7f7f' title 'hard limit (503 above)'
  set yrange [*:*]
  set title 'Wait from arrival to pass, by the second of admission'
  set ylabel 'seconds'
  plot 'people.tsv' using 4:5 with points pt 7 ps 0.2 lc rgb '#aec7e8' title 'each person', \
       'timeline.tsv' using 1:20 with lines lw 2 lc rgb '#1f77b4' title 'p50', \
       '' using 1:21 with lines lw 2 lc rgb '#ff7f0e' title 'p90', \
       '' using 1:22 with lines lw 1 lc rgb '#d62728' title 'max'
  unset multiplot
  unset output
}
)";
    return o.str();
}

}  // namespace floodgate::bench
