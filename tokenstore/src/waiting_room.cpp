#include "tokenstore/waiting_room.hpp"

namespace floodgate::tokenstore {

waiting_room::waiting_room(const options& opts)
    : identity_ttl_(opts.identity_ttl),
      slots_({opts.policy.max_active, opts.policy.idle_timeout, opts.policy.session_ttl}) {}

absl::StatusOr<std::unique_ptr<waiting_room>> waiting_room::create(const options& opts,
                                                                   millis now) {
    if (auto s = validate(opts.policy); !s.ok()) return s;
    ring::options q = opts.queue;
    q.abandon_after = opts.policy.abandon_after;
    auto r = ring::create(q, now);
    if (!r.ok()) return r.status();
    std::unique_ptr<waiting_room> room(new waiting_room(opts));
    room->ring_ = *std::move(r);
    // Restored pending calls hold capacity like fresh ones.
    room->slots_.reserve_restored(room->ring_->calls_pending());
    room->admitter_ =
        std::make_unique<admitter>(*room->ring_, room->slots_, opts.policy, now, opts.admission);
    return room;
}

waiting_room::join_result waiting_room::join_anonymous(millis now, bool allow_direct) {
    join_result r;
    // Direct admission only with nobody waiting, so it never overtakes the queue.
    if (allow_direct && ring_->next_seq() == ring_->cursor() && !admitter_->paused()) {
        gcra& budget = admitter_->budget();
        if (budget.take(1, now) == 1) {
            if (auto l = slots_.acquire(now)) {
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
        if (out.outcome == join_outcome::full) return std::nullopt;
        return identity_map::entry{.seq = out.seq, .lease = out.pass ? pack(*out.pass) : 0};
    });
    return out;
}

waiting_room::poll_result waiting_room::poll(std::uint64_t seq, millis now,
                                             std::string_view identity) {
    const ring::position pos = ring_->poll(seq, now);
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
    return r;
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
