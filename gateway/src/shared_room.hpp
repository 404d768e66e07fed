// One room shared by several gateway nodes through Redis (store: redis://..., docs/redis.md).
//
// Every node keeps the room's whole queue in its own ring and answers polls from it; Redis
// holds only what the nodes must agree on:
//   - seq: each node numbers its newcomers from small ranges it reserves ahead (INCRBY) and
//     uses for at most range_max_age, so every seq is handed out soon after it was reserved;
//   - the cursor: exactly one node, the lease holder, walks the queue and calls people; it
//     publishes the cursor, and before it the tickets it found abandoned (fg:{room}:dead, a list
//     of packed seqs). The others follow: they read both every sync_interval and apply them, so
//     every node gives a ticket the same place;
//   - liveness: every node records the tickets it sees (joins, polls) in per-epoch bitmaps; the
//     holder reads them for the part of the queue it may walk. A seq nobody has seen settle_delay
//     after it was reserved is a hole (an unused range) or long gone: the holder marks it
//     abandoned, which is what lets the walk pass it;
//   - sessions: each node holds the passes it minted; a pass's slot carries the node's number,
//     so another node forwards touches and releases to it (fg:{room}:fwd:<node>), and each node
//     reports its active count, which the holder counts against max_active. Forwards wait in a
//     bounded local queue while Redis is unreachable and go out once it is back;
//   - node numbers (1..255): a lease each (fg:{room}:node:<n>), renewed every second with a
//     ttl of session_ttl + number_grace, so a number is free again only once every pass minted
//     under it has expired. A node mints under its number only while that lease is certain to
//     outlast the pass; without a number it does not sync, so the room is out of step.
//
// Threads: take() and the request-path calls (saw(), touch(), release()) run on any I/O thread;
// before_tick()/after_tick() on the admitter thread, around the room's tick; Redis callbacks on
// the connection's strand, where they only fill the inbox the next tick drains.
//
// The one thing not to get wrong: the holder may walk only up to walk_end, the last seq whose
// liveness it has read at least settle_delay after that seq was reserved. Beyond it a ticket
// may exist that the holder has not heard of yet, and passing it would break the line's order.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/redis/redis_connection.hpp"
#include "tokenstore/redis/redis_room.hpp"
#include "tokenstore/waiting_room.hpp"

