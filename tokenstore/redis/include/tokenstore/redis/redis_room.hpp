// One room's shared state in Redis (docs/redis.md): seq ranges, the cursor lease, the published
// cursor and the per-epoch liveness bitmaps. It speaks the protocol; it does not run the queue
// (the in-memory ring and admitter still do, on every node).
//
//   auto room = redis_room::create(conn, {.room = "vaccine", .node_id = "gw1:4242:9f3a"});
//   room->start(/*want_lease=*/true);    // follow the cursor; take the lease when it is free
//   room->reserve_seqs(1000, [](error_code ec, redis_room::seq_range r) { ... [r.first, r.last) });
//   if (room->holds_lease()) room->publish_cursor({.cursor = c, .dead_below = d, .at = now}, cb);
//   std::optional<redis_room::cursor_value> c = room->cursor();   // any thread, no round trip
//   room->mark_live(seq, now);            // on a poll: local, batched
//   room->flush_liveness(now, cb);        // every second: one BITFIELD per 1024 seqs
//
// Keys all carry the hash tag {room}: fg:{room}:seq, :lease, :cursor, :live:<epoch>.
//
// The one thing not to get wrong: holds_lease() is the only permission to advance the cursor,
// and it turns false by itself one lease ttl after the last successful renewal was *sent*, so a
// holder cut off from Redis stops before anyone else can take over. publish_cursor() is fenced
// in Redis as well (only the holder's id, only forwards), so a late publish is harmless.
//
// Callbacks run on the connection's strand. start()/stop() and all calls are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "tokenstore/clock.hpp"
#include "tokenstore/mutex.hpp"
#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate::tokenstore::redis {

class redis_room : public std::enable_shared_from_this<redis_room> {
public:
    struct options {
        std::string room;
        std::string node_id;  // unique per process: "<host>:<pid>:<random>"
        std::chrono::milliseconds lease_ttl{3000};      // renewed every ttl / 3
        std::chrono::milliseconds cursor_interval{200};  // cursor reads, 5 a second
        millis epoch_ms = 10'000;                        // liveness epoch length
        int epochs_kept = 3;                             // bitmaps expire after this many epochs
        std::chrono::milliseconds config_interval{1000};  // config version checks
    };

    struct seq_range {
        std::uint64_t first = 0;  // [first, last)
        std::uint64_t last = 0;
    };

    struct cursor_value {
        std::uint64_t cursor = 0;      // every seq below was called
        std::uint64_t dead_below = 0;  // abandoned tickets below the cursor
        millis at = 0;                 // when the holder published it
    };

    static std::shared_ptr<redis_room> create(std::shared_ptr<redis_connection> conn, options opts);

    const std::string& key_prefix() const noexcept { return prefix_; }  // "fg:{room}:"

    // --- seq ---
    // INCRBY seq n: the range is this node's alone. ec set: nothing was reserved (as far as
    // anyone can tell; a reply lost to a timeout leaves a hole, which is harmless).
    void reserve_seqs(std::uint64_t n, std::function<void(error_code, seq_range)> cb);

    // --- the cursor lease ---
    // Acquire, or renew if held: true when this node holds it now. start(true) calls this every
    // lease_ttl / 3 by itself.
    void try_lease(std::function<void(error_code, bool)> cb);
    // Compare-and-delete: another node can take over at once. Also stops the renewing loop.
    void release_lease(std::function<void(error_code, bool)> cb);
    bool holds_lease() const noexcept;

    // --- the cursor ---
    // Fenced publish: true when written (this node holds the lease in Redis and c.cursor is not
    // behind the stored cursor).
    void publish_cursor(cursor_value c, std::function<void(error_code, bool)> cb);
    void read_cursor(std::function<void(error_code, std::optional<cursor_value>)> cb);
    // The last cursor read by the follow loop (or published by this node): no round trip.
    std::optional<cursor_value> cursor() const;

    // The follow loop: reads the cursor every cursor_interval; with want_lease, acquires or
    // renews the lease every lease_ttl / 3. stop() ends it without releasing the lease (what a
    // crash looks like to the others); call release_lease() first for a clean handover.
    void start(bool want_lease);
    void stop();

