// One room's queue in memory: ticket numbers (seq), each ticket's last-seen time, the cursor,
// and an index that answers "how many live people are ahead of me" in O(1).
//
//   auto r = ring::create({.abandon_after = 60'000}, now);     // absl::StatusOr
//   std::optional<std::uint64_t> seq = (*r)->join(now);        // nullopt: ring full
//   ring::position p = (*r)->poll(*seq, now);                  // heartbeat + position
//   if (p.state == ring::state::called && (*r)->claim(*seq) == ring::claim_status::claimed) ...
//   // on the admitter thread, once per tick:
//   (*r)->advance(n, now); (*r)->expire_calls(now, claim_window); (*r)->sweep(budget, now);
//
// Layout. Slots live in one circular virtual mapping reserved up front (capacity x 4 bytes plus
// capacity / 4 bytes of index) and indexed by seq modulo capacity. The mapping is divided into
// blocks of 4 x page-size slots (16384 with 4 KiB pages): a block gets memory from the kernel
// when the first join touches it and gives it back (madvise MADV_DONTNEED) when the tail passes
// it. A slot is a u32: 0 = joining, 1..0xFFFFFFEF = waiting and last seen at that Unix second
// minus one, then called, claimed, missed (no-show) and abandoned. Per group of 64 slots the
// index keeps a bitmask of abandoned slots and the number of abandoned tickets before the group.
//
// Concurrency. join(), heartbeat(), poll(), locate(), claim() and leave() are lock-free and may
// run on any number of threads. advance(), expire_calls(), sweep() and set_abandon_after() must
// run on one thread, the admitter: it is the only writer of the cursor, the tail, the abandoned
// marks and the index. Slot state changes are single CAS operations, so a heartbeat and the
// admitter's "abandoned" verdict, or a claim and the "no-show" verdict, never both win.
//
// The one thing not to get wrong: an abandoned ticket never comes back. A heartbeat can keep a
// ticket alive only until the admitter has marked it abandoned; after that its holder must join
// again at the back. That is what makes a live user's `ahead` never increase: it only counts
// tickets that can still be called, and that set only shrinks from the front and the middle.
// The reported `ahead` may lag reality until the admitter's next publish_index() (never below
// the truth).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenstore/clock.hpp"

namespace floodgate::tokenstore {

class ring {
public:
    struct options {
        // Most tickets held at once: waiting ones plus called ones inside the claim window.
        // Rounded up to a power of two; costs 1.25 bytes of address space per ticket (not RAM).
        std::uint64_t capacity = std::uint64_t(1) << 27;
        // A waiting ticket not seen for longer than this is abandoned (1 s resolution).
        millis abandon_after = 60'000;
        // Restore hooks (from a journal). Every seq below `cursor` has been called; tickets in
        // [cursor, next_seq) are waiting and count as seen at `now`; tickets in [tail, cursor)
        // are called and may still claim within one claim window from `now`. tail defaults to
        // cursor (nobody's call is pending).
        std::uint64_t next_seq = 0;
        std::uint64_t cursor = 0;
        std::optional<std::uint64_t> tail = std::nullopt;
        // More restore hooks (a journal's; see journal.hpp). Tickets listed in `claimed` (in
        // [tail, cursor)) were claimed; tickets listed in `abandoned` (in [tail, next_seq)) stay
        // abandoned: not called, not counted in `ahead`. Any order; others are ignored.
        std::vector<std::uint64_t> claimed{};
        std::vector<std::uint64_t> abandoned{};
        // Tickets in [unconfirmed_from, next_seq) may never have reached anyone (the journal
        // reserves seq ranges ahead, so a crash leaves the unused rest of a range behind). The
        // walk does not call such a ticket before its holder has polled once; one that nobody
        // polls is abandoned about unconfirmed_grace after create (abandon_after at most).
        std::uint64_t unconfirmed_from = std::numeric_limits<std::uint64_t>::max();
        millis unconfirmed_grace = 30'000;
        // Keep every abandoned mark made from now on for take_abandoned() (a journal's feed).
        bool track_abandoned = false;
    };

    enum class state : std::uint8_t {
        waiting,    // in the queue; `ahead` is meaningful
        called,     // the cursor passed it: claim a pass now
        claimed,    // a pass was issued for it
        missed,     // called, but not claimed within the claim window
        abandoned,  // not seen for abandon_after, or left: join again
        expired,    // too old for the ring to remember
        unknown,    // never issued by this ring (seq >= next_seq)
    };

    struct position {
        state st = state::unknown;
        std::uint64_t ahead = 0;  // live tickets in [cursor, seq); only for state::waiting
    };

    enum class claim_status : std::uint8_t {
        claimed,          // this call converted the ticket: issue a pass
        already_claimed,  // another request (a second tab or device) claimed it first
        not_called,       // still waiting
        missed,
        abandoned,
        expired,
        unknown,
    };

