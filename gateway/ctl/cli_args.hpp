// floodgatectl's command line: global options (where the admin API is, which
// token, --json) with their defaults from the environment, the command, its
// arguments and its own options. Options may come before or after the
// command; everything after "--" is an argument (a banner that starts with
// "-"). Negative numbers are arguments, not options, so the API can say why
// "-3" is wrong.
//
// The one thing not to get wrong: the token never appears in a message; a
// usage error names the option, not its value.
//
//   auto a = parse_cli_args({"--admin", "10.0.0.5:9090", "set-rate", "sale", "50"}, env);
//   // a.value().command == "set-rate", a.value().args == {"sale", "50"}
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace floodgate::ctl {

// HOST:PORT of the admin listener.
struct admin_address {
    std::string host;
    std::string port;
    std::string text() const;  // "127.0.0.1:9090", "[::1]:9090"
};

struct cli_args {
    admin_address admin;
    std::string admin_source;  // "--admin", "FLOODGATE_ADMIN" or "the default"
    std::string token;         // empty when none was given
    bool json = false;
    bool help = false;                           // -h / --help anywhere
    std::string command;                         // empty: no command given
    std::vector<std::string> args;               // the command's arguments, in order
    std::map<std::string, std::string> options;  // the command's options: "--count" -> "2"
};

// What went wrong and, when known, the command whose usage to print.
struct usage_error {
    std::string message;
    std::string command;
};

// Reads an environment variable; empty values count as unset.
using env_lookup = std::function<std::optional<std::string>(const char*)>;
env_lookup process_env();

// The options that take a value, global and per command.
inline constexpr const char* value_options[] = {"--admin", "--token", "--token-file",
                                                "--burst", "--limit", "--count"};

std::variant<cli_args, usage_error> parse_cli_args(const std::vector<std::string>& argv,
                                                   const env_lookup& env);

// "127.0.0.1:9090", "localhost:9090", "[::1]:9090", "http://host:9090", or a
// host alone (port 9090).
std::optional<admin_address> parse_admin_address(std::string_view text);

}  // namespace floodgate::ctl
