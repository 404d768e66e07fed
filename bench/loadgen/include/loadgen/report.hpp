// What one floodgate-bench run recorded, and the report made from it: the
// JSON file, the human summary, the per-second timeline and per-person table
// the charts are drawn from, and the gnuplot script that draws them.
//
//   run_record rec = ...;            // filled by the crowd and the sampler
//   boost::json::object r = build_report(rec);
//   std::cout << summary_text(r);
//
// The one thing not to get wrong: every number here is measured from outside
// the gateway (what people and the demo site saw), except the rows marked
// gateway_* which come from its admin API and /proc.
//
// The same record describes a run against nginx's limit_req/limit_conn
// (target "nginx-limit"): there is no ticket, a person's place in the join
// order is their arrival, "waiting" means refused and about to refresh, and
// "admitted" means the first page came back with 200.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "loadgen/scenario.hpp"
#include "loadgen/stats.hpp"

namespace floodgate::bench {

struct person_record {
    std::uint64_t seq = 0;
    bool has_seq = false;
    double arrived_s = -1;
    double joined_s = -1;        // the ticket arrived (send time of the join)
    double eta_at_join_s = -1;   // eta_s in that answer; -1 unknown
    double last_waiting_s = -1;  // send time of the last answer that said "waiting"
    double admitted_s = -1;      // the pass arrived; -1 never
    bool at_once = false;        // admitted without waiting (no ticket)
    bool abandoned = false;      // stopped polling on purpose
    bool lost_place = false;     // the gateway said "expired" while the person still waited
    std::uint8_t devices = 1;
    std::uint32_t refusals = 0;  // answers that refused the person (429, 503, full, ...) instead of a
                                 // page or a place in line, over all their devices
};

// One row per second of the run, sampled by the bench.
struct sample {
    double t_s = 0;
    bool site_ok = false;                    // GET /api/stats of the demo site answered
    std::int64_t site_in_flight = 0;         // at the sample
    std::int64_t site_peak_in_flight = 0;    // highest since the previous sample
    std::uint64_t site_requests = 0;         // booking requests since the previous sample
    std::uint64_t site_rejected = 0;         // 503 over the hard limit since the previous sample
    bool gateway_ok = false;                 // GET /admin/v1/rooms/<room> answered
    std::uint64_t gateway_waiting = 0, gateway_active = 0, gateway_issued_total = 0;
    std::uint64_t gateway_admitted_total = 0, gateway_abandoned_total = 0, gateway_noshows_total = 0;
    double gateway_called_per_s = 0;
    double gateway_cpu_percent = 0;          // of one core, over the last interval
    double gateway_rss_bytes = 0;
    double bench_cpu_percent = 0;
    double bench_rss_bytes = 0;
    std::uint64_t bench_waiting = 0;         // people holding a ticket
    std::uint64_t bench_in_session = 0;      // people holding a pass
};

struct run_record {
    scenario sc;
    std::string target = "floodgate";  // floodgate | nginx-limit (see floodgate-bench --help)
    std::string started_at;  // ISO 8601, UTC
    double arrivals_end_s = 0;
    double ended_s = 0;
    std::deque<person_record> people;  // in arrival order (a deque: references stay valid)
    event_counter arrivals, tickets, admitted, polls, booking, errors;
    std::map<std::string, std::uint64_t> errors_by_kind;  // something went wrong
    std::map<std::string, std::uint64_t> outcomes;        // expected events worth counting
    std::map<std::string, std::uint64_t> refusals_by_kind;  // what refused people saw (limit_req_429, ...)
    std::uint64_t position_increases = 0;
    std::uint64_t joins = 0, releases = 0, double_admissions = 0;
    std::vector<double> poll_lag_ms;   // a poll's send time after the time the server asked for
    std::vector<double> pool_wait_ms;  // time a waiting person's request waited for a pooled connection
    std::uint64_t connects = 0;
    sample baseline;  // before the first arrival
    std::vector<sample> samples;
};

boost::json::object build_report(const run_record& rec);
std::string summary_text(const boost::json::object& report);
// Tab-separated, with a header line: one row per sample (timeline) and per person (people).
std::string timeline_tsv(const run_record& rec);
std::string people_tsv(const run_record& rec);
// Draws charts.png and charts.svg from timeline.tsv and people.tsv in the same directory.
std::string gnuplot_script(const run_record& rec);

}  // namespace floodgate::bench