    // --- liveness ---
    // Records that ticket `seq` polled at `now`: local and cheap, once per seq per epoch.
    void mark_live(std::uint64_t seq, millis now);
    // Sends the recorded bits (BITFIELD SET u1, 1024 per command, pipelined). cb gets the number
    // of seqs written; on failure they are forgotten locally so the next poll records them again.
    void flush_liveness(millis now, std::function<void(error_code, std::size_t)> cb);
    // For seqs [from, from + count): live[i] is true when any node saw seq from + i in the
    // current epoch or the `epochs - 1` before it. One GETRANGE per epoch, pipelined.
    void read_liveness(std::uint64_t from, std::uint64_t count, millis now, int epochs,
                       std::function<void(error_code, std::vector<bool>)> cb);
    std::int64_t epoch_of(millis now) const noexcept { return now / opts_.epoch_ms; }

    // --- active slots (max_active shared by all nodes) ---
    // fg:{room}:slotgen (hash slot -> generation), :held (zset slot -> expires at, ms),
    // :free (list of released slots). A claim reuses one expired slot, else a released one,
    // else a fresh index, and never lets :held grow beyond max_active. One Lua call each.
    struct slot_claim {
        bool granted = false;
        std::uint32_t slot = 0;
        std::uint32_t gen = 0;  // goes into the pass; a reused slot gets a new generation
    };
    void claim_slot(std::uint32_t max_active, millis now, millis expires_at,
                    std::function<void(error_code, slot_claim)> cb);
    // Moves the slot's expiry to expires_at if (slot, gen) still holds it and has not expired.
    void touch_slot(std::uint32_t slot, std::uint32_t gen, millis now, millis expires_at,
                    std::function<void(error_code, bool)> cb);
    // Frees the slot if (slot, gen) still holds it.
    void release_slot(std::uint32_t slot, std::uint32_t gen, std::function<void(error_code, bool)> cb);
    // Slots held and not expired at `now`.
    void count_active(millis now, std::function<void(error_code, std::uint64_t)> cb);

    // --- runtime room changes ---
    // fg:{room}:config is a hash of the room's runtime settings (names and values are the
    // caller's; "version" is reserved) with a version that every write bumps; each write also
    // PUBLISHes the version on fg:{room}:events for nodes that subscribe.
    using config_fields = std::vector<std::pair<std::string, std::string>>;
    // HSETs the fields and bumps the version in one Lua call: cb gets the new version.
    void write_config(config_fields fields, std::function<void(error_code, std::uint64_t)> cb);
    // All fields (without "version") and the version (0: never written).
    void read_config(std::function<void(error_code, std::uint64_t, config_fields)> cb);
    // Called on the strand by the follow loop when it sees a new version (checked every
    // config_interval, so a change reaches every node within about that). Set before start().
    void on_config_change(std::function<void(std::uint64_t, const config_fields&)> h);

    // --- identity de-duplication ---
    // SET fg:{room}:id:<identity> value NX GET PX ttl: nullopt when this call took the identity,
    // else the value whoever holds it stored (e.g. "q <seq>" or "p <slot> <gen>").
    void claim_identity(std::string_view identity, std::string_view value, millis ttl,
                        std::function<void(error_code, std::optional<std::string>)> cb);
    // Deletes the identity if it still holds `value` (compare-and-delete).
    void release_identity(std::string_view identity, std::string_view value,
                          std::function<void(error_code, bool)> cb);

private:
    redis_room(std::shared_ptr<redis_connection> conn, options opts);
    void do_follow();
    void do_renew();
    void store_cursor(const cursor_value& c);
    void check_config();

    const std::shared_ptr<redis_connection> conn_;
    const options opts_;
    const std::string prefix_;
    net::steady_timer follow_timer_;
    net::steady_timer renew_timer_;
    std::function<void(std::uint64_t, const config_fields&)> on_config_;  // set before start()
    std::uint64_t config_version_ = 0;   // strand only: the last version handed to on_config_
    std::chrono::steady_clock::time_point next_config_check_{};  // strand only
    std::atomic<bool> running_{false};
    std::atomic<bool> want_lease_{false};
    // steady_clock ticks until which this node may act as the holder; 0 = not held.
    std::atomic<std::int64_t> lease_until_{0};

    mutable mutex mu_;
    std::optional<cursor_value> cursor_ ABSL_GUARDED_BY(mu_);
    std::int64_t live_epoch_ ABSL_GUARDED_BY(mu_) = -1;
    absl::flat_hash_set<std::uint64_t> seen_ ABSL_GUARDED_BY(mu_);  // this epoch
    std::vector<std::uint64_t> unflushed_ ABSL_GUARDED_BY(mu_);     // this epoch, not yet sent
};

}  // namespace floodgate::tokenstore::redis
