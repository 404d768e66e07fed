// The gateway's configuration: what the YAML file says, validated.
//
// load_config_file() either returns a config in which every value has been
// checked (ports in range, upstreams that exist, positive limits) or a Status
// whose message names the file, line and column and says what to change:
//
//   floodgate.yaml:12:17: upstreams.booking.pool_size: expected a whole number
//   from 1 to 100000, got "lots"
//
// Nothing here does I/O beyond reading the file, so the config can be parsed
// and checked (floodgate --check-config) without starting anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace floodgate {

using duration = std::chrono::milliseconds;

// host:port as written; host may be an IPv4/IPv6 literal or a name, port 0
// asks the kernel for an ephemeral port.
struct endpoint {
    std::string host;
    std::uint16_t port = 0;

    std::string to_string() const;
};

struct tls_server_config {
    std::string cert_file;
    std::string key_file;
};

struct listener_config {
    endpoint address;
    std::optional<tls_server_config> tls;
    std::size_t max_connections = 10000;
};

struct admin_config {
    bool enabled = true;
    endpoint address{"127.0.0.1", 9090};
    // Bearer tokens, lines "<role> <name> <token>" (role operator or viewer), from this file
    // and from the environment variable named by tokens_env (entries separated by newlines or ';').
    std::string tokens_file;
    std::string tokens_env = "FLOODGATE_ADMIN_TOKENS";
};

struct limits_config {
    std::size_t header_bytes = 16 * 1024;     // request line + header fields
    std::size_t header_count = 100;           // number of header fields
    std::uint64_t body_bytes = 10 * 1024 * 1024;
    std::size_t pipelined_requests = 16;      // already-buffered requests in a row
    std::size_t requests_per_connection = 10000;
};

struct timeouts_config {
    duration request_header{std::chrono::seconds(10)};  // first byte to end of header
    duration keepalive{std::chrono::seconds(60)};        // idle between requests
    duration body{std::chrono::seconds(30)};             // idle while reading a body
    duration send{std::chrono::seconds(30)};             // idle while writing to a client
    duration tunnel_idle{std::chrono::seconds(300)};     // idle in an upgraded tunnel
    duration shutdown_grace{std::chrono::seconds(10)};   // in-flight work on SIGTERM
};

struct upstream_tls_config {
    bool enabled = false;
    bool verify = true;
    std::string ca_file;      // empty: the system's trust store
    std::string server_name;  // SNI and the name verified; empty: the server's host
};

struct upstream_config {
    std::string name;
    std::vector<endpoint> servers;
    std::size_t pool_size = 64;  // idle keep-alive connections kept per thread
    duration connect_timeout{std::chrono::seconds(2)};
    duration response_timeout{std::chrono::seconds(30)};
    duration idle_timeout{std::chrono::seconds(60)};  // a pooled connection unused this long is closed
    std::size_t max_fails = 3;                         // consecutive failures that eject a server
    duration fail_timeout{std::chrono::seconds(10)};   // how long an ejected server is skipped
    upstream_tls_config tls;
};

struct access_log_config {
    bool enabled = true;
    std::string path = "stdout";  // "stdout", "stderr" or a file path
};

enum class room_mode { automatic, queue_all, paused, closed };

const char* to_string(room_mode m);
std::optional<room_mode> parse_room_mode(std::string_view s);

// A waiting room: the routes it protects, where admitted people go, and the
// admission policy. Everything under admission, mode and banner can also be
// changed at run time (admin API); the config file gives the start values.
struct room_config {
    std::string name;  // [a-z0-9_-], used in URLs and cookie names

    // match: a request belongs to the first room whose match it fits
    std::vector<std::string> hosts;     // empty: any host
    std::vector<std::string> paths;     // prefixes, on segment boundaries
    std::vector<std::string> exact;     // exact paths
    std::vector<std::string> methods;   // empty: any method
    bool case_insensitive = false;
    std::vector<std::string> api_paths;  // prefixes answered with 503 + JSON instead of the page

