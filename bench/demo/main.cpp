// floodgate-demo-booking: the demo booking site Floodgate protects in the
// examples, integration tests and benchmarks. See demo_options.cpp for flags.
#include <iostream>
#include <string>
#include <vector>

#include "booking_server.hpp"
#include "demo_options.hpp"

int main(int argc, char** argv) {
    using namespace floodgate::demo;
    const std::string program = "floodgate-demo-booking";
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_demo_options(args);
    if (auto* err = std::get_if<options_error>(&parsed)) {
        std::cerr << program << ": " << err->message << "\n\n" << demo_usage(program);
        return 2;
    }
    auto& options = std::get<demo_options>(parsed);
    if (options.help_requested) {
        std::cout << demo_usage(program);
        return 0;
    }
    booking_server server(std::move(options));
    std::string error;
    if (!server.open(error)) {
        std::cerr << program << ": " << error << "\n";
        return 1;
    }
    server.run();
    return 0;
}