    struct advance_result {
        std::uint64_t called = 0;     // tickets called (cursor moved past them)
        std::uint64_t abandoned = 0;  // tickets found abandoned and skipped on the way
        std::uint64_t cursor = 0;     // the new cursor
    };

    static absl::StatusOr<std::unique_ptr<ring>> create(const options& opts, millis now);
    ~ring();
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;

    // ---- any thread -----------------------------------------------------------------------

    // Takes the next seq. Returns nullopt if capacity tickets are already held.
    std::optional<std::uint64_t> join(millis now) noexcept;

    // Records that the holder of seq is still there. Returns false if the ticket is not
    // waiting (called, abandoned, ...): use locate() to find out what it is.
    bool heartbeat(std::uint64_t seq, millis now) noexcept;

    // The ticket's state and, while waiting, the number of live tickets ahead of it.
    position locate(std::uint64_t seq) const noexcept;

    // heartbeat() then locate(): what a status poll does.
    position poll(std::uint64_t seq, millis now) noexcept;

    // Converts a called ticket into a claimed one, exactly once per ticket.
    claim_status claim(std::uint64_t seq) noexcept;

    // The holder gave up its place. The ticket is abandoned by the next sweep or advance.
    bool leave(std::uint64_t seq) noexcept;

    // ---- shared seqs (several gateway nodes numbering one queue; docs/redis.md) ------------
    // In that mode seqs come from outside (ranges reserved in Redis), not from join(), and the
    // ring mirrors the whole shared seq space: a slot this node never heard of stays "joining"
    // (the walk must not pass it: see settle_unseen()).

    // Takes the ticket `seq` handed out elsewhere (a range this node reserved): stamps it seen.
    // False when it does not fit (capacity) or is not waiting any more.
    bool join_at(std::uint64_t seq, millis now) noexcept;
    // Someone holding `seq` was seen (a poll here, or a liveness bit from another node): stamps
    // a slot never heard of, refreshes a waiting one; anything else is left alone.
    void see(std::uint64_t seq, millis now) noexcept;

    std::uint64_t next_seq() const noexcept { return next_seq_.load(std::memory_order_acquire); }
    std::uint64_t cursor() const noexcept { return cursor_.load(std::memory_order_acquire); }
    std::uint64_t tail() const noexcept { return tail_.load(std::memory_order_acquire); }
    std::uint64_t capacity() const noexcept { return capacity_; }
    // Tickets in [cursor, next_seq) not yet found abandoned (an upper bound of live waiting).
    std::uint64_t waiting() const noexcept;
    // Called tickets neither claimed nor returned as no-shows yet.
    std::uint64_t calls_pending() const noexcept {
        return calls_pending_.load(std::memory_order_relaxed);
    }
    // Tickets found abandoned since the ring was created.
    std::uint64_t abandoned_total() const noexcept {
        return total_dead_.load(std::memory_order_relaxed);
    }

    // ---- the admitter thread only ---------------------------------------------------------

    // Walks from the cursor in seq order, marks abandoned tickets on the way and calls up to
    // max_calls live ones, examining at most max_walk tickets. Publishes the new cursor.
    advance_result advance(std::uint64_t max_calls, millis now,
                           std::uint64_t max_walk = std::uint64_t(1) << 22);

    // Turns calls made more than claim_window ago that nobody claimed into no-shows (calls made
    // within 100 ms of each other share one batch, so a window may be up to 100 ms longer); forgets
    // calls made more than two claim windows ago (moves the tail, frees blocks behind it).
    // Returns the number of no-shows: give that many back to the active-slot budget.
    std::uint64_t expire_calls(millis now, millis claim_window);

    // Examines up to max_slots waiting tickets, continuing where the last sweep stopped and
    // wrapping at the end, and marks the abandoned ones. Returns the number newly marked.
    std::uint64_t sweep(std::uint64_t max_slots, millis now);

    // Makes abandoned marks (from advance and sweep) and new blocks count in `ahead`. Costs
    // O(1) when nothing was marked, else one pass over the groups (64 tickets each) after the
    // first new mark: call it every 100 ms or so, not after every advance.
    void publish_index() noexcept;

    void set_abandon_after(millis abandon_after) noexcept;

    // Shared seqs, the admitter thread only.
    // Every seq below n was handed out somewhere: next_seq() becomes at least n.
    void extend(std::uint64_t n) noexcept;
    // The cursor moved elsewhere (the node holding the lease): every ticket below `cursor` that
    // is not abandoned here becomes called, with a claim window from now. Never goes backwards.
    // Returns the number called.
    std::uint64_t follow(std::uint64_t cursor, millis now);
    // The lease holder's verdict that `seq` was abandoned (or never handed out): marked here
    // too, if it is still waiting or unheard of. True when newly marked.
    bool mark_abandoned(std::uint64_t seq) noexcept;
    // Tickets in [from, to) still unheard of are holes or long gone: marked abandoned (the walk
    // may then pass them). Returns the number marked.
    std::uint64_t settle_unseen(std::uint64_t from, std::uint64_t to) noexcept;
    // The admitter's own cursor (what advance() and follow() moved), ahead of what readers see
    // only between a walk and its publish.
    std::uint64_t walk_cursor() const noexcept { return a_cursor_; }

