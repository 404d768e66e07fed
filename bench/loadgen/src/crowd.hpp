// The simulated crowd: people who arrive on the scenario's schedule and follow
// the waiting-room protocol against a running gateway, each as one or more
// device coroutines on one io_context. Everything it sees goes into a
// run_record.
//
//   crowd c(io.get_executor(), sc, {.gateway = gw, .room = "vaccine"}, rec);
//   net::co_spawn(io, c.run(), net::detached);   // returns after the drain
//
// The one thing not to get wrong: a person waits exactly the poll_after_ms the
// gateway gave before polling again, and holds no connection while waiting
// (joins and polls borrow from one bounded pool); only an admitted person has
// a connection of its own, as a browser on the site would. Single-threaded:
// all state is touched from the io_context's one thread.
//
// With target::nginx_limit the same people (same arrivals, same abandoners and
// their patience, same devices, same booking requests) meet a plain limiter
// instead: a refused first page (429 or 503) is an error page, and the person
// reloads it after people.refresh until it comes back 200 or their patience
// ends. There is no ticket, no pass and no release.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "gateway/net.hpp"
#include "http_client.hpp"
#include "loadgen/protocol.hpp"
#include "loadgen/report.hpp"
#include "loadgen/scenario.hpp"

namespace floodgate::bench {

class crowd {
public:
    enum class target { floodgate, nginx_limit };

    crowd(net::any_io_executor ex, const scenario& sc, tcp::endpoint gateway, run_record& rec,
          std::chrono::steady_clock::time_point t0, target t = target::floodgate);

    // Spawns people until the last arrival, then waits for them to finish (at most the drain).
    net::awaitable<void> run();

    // Ends the run early (Ctrl-C): no more arrivals, and run() returns within 100 ms.
    void stop();

    double now_s() const;
    std::uint64_t waiting() const { return waiting_; }
    std::uint64_t in_session() const { return in_session_; }

private:
    struct person;
    struct reply {
        error_code ec;
        response res;
        double sent_s = 0, received_s = 0;
    };

    net::awaitable<void> device(std::shared_ptr<person> p, double start_s);
    net::awaitable<void> refreshing_device(std::shared_ptr<person> p, net::steady_timer& timer);
    std::string refusal(const reply& r, person_record& rec, std::string_view when);
    net::awaitable<void> session(std::shared_ptr<person> p, std::string pass, bool first_done);
    net::awaitable<void> other_device(std::shared_ptr<person> p);
    net::awaitable<reply> pooled(request req);
    net::awaitable<void> sleep_until(net::steady_timer& timer, double t_s);

    request make_request(http::verb method, std::string_view target, const person& p) const;
    void error(std::string_view kind);
    void outcome(std::string_view kind) { ++rec_.outcomes[std::string(kind)]; }
    void classify_failure(const reply& r);
    void stop_waiting(person& p);
    static void note_waiting(person_record& rec, const status_answer& st, double sent_s);
    double uniform(const value_range& r);

    net::any_io_executor ex_;
    target target_;
    const scenario& sc_;
    tcp::endpoint gateway_;
    run_record& rec_;
    std::chrono::steady_clock::time_point t0_;
    connection_pool pool_;
    std::mt19937_64 rng_;
    std::string ticket_cookie_, pass_cookie_, status_target_, release_target_;
    double deadline_s_ = 1e18;
    bool stopped_ = false;
    std::uint64_t devices_running_ = 0;
    std::uint64_t waiting_ = 0, in_session_ = 0;
};

}  // namespace floodgate::bench
