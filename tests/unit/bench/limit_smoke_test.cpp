// A short run of bench/limit_compare.sh with bench/scenarios/smoke.yaml: the same
// small crowd against floodgate and against nginx's limit_req/limit_conn, each in
// front of the demo site, for a few seconds. What a user of the comparison would
// notice must hold: both runs report, nginx refuses people under the overload while
// the waiting room refuses nobody, keeps the site under its capacity and lets people
// in in the order they came.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json::object read_json(const fs::path& p) {
    INFO("reading " << p.string());
    REQUIRE(fs::exists(p));
    json::value v = json::parse(read_file(p));
    REQUIRE(v.is_object());
    return v.as_object();
}

struct comparison {
    json::object floodgate, nginx, compare;
    std::string table;
};

const comparison& run_once() {
    static comparison c = [] {
        const fs::path dir = fs::temp_directory_path() / ("floodgate-limit-smoke-" + std::to_string(::getpid()));
        fs::remove_all(dir);
        const std::string log = dir.string() + ".log";
        const std::string cmd = std::string("FLOODGATE_BIN='") + FLOODGATE_BIN + "' BOOKING_BIN='" + BOOKING_BIN +
                                "' BENCH_BIN='" + BENCH_BIN + "' NGINX_BIN='" + NGINX_BIN + "' '" +
                                FLOODGATE_LIMIT_COMPARE_SH + "' '" + FLOODGATE_SMOKE_SCENARIO + "' --quiet --out '" +
                                dir.string() + "' > '" + log + "' 2>&1";
        const int rc = std::system(cmd.c_str());
        INFO("bench/limit_compare.sh output:\n" << read_file(log));
        REQUIRE(rc == 0);
        comparison out;
        out.floodgate = read_json(dir / "floodgate" / "report.json");
        out.nginx = read_json(dir / "nginx-limit" / "report.json");
        out.compare = read_json(dir / "compare.json");
        out.table = read_file(dir / "compare.md");
        fs::remove_all(dir);
        fs::remove(log);
        return out;
    }();
    return c;
}

const json::value& at(const json::object& o, std::initializer_list<const char*> path) {
    const json::value* v = nullptr;
    const json::object* cur = &o;
    for (const char* k : path) {
        INFO("key " << k);
        REQUIRE(cur != nullptr);
        v = cur->if_contains(k);
        REQUIRE(v != nullptr);
        cur = v->if_object();
    }
    return *v;
}

double num(const json::object& o, std::initializer_list<const char*> path) {
    const json::value& v = at(o, path);
    REQUIRE(v.is_number());
    return v.to_number<double>();
}

}  // namespace

// One test (ctest runs each test in its own process, and a comparison takes half a minute).
TEST_CASE("nginx's limiter refuses people where the waiting room gives them a place in line", "[smoke][limit]") {
    const auto& c = run_once();
    const auto& fg = c.floodgate;
    const auto& ng = c.nginx;
    INFO("floodgate: " << json::serialize(fg));
    INFO("nginx-limit: " << json::serialize(ng));
    // Both runs are of the same crowd, and each says which front it ran against.
    CHECK(at(fg, {"target"}).as_string() == "floodgate");
    CHECK(at(ng, {"target"}).as_string() == "nginx-limit");
    CHECK(num(fg, {"people", "arrived"}) == num(ng, {"people", "arrived"}));
    // Under the overload nginx turns people away, and they come back refreshing; some get in.
    CHECK(num(ng, {"refusals", "total"}) > 0);
    CHECK(num(ng, {"refusals", "people_refused"}) > 0);
    CHECK(num(ng, {"refusals", "total"}) > num(ng, {"refusals", "people_refused"}));  // some more than once
    CHECK(num(ng, {"people", "admitted"}) > 0);
    CHECK(num(ng, {"upstream", "seconds_sampled"}) > 0);
    // The waiting room refuses nobody, keeps the site under its capacity and the line in order.
    CHECK(num(fg, {"refusals", "total"}) == 0);
    CHECK(num(fg, {"people", "admitted"}) > 0);
    CHECK(num(fg, {"upstream", "seconds_sampled"}) > 0);
    CHECK(num(fg, {"upstream", "seconds_over_capacity"}) == 0);
    CHECK(num(fg, {"fifo", "people_compared"}) > 0);
    CHECK(num(fg, {"fifo", "inversions"}) == 0);
    // The side-by-side table is written, with both columns.
    CHECK(c.table.find("| | floodgate | nginx limit_req + limit_conn |") != std::string::npos);
    CHECK(c.table.find("FIFO inversions") != std::string::npos);
    CHECK(at(c.compare, {"rows"}).as_array().size() > 10);
}
