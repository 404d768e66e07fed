// One room's whole waiting-room state in one object: the ring, the active slots, the identity
// map and the admitter, wired so the gateway needs four calls.
//
//   auto room = waiting_room::create({.policy = {.rate = 550, .burst = 50, .max_active = 3000}},
//                                    now);
//   // no valid pass, protected path:
//   waiting_room::join_result j = room->join(now, identity, /*direct=*/mode == auto);
//       admitted -> mint a pass from j.pass; queued -> mint a ticket for j.seq;
//       already_admitted -> another device holds the pass; full -> 503
//   // GET /__fg/v1/rooms/{room}/status with a valid ticket:
//   waiting_room::poll_result p = room->poll(ticket.seq, now, identity);
//       p.pass set -> mint a pass (the call was claimed just now); p.st == waiting -> p.ahead
//   // every request with a valid pass:
//   if (!room->touch({pass.slot, pass.slot_gen}, now)) treat as no pass;
//   room->release(lease, release_reason::explicit_ / upstream);
//   // the admitter thread, every room->tick_interval() ms (burst / 2 rate, within 1-100 ms):
//   room->tick(now);
//
// Durability (journal.hpp): options.journal hears every admission, release and seq range before
// it reaches anyone; snapshot_state() is what a snapshot holds; options.restore starts a room
// from it (kill -9 and back: same places, same passes, no burst).
//
// Thread-safety: everything except tick() may run on any thread at any time; tick() runs on one
// thread. The one thing not to get wrong: the pass must be minted only from a lease that
// join() or poll() returned; a claimed call without a minted pass is capacity lost until the
// lease idles out.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "tokenstore/active_slots.hpp"
#include "tokenstore/admission.hpp"
#include "tokenstore/admitter.hpp"
#include "tokenstore/clock.hpp"
#include "tokenstore/identity_map.hpp"
#include "tokenstore/mutex.hpp"
#include "tokenstore/ring.hpp"

namespace floodgate::tokenstore {

class waiting_room {
public:
    // Hears every change a journal must keep (journal.hpp is the one implementation), on the
    // thread that made it, before the caller can hand the result to anyone.
    class observer {
    public:
        virtual ~observer() = default;
        // A join is about to hand out `seq`, at or beyond the last limit this returned (or the
        // restored one): returns a new limit above seq, durable before it returns (hi/lo: one
        // fsync per range, not per join). One caller at a time; also called ahead of need from
        // tick().
        virtual std::uint64_t reserve_seqs(std::uint64_t seq, millis now) = 0;
        // A lease was handed out: for the claimed call `seq`, or a direct admission (nullopt).
        virtual void on_admit(std::optional<std::uint64_t> seq, lease l, millis now) = 0;
        // A lease ended: released, or expired for idle or ttl.
        virtual void on_release(lease l) noexcept = 0;
    };

    // Where seqs come from when several gateway nodes number one queue (docs/redis.md): ranges
    // reserved ahead in Redis. With a source, every newcomer gets a ticket (no direct admission:
    // only the node holding the cursor lease calls people), and polls for tickets handed out on
    // other nodes are taken into this node's ring.
    class seq_source {
    public:
        virtual ~seq_source() = default;
        // The next seq for a newcomer, or nullopt when none can be had right now (the store is
        // unreachable): any thread, never blocks.
        virtual std::optional<std::uint64_t> take(millis now) = 0;
    };

    // A room's state as a journal keeps it (snapshot_state()) and gives back (restore).
    struct durable_state {
        std::uint64_t next_seq = 0;  // every seq below was handed out (see restore_options)
        std::uint64_t cursor = 0;
        std::uint64_t settled = 0;             // every call below was claimed or a no-show
        std::vector<std::uint64_t> claimed{};    // claimed calls in [settled, cursor)
        std::vector<std::uint64_t> abandoned{};  // in [settled, next_seq), ascending
        std::vector<active_slots::slot_state> slots{};  // held and free, with generations
    };

    struct restore_options {
        durable_state state{};
        // The reserved limit (hi): seqs in [state.next_seq, seq_limit) may have been handed
        // out just before the crash. The room restarts numbering at seq_limit and treats that
        // range as unconfirmed (ring::options::unconfirmed_from).
        std::uint64_t seq_limit = 0;
        millis unconfirmed_grace = 30'000;
    };

