// The admitted users of one room: at most max_active slots, each held by one pass until it is
// released, idle for idle_timeout, or older than session_ttl.
//
//   active_slots slots({.max_active = 3000, .idle_timeout = 600'000, .session_ttl = 1'800'000});
//   std::optional<lease> l = slots.acquire(now);  // direct admission (no queue)
//   if (l && slots.touch(*l, now)) proxy();      // every request with a pass
//   slots.release(*l, release_reason::explicit_);
//   // the admitter reserves capacity before calling people, and converts on claim:
//   std::uint64_t r = slots.reserve(n);  ...  lease l2 = slots.acquire_reserved(now);
//
// Capacity accounting is one atomic: committed = active + reserved (called, not yet claimed).
// reserve() and acquire() only succeed while committed < max_active, so admitted users plus
// outstanding calls never exceed max_active, even when requests and the admitter race.
//
// A lease names a slot and its generation. Every acquire bumps the generation, so a pass whose
// slot expired and went to someone else no longer touches it. touch() is lock-free (one load,
// at most one store per second); acquire and release use striped free lists.
//
// The one thing not to get wrong: a reservation must end exactly once, either as a lease
// (acquire_reserved) or as unreserve(); the ring's claim/no-show CAS decides which.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/clock.hpp"

namespace floodgate::tokenstore {

struct lease {
    std::uint32_t slot = 0;
    std::uint32_t gen = 0;  // never 0 for a real lease
    friend bool operator==(const lease&, const lease&) = default;
};

enum class release_reason : std::uint8_t { explicit_, upstream, idle, ttl };
inline constexpr int release_reason_count = 4;

class active_slots {
public:
    static constexpr std::uint32_t max_slots = 1u << 22;  // hard cap on max_active

    struct options {
        std::uint64_t max_active = 0;  // 0 = unlimited (up to max_slots)
        millis idle_timeout = 600'000;
        millis session_ttl = 1'800'000;
    };

    struct release_counts {
        std::array<std::uint64_t, release_reason_count> by_reason{};  // indexed by the enum
    };

    // A slot as a journal keeps it: its generation and, while held, its lease's times
    // (1 s resolution). Free slots are kept too, so that a restore never hands out a
    // generation again and an old pass stays dead.
    struct slot_state {
        std::uint32_t slot = 0;
        std::uint32_t gen = 0;
        bool held = false;
        millis acquired_at = 0;
        millis last_touch = 0;
        friend bool operator==(const slot_state&, const slot_state&) = default;
    };

    explicit active_slots(const options& opts);
    ~active_slots();
    active_slots(const active_slots&) = delete;
    active_slots& operator=(const active_slots&) = delete;

    // ---- any thread -----------------------------------------------------------------------

    // Direct admission: takes capacity and a slot, or nullopt if max_active is reached.
    std::optional<lease> acquire(millis now);

    // Reserves up to n units of capacity for calls; returns how many were reserved.
    std::uint64_t reserve(std::uint64_t n) noexcept;
    // Returns n reservations (no-shows, or calls the walk did not make).
    void unreserve(std::uint64_t n) noexcept;
    // Reserves n whatever max_active says: for calls restored from a journal, which were
    // already made. Nobody new is admitted until the count is back under max_active.
    void reserve_restored(std::uint64_t n) noexcept {
        committed_.fetch_add(n, std::memory_order_acq_rel);
    }
    // Turns one reservation into a lease. Never fails for capacity; nullopt only past max_slots.
    std::optional<lease> acquire_reserved(millis now);

    // The pass's request path: true if the lease still holds its slot (and renews it).
    bool touch(lease l, millis now) noexcept;
    // Whether the lease holds its slot, without renewing it.
    bool held(lease l, millis now) const noexcept;

    // Gives the slot back. False if the lease was no longer held (already released/expired).
    bool release(lease l, release_reason why) noexcept;

    std::uint64_t active() const noexcept { return active_.load(std::memory_order_relaxed); }
    std::uint64_t reserved() const noexcept {
        const auto c = committed_.load(std::memory_order_relaxed);
        const auto a = active_.load(std::memory_order_relaxed);
        return c > a ? c - a : 0;
    }
    std::uint64_t committed() const noexcept { return committed_.load(std::memory_order_relaxed); }
    std::uint64_t max_active() const noexcept { return max_active_.load(std::memory_order_relaxed); }
    release_counts counts() const noexcept;

    void set_limits(const options& opts) noexcept;

    // Puts restored slots back; only on a fresh object, before any other call. Held slots
    // count as active whatever max_active says (they were admitted already); nobody new is
    // admitted until the count is back under max_active. Fails on a slot >= max_slots.
    absl::Status import_slots(const std::vector<slot_state>& slots);

    // ---- one thread (the admitter) --------------------------------------------------------

    // Releases idle and too-old leases. Returns how many were released.
    std::uint64_t expire(millis now);
    // Hears of every lease expire() releases (a journal). Set it before expire() first runs.
    void set_expire_observer(std::function<void(lease)> f) { on_expire_ = std::move(f); }

    // Every slot handed out so far, held or free, in slot order (for a journal's snapshot).
    std::vector<slot_state> export_slots() const;

private:
    struct entry {
        // bit 32: held; bits 0-31: generation of the current (or last) holder
        std::atomic<std::uint64_t> state{0};
        std::atomic<std::uint32_t> last_seen{0};  // Unix seconds
        std::atomic<std::uint32_t> since{0};      // acquired at, Unix seconds
    };
    static constexpr std::uint32_t chunk_size = 4096;
    static constexpr std::uint32_t stripes = 16;

    struct alignas(64) stripe {
        mutex mu;
        std::vector<std::uint32_t> free ABSL_GUARDED_BY(mu);
    };

    entry* find(std::uint32_t slot) const noexcept;
    std::optional<std::uint32_t> take_slot();
    void put_slot(std::uint32_t slot);
    bool release_with(lease l, release_reason why, std::uint64_t expected) noexcept;
    bool expired(const entry& e, millis now) const noexcept;

    std::atomic<std::uint64_t> max_active_{0};
    std::atomic<std::int64_t> idle_timeout_s_{600};
    std::atomic<std::int64_t> session_ttl_s_{1800};

    alignas(64) std::atomic<std::uint64_t> committed_{0};
    alignas(64) std::atomic<std::uint64_t> active_{0};
    alignas(64) std::atomic<std::uint32_t> high_water_{0};  // slots ever handed out
    std::array<std::atomic<std::uint64_t>, release_reason_count> released_{};

    std::function<void(lease)> on_expire_;  // admitter thread
    mutex grow_mu_;
    std::array<std::atomic<entry*>, max_slots / chunk_size> chunks_{};
    std::array<stripe, stripes> stripes_;
};

}  // namespace floodgate::tokenstore
