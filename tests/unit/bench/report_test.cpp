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
