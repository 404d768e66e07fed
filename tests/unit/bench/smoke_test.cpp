// A short run of the whole bench (bench/run.sh with bench/scenarios/smoke.yaml):
// the demo site, the gateway and floodgate-bench for a few seconds at a small
// scale. The report must keep the invariants the bench exists to show, so a
// change that breaks the bench (or the gateway's protocol) fails here.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace json = boost::json;

namespace {

const json::object& run_smoke_once() {
    static json::object report = [] {
        const auto dir = std::filesystem::temp_directory_path() /
                         ("floodgate-bench-smoke-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        const std::string cmd = std::string("FLOODGATE_BIN='") + FLOODGATE_BIN + "' BOOKING_BIN='" + BOOKING_BIN +
                                "' BENCH_BIN='" + BENCH_BIN + "' '" + FLOODGATE_RUN_SH + "' '" +
                                FLOODGATE_SMOKE_SCENARIO + "' --out '" + dir.string() + "' --no-charts > '" +
                                dir.string() + ".log' 2>&1";
        const int rc = std::system(cmd.c_str());
        std::ifstream log(dir.string() + ".log");
        std::stringstream text;
        text << log.rdbuf();
        INFO("bench/run.sh output:\n" << text.str());
        REQUIRE(rc == 0);
        std::ifstream in(dir / "report.json");
        std::stringstream ss;
        ss << in.rdbuf();
        json::value v = json::parse(ss.str());
        REQUIRE(v.is_object());
        std::filesystem::remove_all(dir);
        std::filesystem::remove(dir.string() + ".log");
        return v.as_object();
    }();
    return report;
}

double at(const json::object& o, std::initializer_list<const char*> path) {
    const json::value* v = nullptr;
    const json::object* cur = &o;
    for (const char* k : path) {
        v = cur->if_contains(k);
        REQUIRE(v != nullptr);
        if (v->is_object()) cur = &v->as_object();
    }
    REQUIRE(v->is_number());
    return v->to_number<double>();
}

}  // namespace

// One test (ctest runs each test in its own process, and a run takes seconds).
TEST_CASE("a smoke run admits people in order and never pushes the site past its capacity", "[smoke]") {
    const auto& r = run_smoke_once();
    INFO(json::serialize(r));
    // People got through, and the site was never over capacity.
    CHECK(at(r, {"people", "admitted"}) > 0);
    CHECK(at(r, {"tickets_issued", "bench"}) > 0);
    CHECK(at(r, {"upstream", "seconds_sampled"}) > 0);
    CHECK(at(r, {"upstream", "seconds_over_capacity"}) == 0);
    CHECK(at(r, {"upstream", "peak_in_flight"}) <= at(r, {"upstream", "capacity"}));
    CHECK(at(r, {"upstream", "rejected_over_hard_limit"}) == 0);
    // Every place in line kept, and the line's order.
    CHECK(at(r, {"position_increases"}) == 0);
    CHECK(at(r, {"fifo", "people_compared"}) > 0);
    CHECK(at(r, {"fifo", "inversions"}) == 0);
    CHECK(at(r, {"errors", "double_admissions"}) == 0);
    // No unexpected errors, and the gateway's own numbers were read.
    CHECK(at(r, {"errors", "total"}) == 0);
    CHECK(at(r, {"gateway", "peak_waiting"}) > 0);
    CHECK(at(r, {"gateway", "rss_mb_peak"}) > 0);
    CHECK(at(r, {"bench", "cpu_percent_peak"}) > 0);
    // The scenario's abandoners and people with several devices were there.
    CHECK(at(r, {"people", "abandoned"}) > 0);
    CHECK(at(r, {"people", "with_several_devices"}) > 0);
}
