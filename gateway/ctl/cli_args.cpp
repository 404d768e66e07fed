#include "cli_args.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/text.hpp"

namespace floodgate::ctl {

namespace {

constexpr std::string_view default_admin = "127.0.0.1:9090";

bool takes_value(std::string_view option) {
    for (const char* o : value_options)
        if (option == o) return true;
    return false;
}

// "-3", "-0.5": an argument (a value the API will judge), not an option.
bool looks_negative_number(std::string_view s) {
    if (s.size() < 2 || s[0] != '-') return false;
    double d = 0;
    auto [p, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), d);
    return ec == std::errc() && p == s.data() + s.size();
}

// The token alone on the file's first line that is neither empty nor a comment.
std::variant<std::string, usage_error> read_token_file(const std::string& path,
                                                       std::string_view from) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return usage_error{
            text::cat("cannot read the token file ", path, " (", from, "): ", std::strerror(errno)),
            {}};
    std::string line;
    while (std::getline(in, line)) {
        const std::string_view t = text::trim(line);
        if (t.empty() || t.front() == '#') continue;
        if (t.find_first_of(" \t") != std::string_view::npos)
            return usage_error{text::cat("the token file ", path,
                                         " should hold the token alone on one line (the server's "
                                         "tokens file has \"role name token\" lines: copy just "
                                         "the token)"),
                               {}};
        return std::string(t);
    }
    return usage_error{text::cat("the token file ", path, " (", from, ") holds no token"), {}};
}

}  // namespace

std::string admin_address::text() const {
    if (host.find(':') != std::string::npos) return text::cat("[", host, "]:", port);
    return text::cat(host, ":", port);
}

std::optional<admin_address> parse_admin_address(std::string_view s) {
    s = text::trim(s);
    if (s.starts_with("http://")) s.remove_prefix(7);
    if (s.ends_with("/")) s.remove_suffix(1);
    if (s.empty() || s.find('/') != std::string_view::npos) return std::nullopt;
    admin_address a;
    std::string_view port = "9090";
    if (s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        a.host = std::string(s.substr(1, close - 1));
        const std::string_view rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
        }
    } else if (const auto colon = s.rfind(':'); colon != std::string_view::npos) {
        if (s.find(':') != colon) return std::nullopt;  // a bare IPv6 address: use [addr]:port
        a.host = std::string(s.substr(0, colon));
        port = s.substr(colon + 1);
    } else {
        a.host = std::string(s);
    }
    std::uint64_t p = 0;
    if (a.host.empty() || !text::parse_u64(port, p) || p == 0 || p > 65535) return std::nullopt;
    a.port = std::string(port);
    return a;
}

env_lookup process_env() {
    return [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (!v || !*v) return std::nullopt;
        return std::string(v);
    };
}

std::variant<cli_args, usage_error> parse_cli_args(const std::vector<std::string>& argv,
                                                   const env_lookup& env) {
    cli_args a;
    std::optional<std::string> admin, token, token_file;
    bool only_args = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        const bool is_option =
            !only_args && arg.size() > 1 && arg[0] == '-' && !looks_negative_number(arg);
        if (!is_option) {
            if (a.command.empty())
                a.command = arg;
            else
                a.args.push_back(arg);
            continue;
        }
        if (arg == "--") {
            only_args = true;
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            a.help = true;
            continue;
        }
        if (arg == "--json") {
            a.json = true;
            continue;
        }
        std::string name = arg;
        std::optional<std::string> value;
        if (const auto eq = arg.find('='); eq != std::string::npos && arg.starts_with("--")) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        if (!takes_value(name)) return usage_error{text::cat("unknown option ", name), a.command};
        if (!value) {
            if (i + 1 >= argv.size())
                return usage_error{text::cat(name, " needs a value"), a.command};
            value = argv[++i];
        }
        if (name == "--admin")
            admin = *value;
        else if (name == "--token")
            token = *value;
        else if (name == "--token-file")
            token_file = *value;
        else
            a.options[name] = *value;
    }

    if (token && token_file)
        return usage_error{"give --token or --token-file, not both", a.command};
    if (token && token->empty()) return usage_error{"--token is empty", a.command};

    std::string admin_text(default_admin);
    a.admin_source = "the default";
    if (admin) {
        admin_text = *admin;
        a.admin_source = "--admin";
    } else if (auto e = env("FLOODGATE_ADMIN")) {
        admin_text = *e;
        a.admin_source = "FLOODGATE_ADMIN";
    }
    auto parsed = parse_admin_address(admin_text);
    if (!parsed)
        return usage_error{text::cat(a.admin_source,
                                     ": expected HOST:PORT such as 127.0.0.1:9090, "
                                     "got \"",
                                     admin_text, "\""),
                           a.command};
    a.admin = *parsed;

    // The command line wins over the environment; a token wins over a token file.
    // Help needs no token, so a broken token file does not stand in its way.
    if (a.help || a.command.empty() || a.command == "help") return a;
    if (token) {
        a.token = *token;
    } else if (token_file) {
        auto t = read_token_file(*token_file, "--token-file");
        if (auto* e = std::get_if<usage_error>(&t)) return *e;
        a.token = std::get<std::string>(t);
    } else if (auto e = env("FLOODGATE_TOKEN")) {
        a.token = std::string(text::trim(*e));
    } else if (auto f = env("FLOODGATE_TOKEN_FILE")) {
        auto t = read_token_file(*f, "FLOODGATE_TOKEN_FILE");
        if (auto* e = std::get_if<usage_error>(&t)) return *e;
        a.token = std::get<std::string>(t);
    }
    return a;
}

}  // namespace floodgate::ctl
