// The admin listener: the operators' API (/admin/v1/...), Prometheus
// /metrics, the live dashboard (/dashboard/), the server-sent event stream
// and /healthz, /readyz. The contract is deploy/openapi.yaml.
//
// It runs on the process's main thread (the io_context that also handles
// signals), never on an I/O thread: a slow scrape or a dashboard with many
// tabs cannot delay a request of a person in line. Changes go through
// admin_backend (the server): they become a new generation that every
// worker picks up at once.
//
// Once a second it samples every room (rates, history for the dashboard),
// moves the metrics windows and sends the `stats` event to every stream.
#pragma once

#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "admin_auth.hpp"
#include "admin_state.hpp"
#include "gateway/net.hpp"
#include "generation.hpp"
#include "metrics.hpp"

namespace floodgate {

// What the admin API needs from the server. Called on the main thread only.
class admin_backend {
public:
    virtual ~admin_backend() = default;
    virtual std::shared_ptr<const generation> current() const = 0;
    virtual const config& file_config() const = 0;
    virtual runtime_state& runtime() = 0;
    // Builds a generation from the file's config and the runtime state and
    // hands it to every worker. On error nothing changes.
    virtual absl::Status apply_runtime() = 0;
    // Re-reads the config file (and the admin tokens); keeps the running one on error.
    virtual absl::Status reload() = 0;
    virtual absl::StatusOr<std::string> rotate_keys() = 0;
    virtual std::size_t key_count() const = 0;
    virtual metrics_hub& metrics() = 0;
    virtual room_registry& rooms() = 0;
    virtual std::shared_ptr<const admin_tokens> tokens() const = 0;
    virtual bool stopping() const = 0;
    // A runtime room was created (definition) or deleted (nullopt) through this node's API:
    // with a Redis store, every other node follows (room_catalog).
    virtual void announce_room(const std::string& room, std::optional<std::string> definition) = 0;
};

class admin_server {
public:
    admin_server(net::io_context& ioc, tcp::acceptor acceptor, admin_backend& backend, std::string audit_path);

    absl::Status start();
    void stop();

    // One room's sampled rates (the last second) and its recent history.
    struct sample {
        std::int64_t t = 0;  // unix ms
        double arrivals_per_s = 0, admitted_per_s = 0, called_per_s = 0;
        std::uint64_t waiting = 0, active = 0;
        double p50_ms = 0, p99_ms = 0, error_rate = 0, upstream_rps = 0;
    };

private:
    struct room_track {
        bool primed = false;
        std::int64_t at = 0;
        std::uint64_t arrivals = 0, admitted = 0, cursor = 0;
        sample last;
        std::deque<sample> history;  // last 10 minutes, one a second
    };
    struct subscriber;
    struct request_context;

    net::awaitable<void> accept_loop();
    net::awaitable<void> serve(tcp::socket socket);
    net::awaitable<void> stream(beast::tcp_stream& s, std::shared_ptr<subscriber> sub);
    net::awaitable<void> sample_loop();
    void sample_rooms();
    void broadcast(std::string_view event, const std::string& data);

    http::response<http::string_body> handle(const http::request<http::string_body>& req,
                                             request_context& ctx);
    http::response<http::string_body> handle_room_change(const http::request<http::string_body>& req,
                                                         request_context& ctx, const std::string& room,
                                                         std::string_view action);
    http::response<http::string_body> handle_create(const http::request<http::string_body>& req,
                                                    request_context& ctx);
    http::response<http::string_body> handle_delete(request_context& ctx, const std::string& room);
    std::string room_json(const room_binding& b) const;
    std::string rooms_json() const;
    void audit(request_context& ctx, std::string_view action, std::string_view room, std::string before,
               std::string after);

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    admin_backend& backend_;
    std::string audit_path_;
    audit_log audit_;
    std::map<std::string, room_track> tracks_;
    std::list<std::shared_ptr<subscriber>> subscribers_;
    net::steady_timer sample_timer_{ioc_};
    bool stopped_ = false;
};

}  // namespace floodgate
