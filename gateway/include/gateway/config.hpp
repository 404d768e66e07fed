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

    const upstream_config* find_upstream(std::string_view name) const;
};

// Reads and validates a YAML file.
absl::StatusOr<config> load_config_file(const std::string& path);

// Validates YAML text; file_name is used in messages only.
absl::StatusOr<config> parse_config(std::string_view yaml_text, std::string_view file_name);

// "250ms", "10s", "5m", "1h" (a bare number is seconds).
absl::StatusOr<duration> parse_duration(std::string_view text);

// "512", "16k", "10m", "1g" (also "16KB", "10MiB"); powers of 1024.
absl::StatusOr<std::uint64_t> parse_size(std::string_view text);

// "127.0.0.1:8080", "[::1]:8080", ":8080" (all addresses), "localhost:9000".
absl::StatusOr<endpoint> parse_endpoint(std::string_view text);

}  // namespace floodgate
