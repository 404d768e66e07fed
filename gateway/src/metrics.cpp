// Prometheus metrics (metrics.hpp): per-thread counters on the data path, the
// sums and the room snapshots turned into prometheus-cpp families at scrape
// time, and the one-second windows behind upstream_recent().
#include "metrics.hpp"

#include <dirent.h>
#include <prometheus/collectable.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "gateway/text.hpp"
#include "generation.hpp"
#include "room_runtime.hpp"

#ifndef FLOODGATE_VERSION
#define FLOODGATE_VERSION "unknown"
#endif

namespace floodgate {

namespace metrics_detail {

// Upstream response times are kept in fine buckets (14 per decade, 0.1 ms to
// 100 s: at most 25% wide, so the window's p50/p99 are close), and exported in
// the usual 1-2.5-5 buckets, which are a subset of the fine ones.
constexpr std::size_t latency_bound_count = 6 * 14 + 1;
constexpr std::size_t latency_bucket_count = latency_bound_count + 1;  // + the +Inf bucket

const std::array<double, latency_bound_count>& latency_bounds() {
    static const auto bounds = [] {
        static constexpr const char* mantissas[] = {"1", "1.25", "1.5", "1.75", "2", "2.5", "3",
                                                    "3.5", "4", "5", "6", "7", "8", "9"};
        std::array<double, latency_bound_count> b{};
        std::size_t i = 0;
        // Parsed from decimal text, so that 5e-4 here is the same double as 0.0005 below.
        for (int decade = -4; decade <= 1; ++decade)
            for (const char* m : mantissas) b[i++] = std::strtod(text::cat(m, "e", decade).c_str(), nullptr);
        b[i] = 100;
        return b;
    }();
    return bounds;
}

constexpr std::array<double, 17> exported_latency_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                         5,      10,    25,     50,    100};

// Waits are measured in whole seconds (a ticket carries its issue time in seconds).
constexpr std::array<double, 16> wait_bounds{1,   2,   5,   10,   20,   30,   60,   120,
                                             300, 600, 900, 1200, 1800, 3600, 7200, 14400};

std::size_t bucket_of(const double* begin, const double* end, double v) {
    if (!(v >= 0)) v = 0;  // NaN and negative (a clock step) count as 0
    return static_cast<std::size_t>(std::lower_bound(begin, end, v) - begin);
}

void add(std::atomic<double>& sum, double v) {
    sum.store(sum.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

struct alignas(64) room_node {
    explicit room_node(std::string_view n) : name(n) {}
    const std::string name;
    room_node* next = nullptr;  // set before the node is published, never after
    std::array<counter, request_outcome_count> requests{};
    std::array<counter, wait_bounds.size() + 1> wait_buckets{};
    std::atomic<double> wait_sum{0};
};

struct alignas(64) upstream_node {
    explicit upstream_node(std::string_view n) : name(n) {}
    const std::string name;
    upstream_node* next = nullptr;
    counter responses;        // response heads received (the histogram's count)
    counter status_5xx;
    counter failed_requests;  // exchanges that failed before a response head
    std::array<counter, upstream_failure_count> failures{};
    std::array<counter, latency_bucket_count> buckets{};
    std::atomic<double> sum{0};
};

}  // namespace metrics_detail

namespace md = metrics_detail;

// --- the data path (one writer per thread_metrics) ------------------------------------------

thread_metrics::~thread_metrics() {
    for (auto* n = rooms_.load(std::memory_order_acquire); n;) delete std::exchange(n, n->next);
    for (auto* n = upstreams_.load(std::memory_order_acquire); n;) delete std::exchange(n, n->next);
}

md::room_node& thread_metrics::room(std::string_view name) {
    if (name.empty()) name = "-";
    if (last_room_ != nullptr && last_room_->name == name) return *last_room_;
    if (auto it = room_index_.find(name); it != room_index_.end()) return *(last_room_ = it->second);
    auto* n = new md::room_node(name);
    n->next = rooms_.load(std::memory_order_relaxed);
    rooms_.store(n, std::memory_order_release);  // the node is complete before readers see it
    room_index_.emplace(n->name, n);
    return *(last_room_ = n);
}

md::upstream_node& thread_metrics::upstream(std::string_view name) {
    if (last_upstream_ != nullptr && last_upstream_->name == name) return *last_upstream_;
    if (auto it = upstream_index_.find(name); it != upstream_index_.end()) return *(last_upstream_ = it->second);
    auto* n = new md::upstream_node(name);
    n->next = upstreams_.load(std::memory_order_relaxed);
    upstreams_.store(n, std::memory_order_release);
    upstream_index_.emplace(n->name, n);
    return *(last_upstream_ = n);
}

void thread_metrics::request(std::string_view room_name, request_outcome outcome) {
    room(room_name).requests[static_cast<std::size_t>(outcome)].add();
}

void thread_metrics::token_rejected(tokenstore::verify_status status) {
    using tokenstore::verify_status;
    std::size_t reason = 0;  // malformed
    switch (status) {
        case verify_status::ok: return;
        case verify_status::malformed:
        case verify_status::wrong_type: reason = 0; break;
        case verify_status::bad_mac:
        case verify_status::unknown_kid: reason = 1; break;
        case verify_status::expired: reason = 2; break;
        case verify_status::wrong_room: reason = 3; break;
        case verify_status::binding: reason = 4; break;
    }
    token_rejected_[reason].add();
}

void thread_metrics::waited(std::string_view room_name, double seconds) {
    auto& n = room(room_name);
    n.wait_buckets[md::bucket_of(md::wait_bounds.data(), md::wait_bounds.data() + md::wait_bounds.size(),
                                 seconds)]
        .add();
    md::add(n.wait_sum, std::max(0.0, seconds));
}

void thread_metrics::upstream_response(std::string_view name, double seconds, unsigned status) {
    auto& n = upstream(name);
    const auto& b = md::latency_bounds();
    n.buckets[md::bucket_of(b.data(), b.data() + b.size(), seconds)].add();
    md::add(n.sum, std::max(0.0, seconds));
    n.responses.add();
    if (status >= 500 && status <= 599) n.status_5xx.add();
}

void thread_metrics::upstream_failed(std::string_view name, upstream_failure kind, bool after_response) {
    auto& n = upstream(name);
    n.failures[static_cast<std::size_t>(kind)].add();
    if (!after_response) n.failed_requests.add();
}

void thread_metrics::connection_opened(std::size_t listener) {
    if (listener < max_listeners) opened_[listener].add();
}

void thread_metrics::connection_closed(std::size_t listener) {
    if (listener < max_listeners) closed_[listener].add();
}

// --- sums over all threads (main thread) ----------------------------------------------------

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::array<std::string_view, request_outcome_count> outcome_names{"proxied", "queued", "admitted",
                                                                             "rejected", "error"};
constexpr std::array<std::string_view, 5> token_reason_names{"malformed", "bad_mac", "expired", "wrong_room",
                                                             "binding"};
constexpr std::array<std::string_view, upstream_failure_count> failure_names{"connect", "timeout", "reset",
                                                                             "protocol"};
constexpr std::array<std::string_view, tokenstore::release_reason_count> release_names{"explicit", "upstream",
                                                                                       "idle", "ttl"};

struct room_sum {
    std::array<std::uint64_t, request_outcome_count> requests{};
    std::array<std::uint64_t, md::wait_bounds.size() + 1> wait{};
    double wait_sum = 0;
};

struct upstream_sum {
    std::uint64_t responses = 0, status_5xx = 0, failed_requests = 0;
    std::array<std::uint64_t, upstream_failure_count> failures{};
    std::array<std::uint64_t, md::latency_bucket_count> buckets{};
    double sum = 0;

    std::uint64_t requests() const { return responses + failed_requests; }
    std::uint64_t errors() const {
        std::uint64_t e = status_5xx;
        for (auto f : failures) e += f;
        return e;
    }
};

using room_sums = std::map<std::string, room_sum, std::less<>>;
using upstream_sums = std::map<std::string, upstream_sum, std::less<>>;

// --- building families ---

MetricFamily family(std::string name, std::string help, MetricType type) {
    MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

ClientMetric::Label label(std::string_view name, std::string_view value) {
    return {std::string(name), std::string(value)};
}

void add_value(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) m.counter.value = v;
    else m.gauge.value = v;
    f.metric.push_back(std::move(m));
}

// counts[i]: observations in bucket i (not cumulative); exported[j] is the
// last fine bucket of the j-th exported bucket. The last count is +Inf.
template <class Counts>
void add_histogram(MetricFamily& f, std::vector<ClientMetric::Label> labels, const Counts& counts,
                   const std::vector<std::pair<double, std::size_t>>& exported, double sum) {
    ClientMetric m;
    m.label = std::move(labels);
    std::uint64_t cumulative = 0;
    std::size_t next = 0;
    for (const auto& [bound, last] : exported) {
        for (; next <= last; ++next) cumulative += counts[next];
        m.histogram.bucket.push_back({cumulative, bound});
    }
    for (; next < counts.size(); ++next) cumulative += counts[next];
    m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = sum;
    f.metric.push_back(std::move(m));
}

const std::vector<std::pair<double, std::size_t>>& latency_export() {
    static const auto e = [] {
        std::vector<std::pair<double, std::size_t>> out;
        const auto& fine = md::latency_bounds();
        for (double b : md::exported_latency_bounds) {
            const auto it = std::find(fine.begin(), fine.end(), b);
            if (it != fine.end()) out.emplace_back(b, static_cast<std::size_t>(it - fine.begin()));
        }
        return out;
    }();
    return e;
}

const std::vector<std::pair<double, std::size_t>>& wait_export() {
    static const auto e = [] {
        std::vector<std::pair<double, std::size_t>> out;
        for (std::size_t i = 0; i < md::wait_bounds.size(); ++i) out.emplace_back(md::wait_bounds[i], i);
        return out;
    }();
    return e;
}

// The value at quantile q of the observations in fine buckets `counts`,
// interpolated inside its bucket as Prometheus's histogram_quantile() does.
double quantile(const std::array<std::uint64_t, md::latency_bucket_count>& counts, double q) {
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    if (total == 0) return 0;
    const auto& bounds = md::latency_bounds();
    const double rank = q * static_cast<double>(total);
    double below = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const double c = static_cast<double>(counts[i]);
        if (c > 0 && below + c >= rank) {
            if (i >= bounds.size()) return bounds.back();
            const double lo = i == 0 ? 0 : bounds[i - 1];
            return lo + (bounds[i] - lo) * std::clamp((rank - below) / c, 0.0, 1.0);
        }
        below += c;
    }
    return bounds.back();
}

// --- the process, from /proc ---

struct process_stats {
    bool ok = false;
    double cpu_s = 0, start_time_s = 0, resident_bytes = 0, virtual_bytes = 0;
    double open_fds = 0, max_fds = 0;
};

std::string read_text(const char* path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

process_stats read_process() {
    process_stats p;
    const std::string stat = read_text("/proc/self/stat");
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted from the last ')'.
    const auto close = stat.rfind(')');
    if (close != std::string::npos) {
        std::vector<std::string> f;
        std::istringstream in(stat.substr(close + 1));
        for (std::string w; in >> w;) f.push_back(std::move(w));
        // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
        if (f.size() > 21) {
            const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
            const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
            p.cpu_s = (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / ticks;
            p.virtual_bytes = std::strtod(f[20].c_str(), nullptr);
            p.resident_bytes = std::strtod(f[21].c_str(), nullptr) * page;
            double boot_time = 0;
            std::istringstream sys(read_text("/proc/stat"));
            for (std::string line; std::getline(sys, line);)
                if (line.rfind("btime ", 0) == 0) boot_time = std::strtod(line.c_str() + 6, nullptr);
            p.start_time_s = boot_time + std::strtod(f[19].c_str(), nullptr) / ticks;
            p.ok = true;
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        std::size_t n = 0;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        p.open_fds = static_cast<double>(n > 0 ? n - 1 : 0);  // not the directory's own descriptor
    }
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
        p.max_fds = lim.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity()
                                                  : static_cast<double>(lim.rlim_cur);
    return p;
}

}  // namespace

struct metrics_hub::impl {
    explicit impl(const std::vector<std::unique_ptr<thread_metrics>>& t) : threads(t) {
        prometheus::BuildGauge()
            .Name("floodgate_build_info")
            .Help("Floodgate's version (always 1)")
            .Register(*registry)
            .Add({{"version", FLOODGATE_VERSION}})
            .Set(1);
    }

    room_sums sum_rooms() const {
        room_sums out;
        for (const auto& t : threads)
            for (auto* n = t->rooms_.load(std::memory_order_acquire); n; n = n->next) {
                auto& s = out[n->name];
                for (std::size_t i = 0; i < s.requests.size(); ++i) s.requests[i] += n->requests[i].get();
                for (std::size_t i = 0; i < s.wait.size(); ++i) s.wait[i] += n->wait_buckets[i].get();
                s.wait_sum += n->wait_sum.load(std::memory_order_relaxed);
            }
        return out;
    }

    upstream_sums sum_upstreams() const {
        upstream_sums out;
        for (const auto& t : threads)
            for (auto* n = t->upstreams_.load(std::memory_order_acquire); n; n = n->next) {
                auto& s = out[n->name];
                s.responses += n->responses.get();
                s.status_5xx += n->status_5xx.get();
                s.failed_requests += n->failed_requests.get();
                for (std::size_t i = 0; i < s.failures.size(); ++i) s.failures[i] += n->failures[i].get();
                for (std::size_t i = 0; i < s.buckets.size(); ++i) s.buckets[i] += n->buckets[i].get();
                s.sum += n->sum.load(std::memory_order_relaxed);
            }
        return out;
    }

    std::vector<MetricFamily> collect(const generation& gen, room_registry& rooms) const;

    const std::vector<std::unique_ptr<thread_metrics>>& threads;
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

    struct window_point {
        std::chrono::steady_clock::time_point at;
        upstream_sums upstreams;
    };
    mutable std::mutex window_mu;
    std::deque<window_point> windows;  // oldest first, one a second, ~10 s
};

// The families that are not in the registry: everything summed from the
// threads or read from the rooms and the process at this moment.
std::vector<MetricFamily> metrics_hub::impl::collect(const generation& gen, room_registry& registry_rooms) const {
    std::vector<MetricFamily> out;
    const auto room_counts = sum_rooms();
    const auto upstream_counts = sum_upstreams();
    const auto runtimes = registry_rooms.list();

    // Rooms that exist now: the configured ones and those in the registry
    // (a deleted room's series end with it), plus "-" for unprotected paths.
    std::set<std::string, std::less<>> room_names{"-"};
    for (const auto& b : gen.rooms) room_names.insert(b.cfg->name);
    for (const auto& r : runtimes) room_names.insert(r->name());

    {
        auto f = family("floodgate_connections", "Open client connections, by listener", MetricType::Gauge);
        for (std::size_t i = 0; i < gen.cfg->listeners.size() && i < thread_metrics::max_listeners; ++i) {
            std::uint64_t closed = 0, opened = 0;
            // Closes first: every close had its open before, so the difference is never negative.
            for (const auto& t : threads) closed += t->closed_[i].get();
            for (const auto& t : threads) opened += t->opened_[i].get();
            add_value(f, {label("listener", gen.cfg->listeners[i].address.to_string())},
                      static_cast<double>(opened >= closed ? opened - closed : 0));
        }
        out.push_back(std::move(f));
    }
    {
        auto f = family("floodgate_requests_total",
                        "Requests by room (\"-\": unprotected paths) and outcome: proxied, queued, "
                        "admitted, rejected, error",
                        MetricType::Counter);
        for (const auto& name : room_names) {
            const auto it = room_counts.find(name);
            for (std::size_t o = 0; o < outcome_names.size(); ++o)
                add_value(f, {label("room", name), label("outcome", outcome_names[o])},
                          it == room_counts.end() ? 0.0 : static_cast<double>(it->second.requests[o]));
        }
        out.push_back(std::move(f));
    }
    {
        auto f = family("floodgate_token_rejected_total",
                        "Tokens presented that did not verify (treated as no token), by reason",
                        MetricType::Counter);
        std::array<std::uint64_t, token_reason_names.size()> counts{};
        for (const auto& t : threads)
            for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += t->token_rejected_[i].get();
        for (std::size_t i = 0; i < counts.size(); ++i)
            add_value(f, {label("reason", token_reason_names[i])}, static_cast<double>(counts[i]));
        out.push_back(std::move(f));
    }

    auto waiting = family("floodgate_room_waiting", "People waiting in line", MetricType::Gauge);
    auto active = family("floodgate_room_active", "Admitted people holding a slot", MetricType::Gauge);
    auto rate = family("floodgate_room_rate_limit", "Users called per second in effect (0: no rate limit)",
                       MetricType::Gauge);
    auto max_active = family("floodgate_room_max_active", "Concurrent admitted users allowed (0: no limit)",
                             MetricType::Gauge);
    auto mode = family("floodgate_room_mode", "1 for the room's mode: auto, queue_all, paused or closed",
                       MetricType::Gauge);
    auto issued = family("floodgate_tickets_issued_total", "Places in line handed out", MetricType::Counter);
    auto admitted = family("floodgate_admitted_total", "Passes issued: claimed calls and direct admissions",
                           MetricType::Counter);
    auto abandoned = family("floodgate_abandoned_total", "Places given up (not seen for abandon_after)",
                            MetricType::Counter);
    auto noshows = family("floodgate_noshows_total", "Calls that were never claimed", MetricType::Counter);
    auto released = family("floodgate_released_total",
                           "Slots freed, by reason: explicit, upstream, idle, ttl", MetricType::Counter);
    for (const auto& r : runtimes) {
        const auto st = r->wr().snapshot();
        const auto policy = r->wr().policy();
        const room_binding* b = gen.find_room(r->name());
        room_mode m = b ? b->cfg->mode : room_mode::automatic;
        if (policy.paused) m = room_mode::paused;
        const std::vector<ClientMetric::Label> room{label("room", r->name())};
        add_value(waiting, room, static_cast<double>(st.waiting));
        add_value(active, room, static_cast<double>(st.active));
        add_value(rate, room, policy.rate);
        add_value(max_active, room, static_cast<double>(policy.max_active));
        for (room_mode each : {room_mode::automatic, room_mode::queue_all, room_mode::paused, room_mode::closed})
            add_value(mode, {label("room", r->name()), label("mode", to_string(each))}, each == m ? 1 : 0);
        add_value(issued, room, static_cast<double>(st.issued));
        add_value(admitted, room, static_cast<double>(st.admitted_total));
        add_value(abandoned, room, static_cast<double>(st.abandoned_total));
        add_value(noshows, room, static_cast<double>(st.noshows_total));
        for (std::size_t i = 0; i < release_names.size(); ++i)
            add_value(released, {label("room", r->name()), label("reason", release_names[i])},
                      static_cast<double>(st.released.by_reason[i]));
    }
    for (auto* f : {&waiting, &active, &rate, &max_active, &mode, &issued, &admitted, &abandoned, &noshows,
                    &released})
        out.push_back(std::move(*f));

    {
        auto f = family("floodgate_node_info", "This gateway node's id (always 1)", MetricType::Gauge);
        add_value(f, {label("node", effective_node_id(*gen.cfg))}, 1);
        out.push_back(std::move(f));
    }
    // The shared store (store: redis://...), when there is one.
    if (const auto& conn = registry_rooms.store().conn) {
        const auto st = conn->status();
        auto up = family("floodgate_store_up",
                         "1 while the connection to the shared store (Redis) is up", MetricType::Gauge);
        add_value(up, {}, st.st == tokenstore::redis::redis_connection::state::connected ? 1 : 0);
        out.push_back(std::move(up));
        auto failures = family("floodgate_store_failures_total",
                               "Lost connections and failed connection attempts to the shared store",
                               MetricType::Counter);
        add_value(failures, {}, static_cast<double>(st.failures));
        out.push_back(std::move(failures));
        auto timeouts = family("floodgate_store_timeouts_total",
                               "Shared-store commands not answered within the command timeout",
                               MetricType::Counter);
        add_value(timeouts, {}, static_cast<double>(st.timeouts));
        out.push_back(std::move(timeouts));
        if (!st.primary.empty()) {
            auto primary = family("floodgate_store_primary_info",
                                  "The Redis node in use (with Sentinel: the primary it named; always 1)",
                                  MetricType::Gauge);
            add_value(primary, {label("primary", st.primary)}, 1);
            out.push_back(std::move(primary));
        }
        auto changes = family("floodgate_store_primary_changes_total",
                              "Connects to another Redis node than the one before (Sentinel failovers)",
                              MetricType::Counter);
        add_value(changes, {}, static_cast<double>(st.primary_changes));
        out.push_back(std::move(changes));
        auto synced = family("floodgate_room_store_synced",
                             "1 while the room is in step with the shared store (0: store_failure applies)",
                             MetricType::Gauge);
        auto calling = family("floodgate_room_calling",
                              "1 on the node that holds the room's cursor lease and calls people",
                              MetricType::Gauge);
        auto number = family("floodgate_room_node_number",
                             "This node's number in the room (1-255, in its passes; 0 while it holds none)",
                             MetricType::Gauge);
        for (const auto& r : runtimes) {
            if (!r->shared()) continue;
            add_value(synced, {label("room", r->name())}, r->store_available() ? 1 : 0);
            add_value(calling, {label("room", r->name())}, r->wr().admission().calling() ? 1 : 0);
            add_value(number, {label("room", r->name())}, r->shared()->node_number());
        }
        out.push_back(std::move(synced));
        out.push_back(std::move(calling));
        out.push_back(std::move(number));
    }

    {
        auto f = family("floodgate_wait_seconds", "Time in line, from the ticket to the pass",
                        MetricType::Histogram);
        const room_sum none{};
        for (const auto& name : room_names) {
            if (name == "-") continue;
            const auto it = room_counts.find(name);
            const room_sum& s = it == room_counts.end() ? none : it->second;
            add_histogram(f, {label("room", name)}, s.wait, wait_export(), s.wait_sum);
        }
        out.push_back(std::move(f));
    }
    {
        auto f = family("floodgate_upstream_request_seconds",
                        "Upstream response time: first connection attempt to response head",
                        MetricType::Histogram);
        auto e = family("floodgate_upstream_errors_total",
                        "Failed upstream exchanges by kind: connect, timeout, reset, protocol; and "
                        "status_5xx responses",
                        MetricType::Counter);
        const upstream_sum none{};
        for (const auto& g : gen.upstreams) {
            const auto it = upstream_counts.find(g->cfg.name);
            const upstream_sum& s = it == upstream_counts.end() ? none : it->second;
            add_histogram(f, {label("upstream", g->cfg.name)}, s.buckets, latency_export(), s.sum);
            for (std::size_t k = 0; k < failure_names.size(); ++k)
                add_value(e, {label("upstream", g->cfg.name), label("kind", failure_names[k])},
                          static_cast<double>(s.failures[k]));
            add_value(e, {label("upstream", g->cfg.name), label("kind", "status_5xx")},
                      static_cast<double>(s.status_5xx));
        }
        out.push_back(std::move(f));
        out.push_back(std::move(e));
    }

    const auto p = read_process();
    if (p.ok) {
        auto f = family("process_cpu_seconds_total", "User and system CPU time spent, in seconds",
                        MetricType::Counter);
        add_value(f, {}, p.cpu_s);
        out.push_back(std::move(f));
        f = family("process_resident_memory_bytes", "Resident memory size, in bytes", MetricType::Gauge);
        add_value(f, {}, p.resident_bytes);
        out.push_back(std::move(f));
        f = family("process_virtual_memory_bytes", "Virtual memory size, in bytes", MetricType::Gauge);
        add_value(f, {}, p.virtual_bytes);
        out.push_back(std::move(f));
        f = family("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds",
                   MetricType::Gauge);
        add_value(f, {}, p.start_time_s);
        out.push_back(std::move(f));
    }
    {
        auto f = family("process_open_fds", "Open file descriptors", MetricType::Gauge);
        add_value(f, {}, p.open_fds);
        out.push_back(std::move(f));
        f = family("process_max_fds", "The limit on open file descriptors", MetricType::Gauge);
        add_value(f, {}, p.max_fds);
        out.push_back(std::move(f));
    }
    return out;
}

// --- the hub ---------------------------------------------------------------------------------

metrics_hub::metrics_hub(std::size_t threads) {
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) threads_.push_back(std::make_unique<thread_metrics>());
    impl_ = new impl(threads_);
}

metrics_hub::~metrics_hub() { delete impl_; }

std::string metrics_hub::scrape(const generation& gen, room_registry& rooms) {
    auto families = impl_->registry->Collect();
    auto more = impl_->collect(gen, rooms);
    families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return prometheus::TextSerializer().Serialize(families);
}

void metrics_hub::sample() {
    impl::window_point p{std::chrono::steady_clock::now(), impl_->sum_upstreams()};
    std::lock_guard lock(impl_->window_mu);
    impl_->windows.push_back(std::move(p));
    // Eleven points span the last ten seconds.
    while (impl_->windows.size() > 11) impl_->windows.pop_front();
}

metrics_hub::upstream_window metrics_hub::upstream_recent(std::string_view upstream) const {
    upstream_window w;
    std::lock_guard lock(impl_->window_mu);
    const auto& ws = impl_->windows;
    if (ws.size() < 2) return w;
    const auto& now = ws.back();
    const auto& then = ws.front();
    const auto a = now.upstreams.find(upstream);
    if (a == now.upstreams.end()) return w;
    const auto b = then.upstreams.find(upstream);
    const upstream_sum none{};
    const upstream_sum& old = b == then.upstreams.end() ? none : b->second;
    const upstream_sum& cur = a->second;

    const std::uint64_t requests = cur.requests() - old.requests();
    if (requests == 0) return w;
    const double span_s = std::chrono::duration<double>(now.at - then.at).count();
    std::array<std::uint64_t, md::latency_bucket_count> delta{};
    for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = cur.buckets[i] - old.buckets[i];
    w.p50_s = quantile(delta, 0.50);
    w.p99_s = quantile(delta, 0.99);
    // A response whose body then broke counts once as a request and once as
    // an error, hence the clamp.
    w.error_rate = std::min(1.0, static_cast<double>(cur.errors() - old.errors()) / static_cast<double>(requests));
    w.requests_per_s = span_s > 0 ? static_cast<double>(requests) / span_s : 0;
    return w;
}

}  // namespace floodgate