namespace floodgate {

using tokenstore::millis;

class shared_room : public tokenstore::waiting_room::seq_source,
                    public std::enable_shared_from_this<shared_room> {
public:
    struct options {
        std::string room;
        std::string node_id;
        millis range_max_age = 1'000;   // a reserved range is used for at most this long
        millis settle_delay = 3'000;    // > range_max_age + flush interval + a read
        millis sync_interval = 200;     // cursor, dead marks, seq counter, active counts
        millis flush_interval = 100;    // liveness bits out
        millis liveness_interval = 1'000;  // the holder's liveness reads
        millis unreachable_after = 2'000;  // no successful sync for this long: store down
        millis abandon_after = 60'000;
        // The node number's lease lives session_ttl + number_grace from its last renewal: the
        // node mints under it for up to number_grace after that renewal (an outage shorter than
        // this changes nothing), and a dead node's number is free that long after its passes.
        millis number_grace = 60'000;
        millis number_interval = 1'000;  // renewal, or another try for a number
        // Forwarded touches and releases waiting for Redis, in records: past it the oldest
        // touches go first, releases only when nothing else is left.
        std::size_t max_forwards = 65'536;
        std::size_t max_ended = 65'536;  // this node's ended passes waiting for Redis
        // The room's runtime settings changed on another node (admin API): called on the
        // connection's strand with what that node published (publish_settings()).
        std::function<void(const std::string& settings)> on_settings{};
    };


    static std::shared_ptr<shared_room> create(std::shared_ptr<tokenstore::redis::redis_connection> conn,
                                               options opts);
    ~shared_room() override;

    // Before start(); wr must outlive this object's use (room_runtime owns both).
    void attach(tokenstore::waiting_room* wr);
    void start();
    // Hands the lease over (when held) so another node takes over at once.
    void stop();

    // seq_source: the next seq of a range reserved less than range_max_age ago.
    std::optional<std::uint64_t> take(millis now) override;

    // The request path.
    void saw(std::uint64_t seq, millis now);  // a join or poll for this ticket, on this node
    // A pass's slot, as minted here: the node's number in the top 8 bits. 0 there (a pass no
    // node owns: it gets through every node until its session_ttl and cannot be released) when
    // the node has no number it may mint under right now (docs/redis.md, "Node numbers").
    std::uint32_t global_slot(std::uint32_t local) const noexcept;
    // This node's number for the room's passes (1..255), 0 while it has none.
    std::uint32_t node_number() const noexcept { return node_no_.load(std::memory_order_relaxed); }
    // For a pass from any node: true when it may proceed (its own slot still held here, or
    // another node's, whose holder gets the touch forwarded).
    bool touch(tokenstore::lease l, millis now);
    bool release(tokenstore::lease l, tokenstore::release_reason why);

    // The admitter thread, around the room's tick. before_tick() returns the people called
    // by following the holder's cursor.
    std::uint64_t before_tick(millis now);
    void after_tick(millis now);

    // One place per person across nodes (a room with identity: header or cookie): takes the
    // identity for the ticket `seq` just handed out here. cb (on the connection's strand) gets
    // nullopt when it was free, else what the holder stored ("q <seq>" or "p <slot> <gen>").
    void claim_identity(std::string_view identity, std::uint64_t seq,
                        std::function<void(error_code, std::optional<std::string>)> cb);
    // The identity's ticket became a pass: other devices hear "already admitted" for a while.
    void note_admitted(std::string_view identity, tokenstore::lease l, millis hold_for);

    // This node's operators changed the room's runtime settings: every other node applies
    // them within about a second (fg:{room}:config, redis_room::write_config).
    void publish_settings(std::string settings);

    bool available() const noexcept { return available_.load(std::memory_order_relaxed); }
    // In step with the store at least once since this process started.
    bool ever_synced() const noexcept { return ever_synced_.load(std::memory_order_relaxed); }

private:
    struct range {
        std::uint64_t first = 0, next = 0, last = 0;
        millis reserved_at = 0;
    };
    struct inbox {
        std::optional<std::uint64_t> global_seq;
        std::optional<tokenstore::redis::redis_room::cursor_value> cursor;
        std::vector<std::uint64_t> dead;
        std::uint64_t dead_read = 0;  // list elements consumed by the read that filled `dead`
        std::uint64_t dead_len = 0;   // the list's length then
        std::vector<std::uint64_t> ended;  // passes (gen << 32 | slot) ended on their node
        std::uint64_t ended_read = 0, ended_len = 0;
        bool dead_ok = false;
        std::optional<std::uint64_t> active_elsewhere;
        std::vector<std::pair<char, tokenstore::lease>> forwarded;
        std::optional<std::pair<std::uint64_t, std::vector<bool>>> live;  // from, bits
        std::uint64_t live_end = 0;
        std::uint64_t live_takeover = 0;
        std::uint64_t sync_takeover = 0;
        bool sync_done = false;  // a sync finished, well or not: another may start
        bool synced = false;     // ... and it succeeded
    };

    shared_room(std::shared_ptr<tokenstore::redis::redis_connection> conn, options opts);
    void start_sync(millis now);
    void start_liveness_read(millis now);
    void start_reserve(millis now);  // any thread
    void send_forwards();
    void send_ended();
    void publish(millis now);
    std::uint32_t owner_of(std::uint32_t slot) const noexcept { return slot >> 24; }

    // Node numbers. Strand (callbacks) and admitter thread, one request at a time
    // (number_in_flight_).
    void claim_number();
    void renew_number();
    millis number_ttl() const;
    // The number a pass minted at steady_at may carry, 0 for none.
    std::uint32_t mintable_number(std::int64_t steady_at) const noexcept;

    // A touch ('T') or release ('R') of another node's pass, for its owner.
    struct forward {
        std::uint32_t owner = 0;
        char kind = 'T';
        tokenstore::lease l{};  // the owner's local slot
        std::uint64_t key() const noexcept { return (std::uint64_t(l.gen) << 32) | (owner << 24) | l.slot; }
    };
    void queue_forward(const forward& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fwd_mu_);
    void trim_forwards() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fwd_mu_);

    const std::shared_ptr<tokenstore::redis::redis_connection> conn_;
    const options opts_;
    const std::shared_ptr<tokenstore::redis::redis_room> redis_;
    const std::string prefix_;
    tokenstore::waiting_room* wr_ = nullptr;

