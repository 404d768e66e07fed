#include "tokenstore/waiting_room.hpp"

#include <algorithm>

namespace floodgate::tokenstore {

waiting_room::waiting_room(const options& opts)
    : identity_ttl_(opts.identity_ttl),
      slots_({opts.policy.max_active, opts.policy.idle_timeout, opts.policy.session_ttl}),
      observer_(opts.journal),
      seqs_(opts.seqs) {}

absl::StatusOr<std::unique_ptr<waiting_room>> waiting_room::create(const options& opts,
                                                                   millis now) {
    if (auto s = validate(opts.policy); !s.ok()) return s;
    if (opts.seqs != nullptr && opts.journal != nullptr)
        return absl::InvalidArgumentError("a room with a shared seq source keeps no journal");
    ring::options q = opts.queue;
    q.abandon_after = opts.policy.abandon_after;
    if (opts.restore) {
        const durable_state& st = opts.restore->state;
        q.cursor = st.cursor;
        q.next_seq = std::max({opts.restore->seq_limit, st.next_seq, st.cursor});
        q.tail = std::min(st.settled, st.cursor);
        q.claimed = st.claimed;
        q.abandoned = st.abandoned;
        q.unconfirmed_from = st.next_seq;
        q.unconfirmed_grace = opts.restore->unconfirmed_grace;
    }
    // A journal keeps the marks; a shared room sends them to the other nodes.
    q.track_abandoned = q.track_abandoned || opts.journal != nullptr || opts.seqs != nullptr;
    auto r = ring::create(q, now);
    if (!r.ok()) return r.status();
    std::unique_ptr<waiting_room> room(new waiting_room(opts));
    room->ring_ = *std::move(r);
    if (opts.restore) {
        std::vector<active_slots::slot_state> slots = opts.restore->state.slots;
        for (auto& s : slots)
            if (s.held) s.last_touch = std::max(s.last_touch, now);
        if (auto st = room->slots_.import_slots(slots); !st.ok()) return st;
    }
    // Restored pending calls hold capacity like fresh ones.
    room->slots_.reserve_restored(room->ring_->calls_pending());
    if (opts.journal != nullptr) {
        room->seq_limit_.store(opts.restore ? q.next_seq : 0, std::memory_order_relaxed);
    }
    if (opts.journal != nullptr)
        room->slots_.set_expire_observer([j = opts.journal](lease l) { j->on_release(l); });
    room->admitter_ =
        std::make_unique<admitter>(*room->ring_, room->slots_, opts.policy, now, opts.admission);
    // The calls made just before the crash are unknown: start with an empty budget, so that
    // calls per second stay within rate + burst across the restart.
    if (opts.restore && opts.policy.rate_limited())
        room->admitter_->budget().take(opts.policy.burst, now);
    return room;
}

void waiting_room::ensure_reserved(std::uint64_t seq, millis now) {
    if (seq < seq_limit_.load(std::memory_order_acquire)) return;
    mutex_lock lock(reserve_mu_);
    const std::uint64_t limit = seq_limit_.load(std::memory_order_relaxed);
    if (seq < limit) return;
    const std::uint64_t hi = std::max(observer_->reserve_seqs(seq, now), seq + 1);
    reserve_margin_.store(std::max<std::uint64_t>(1, (hi - seq) / 2), std::memory_order_relaxed);
    seq_limit_.store(hi, std::memory_order_release);
}

bool waiting_room::release(lease l, release_reason why) noexcept {
    if (!slots_.release(l, why)) return false;
    if (observer_ != nullptr) observer_->on_release(l);
    return true;
}

waiting_room::join_result waiting_room::join_anonymous(millis now, bool allow_direct) {
    join_result r;
    if (seqs_ != nullptr) {
        const std::optional<std::uint64_t> seq = seqs_->take(now);
        if (!seq) {
            r.outcome = join_outcome::unavailable;
            return r;
        }
        if (!ring_->join_at(*seq, now)) return r;
        r.outcome = join_outcome::queued;
        r.seq = *seq;
        r.pos = ring_->locate(*seq);
        return r;
    }
    // Direct admission only with nobody waiting, so it never overtakes the queue.
    if (allow_direct && ring_->next_seq() == ring_->cursor() && !admitter_->paused()) {
        gcra& budget = admitter_->budget();
        if (budget.take(1, now) == 1) {
            if (auto l = slots_.acquire(now)) {
                if (observer_ != nullptr) observer_->on_admit(std::nullopt, *l, now);
                admitted_total_.fetch_add(1, std::memory_order_relaxed);
                r.outcome = join_outcome::admitted;
                r.seq = ring_->next_seq();
                r.pass = l;
                return r;
            }
            budget.give_back(1, now);
        }
    }
    const auto seq = ring_->join(now);
    if (!seq) return r;
    if (observer_ != nullptr) ensure_reserved(*seq, now);
    r.outcome = join_outcome::queued;
    r.seq = *seq;
    r.pos = ring_->locate(*seq);
    return r;
}

waiting_room::join_result waiting_room::join(millis now, std::string_view identity,
                                             bool allow_direct) {
    if (identity.empty()) return join_anonymous(now, allow_direct);
    join_result out;
    ids_.find_or_insert(identity, now, identity_ttl_,
                        [&](const identity_map::entry* old) -> std::optional<identity_map::entry> {
        if (old != nullptr) {
            if (old->lease != 0) {
                if (slots_.held(unpack(old->lease), now)) {
                    out.outcome = join_outcome::already_admitted;
                    out.seq = old->seq;
                    return std::nullopt;
                }
            } else {
                const ring::position pos = ring_->poll(old->seq, now);
                if (pos.st == ring::state::waiting || pos.st == ring::state::called) {
                    out.outcome = join_outcome::queued;  // five tabs, one place
                    out.seq = old->seq;
                    out.pos = pos;
                    return std::nullopt;
                }
                if (pos.st == ring::state::claimed) {  // its pass is being minted right now
                    out.outcome = join_outcome::already_admitted;
                    out.seq = old->seq;
                    return std::nullopt;
                }
            }
        }
        out = join_anonymous(now, allow_direct);
        if (out.outcome == join_outcome::full || out.outcome == join_outcome::unavailable)
            return std::nullopt;
        return identity_map::entry{.seq = out.seq, .lease = out.pass ? pack(*out.pass) : 0};
    });
    return out;
}

waiting_room::poll_result waiting_room::poll(std::uint64_t seq, millis now,
                                             std::string_view identity) {
    // A ticket from another node may be new here: see() takes it in.
    if (seqs_ != nullptr) ring_->see(seq, now);
    const ring::position pos = seqs_ != nullptr ? ring_->locate(seq) : ring_->poll(seq, now);
    poll_result r{pos.st, pos.ahead, std::nullopt};
    if (pos.st != ring::state::called) return r;
    switch (ring_->claim(seq)) {
        case ring::claim_status::claimed: {
            r.pass = slots_.acquire_reserved(now);
            if (!r.pass) {  // only past active_slots::max_slots
                slots_.unreserve(1);
                r.st = ring::state::missed;
                return r;
            }
            if (observer_ != nullptr) observer_->on_admit(seq, *r.pass, now);
            admitted_total_.fetch_add(1, std::memory_order_relaxed);
            r.st = ring::state::claimed;
            if (!identity.empty()) ids_.set_lease(identity, seq, pack(*r.pass), now, identity_ttl_);
            return r;
        }
        case ring::claim_status::not_called:  // called this instant; the cursor follows
            r.st = ring::state::waiting;
            r.ahead = 0;
            return r;
        case ring::claim_status::already_claimed: r.st = ring::state::claimed; return r;
        case ring::claim_status::missed: r.st = ring::state::missed; return r;
        case ring::claim_status::abandoned: r.st = ring::state::abandoned; return r;
        default: r.st = ring::state::expired; return r;
    }
}

admitter::tick_report waiting_room::tick(millis now) {
    const admitter::tick_report r = admitter_->tick(now);
    noshows_total_.fetch_add(r.noshows, std::memory_order_relaxed);
    if (now >= next_purge_) {
        ids_.purge(now);
        next_purge_ = now + 10'000;
    }
    // Reserve the next seq range before joins need it, so that they rarely wait for it.
    if (observer_ != nullptr)
        ensure_reserved(ring_->next_seq() + reserve_margin_.load(std::memory_order_relaxed), now);
    return r;
}

waiting_room::durable_state waiting_room::snapshot_state() const {
    durable_state st;
    st.cursor = ring_->cursor();
    st.next_seq = std::max(st.cursor, std::min({ring_->next_seq(), seq_limit(),
                                                ring_->unconfirmed_from()}));
    st.settled = ring_->settled();
    ring_->export_marks(st.claimed, st.abandoned);
    st.slots = slots_.export_slots();
    return st;
}

waiting_room::stats waiting_room::snapshot() const {
    stats s;
    s.issued = ring_->next_seq();
    s.cursor = ring_->cursor();
    s.waiting = ring_->waiting();
    s.active = slots_.active();
    s.calls_pending = ring_->calls_pending();
    s.admitted_total = admitted_total_.load(std::memory_order_relaxed);
    s.abandoned_total = ring_->abandoned_total();
    s.noshows_total = noshows_total_.load(std::memory_order_relaxed);
    s.released = slots_.counts();
    return s;
}

}  // namespace floodgate::tokenstore
