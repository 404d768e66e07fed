#include <catch2/catch.hpp>

#include "loadgen/report.hpp"

using namespace floodgate::bench;

namespace {

run_record small_run() {
    run_record rec;
    auto s = parse_scenario(R"(name: r
models: m
scale: s
site: {capacity: 10}
gateway: {room: {name: r, admission: {rate: 2, burst: 1, max_active: 10}}}
people: {arrivals: [{duration: 4s, people: 4}]}
)", "r.yaml");
    REQUIRE(s.ok());
    rec.sc = *s;
    rec.started_at = "2026-01-01T00:00:00Z";
    rec.ended_s = 5;
    rec.arrivals_end_s = 4;
    // Four people: joined in seq order 0..3, admitted one a second (the last two swapped
    // within one poll interval: not a certain inversion).
    for (int i = 0; i < 4; ++i) {
        person_record p;
        p.seq = static_cast<std::uint64_t>(i);
        p.has_seq = true;
        p.arrived_s = 0.1 * i;
        p.joined_s = p.arrived_s;
        p.eta_at_join_s = i + 1;
        p.last_waiting_s = i + 0.5;
        p.admitted_s = i + 1.0;
        rec.people.push_back(p);
        rec.arrivals.add(p.arrived_s);
        rec.admitted.add(p.admitted_s);
    }
    rec.people[3].admitted_s = 3.4;
    rec.people[2].admitted_s = 3.6;
    rec.people[3].last_waiting_s = 3.0;
    for (int k = 1; k <= 5; ++k) {
        sample smp;
        smp.t_s = k;
        smp.site_ok = true;
        smp.site_peak_in_flight = k == 3 ? 11 : 4;
        smp.site_requests = 10;
        rec.samples.push_back(smp);
    }
    return rec;
}

}  // namespace

TEST_CASE("the report counts seconds over the site's capacity", "[report]") {
    auto r = build_report(small_run());
    CHECK(r["upstream"].as_object()["seconds_over_capacity"].as_uint64() == 1);
    CHECK(r["upstream"].as_object()["peak_in_flight"].as_int64() == 11);
    CHECK(r["goals"].as_object()["site_never_over_capacity"].as_bool() == false);
}

TEST_CASE("the report separates certain FIFO inversions from poll-timing reorderings", "[report][fifo]") {
    auto r = build_report(small_run());
    auto& fifo = r["fifo"].as_object();
    CHECK(fifo["people_compared"].as_uint64() == 4);
    CHECK(fifo["inversions"].as_uint64() == 0);
    CHECK(fifo["pass_order_kendall_tau"].as_uint64() == 1);
    CHECK(r["goals"].as_object()["no_fifo_inversions"].as_bool());
}

TEST_CASE("the report gives wait and ETA error percentiles", "[report]") {
    auto r = build_report(small_run());
    CHECK(r["wait_s"].as_object()["count"].as_uint64() == 4);
    CHECK(r["people"].as_object()["admitted"].as_uint64() == 4);
    const std::string text = summary_text(r);
    CHECK(text.find("floodgate-bench: r") == 0);
    CHECK(text.find("seconds over capacity 1") != std::string::npos);
    CHECK(!timeline_tsv(small_run()).empty());
    CHECK(gnuplot_script(small_run()).find("charts.svg") != std::string::npos);
}

namespace {

// Five people in front of a plain limiter (nginx-limit): no tickets, refusals instead of a
// place in line. 0 is let in at once; 1 and 2 are refused and get in later, 2 (the later
// arrival) before 1 is refused for the last time; 3 gives up after two refusals; 4 is still
// refreshing at the end.
run_record limiter_run() {
    run_record rec = small_run();
    rec.target = "nginx-limit";
    rec.people.clear();
    auto add = [&](double arrived, std::uint32_t refusals, double last_refused, double in) {
        person_record p;
        p.seq = rec.people.size();
        p.has_seq = true;
        p.arrived_s = arrived;
        p.joined_s = arrived;
        p.refusals = refusals;
        p.last_waiting_s = last_refused;
        p.admitted_s = in;
        p.at_once = in >= 0 && refusals == 0;
        rec.people.push_back(p);
    };
    add(0.0, 0, -1, 0.05);
    add(0.1, 3, 4.0, 6.0);
    add(0.2, 1, 0.2, 2.0);
    add(0.3, 2, 3.0, -1);
    rec.people.back().abandoned = true;
    add(0.4, 5, 4.5, -1);
    rec.refusals_by_kind["limit_req_429"] = 10;
    rec.refusals_by_kind["limit_conn_503"] = 1;
    return rec;
}

}  // namespace

TEST_CASE("a run against a plain limiter reports refusals and who got in out of arrival order", "[report][limit]") {
    auto r = build_report(limiter_run());
    CHECK(r["target"].as_string() == "nginx-limit");
    auto& people = r["people"].as_object();
    CHECK(people["arrived"].as_uint64() == 5);
    CHECK(people["admitted"].as_uint64() == 3);
    CHECK(people["admitted_at_once"].as_uint64() == 1);
    CHECK(people["abandoned"].as_uint64() == 1);
    CHECK(people["not_admitted_by_end"].as_uint64() == 1);
    CHECK(people["got_in_share"].as_double() == Approx(0.6));
    auto& ref = r["refusals"].as_object();
    CHECK(ref["total"].as_uint64() == 11);
    CHECK(ref["people_refused"].as_uint64() == 4);
    CHECK(ref["per_person_mean"].as_double() == Approx(2.2));
    CHECK(ref["p50"].as_double() == Approx(2));
    CHECK(ref["max"].as_double() == Approx(5));
    CHECK(ref["by_kind"].as_object()["limit_req_429"].as_uint64() == 10);
    // 1 and 2 waited and got in; 2 arrived later and was in (2.0 s) before 1 was last refused
    // (4.0 s): one certain inversion, and their order of getting in is reversed.
    auto& fifo = r["fifo"].as_object();
    CHECK(fifo["people_compared"].as_uint64() == 2);
    CHECK(fifo["inversions"].as_uint64() == 1);
    CHECK(fifo["pass_order_kendall_tau"].as_uint64() == 1);
    CHECK(r["goals"].as_object()["no_fifo_inversions"].as_bool() == false);
    const std::string text = summary_text(r);
    CHECK(text.find("against nginx-limit") != std::string::npos);
    CHECK(text.find("refused       11 times, 4 people at least once") != std::string::npos);
}

TEST_CASE("a waiting-room run refuses nobody who gets a place in line", "[report][limit]") {
    auto r = build_report(small_run());
    CHECK(r["target"].as_string() == "floodgate");
    CHECK(r["refusals"].as_object()["total"].as_uint64() == 0);
    CHECK(r["refusals"].as_object()["people_refused"].as_uint64() == 0);
    CHECK(r["people"].as_object()["got_in_share"].as_double() == Approx(1.0));
}
