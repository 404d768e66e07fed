#include "tokenstore/active_slots.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <thread>

namespace floodgate::tokenstore {
namespace {

constexpr std::uint64_t held_bit = std::uint64_t(1) << 32;

std::int64_t seconds_ceil(millis ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

std::uint32_t unix_s(millis now) {
    return now <= 0 ? 0 : static_cast<std::uint32_t>(std::min<millis>(now / 1000, 0xffffffff));
}

std::uint32_t stripe_hint() {
    thread_local const std::uint32_t hint =
        static_cast<std::uint32_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    return hint;
}

}  // namespace

active_slots::active_slots(const options& opts) { set_limits(opts); }

active_slots::~active_slots() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
}

void active_slots::set_limits(const options& opts) noexcept {
    max_active_.store(opts.max_active, std::memory_order_relaxed);
    idle_timeout_s_.store(seconds_ceil(opts.idle_timeout), std::memory_order_relaxed);
    session_ttl_s_.store(seconds_ceil(opts.session_ttl), std::memory_order_relaxed);
}

active_slots::entry* active_slots::find(std::uint32_t slot) const noexcept {
    if (slot >= max_slots) return nullptr;
    entry* chunk = chunks_[slot / chunk_size].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[slot % chunk_size];
}

std::uint64_t active_slots::reserve(std::uint64_t n) noexcept {
    if (n == 0) return 0;
    std::uint64_t c = committed_.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint64_t max = max_active_.load(std::memory_order_relaxed);
        const std::uint64_t limit = max == 0 ? max_slots : std::min<std::uint64_t>(max, max_slots);
        const std::uint64_t k = std::min(n, c < limit ? limit - c : 0);
        if (k == 0) return 0;
        if (committed_.compare_exchange_weak(c, c + k, std::memory_order_acq_rel,
                                             std::memory_order_relaxed))
            return k;
    }
}

void active_slots::unreserve(std::uint64_t n) noexcept {
    if (n > 0) committed_.fetch_sub(n, std::memory_order_acq_rel);
}

std::optional<std::uint32_t> active_slots::take_slot() {
    const std::uint32_t first = stripe_hint();
    for (std::uint32_t i = 0; i < stripes; ++i) {
        stripe& s = stripes_[(first + i) % stripes];
        mutex_lock lock(s.mu);
        if (!s.free.empty()) {
            const std::uint32_t slot = s.free.back();
            s.free.pop_back();
            return slot;
        }
    }
    const std::uint32_t slot = high_water_.fetch_add(1, std::memory_order_acq_rel);
    if (slot >= max_slots) {
        high_water_.fetch_sub(1, std::memory_order_acq_rel);
        return std::nullopt;
    }
    auto& chunk = chunks_[slot / chunk_size];
    if (chunk.load(std::memory_order_acquire) == nullptr) {
        mutex_lock lock(grow_mu_);
        if (chunk.load(std::memory_order_relaxed) == nullptr)
            chunk.store(new entry[chunk_size], std::memory_order_release);
    }
    return slot;
}

void active_slots::put_slot(std::uint32_t slot) {
    stripe& s = stripes_[stripe_hint() % stripes];
    mutex_lock lock(s.mu);
    s.free.push_back(slot);
}

std::optional<lease> active_slots::acquire_reserved(millis now) {
    const auto slot = take_slot();
    if (!slot) return std::nullopt;
    entry& e = *find(*slot);
    std::uint32_t gen = static_cast<std::uint32_t>(e.state.load(std::memory_order_relaxed)) + 1;
    if (gen == 0) gen = 1;
    const std::uint32_t s = unix_s(now);
    e.last_seen.store(s, std::memory_order_relaxed);
    e.since.store(s, std::memory_order_relaxed);
    e.state.store(held_bit | gen, std::memory_order_release);
    active_.fetch_add(1, std::memory_order_acq_rel);
    return lease{*slot, gen};
}

std::optional<lease> active_slots::acquire(millis now) {
    if (reserve(1) == 0) return std::nullopt;
    auto l = acquire_reserved(now);
    if (!l) unreserve(1);
    return l;
}

bool active_slots::expired(const entry& e, millis now) const noexcept {
    // 1 s resolution, rounded so that nobody loses a slot early.
    const std::int64_t s = unix_s(now);
    return s - std::int64_t(e.last_seen.load(std::memory_order_relaxed)) >
               idle_timeout_s_.load(std::memory_order_relaxed) ||
           s - std::int64_t(e.since.load(std::memory_order_relaxed)) >
               session_ttl_s_.load(std::memory_order_relaxed);
}

bool active_slots::held(lease l, millis now) const noexcept {
    const entry* e = find(l.slot);
    return e != nullptr && l.gen != 0 &&
           e->state.load(std::memory_order_acquire) == (held_bit | l.gen) && !expired(*e, now);
}

