// The whole gateway process: loads the configuration, binds the listeners,
// runs one worker per thread, and handles the signals: SIGTERM/SIGINT stop
// gracefully (in-flight requests finish within timeouts.shutdown_grace),
// SIGHUP re-reads the configuration and keeps the running one if the new
// file is invalid.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "access_log.hpp"
#include "admin_server.hpp"
#include "generation.hpp"
#include "worker.hpp"

namespace floodgate {

struct server_options {
    std::string config_path;
    std::string ports_file;  // written once every listener is bound
};

class server {
public:
    explicit server(server_options opts);
    ~server();

    // Runs until stopped by a signal; returns the process exit code.
    int run();

private:
    absl::Status start(std::shared_ptr<const config> cfg);
    absl::Status bind_listeners(const config& cfg);
    absl::Status write_ports_file() const;
    absl::Status load_keys(const config& cfg);
    void reload();
    net::awaitable<void> signal_loop();
    net::awaitable<void> shutdown();

    server_options opts_;
    room_registry rooms_;  // outlives every generation and worker
    std::shared_ptr<tokenstore::key_ring> keys_;
    net::io_context main_ioc_{1};
    net::signal_set signals_{main_ioc_};
    access_log access_log_;
    std::shared_ptr<const generation> gen_;
    std::vector<std::unique_ptr<listener_state>> listeners_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::thread> threads_;
    std::unique_ptr<admin_server> admin_;
    tcp::endpoint admin_endpoint_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> running_{0};
};

}  // namespace floodgate
