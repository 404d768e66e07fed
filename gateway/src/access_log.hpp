// The access log: one JSON object per line per request, written by a
// background thread (spdlog's async logger) so that logging never blocks an
// I/O thread. When the queue is full the oldest lines are dropped, not waited
// for: a flash crowd must not stall the proxy on a slow disk.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gateway/config.hpp"

namespace spdlog {
class logger;
}

namespace floodgate {

struct access_record {
    std::string_view remote;
    std::string_view method;
    std::string_view target;
    std::string_view host;
    unsigned status = 0;
    std::uint64_t bytes = 0;  // response body bytes sent to the client
    double duration_ms = 0;
    std::string_view upstream;  // server label, empty when none was used
    std::size_t listener = 0;
};

class access_log {
public:
    access_log() = default;
    ~access_log();

    absl::Status open(const access_log_config& cfg);
    bool enabled() const { return logger_ != nullptr; }
    void write(const access_record& r);
    void flush();

private:
    std::shared_ptr<spdlog::logger> logger_;
};

// Appends s to out as a JSON string literal, quotes included. With
// escape_non_ascii (for logs of untrusted bytes) every byte above 0x7f is
// escaped on its own; without it (for text known to be UTF-8, such as page
// strings) those bytes pass through unchanged.
void append_json_string(std::string& out, std::string_view s, bool escape_non_ascii = true);

}  // namespace floodgate
