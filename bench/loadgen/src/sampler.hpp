// Once a second: the demo site's load counters (GET /api/stats, then POST
// /api/stats/reset so the next peak is that second's own), the room's stats
// from the gateway's admin API, and CPU and memory of the gateway and of the
// bench itself from /proc.
//
//   sampler s(ex, {.site = site_ep, .admin = admin_ep, .token = tok, .room = "vaccine",
//                  .gateway_pid = pid}, t0);
//   rec.baseline = co_await s.sample_once();
//   net::co_spawn(ex, s.run(rec, crowd), net::detached);  ...  s.stop();
//
// The one thing not to get wrong: the site's peak is reset after each read, so
// the samples must be the only reader that resets it during a run.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "gateway/net.hpp"
#include "http_client.hpp"
#include "loadgen/report.hpp"

namespace floodgate::bench {

class sampler {
public:
    struct targets {
        std::optional<tcp::endpoint> site;
        std::optional<tcp::endpoint> admin;
        std::string admin_token;
        std::string room;
        int gateway_pid = 0;
    };

    sampler(net::any_io_executor ex, targets t, std::chrono::steady_clock::time_point t0);

    net::awaitable<sample> sample_once();
    // Appends a sample every second to rec.samples until stop(); bench_state fills the bench's
    // own columns (waiting, in session).
    net::awaitable<void> run(run_record& rec, std::function<void(sample&)> bench_state);
    void stop() { stopped_ = true; }

private:
    struct proc_reading {
        double cpu_s = 0;
        double rss_bytes = 0;
        bool ok = false;
    };
    static proc_reading read_proc(const std::string& pid);
    double now_s() const;

    net::any_io_executor ex_;
    targets t_;
    std::chrono::steady_clock::time_point t0_;
    std::optional<connection> site_conn_, admin_conn_;
    proc_reading last_gateway_, last_self_;
    double last_t_ = 0;
    bool stopped_ = false;
};

}  // namespace floodgate::bench