bool active_slots::touch(lease l, millis now) noexcept {
    entry* e = find(l.slot);
    if (e == nullptr || l.gen == 0 ||
        e->state.load(std::memory_order_acquire) != (held_bit | l.gen) || expired(*e, now))
        return false;
    const std::uint32_t s = unix_s(now);
    if (e->last_seen.load(std::memory_order_relaxed) < s)
        e->last_seen.store(s, std::memory_order_relaxed);
    return true;
}

bool active_slots::release_with(lease l, release_reason why, std::uint64_t expected) noexcept {
    entry* e = find(l.slot);
    if (e == nullptr || l.gen == 0) return false;
    if (!e->state.compare_exchange_strong(expected, l.gen, std::memory_order_acq_rel,
                                          std::memory_order_relaxed))
        return false;
    active_.fetch_sub(1, std::memory_order_acq_rel);
    committed_.fetch_sub(1, std::memory_order_acq_rel);
    released_[static_cast<std::size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    put_slot(l.slot);
    return true;
}

bool active_slots::release(lease l, release_reason why) noexcept {
    return release_with(l, why, held_bit | l.gen);
}

std::uint64_t active_slots::expire(millis now) {
    const std::uint32_t hw = std::min(high_water_.load(std::memory_order_acquire), max_slots);
    const std::int64_t s = unix_s(now);
    const std::int64_t ttl = session_ttl_s_.load(std::memory_order_relaxed);
    std::uint64_t n = 0;
    for (std::uint32_t i = 0; i < hw; ++i) {
        entry* e = find(i);
        if (e == nullptr) continue;
        const std::uint64_t st = e->state.load(std::memory_order_acquire);
        if ((st & held_bit) == 0 || !expired(*e, now)) continue;
        const bool too_old = s - std::int64_t(e->since.load(std::memory_order_relaxed)) > ttl;
        const lease l{i, static_cast<std::uint32_t>(st)};
        if (release_with(l, too_old ? release_reason::ttl : release_reason::idle, st)) {
            if (on_expire_) on_expire_(l);
            ++n;
        }
    }
    return n;
}

std::vector<active_slots::slot_state> active_slots::export_slots() const {
    const std::uint32_t hw = std::min(high_water_.load(std::memory_order_acquire), max_slots);
    std::vector<slot_state> out;
    out.reserve(hw);
    for (std::uint32_t i = 0; i < hw; ++i) {
        const entry* e = find(i);
        if (e == nullptr) continue;  // being created by take_slot() right now
        const std::uint64_t st = e->state.load(std::memory_order_acquire);
        slot_state s{.slot = i, .gen = static_cast<std::uint32_t>(st)};
        if ((st & held_bit) != 0) {
            s.held = true;
            s.acquired_at = millis(e->since.load(std::memory_order_relaxed)) * 1000;
            s.last_touch = millis(e->last_seen.load(std::memory_order_relaxed)) * 1000;
        }
        out.push_back(s);
    }
    return out;
}

absl::Status active_slots::import_slots(const std::vector<slot_state>& slots) {
    std::uint32_t hw = 0;
    for (const slot_state& s : slots) {
        if (s.slot >= max_slots)
            return absl::InvalidArgumentError("active slots restore: slot " +
                                              std::to_string(s.slot) + " is beyond the limit of " +
                                              std::to_string(max_slots));
        hw = std::max(hw, s.slot + 1);
    }
    if (high_water_.load(std::memory_order_relaxed) != 0 || hw == 0)
        return hw == 0 ? absl::OkStatus()
                       : absl::FailedPreconditionError("active slots restore: already in use");
    for (std::uint32_t c = 0; c <= (hw - 1) / chunk_size; ++c)
        chunks_[c].store(new entry[chunk_size], std::memory_order_release);
    std::vector<bool> held(hw, false);
    std::uint64_t n = 0;
    for (const slot_state& s : slots) {
        entry& e = *find(s.slot);
        const bool was_held = held[s.slot];
        e.state.store((s.held ? held_bit : 0) | s.gen, std::memory_order_relaxed);
        e.since.store(unix_s(s.acquired_at), std::memory_order_relaxed);
        e.last_seen.store(unix_s(s.last_touch), std::memory_order_relaxed);
        held[s.slot] = s.held;
        n = n - (was_held ? 1 : 0) + (s.held ? 1 : 0);
    }
    for (std::uint32_t i = 0; i < hw; ++i) {
        if (held[i]) continue;
        stripe& st = stripes_[i % stripes];
        mutex_lock lock(st.mu);
        st.free.push_back(i);
    }
    active_.store(n, std::memory_order_release);
    committed_.fetch_add(n, std::memory_order_acq_rel);
    high_water_.store(hw, std::memory_order_release);
    return absl::OkStatus();
}

active_slots::release_counts active_slots::counts() const noexcept {
    release_counts c;
    for (std::size_t i = 0; i < c.by_reason.size(); ++i)
        c.by_reason[i] = released_[i].load(std::memory_order_relaxed);
    return c;
}

}  // namespace floodgate::tokenstore
