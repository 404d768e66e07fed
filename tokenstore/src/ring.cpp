#include "tokenstore/ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

namespace floodgate::tokenstore {
namespace {

// Slot values. Waiting stamps are Unix seconds + 1, so 0 stays free for "joining".
constexpr std::uint32_t joining = 0;
constexpr std::uint32_t first_state = 0xFFFFFFF0u;
constexpr std::uint32_t called = 0xFFFFFFF0u;
constexpr std::uint32_t claimed = 0xFFFFFFF1u;
constexpr std::uint32_t missed = 0xFFFFFFF2u;
constexpr std::uint32_t dead = 0xFFFFFFFFu;

constexpr std::uint64_t group_slots = 64;

std::uint32_t stamp(millis now) noexcept {
    const millis s = now / 1000 + 1;
    if (s < 1) return 1;
    if (s >= millis(first_state)) return first_state - 1;
    return static_cast<std::uint32_t>(s);
}

std::uint32_t seconds_ceil(millis ms) noexcept {
    if (ms <= 0) return 0;
    const millis s = (ms + 999) / 1000;
    return s > 0x7fffffff ? 0x7fffffffu : static_cast<std::uint32_t>(s);
}

ring::state state_of(std::uint32_t v) noexcept {
    switch (v) {
        case called: return ring::state::called;
        case claimed: return ring::state::claimed;
        case missed: return ring::state::missed;
        case dead: return ring::state::abandoned;
        default: return ring::state::expired;
    }
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<ring>> ring::create(const options& opts, millis now) {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page <= 0 || (page & (page - 1)) != 0)
        return absl::InternalError("cannot determine the page size");
    if (opts.cursor > opts.next_seq)
        return absl::InvalidArgumentError("ring restore: cursor " + std::to_string(opts.cursor) +
                                          " is beyond next_seq " +
                                          std::to_string(opts.next_seq));
    const std::uint64_t tail = opts.tail.value_or(opts.cursor);
    if (tail > opts.cursor)
        return absl::InvalidArgumentError("ring restore: tail " + std::to_string(tail) +
                                          " is beyond cursor " + std::to_string(opts.cursor));

    std::unique_ptr<ring> r(new ring());
    // A block's index is exactly one page: page/16 groups of 64 slots.
    r->block_slots_ = std::uint64_t(page) / 16 * group_slots;
    r->capacity_ = std::bit_ceil(std::max(opts.capacity, 8 * r->block_slots_));
    if (opts.next_seq - tail > r->capacity_ - 2 * r->block_slots_)
        return absl::InvalidArgumentError("ring restore: " + std::to_string(opts.next_seq - tail) +
                                          " tickets do not fit a capacity of " +
                                          std::to_string(r->capacity_));
    r->slot_mask_ = r->capacity_ - 1;
    r->group_mask_ = r->capacity_ / group_slots - 1;
    r->join_limit_ = r->capacity_ - 2 * r->block_slots_;

    const std::size_t slot_bytes = r->capacity_ * sizeof(std::uint32_t);
    const std::size_t index_bytes = r->capacity_ / group_slots * 2 * sizeof(std::uint64_t);
    r->map_bytes_ = slot_bytes + index_bytes;
    // Address space only: pages appear on first touch and go back on MADV_DONTNEED.
    void* p = ::mmap(nullptr, r->map_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return absl::ResourceExhaustedError("ring: cannot reserve " +
                                            std::to_string(r->map_bytes_ >> 20) +
                                            " MiB of address space: " + std::strerror(errno));
    r->map_ = p;
    r->slots_ = static_cast<std::uint32_t*>(p);
    r->index_ = reinterpret_cast<std::uint64_t*>(static_cast<char*>(p) + slot_bytes);

    r->set_abandon_after(opts.abandon_after);
    r->next_seq_.store(opts.next_seq, std::memory_order_relaxed);
    const std::uint32_t seen = stamp(now);
    // Unconfirmed tickets look seen a while ago, so that they go stale after the grace; the
    // stamp stays below `seen`, so the first poll after the restore always rewrites it.
    const std::uint32_t grace_s = seconds_ceil(opts.unconfirmed_grace);
    const std::uint32_t back = std::max<std::uint32_t>(
        1, r->abandon_after_s_ > grace_s ? r->abandon_after_s_ - grace_s : 1);
    const std::uint32_t unseen = seen > back + 1 ? seen - back : 1;
    const std::uint64_t unconfirmed = std::max(opts.unconfirmed_from, opts.cursor);
    for (std::uint64_t s = opts.cursor; s < opts.next_seq; ++s)
        r->slot(s).store(s < unconfirmed ? seen : unseen, std::memory_order_relaxed);
    if (unconfirmed < opts.next_seq) {
        r->unconfirmed_from_ = unconfirmed;
        r->unconfirmed_end_ = opts.next_seq;
        r->unconfirmed_stamp_ = unseen;
    }
    for (std::uint64_t s = tail; s < opts.cursor; ++s)
        r->slot(s).store(called, std::memory_order_relaxed);
    for (const std::uint64_t s : opts.claimed)
        if (s >= tail && s < opts.cursor) r->slot(s).store(claimed, std::memory_order_relaxed);

    r->a_cursor_ = opts.cursor;
    r->a_tail_ = tail;
    r->noshow_pos_ = tail;
    r->freed_until_block_ = tail / r->block_slots_;
    r->sweep_pos_ = opts.cursor;
    r->index_from_ = opts.cursor / group_slots;
    r->index_from_value_ = 0;  // abandoned counts start at zero with the cursor's group
    // Abandoned below the cursor: only the slot says so (the index counts from the cursor on).
    for (const std::uint64_t s : opts.abandoned) {
        if (s < tail || s >= opts.next_seq) continue;
        auto ref = r->slot(s);
        if (ref.load(std::memory_order_relaxed) == dead) continue;
        ref.store(dead, std::memory_order_relaxed);
        if (s >= opts.cursor) r->mark_dead(s);
    }
    std::uint64_t pending = 0;
    for (std::uint64_t s = tail; s < opts.cursor; ++s)
        pending += r->slot(s).load(std::memory_order_relaxed) == called ? 1 : 0;
    r->calls_pending_.store(pending, std::memory_order_relaxed);
    if (tail < opts.cursor) r->calls_.push_back({opts.cursor, now, now});
    r->track_dead_ = opts.track_abandoned;
    r->tail_.store(tail, std::memory_order_relaxed);
    r->publish_cursor(opts.cursor, 0);
    r->publish_index();
    return r;
}

ring::~ring() {
    if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

void ring::set_abandon_after(millis abandon_after) noexcept {
    abandon_after_s_ = seconds_ceil(abandon_after);
}

// ---- readers -------------------------------------------------------------------------------

ring::cursor_pair ring::read_cursor() const noexcept {
    for (;;) {
        const std::uint32_t v1 = cursor_version_.load(std::memory_order_acquire);
        if ((v1 & 1) != 0) {
            cpu_relax();
            continue;
        }
        cursor_pair p{cursor_.load(std::memory_order_relaxed),
                      dead_below_cursor_.load(std::memory_order_relaxed)};
        std::atomic_thread_fence(std::memory_order_acquire);
        if (cursor_version_.load(std::memory_order_relaxed) == v1) return p;
    }
}

void ring::publish_cursor(std::uint64_t cursor, std::uint64_t dead_below) noexcept {
    const std::uint32_t v = cursor_version_.load(std::memory_order_relaxed);
    cursor_version_.store(v + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    // cursor_ alone is also read without the seqlock (cursor(), claim()): release it too.
    cursor_.store(cursor, std::memory_order_release);
    dead_below_cursor_.store(dead_below, std::memory_order_relaxed);
    cursor_version_.store(v + 2, std::memory_order_release);
}

std::optional<std::uint64_t> ring::join(millis now) noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    if (next_seq_.load(std::memory_order_relaxed) - t >= join_limit_) return std::nullopt;
    const std::uint64_t seq = next_seq_.fetch_add(1, std::memory_order_acq_rel);
    // CAS, not store: the admitter may already have called this slot while it was "joining".
    std::uint32_t expected = joining;
    slot(seq).compare_exchange_strong(expected, stamp(now), std::memory_order_release,
                                      std::memory_order_relaxed);
    return seq;
}

bool ring::join_at(std::uint64_t seq, millis now) noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    if (seq < t || seq - t >= join_limit_) return false;
    std::uint64_t n = next_seq_.load(std::memory_order_relaxed);
    while (n <= seq && !next_seq_.compare_exchange_weak(n, seq + 1, std::memory_order_acq_rel)) {
    }
    std::uint32_t expected = joining;
    if (slot(seq).compare_exchange_strong(expected, stamp(now), std::memory_order_release,
                                          std::memory_order_relaxed))
        return true;
    return expected < first_state;
}

void ring::see(std::uint64_t seq, millis now) noexcept {
    if (seq < cursor_.load(std::memory_order_acquire)) return;
    // A ticket given up here (leave()) stays given up, whatever another node saw before.
    if (seq < next_seq_.load(std::memory_order_acquire) && slot(seq).load(std::memory_order_relaxed) == 1) return;
    if (!heartbeat(seq, now)) join_at(seq, now);
}

bool ring::heartbeat(std::uint64_t seq, millis now) noexcept {
    if (seq >= next_seq_.load(std::memory_order_acquire)) return false;
    const std::uint32_t seen = stamp(now);
    auto s = slot(seq);
    std::uint32_t v = s.load(std::memory_order_relaxed);
    for (;;) {
        // joining: not yet ours to stamp (or a freed block); >= first_state: not waiting.
        if (v == joining || v >= first_state) return false;
        if (v >= seen) return true;  // already seen this second: no write, no cache-line bounce
        if (s.compare_exchange_weak(v, seen, std::memory_order_relaxed)) return true;
    }
}

ring::position ring::settled(std::uint64_t seq) const noexcept {
    if (seq < tail_.load(std::memory_order_acquire)) return {state::expired, 0};
    const std::uint32_t v = slot(seq).load(std::memory_order_acquire);
    // The block may have been freed between the two tail reads; then v means nothing.
    if (seq < tail_.load(std::memory_order_acquire)) return {state::expired, 0};
    return {state_of(v), 0};
}

ring::position ring::locate(std::uint64_t seq) const noexcept {
    const cursor_pair c = read_cursor();
    if (seq < c.cursor) return settled(seq);
    if (seq >= next_seq_.load(std::memory_order_acquire)) return {state::unknown, 0};
    const std::uint32_t v = slot(seq).load(std::memory_order_acquire);
    if (v >= first_state) return settled(seq);  // the cursor moved past us just now

    // ahead = (seq - cursor) - abandoned tickets in [cursor, seq). Abandoned counts are
    // absolute ("ever, below x"), so the difference needs no lock. The index lags the masks
    // until the next publish_index(), which can only make `ahead` larger than the truth, and
    // every term only moves one way, so two polls in a row never see `ahead` grow.
    const std::uint64_t g = seq / group_slots;
    const std::uint64_t mask = dead_mask(g).load(std::memory_order_acquire);
    const std::uint64_t before = dead_before(g).load(std::memory_order_acquire);
    const std::uint64_t below_bits = (std::uint64_t(1) << (seq % group_slots)) - 1;
    const std::uint64_t dead_below_seq = before + std::uint64_t(std::popcount(mask & below_bits));
    const std::uint64_t span = seq - c.cursor;
    std::uint64_t ahead = span;
    if (dead_below_seq > c.dead_below) {
        const std::uint64_t gone = dead_below_seq - c.dead_below;
        ahead = gone >= span ? 0 : span - gone;
    }
    return {state::waiting, ahead};
}

ring::position ring::poll(std::uint64_t seq, millis now) noexcept {
    heartbeat(seq, now);
    return locate(seq);
}

ring::claim_status ring::claim(std::uint64_t seq) noexcept {
    // The slot, not the cursor, is the truth: a slot turns "called" a moment before the walk
    // publishes the cursor past it, and a claim in that moment must succeed.
    if (seq >= next_seq_.load(std::memory_order_acquire)) return claim_status::unknown;
    if (seq < tail_.load(std::memory_order_acquire)) return claim_status::expired;
    std::uint32_t v = called;
    if (slot(seq).compare_exchange_strong(v, claimed, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
        calls_pending_.fetch_sub(1, std::memory_order_relaxed);
        return claim_status::claimed;
    }
    if (seq < tail_.load(std::memory_order_acquire)) return claim_status::expired;
    switch (v) {
        case claimed: return claim_status::already_claimed;
        case missed: return claim_status::missed;
        case dead: return claim_status::abandoned;
        default: return v < first_state ? claim_status::not_called : claim_status::expired;
    }
}

bool ring::leave(std::uint64_t seq) noexcept {
    if (seq >= next_seq_.load(std::memory_order_acquire)) return false;
    auto s = slot(seq);
    std::uint32_t v = s.load(std::memory_order_relaxed);
    for (;;) {
        if (v == joining || v >= first_state) return false;
        // "Last seen at the Unix epoch": the next sweep or advance marks it abandoned.
        if (s.compare_exchange_weak(v, 1, std::memory_order_relaxed)) return true;
    }
}

std::uint64_t ring::waiting() const noexcept {
    const cursor_pair c = read_cursor();
    const std::uint64_t n = next_seq_.load(std::memory_order_acquire);
    const std::uint64_t total_dead = total_dead_.load(std::memory_order_relaxed);
    const std::uint64_t span = n > c.cursor ? n - c.cursor : 0;
    const std::uint64_t gone = total_dead > c.dead_below ? total_dead - c.dead_below : 0;
    return gone >= span ? 0 : span - gone;
}

// ---- the admitter --------------------------------------------------------------------------

bool ring::stale(std::uint32_t v, std::uint32_t now_stamp) const noexcept {
    // Stamps have 1 s resolution: "more than abandon_after_s_ seconds apart" guarantees that at
    // least abandon_after really passed, so nobody is abandoned early.
    return v != joining && v < first_state && now_stamp > v &&
           now_stamp - v > abandon_after_s_;
}

void ring::mark_dead(std::uint64_t seq) noexcept {
    const std::uint64_t g = seq / group_slots;
    auto m = dead_mask(g);
    const std::uint64_t mask =
        m.load(std::memory_order_relaxed) | (std::uint64_t(1) << (seq % group_slots));
    m.store(mask, std::memory_order_release);
    total_dead_.store(++a_total_dead_, std::memory_order_relaxed);
    if (track_dead_) new_dead_.push_back(seq);
    if (g < index_from_) {
        // Groups after g now count one more; rewrite them on the next publish_index().
        index_from_ = g + 1;
        index_from_value_ =
            dead_before(g).load(std::memory_order_relaxed) + std::uint64_t(std::popcount(mask));
    }
}

void ring::publish_index() noexcept {
    const std::uint64_t last = next_seq_.load(std::memory_order_acquire) / group_slots;
    std::uint64_t running = index_from_value_;
    for (std::uint64_t g = index_from_; g <= last; ++g) {
        dead_before(g).store(running, std::memory_order_release);
        running += std::uint64_t(std::popcount(dead_mask(g).load(std::memory_order_relaxed)));
    }
    if (last >= index_from_) {
        index_from_value_ = dead_before(last).load(std::memory_order_relaxed);
        index_from_ = last;
    }
}

ring::advance_result ring::advance(std::uint64_t max_calls, millis now, std::uint64_t max_walk) {
    advance_result r;
    const std::uint64_t n = next_seq_.load(std::memory_order_acquire);
    const std::uint32_t now_stamp = stamp(now);
    std::uint64_t c = a_cursor_;
    const std::uint64_t walk_end = std::min(n, c + std::min(max_walk, n - c));
    // Counted before the walk: a claim may land between a slot's CAS and the cursor's publish.
    const std::uint64_t most = std::min(max_calls, walk_end - c);
    calls_pending_.fetch_add(most, std::memory_order_relaxed);
    bool blocked = false;
    while (r.called < max_calls && c < walk_end && !blocked) {
        auto s = slot(c);
        std::uint32_t v = s.load(std::memory_order_relaxed);
        for (;;) {
            if (v == dead) {
                ++a_dead_below_;
                break;
            }
            if (v >= first_state) break;  // cannot happen at or after the cursor
            if (stale(v, now_stamp)) {
                if (!s.compare_exchange_weak(v, dead, std::memory_order_relaxed)) continue;
                mark_dead(c);
                ++a_dead_below_;
                ++r.abandoned;
                break;
            }
            // Restored but not yet seen: maybe nobody holds it. Wait here (FIFO) until its
            // holder polls or it goes stale.
            if (c < unconfirmed_end_ && c >= unconfirmed_from_ && v <= unconfirmed_stamp_) {
                blocked = true;
                break;
            }
            if (s.compare_exchange_weak(v, called, std::memory_order_relaxed)) {
                ++r.called;
                break;
            }
        }
        if (!blocked) ++c;
    }
    calls_pending_.fetch_sub(most - r.called, std::memory_order_relaxed);
    if (c != a_cursor_) {
        a_cursor_ = c;
        // Release: a reader that sees the new cursor also sees every slot marked "called".
        publish_cursor(c, a_dead_below_);
        if (r.called > 0) {
            // Calls within 100 ms share a batch stamped with the latest time: fewer batches
            // for fast tickers, and a claim window never shorter than promised.
            if (calls_.size() > processed_ && now - calls_.back().first_at < 100)
                calls_.back() = {c, calls_.back().first_at, now};
            else
                calls_.push_back({c, now, now});
        }
    }
    r.cursor = c;
    return r;
}

void ring::extend(std::uint64_t n) noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    if (n <= t || n - t > join_limit_) return;
    std::uint64_t cur = next_seq_.load(std::memory_order_relaxed);
    while (cur < n && !next_seq_.compare_exchange_weak(cur, n, std::memory_order_acq_rel)) {
    }
}

std::uint64_t ring::follow(std::uint64_t cursor, millis now) {
    if (cursor <= a_cursor_) return 0;
    extend(cursor);
    const std::uint64_t n = next_seq_.load(std::memory_order_acquire);
    if (cursor > n) cursor = n;  // does not fit: the ring is full of older tickets
    std::uint64_t c = a_cursor_;
    std::uint64_t calls = 0;
    // Counted before the walk, as in advance(): a claim may land before the publish.
    calls_pending_.fetch_add(cursor - c, std::memory_order_relaxed);
    for (; c < cursor; ++c) {
        auto s = slot(c);
        std::uint32_t v = s.load(std::memory_order_relaxed);
        for (;;) {
            if (v == dead) {
                ++a_dead_below_;
                break;
            }
            if (v >= first_state) break;
            if (s.compare_exchange_weak(v, called, std::memory_order_relaxed)) {
                ++calls;
                break;
            }
        }
    }
    calls_pending_.fetch_sub(cursor - a_cursor_ - calls, std::memory_order_relaxed);
    a_cursor_ = cursor;
    publish_cursor(cursor, a_dead_below_);
    if (calls > 0) {
        if (calls_.size() > processed_ && now - calls_.back().first_at < 100)
            calls_.back() = {cursor, calls_.back().first_at, now};
        else
            calls_.push_back({cursor, now, now});
    }
    return calls;
}

bool ring::mark_abandoned(std::uint64_t seq) noexcept {
    if (seq < a_cursor_) return false;
    extend(seq + 1);
    if (seq >= next_seq_.load(std::memory_order_acquire)) return false;
    auto s = slot(seq);
    std::uint32_t v = s.load(std::memory_order_relaxed);
    while (v < first_state) {
        if (s.compare_exchange_weak(v, dead, std::memory_order_relaxed)) {
            mark_dead(seq);
            return true;
        }
    }
    return false;
}

std::uint64_t ring::settle_unseen(std::uint64_t from, std::uint64_t to) noexcept {
    from = std::max(from, a_cursor_);
    if (from >= to) return 0;
    extend(to);
    to = std::min(to, next_seq_.load(std::memory_order_acquire));
    std::uint64_t marked = 0;
    for (std::uint64_t seq = from; seq < to; ++seq) {
        std::uint32_t v = joining;
        if (slot(seq).compare_exchange_strong(v, dead, std::memory_order_relaxed)) {
            mark_dead(seq);
            ++marked;
        }
    }
    return marked;
}

std::uint64_t ring::expire_calls(millis now, millis claim_window) {
    // Batches older than one claim window: unclaimed calls become no-shows.
    std::uint64_t noshows = 0;
    while (processed_ < calls_.size() && calls_[processed_].at + claim_window <= now) {
        const std::uint64_t end = calls_[processed_].end;
        for (std::uint64_t s = noshow_pos_; s < end; ++s) {
            std::uint32_t v = called;
            if (slot(s).compare_exchange_strong(v, missed, std::memory_order_acq_rel,
                                                std::memory_order_relaxed))
                ++noshows;
        }
        noshow_pos_ = end;
        ++processed_;
    }
    if (noshows > 0) calls_pending_.fetch_sub(noshows, std::memory_order_relaxed);
    // Batches older than two claim windows: forgotten, so a late poll still hears "missed"
    // (or "claimed") for one more window before it hears "expired".
    while (processed_ > 0 && calls_.front().at + 2 * claim_window <= now) {
        a_tail_ = calls_.front().end;
        calls_.pop_front();
        --processed_;
    }
    // With no batch left, nothing behind the cursor needs remembering.
    if (calls_.empty()) a_tail_ = noshow_pos_ = a_cursor_;
    free_blocks_below(a_tail_);
    return noshows;
}

void ring::free_blocks_below(std::uint64_t seq) noexcept {
    const std::uint64_t until = seq / block_slots_;
    if (until > freed_until_block_) {
        const std::size_t slot_bytes = block_slots_ * sizeof(std::uint32_t);
        const std::size_t index_bytes = block_slots_ / group_slots * 2 * sizeof(std::uint64_t);
        // At most one pass over the whole mapping, however far the tail jumped.
        const std::uint64_t blocks = capacity_ / block_slots_;
        const std::uint64_t from = std::max(freed_until_block_, until > blocks ? until - blocks : 0);
        for (std::uint64_t b = from; b < until; ++b) {
            const std::uint64_t first = b * block_slots_;
            ::madvise(&slots_[first & slot_mask_], slot_bytes, MADV_DONTNEED);
            ::madvise(&index_[2 * ((first / group_slots) & group_mask_)], index_bytes,
                      MADV_DONTNEED);
        }
        freed_until_block_ = until;
    }
    // Publish only after the memory is gone: a joiner that sees the new tail may reuse it.
    tail_.store(seq, std::memory_order_release);
}

void ring::export_marks(std::vector<std::uint64_t>& claimed_out,
                        std::vector<std::uint64_t>& abandoned_out) const {
    const std::uint64_t n = next_seq_.load(std::memory_order_acquire);
    // Behind the cursor the slots tell (restored marks there are not in the index).
    for (std::uint64_t s = noshow_pos_; s < a_cursor_; ++s) {
        const std::uint32_t v = slot(s).load(std::memory_order_relaxed);
        if (v == claimed) claimed_out.push_back(s);
        else if (v == dead) abandoned_out.push_back(s);
    }
    // From the cursor on, the index's masks: 64 tickets per load.
    if (a_cursor_ >= n) return;
    for (std::uint64_t g = a_cursor_ / group_slots; g <= (n - 1) / group_slots; ++g) {
        std::uint64_t mask = dead_mask(g).load(std::memory_order_relaxed);
        while (mask != 0) {
            const std::uint64_t s = g * group_slots + std::uint64_t(std::countr_zero(mask));
            mask &= mask - 1;
            if (s >= a_cursor_ && s < n) abandoned_out.push_back(s);
        }
    }
}

std::uint64_t ring::sweep(std::uint64_t max_slots, millis now) {
    const std::uint64_t n = next_seq_.load(std::memory_order_acquire);
    if (sweep_pos_ < a_cursor_ || sweep_pos_ >= n) sweep_pos_ = a_cursor_;
    const std::uint64_t end = sweep_pos_ + std::min(max_slots, n - sweep_pos_);
    const std::uint32_t now_stamp = stamp(now);
    std::uint64_t marked = 0;
    for (std::uint64_t s = sweep_pos_; s < end; ++s) {
        auto ref = slot(s);
        std::uint32_t v = ref.load(std::memory_order_relaxed);
        while (stale(v, now_stamp)) {
            if (ref.compare_exchange_weak(v, dead, std::memory_order_relaxed)) {
                mark_dead(s);
                ++marked;
                break;
            }
        }
    }
    sweep_pos_ = end;
    return marked;
}

}  // namespace floodgate::tokenstore
