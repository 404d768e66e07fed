// Command-line options of floodgate-demo-booking, parsed and checked.
//
// parse_demo_options() never exits or prints: it returns the options, or a
// message saying which flag is wrong (the caller prints it with the usage
// text and exits 2). "--help" is reported through `help_requested`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace floodgate::demo {

struct demo_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9000;           // 0: ephemeral (see port_file)
    std::string port_file;               // written with the bound port, atomically
    unsigned threads = 1;
    std::size_t capacity = 50;           // in-flight booking requests served at base latency
    std::size_t hard_limit = 100;        // above this many in flight: 503 at once
    std::chrono::milliseconds base_latency{20};
    bool release_on_reserve = false;     // add "Floodgate-Release: 1" to successful reservations
    unsigned seats = 200;                // seats per performance
    bool help_requested = false;
};

struct options_error {
    std::string message;
};

std::variant<demo_options, options_error> parse_demo_options(const std::vector<std::string>& args);

// The text printed for --help and after a bad flag.
std::string demo_usage(const std::string& program);

}  // namespace floodgate::demo