    struct options {
        room_policy policy{};
        ring::options queue{};  // capacity and restore values; abandon_after comes from policy
        admitter::options admission{};
        millis identity_ttl = 600'000;  // how long an identity keeps its place or blocks others
        // From a journal: the state to start from. Waiting tickets keep their seq and order;
        // pending calls get one full claim window from `now`; held leases keep their slot,
        // generation and acquired_at, and their idle clock restarts at `now` (nobody loses
        // access early); the rate budget starts empty (no burst after a restart). Overrides
        // queue.next_seq, cursor, tail, claimed, abandoned and unconfirmed_*.
        std::optional<restore_options> restore{};
        // Not owned; must outlive the room. With an observer, joins only hand out seqs below a
        // limit it reserved.
        observer* journal = nullptr;
        // Not owned; must outlive the room. Exclusive with journal.
        seq_source* seqs = nullptr;
    };

    enum class join_outcome : std::uint8_t {
        queued,            // seq is the ticket (new, or the identity's existing place)
        admitted,          // direct admission: pass holds the lease
        already_admitted,  // the identity holds an active pass on another device
        full,              // the ring is at capacity
        unavailable,       // no seq could be had (seq_source: the shared store is unreachable)
    };

    struct join_result {
        join_outcome outcome = join_outcome::full;
        std::uint64_t seq = 0;  // for admitted: next_seq at admission (no ticket was issued)
        std::optional<lease> pass{};
        ring::position pos{};  // for queued
    };

    struct poll_result {
        ring::state st = ring::state::unknown;
        std::uint64_t ahead = 0;
        std::optional<lease> pass{};  // set exactly once per ticket: mint the pass now
    };

    struct stats {
        std::uint64_t issued = 0;    // tickets ever (next_seq)
        std::uint64_t cursor = 0;
        std::uint64_t waiting = 0;   // upper bound of live waiting tickets
        std::uint64_t active = 0;
        std::uint64_t calls_pending = 0;
        std::uint64_t admitted_total = 0;  // passes issued (claims + direct)
        std::uint64_t abandoned_total = 0;
        std::uint64_t noshows_total = 0;
        active_slots::release_counts released{};
    };

    static absl::StatusOr<std::unique_ptr<waiting_room>> create(const options& opts, millis now);

    join_result join(millis now, std::string_view identity = {}, bool allow_direct = true);
    poll_result poll(std::uint64_t seq, millis now, std::string_view identity = {});
    bool touch(lease l, millis now) noexcept { return slots_.touch(l, now); }
    bool release(lease l, release_reason why) noexcept;
    bool leave(std::uint64_t seq) noexcept { return ring_->leave(seq); }

    void set_policy(const room_policy& p, millis now) { admitter_->set_policy(p, now); }
    room_policy policy() const { return admitter_->policy(); }
    stats snapshot() const;
    // People in line now: snapshot().waiting, without the rest.
    std::uint64_t waiting() const noexcept { return ring_->waiting(); }

    // The admitter thread only, every tick_interval() ms.
    admitter::tick_report tick(millis now);
    millis tick_interval() const { return admitter_->tick_interval(); }

    // What a journal's snapshot holds (the admitter thread only, or before the room is used).
    // next_seq stops at the reserved limit and at a restored unconfirmed range.
    durable_state snapshot_state() const;
    // The limit below which joins hand out seqs (max() without an observer).
    std::uint64_t seq_limit() const noexcept { return seq_limit_.load(std::memory_order_acquire); }

    admitter& admission() noexcept { return *admitter_; }
    ring& queue() noexcept { return *ring_; }
    const ring& queue() const noexcept { return *ring_; }
    active_slots& slots() noexcept { return slots_; }

    static std::uint64_t pack(lease l) noexcept { return (std::uint64_t(l.gen) << 32) | l.slot; }
    static lease unpack(std::uint64_t v) noexcept {
        return {static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32)};
    }

private:
    explicit waiting_room(const options& opts);
    join_result join_anonymous(millis now, bool allow_direct);
    // Makes sure seq is below a limit the observer reserved, before it reaches anyone.
    void ensure_reserved(std::uint64_t seq, millis now) ABSL_LOCKS_EXCLUDED(reserve_mu_);

    const millis identity_ttl_;
    std::unique_ptr<ring> ring_;
    active_slots slots_;
    identity_map ids_;
    std::unique_ptr<admitter> admitter_;
    std::atomic<std::uint64_t> admitted_total_{0};
    std::atomic<std::uint64_t> noshows_total_{0};
    millis next_purge_ = 0;  // tick thread only
    observer* const observer_;
    seq_source* const seqs_;
    mutex reserve_mu_;  // one reserve_seqs() at a time
    std::atomic<std::uint64_t> seq_limit_{std::numeric_limits<std::uint64_t>::max()};
    std::atomic<std::uint64_t> reserve_margin_{1};  // tick() reserves this far ahead
};

}  // namespace floodgate::tokenstore
