#include "sampler.hpp"

#include <unistd.h>

#include <boost/json.hpp>

#include <fstream>
#include <sstream>

namespace floodgate::bench {

namespace json = boost::json;
using namespace std::chrono_literals;

sampler::sampler(net::any_io_executor ex, targets t, std::chrono::steady_clock::time_point t0)
    : ex_(std::move(ex)), t_(std::move(t)), t0_(t0) {
    if (t_.site) site_conn_.emplace(ex_, *t_.site);
    if (t_.admin) admin_conn_.emplace(ex_, *t_.admin);
}

double sampler::now_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

sampler::proc_reading sampler::read_proc(const std::string& pid) {
    proc_reading out;
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return out;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return out;
    std::istringstream fields(line.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {  // field 3 is the state
        if (i == 14) utime = std::stoull(f);
        if (i == 15) {
            stime = std::stoull(f);
            break;
        }
    }
    out.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::ifstream status("/proc/" + pid + "/status");
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            out.rss_bytes = std::stod(line.substr(6)) * 1024;
            break;
        }
    }
    out.ok = true;
    return out;
}

net::awaitable<sample> sampler::sample_once() {
    sample s;
    const auto timeout = 2000ms;
    if (site_conn_) {
        request req{http::verb::get, "/api/stats", 11};
        req.set(http::field::host, "site");
        response res;
        if (!co_await site_conn_->exchange(req, res, timeout) && res.result_int() == 200) {
            error_code ec;
            json::value v = json::parse(res.body(), ec);
            if (!ec && v.is_object()) {
                const auto& o = v.get_object();
                auto num = [&](const char* k) -> std::int64_t {
                    const json::value* x = o.if_contains(k);
                    return x && x->is_number() ? x->to_number<std::int64_t>() : 0;
                };
                s.site_ok = true;
                s.site_in_flight = num("in_flight");
                s.site_peak_in_flight = num("max_in_flight");
                s.site_requests = static_cast<std::uint64_t>(num("requests_total"));
                s.site_rejected = static_cast<std::uint64_t>(num("rejected_total"));
            }
            request reset{http::verb::post, "/api/stats/reset", 11};
            reset.set(http::field::host, "site");
            reset.prepare_payload();
            co_await site_conn_->exchange(reset, res, timeout);
        }
    }
    if (admin_conn_) {
        request req{http::verb::get, "/admin/v1/rooms/" + t_.room, 11};
        req.set(http::field::host, "admin");
        req.set(http::field::authorization, "Bearer " + t_.admin_token);
        response res;
        if (!co_await admin_conn_->exchange(req, res, timeout) && res.result_int() == 200) {
            error_code ec;
            json::value v = json::parse(res.body(), ec);
            const json::object* stats = nullptr;
            if (!ec && v.is_object())
                if (const json::value* x = v.get_object().if_contains("stats"); x && x->is_object())
                    stats = &x->get_object();
            if (stats) {
                auto num = [&](const char* k) -> double {
                    const json::value* x = stats->if_contains(k);
                    return x && x->is_number() ? x->to_number<double>() : 0;
                };
                s.gateway_ok = true;
                s.gateway_waiting = static_cast<std::uint64_t>(num("waiting"));
                s.gateway_active = static_cast<std::uint64_t>(num("active"));
                s.gateway_issued_total = static_cast<std::uint64_t>(num("issued_total"));
                s.gateway_admitted_total = static_cast<std::uint64_t>(num("admitted_total"));
                s.gateway_abandoned_total = static_cast<std::uint64_t>(num("abandoned_total"));
                s.gateway_noshows_total = static_cast<std::uint64_t>(num("noshows_total"));
                s.gateway_called_per_s = num("called_per_s");
            }
        }
    }
    s.t_s = now_s();
    const double dt = s.t_s - last_t_;
    if (t_.gateway_pid > 0) {
        // The process and its children (nginx's master does no work; its workers do).
        proc_reading g = read_proc(std::to_string(t_.gateway_pid));
        if (g.ok) {
            const std::string pid = std::to_string(t_.gateway_pid);
            std::ifstream children("/proc/" + pid + "/task/" + pid + "/children");
            std::string child;
            while (children >> child) {
                const proc_reading c = read_proc(child);
                if (!c.ok) continue;
                g.cpu_s += c.cpu_s;
                g.rss_bytes += c.rss_bytes;
            }
        }
        if (g.ok) {
            s.gateway_rss_bytes = g.rss_bytes;
            if (last_gateway_.ok && dt > 0) s.gateway_cpu_percent = (g.cpu_s - last_gateway_.cpu_s) / dt * 100;
            last_gateway_ = g;
        }
    }
    const proc_reading self = read_proc("self");
    s.bench_rss_bytes = self.rss_bytes;
    if (last_self_.ok && dt > 0) s.bench_cpu_percent = (self.cpu_s - last_self_.cpu_s) / dt * 100;
    last_self_ = self;
    last_t_ = s.t_s;
    co_return s;
}

net::awaitable<void> sampler::run(run_record& rec, std::function<void(sample&)> bench_state) {
    net::steady_timer timer(ex_);
    for (int k = 1; !stopped_; ++k) {
        timer.expires_at(t0_ + std::chrono::seconds(k));
        error_code ec;
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
        if (stopped_) break;
        sample s = co_await sample_once();
        bench_state(s);
        rec.samples.push_back(s);
    }
}

}  // namespace floodgate::bench
