// floodgate-bench: a crowd of simulated people following the waiting-room
// protocol against a running gateway, and a report of what they and the site
// behind it saw. bench/run.sh starts the site and the gateway and runs this;
// docs/bench.md explains the report.
#include <sys/stat.h>

#include <csignal>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "crowd.hpp"
#include "gateway/net.hpp"
#include "loadgen/report.hpp"
#include "loadgen/scenario.hpp"
#include "sampler.hpp"

namespace {

using namespace floodgate;
using namespace floodgate::bench;

const char* usage = R"(usage: floodgate-bench SCENARIO.yaml --gateway HOST:PORT [options]
       floodgate-bench --check SCENARIO.yaml
       floodgate-bench --gateway-config SCENARIO.yaml --site HOST:PORT
       floodgate-bench --site-args SCENARIO.yaml
       floodgate-bench --nginx-limits SCENARIO.yaml

Runs the scenario's crowd against a running gateway and writes the report.
bench/run.sh starts the demo site and the gateway for you (see docs/bench.md).

options:
  --gateway HOST:PORT   the gateway's public listener (or nginx's, with --target nginx-limit)
  --target T            floodgate (the default): people follow the waiting-room protocol;
                        nginx-limit: nginx's limit_req/limit_conn in front of the site
                        (bench/limit_compare.sh): a person refused with 429 or 503 reloads
                        the page after people.refresh (default 1s..5s) until it comes back
                        200 or their patience ends, then books like everyone else
  --site HOST:PORT      the demo site (its /api/stats: load in flight, requests)
  --admin HOST:PORT     the gateway's admin listener (room stats once a second);
                        the bearer token comes from FLOODGATE_BENCH_ADMIN_TOKEN
  --gateway-pid PID     the gateway's process, for CPU and memory from /proc (with its
                        child processes: nginx's workers)
  --out DIR             where report.json, summary.txt, timeline.tsv, people.tsv and
                        charts.gp go [.]
  --scale F             multiply the arrival segments' durations (so the number of
                        people, at the same rates) and the drain by F, e.g. 0.25
  --quiet               no progress line every 5 seconds
  --check               validate the scenario and print what it runs
  --gateway-config      print the floodgate config for the scenario
  --site-args           print the demo site's arguments, one per line
  --nginx-limits        print what bench/peers/nginx-limit.conf.in is filled with, as
                        NAME=VALUE lines: rate (the room's rate, as nginx writes it), burst,
                        conn (the site's capacity), workers (the gateway's threads), entry
                        (the first page people ask for)
)";

std::optional<tcp::endpoint> parse_endpoint(const std::string& s) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    error_code ec;
    auto addr = net::ip::make_address(s.substr(0, colon), ec);
    if (ec) return std::nullopt;
    char* end = nullptr;
    const long port = std::strtol(s.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) return std::nullopt;
    return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

bool write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    return static_cast<bool>(out);
}