    std::string upstream;  // empty: default_upstream

    // admission
    double rate = 0;             // users/s called from the queue; 0: no rate limit
    std::uint32_t burst = 1;
    std::uint64_t max_active = 0;  // concurrent admitted users; 0: no limit
    duration idle_timeout{std::chrono::minutes(10)};
    duration session_ttl{std::chrono::minutes(30)};
    duration claim_window{std::chrono::seconds(60)};
    duration abandon_after{std::chrono::seconds(60)};
    room_mode mode = room_mode::automatic;

    // one place per person (optional): a header set by the site's login layer, or a cookie
    std::string identity_header;
    std::string identity_cookie;

    // waiting page
    std::string default_language = "en";  // en or ko; Accept-Language decides first
    std::string page_template;            // a file replacing the built-in page
    std::string title;                    // shown on the page; default: the room name
    std::string banner;                   // operator's message on the page
    duration yellow_wait{std::chrono::minutes(5)};  // light: yellow below this wait, red above

    // tokens
    duration ticket_ttl{std::chrono::hours(12)};
    bool bind_ip = false;          // passes and tickets only work from the same /24 (v4) or /48 (v6)
    bool bind_user_agent = false;  // ... and the same User-Agent
    std::optional<bool> secure_cookies;  // default: Secure when the request came over TLS
};

// What a gateway does for its rooms while the shared store (Redis) cannot be reached.
enum class store_failure_mode : std::uint8_t {
    hold,         // nobody new is called; waiting people keep their place and see "paused"
    fail_open,    // the room stops gating: requests go straight to the upstream
    fail_closed,  // newcomers get 503; waiting people keep their place; passes keep working
};
std::string_view to_string(store_failure_mode m);

struct config {
    std::string source_file;
    unsigned threads = 0;  // 0: one per core
    std::vector<listener_config> listeners;
    admin_config admin;
    limits_config limits;
    timeouts_config timeouts;
    std::vector<upstream_config> upstreams;
    std::string default_upstream;
    access_log_config access_log;
    std::string log_level = "info";
    std::string state_dir;
    std::string via = "floodgate";  // the name in the Via header
    std::vector<room_config> rooms;
    std::string keys_file;  // token keys; default: <state_dir>/token-keys, or generated in memory
    // Where rooms keep their queue: "memory" (this process alone) or a redis:// URL shared by
    // several gateway nodes (docs/multi-node.md).
    std::string store = "memory";
    store_failure_mode store_failure = store_failure_mode::hold;
    std::string node_id;  // in logs, metrics and Redis; default: <hostname>:<pid>

    bool shared_store() const { return store != "memory"; }

    const room_config* find_room(std::string_view name) const;

    const upstream_config* find_upstream(std::string_view name) const;
};

// Reads and validates a YAML file.
absl::StatusOr<config> load_config_file(const std::string& path);

// Validates YAML text; file_name is used in messages only.
absl::StatusOr<config> parse_config(std::string_view yaml_text, std::string_view file_name);

// A room defined at run time (admin API): a JSON (or YAML) object with "name" and the keys of a
// room in the config file. Checked like the file's rooms, against base's upstreams.
absl::StatusOr<room_config> parse_room_definition(std::string_view text, std::string_view origin,
                                                  const config& base);

// "250ms", "10s", "5m", "1h" (a bare number is seconds).
absl::StatusOr<duration> parse_duration(std::string_view text);

// "512", "16k", "10m", "1g" (also "16KB", "10MiB"); powers of 1024.
absl::StatusOr<std::uint64_t> parse_size(std::string_view text);

// "127.0.0.1:8080", "[::1]:8080", ":8080" (all addresses), "localhost:9000".
absl::StatusOr<endpoint> parse_endpoint(std::string_view text);

}  // namespace floodgate