    std::atomic<std::uint32_t> node_no_{0};
    // Steady ms before which the number's lease certainly lasts in Redis (the last successful
    // claim or renewal was sent at least number_ttl() before it): a pass minted at t is safe
    // under the number while t + session_ttl is not later.
    std::atomic<std::int64_t> number_expires_{0};
    std::atomic<bool> number_in_flight_{false};
    const std::string number_value_;  // "<node id> <random>": this process's leases
    mutable std::atomic<std::int64_t> unowned_logged_{0};  // steady ms of the last warning
    std::int64_t all_taken_logged_ = 0;                     // strand only
    std::atomic<bool> stopped_{false};
    std::atomic<bool> available_{false};
    std::atomic<bool> ever_synced_{false};

    tokenstore::mutex range_mu_;
    range current_ ABSL_GUARDED_BY(range_mu_);
    std::optional<range> spare_ ABSL_GUARDED_BY(range_mu_);
    std::uint64_t taken_ ABSL_GUARDED_BY(range_mu_) = 0;  // seqs taken, for range sizing
    millis last_take_at_ ABSL_GUARDED_BY(range_mu_) = 0;
    // Unused rest of ranges this node will not hand out any more: holes, announced as such
    // (fg:{room}:dead) so that nobody counts them in a place for long.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> retired_ ABSL_GUARDED_BY(range_mu_);

    tokenstore::mutex fwd_mu_;
    // Not yet in Redis, oldest first. At most one touch per pass waits (fwd_queued_).
    std::deque<forward> fwd_touches_ ABSL_GUARDED_BY(fwd_mu_);
    std::deque<forward> fwd_releases_ ABSL_GUARDED_BY(fwd_mu_);
    absl::flat_hash_set<std::uint64_t> fwd_queued_ ABSL_GUARDED_BY(fwd_mu_);   // keys of waiting touches
    absl::flat_hash_set<std::uint64_t> fwd_touched_ ABSL_GUARDED_BY(fwd_mu_);  // this second
    std::uint64_t fwd_dropped_ ABSL_GUARDED_BY(fwd_mu_) = 0;  // since the last warning
    millis fwd_dropped_logged_ ABSL_GUARDED_BY(fwd_mu_) = 0;
    std::atomic<bool> fwd_in_flight_{false};
    std::atomic<bool> ended_in_flight_{false};

    // Passes of this node whose session ended (released, idle, ttl), to tell the others; and
    // the others' ended passes (gen << 32 | slot -> when heard), which no longer get through.
    void note_ended(tokenstore::lease local);
    tokenstore::mutex ended_mu_;
    std::vector<std::uint64_t> ended_ ABSL_GUARDED_BY(ended_mu_);
    mutable tokenstore::mutex revoked_mu_;
    absl::flat_hash_map<std::uint64_t, millis> revoked_ ABSL_GUARDED_BY(revoked_mu_);

    tokenstore::mutex inbox_mu_;
    inbox in_ ABSL_GUARDED_BY(inbox_mu_);

    // The admitter thread only.
    bool sync_in_flight_ = false, live_in_flight_ = false;
    // Cleared by Redis callbacks.
    std::atomic<bool> reserve_in_flight_{false}, flush_in_flight_{false};
    millis next_sync_ = 0, next_live_ = 0, next_flush_ = 0, next_fwd_reset_ = 0, last_synced_ = 0;
    millis next_number_ = 0;
    std::uint64_t dead_offset_ = 0;      // fg:{room}:dead elements applied
    std::uint64_t ended_offset_ = 0;     // fg:{room}:ended elements applied
    millis next_revoked_prune_ = 0;
    std::deque<std::pair<millis, std::uint64_t>> seq_seen_;  // (when read, global seq then)
    std::uint64_t global_seq_ = 0;
    std::uint64_t walk_end_ = 0;
    std::uint64_t takeover_ = 0;         // bumped each time this node gains the lease
    bool held_ = false;                  // held at the last tick
    bool synced_since_takeover_ = false, live_since_takeover_ = false;
    bool calling_ = false;
    std::uint64_t published_ = 0;
    std::uint64_t taken_at_last_reserve_ ABSL_GUARDED_BY(range_mu_) = 0;
    std::uint64_t active_elsewhere_ = 0;
};

}  // namespace floodgate