std::string utc_now() {
    char buf[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string scenario_path, gateway, site, admin, out_dir = ".", mode = "run", target = "floodgate";
    int gateway_pid = 0;
    double scale = 1;
    bool quiet = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= args.size()) {
                std::cerr << "floodgate-bench: " << a << ": missing value\n";
                std::exit(2);
            }
            return args[++i];
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return 0;
        } else if (a == "--gateway") gateway = value();
        else if (a == "--site") site = value();
        else if (a == "--admin") admin = value();
        else if (a == "--gateway-pid") gateway_pid = std::atoi(value().c_str());
        else if (a == "--out") out_dir = value();
        else if (a == "--scale") {
            scale = std::atof(value().c_str());
            if (!(scale > 0 && scale <= 100)) {
                std::cerr << "floodgate-bench: --scale: expected a number above 0, such as 0.25\n";
                return 2;
            }
        } else if (a == "--quiet") quiet = true;
        else if (a == "--check") mode = "check";
        else if (a == "--gateway-config") mode = "gateway-config";
        else if (a == "--site-args") mode = "site-args";
        else if (a == "--nginx-limits") mode = "nginx-limits";
        else if (a == "--target") {
            target = value();
            if (target != "floodgate" && target != "nginx-limit") {
                std::cerr << "floodgate-bench: --target: expected floodgate or nginx-limit, got \"" << target << "\"\n";
                return 2;
            }
        }
        else if (!a.empty() && a[0] != '-' && scenario_path.empty()) scenario_path = a;
        else {
            std::cerr << "floodgate-bench: unknown argument \"" << a << "\"\n\n" << usage;
            return 2;
        }
    }
    if (scenario_path.empty()) {
        std::cerr << usage;
        return 2;
    }
    auto loaded = load_scenario(scenario_path);
    if (!loaded.ok()) {
        std::cerr << "floodgate-bench: " << loaded.status().message() << "\n";
        return 2;
    }
    scenario sc = std::move(*loaded);
    if (scale != 1) scale_scenario(sc, scale);

    if (mode == "check") {
        std::cout << sc.name << ": " << sc.expected_people() << " people over " << sc.arrival_duration_s()
                  << " s, room " << sc.gateway.room.name << " at " << sc.gateway.room.rate << "/s, max_active "
                  << sc.gateway.room.max_active << "; site capacity " << sc.site.capacity << "\n";
        return 0;
    }
    if (mode == "gateway-config") {
        if (site.empty()) {
            std::cerr << "floodgate-bench: --gateway-config needs --site HOST:PORT\n";
            return 2;
        }
        std::cout << gateway_config_yaml(sc, site);
        return 0;
    }
    if (mode == "nginx-limits") {
        const room_settings& room = sc.gateway.room;
        if (!(room.rate > 0)) {
            std::cerr << "floodgate-bench: " << scenario_path << ": the room has no rate to give limit_req\n";
            return 2;
        }
        // nginx takes whole requests per second or per minute.
        const double per_s = room.rate;
        if (per_s == std::floor(per_s)) std::cout << "rate=" << static_cast<long long>(per_s) << "r/s\n";
        else std::cout << "rate=" << std::max(1LL, std::llround(per_s * 60)) << "r/m\n";
        std::cout << "burst=" << room.burst << "\nconn=" << sc.site.capacity << "\nworkers=" << sc.gateway.threads
                  << "\nentry=" << sc.people.requests.front().path << "\n";
        return 0;
    }
    if (mode == "site-args") {
        for (const auto& a : site_arguments(sc)) std::cout << a << "\n";
        return 0;
    }

    auto gw = parse_endpoint(gateway);
    if (!gw) {
        std::cerr << "floodgate-bench: --gateway: expected HOST:PORT such as 127.0.0.1:8080, got \"" << gateway
                  << "\"\n";
        return 2;
    }
    sampler::targets targets;
    targets.room = sc.gateway.room.name;
    targets.gateway_pid = gateway_pid;
    if (!site.empty() && !(targets.site = parse_endpoint(site))) {
        std::cerr << "floodgate-bench: --site: expected HOST:PORT, got \"" << site << "\"\n";
        return 2;
    }
    if (!admin.empty()) {
        if (!(targets.admin = parse_endpoint(admin))) {
            std::cerr << "floodgate-bench: --admin: expected HOST:PORT, got \"" << admin << "\"\n";
            return 2;
        }
        if (const char* t = std::getenv("FLOODGATE_BENCH_ADMIN_TOKEN")) targets.admin_token = t;
    }
    ::mkdir(out_dir.c_str(), 0755);

    run_record rec;
    rec.sc = sc;
    rec.target = target;
    rec.started_at = utc_now();
    net::io_context io(1);
    const auto t0 = std::chrono::steady_clock::now();
    sampler samp(io.get_executor(), targets, t0);
    crowd people(io.get_executor(), sc, *gw, rec, t0,
                 target == "nginx-limit" ? crowd::target::nginx_limit : crowd::target::floodgate);
    if (!quiet)
        std::cerr << "floodgate-bench: " << sc.name << ": about " << std::llround(sc.expected_people())
                  << " people over " << sc.arrival_duration_s() << " s against " << target << " at " << gateway
                  << "\n";

    // Ctrl-C or SIGTERM: stop the crowd and write the report of what was seen so far.
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const error_code& ec, int) {
        if (ec) return;
        std::cerr << "floodgate-bench: stopping early; the report covers the run so far\n";
        people.stop();
    });
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            rec.baseline = co_await samp.sample_once();
            net::co_spawn(io, samp.run(rec, [&](sample& s) {
                s.bench_waiting = people.waiting();
                s.bench_in_session = people.in_session();
                const auto k = static_cast<long>(s.t_s + 0.5);
                if (!quiet && k % 5 == 0)
                    std::fprintf(stderr,
                                 "  t=%4lds arrived %zu waiting %llu (gateway %llu) in session %llu admitted %llu "
                                 "site peak %lld errors %llu | cpu gateway %.0f%% bench %.0f%%\n",
                                 k, rec.people.size(), (unsigned long long)s.bench_waiting,
                                 (unsigned long long)s.gateway_waiting, (unsigned long long)s.bench_in_session,
                                 (unsigned long long)rec.admitted.total(), (long long)s.site_peak_in_flight,
                                 (unsigned long long)rec.errors.total(), s.gateway_cpu_percent, s.bench_cpu_percent);
            }), net::detached);
            co_await people.run();
            signals.cancel();
            samp.stop();
            io.stop();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();

    const auto report = build_report(rec);
    const std::string summary = summary_text(report);
    bool ok = write_text(out_dir + "/report.json", boost::json::serialize(report) + "\n");
    ok = write_text(out_dir + "/summary.txt", summary) && ok;
    ok = write_text(out_dir + "/timeline.tsv", timeline_tsv(rec)) && ok;
    ok = write_text(out_dir + "/people.tsv", people_tsv(rec)) && ok;
    ok = write_text(out_dir + "/charts.gp", gnuplot_script(rec)) && ok;
    std::cout << summary;
    if (!ok) {
        std::cerr << "floodgate-bench: cannot write the report into " << out_dir << "\n";
        return 1;
    }
    std::cout.flush();
    // People still in line hold coroutine frames on the stopped io_context; nothing of theirs
    // needs tearing down, so leave without unwinding them.
    std::_Exit(0);
}