    // What a journal keeps (the admitter thread only). Every call below settled() was claimed
    // or became a no-show; export_marks() appends the claimed tickets in [settled, cursor) and
    // the abandoned ones in [settled, next_seq), both ascending.
    std::uint64_t settled() const noexcept { return noshow_pos_; }
    void export_marks(std::vector<std::uint64_t>& claimed,
                      std::vector<std::uint64_t>& abandoned) const;
    // The abandoned marks made since the last call (options::track_abandoned), in no order.
    std::vector<std::uint64_t> take_abandoned() { return std::exchange(new_dead_, {}); }
    // The first seq of the restored unconfirmed range while the walk has not passed it (see
    // options::unconfirmed_from); otherwise max().
    std::uint64_t unconfirmed_from() const noexcept {
        return a_cursor_ < unconfirmed_end_ ? unconfirmed_from_
                                            : std::numeric_limits<std::uint64_t>::max();
    }

private:
    struct cursor_pair {
        std::uint64_t cursor;
        std::uint64_t dead_below;  // abandoned tickets with seq < cursor, ever
    };

    struct call_batch {
        std::uint64_t end;  // cursor after the batch: calls are in [previous end, end)
        millis first_at;
        millis at;  // the claim window of every call in the batch starts here
    };

    ring() = default;

    std::atomic_ref<std::uint32_t> slot(std::uint64_t seq) const noexcept {
        return std::atomic_ref<std::uint32_t>(slots_[seq & slot_mask_]);
    }
    std::atomic_ref<std::uint64_t> dead_mask(std::uint64_t group) const noexcept {
        return std::atomic_ref<std::uint64_t>(index_[2 * (group & group_mask_)]);
    }
    std::atomic_ref<std::uint64_t> dead_before(std::uint64_t group) const noexcept {
        return std::atomic_ref<std::uint64_t>(index_[2 * (group & group_mask_) + 1]);
    }

    cursor_pair read_cursor() const noexcept;
    void publish_cursor(std::uint64_t cursor, std::uint64_t dead_below) noexcept;
    position settled(std::uint64_t seq) const noexcept;  // for seq < cursor
    bool stale(std::uint32_t v, std::uint32_t now_stamp) const noexcept;
    void mark_dead(std::uint64_t seq) noexcept;
    void free_blocks_below(std::uint64_t seq) noexcept;

    // Layout, fixed at create().
    std::uint64_t capacity_ = 0;
    std::uint64_t slot_mask_ = 0;
    std::uint64_t group_mask_ = 0;
    std::uint64_t block_slots_ = 0;
    std::uint64_t join_limit_ = 0;  // capacity minus a safety margin of two blocks
    void* map_ = nullptr;
    std::size_t map_bytes_ = 0;
    std::uint32_t* slots_ = nullptr;
    std::uint64_t* index_ = nullptr;  // per group: dead mask, dead tickets before the group

    // Shared. next_seq_ is written by joiners; the rest by the admitter only.
    alignas(64) std::atomic<std::uint64_t> next_seq_{0};
    alignas(64) std::atomic<std::uint32_t> cursor_version_{0};  // seqlock over the pair
    std::atomic<std::uint64_t> cursor_{0};
    std::atomic<std::uint64_t> dead_below_cursor_{0};
    std::atomic<std::uint64_t> tail_{0};
    std::atomic<std::uint64_t> total_dead_{0};
    alignas(64) std::atomic<std::uint64_t> calls_pending_{0};

    // Admitter-private.
    alignas(64) std::uint32_t abandon_after_s_ = 60;
    std::uint64_t a_cursor_ = 0;
    std::uint64_t a_dead_below_ = 0;
    std::uint64_t a_tail_ = 0;
    std::uint64_t noshow_pos_ = 0;  // calls below this were settled (claimed or no-show)
    std::uint64_t a_total_dead_ = 0;
    std::uint64_t freed_until_block_ = 0;  // blocks below this were given back
    std::uint64_t sweep_pos_ = 0;
    std::uint64_t index_from_ = 0;     // first group whose dead_before may be stale
    std::uint64_t index_from_value_ = 0;  // the exact dead_before of index_from_
    std::deque<call_batch> calls_;
    std::size_t processed_ = 0;  // calls_[0, processed_) had their no-shows counted
    // Restored tickets in [unconfirmed_from_, unconfirmed_end_) still stamped at or below
    // unconfirmed_stamp_ have not been seen since the restore: the walk waits for them.
    std::uint64_t unconfirmed_from_ = 0;
    std::uint64_t unconfirmed_end_ = 0;
    std::uint32_t unconfirmed_stamp_ = 0;
    bool track_dead_ = false;
    std::vector<std::uint64_t> new_dead_;
};

}  // namespace floodgate::tokenstore
