// A waiting room at run time: the tokenstore's waiting_room (queue, active
// slots, identity map, admitter) plus the smoothed call rate used for ETAs
// and the counters the metrics will read.
//
// Rooms outlive configuration generations: a reload or an admin change
// applies a new policy to the same room, so nobody loses a place in line.
// With a state_dir, a room also survives the process: it is restored from
// its journal (<state_dir>/rooms/<room>/, tokenstore/journal.hpp) when it is
// created, and the admitter thread feeds the journal after every tick.
// The one thing not to get wrong: tick() runs on the admitter thread only;
// everything else is safe from every I/O thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config.hpp"
#include "shared_room.hpp"
#include "tokenstore/journal.hpp"
#include "tokenstore/waiting_room.hpp"

namespace floodgate {

using tokenstore::millis;

class room_runtime {
public:
    // Where a room keeps what several gateway nodes share (store: redis://...).
    struct shared_store {
        std::shared_ptr<tokenstore::redis::redis_connection> conn;
        std::string node_id;
        store_failure_mode on_failure = store_failure_mode::hold;
        // Another node changed a room's runtime settings: (room, settings JSON), on the
        // connection's strand.
        std::function<void(const std::string& room, const std::string& settings)> on_settings{};
    };

    // journal_dir empty: nothing survives a restart. Otherwise the room is
    // restored from that directory (created if missing) and journaled there.
    // With a shared store the room is one queue across every node using it
    // (shared_room.hpp), and Redis, not a journal, keeps it.
    static absl::StatusOr<std::shared_ptr<room_runtime>> create(const room_config& cfg, millis now,
                                                                const std::string& journal_dir = {},
                                                                const shared_store* store = nullptr);

    const std::string& name() const { return name_; }
    std::uint64_t id() const { return id_; }
    tokenstore::waiting_room& wr() { return *wr_; }

    // The request path: the waiting room's calls, through the shared store when there is one.
    tokenstore::waiting_room::join_result join(millis now, std::string_view identity, bool allow_direct);
    tokenstore::waiting_room::poll_result poll(std::uint64_t seq, millis now, std::string_view identity);
    bool touch(tokenstore::lease l, millis now);
    bool release(tokenstore::lease l, tokenstore::release_reason why);
    // Null in memory mode.
    shared_room* shared() const { return shared_.get(); }
    // False while the shared store cannot be reached (always true in memory mode).
    bool store_available() const { return !shared_ || shared_->available(); }
    // What the room does meanwhile (store_failure): set when the store is unreachable.
    std::optional<store_failure_mode> store_failing() const {
        if (store_available()) return std::nullopt;
        return on_store_failure_;
    }

    // Applies the admission part of cfg (rate, burst, max_active, timeouts, mode).
    void apply(const room_config& cfg, millis now);

    // People called per second, smoothed over about ten seconds; the
    // configured rate until something has been measured.
    double call_rate() const { return call_rate_.load(std::memory_order_relaxed); }

    // The admitter thread: one admission step; returns when to tick next.
    millis tick(millis now);

    // A clean stop, once the admitter thread and the I/O threads are done: a
    // last snapshot, so the next start reads one file.
    void close_journal(millis now);
    // Stops taking part in the shared queue (hands the cursor lease over when held).
    void leave_shared();

    std::atomic<std::uint64_t> tickets_issued{0};
    std::atomic<std::uint64_t> direct_admissions{0};

private:
    room_runtime(std::string name, std::unique_ptr<tokenstore::journal> journal,
                 std::shared_ptr<shared_room> shared, std::unique_ptr<tokenstore::waiting_room> wr,
                 double rate);

    std::string name_;
    std::uint64_t id_;
    std::unique_ptr<tokenstore::journal> journal_;  // before wr_: the room's observer outlives it
    std::shared_ptr<shared_room> shared_;           // before wr_: its seq source outlives it
    store_failure_mode on_store_failure_ = store_failure_mode::hold;
    std::unique_ptr<tokenstore::waiting_room> wr_;
    std::atomic<double> call_rate_;
    // admitter thread only
    millis window_start_ = 0;
    std::uint64_t window_calls_ = 0;
    bool measured_ = false;
    millis journal_error_logged_ = 0;
    bool journal_closed_ = false;
};

tokenstore::room_policy policy_of(const room_config& cfg);

// The node's id: node_id from the config, else <hostname>:<pid>.
std::string effective_node_id(const config& cfg);

// All rooms of the process, and the admitter thread that ticks them.
class room_registry {
public:
    room_registry() = default;
    ~room_registry() { stop(); }

    // The room named cfg.name, created on first use, with cfg applied.
    absl::StatusOr<std::shared_ptr<room_runtime>> get_or_create(const room_config& cfg, millis now);

    // Stops ticking the room and forgets it (requests in flight finish with it).
    // Its journal directory is moved aside to <state_dir>/rooms/.deleted-<room>-<unix ms>,
    // so a new room of the same name starts empty.
    void remove(const std::string& name);

    // Every room, in name order (a copy: safe to use while rooms are added).
    std::vector<std::shared_ptr<room_runtime>> list();

    // Starts the admitter thread. With a state_dir, rooms created from now on
    // are restored from and journaled to <state_dir>/rooms/<room>/.
    void start(std::string state_dir = {});
    // Before start(): rooms keep their queue in this shared store.
    void set_shared_store(room_runtime::shared_store store) { store_ = std::move(store); }
    const room_runtime::shared_store& store() const { return store_; }
    void stop();

private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::string state_dir_;
    room_runtime::shared_store store_;
    std::map<std::string, std::shared_ptr<room_runtime>> rooms_;
    std::thread thread_;
};

}  // namespace floodgate
