// floodgate: the waiting-room gateway binary.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "gateway/config.hpp"
#include "server.hpp"
#include "tokenstore/redis/redis_url.hpp"

namespace {

constexpr const char* usage =
    "usage: floodgate --config FILE [--ports-file FILE]\n"
    "       floodgate --check-config FILE\n"
    "       floodgate --version\n"
    "\n"
    "  --config FILE        run with this YAML configuration\n"
    "  --check-config FILE  validate FILE and exit (0: valid; 1: the error, as file:line:column)\n"
    "  --ports-file FILE    once listening, write the bound addresses to FILE\n"
    "                       (lines 'listen INDEX HOST:PORT' and 'admin HOST:PORT')\n"
    "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n";

}  // namespace

int main(int argc, char** argv) {
    floodgate::server_options opts;
    std::string check;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "floodgate: %s needs a value\n%s", name, usage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--config" || arg == "-c") opts.config_path = value("--config");
        else if (arg == "--check-config") check = value("--check-config");
        else if (arg == "--ports-file") opts.ports_file = value("--ports-file");
        else if (arg == "--version" || arg == "-v") {
            std::printf("floodgate %s\n", FLOODGATE_VERSION);
            return 0;
        } else if (arg == "--help" || arg == "-h") {
            std::fputs(usage, stdout);
            return 0;
        } else {
            std::fprintf(stderr, "floodgate: unknown argument '%s'\n%s", arg.c_str(), usage);
            return 2;
        }
    }
    if (!check.empty()) {
        auto c = floodgate::load_config_file(check);
        if (!c.ok()) {
            std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
            return 1;
        }
        if (c->shared_store()) {
            auto url = floodgate::tokenstore::redis::parse_redis_url(c->store);
            if (!url.ok()) {
                std::fprintf(stderr, "%s: %s\n", check.c_str(),
                             std::string(url.status().message()).c_str());
                return 1;
            }
        }
        std::printf("%s: ok\n", check.c_str());
        return 0;
    }
    if (opts.config_path.empty()) {
        std::fputs(usage, stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    auto logger = spdlog::stderr_logger_mt("floodgate");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    spdlog::set_default_logger(logger);
    floodgate::server srv(opts);
    return srv.run();
}
