// The whole gateway process: loads the configuration, binds the listeners,
// runs one worker per thread, and handles the signals: SIGTERM/SIGINT stop
// gracefully (in-flight requests finish within timeouts.shutdown_grace),
// SIGHUP re-reads the configuration and keeps the running one if the new
// file is invalid.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "access_log.hpp"
#include "admin_server.hpp"
#include "generation.hpp"
#include "metrics.hpp"
#include "shared_catalog.hpp"
#include "worker.hpp"

namespace floodgate {

struct server_options {
    std::string config_path;
    std::string ports_file;  // written once every listener is bound
};

class server final : public admin_backend {
public:
    explicit server(server_options opts);
    ~server() override;

    // Runs until stopped by a signal; returns the process exit code.
    int run();

    // admin_backend (main thread)
    std::shared_ptr<const generation> current() const override { return gen_; }
    const config& file_config() const override { return *file_cfg_; }
    runtime_state& runtime() override { return runtime_; }
    absl::Status apply_runtime() override;
    absl::Status reload() override;
    absl::StatusOr<std::string> rotate_keys() override;
    std::size_t key_count() const override { return keys_->size(); }
    metrics_hub& metrics() override { return *metrics_; }
    room_registry& rooms() override { return rooms_; }
    std::shared_ptr<const admin_tokens> tokens() const override { return tokens_; }
    bool stopping() const override { return stopping_.load(std::memory_order_relaxed); }
    void announce_room(const std::string& room, std::optional<std::string> definition) override;

private:
    absl::Status start(std::shared_ptr<const config> cfg);
    absl::Status bind_listeners(const config& cfg);
    absl::Status write_ports_file() const;
    absl::Status load_keys(const config& cfg);
    absl::Status load_tokens(const config& cfg);
    // The generation for the file's config plus the runtime changes.
    absl::StatusOr<std::shared_ptr<const generation>> build_effective(std::shared_ptr<const config> file_cfg);
    void install(std::shared_ptr<const generation> gen);
    // Another node changed a shared room's settings (the main thread).
    void apply_remote_settings(const std::string& room, const std::string& settings);
    // Another node created or deleted a runtime room (the main thread; room_catalog's hooks).
    void add_remote_room(const std::string& room, const std::string& definition);
    void remove_remote_room(const std::string& room);
    // A token key rotated on some node ("<unix ms> <secret>"): verifies here at once, signs
    // about 2 s later (every node has had it for a while by then).
    void learn_shared_key(const std::string& kid, const std::string& value);
    // Once a second: logs when the store connection moved to another Redis node (a failover).
    void watch_store();
    net::awaitable<void> signal_loop();
    net::awaitable<void> shutdown();

    server_options opts_;
    // Before the store and the rooms: their Redis sockets and timers live on it.
    net::io_context main_ioc_{1};
    std::shared_ptr<tokenstore::redis::redis_connection> store_;  // store: redis://...
    room_registry rooms_;  // outlives every generation and worker
    std::shared_ptr<shared_catalog> rooms_catalog_;  // runtime rooms shared through store_
    std::shared_ptr<shared_catalog> keys_catalog_;   // keys rotated through the admin API
    std::map<std::string, std::string> shared_keys_;  // kid -> "<unix ms> <secret>"
    net::steady_timer sign_timer_{main_ioc_};         // the newest shared key signs when it fires
    net::steady_timer store_watch_{main_ioc_};        // logs a change of Redis node (watch_store())
    std::string store_primary_;
    std::shared_ptr<tokenstore::key_ring> keys_;
    net::signal_set signals_{main_ioc_};
    access_log access_log_;
    std::unique_ptr<metrics_hub> metrics_;  // before workers_: they count into it
    std::shared_ptr<const config> file_cfg_;  // as the file says
    runtime_state runtime_;                    // what operators changed at run time
    std::shared_ptr<const admin_tokens> tokens_;
    std::shared_ptr<const generation> gen_;    // file + runtime, what the workers serve
    std::map<std::string, std::string> shared_settings_;  // shared rooms: settings last sent or heard
    std::vector<std::unique_ptr<listener_state>> listeners_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::thread> threads_;
    std::unique_ptr<admin_server> admin_;  // on main_ioc_
    tcp::endpoint admin_endpoint_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> running_{0};
};

}  // namespace floodgate
