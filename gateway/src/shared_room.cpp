#include "shared_room.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace floodgate {
namespace {

namespace redis = tokenstore::redis;
using tokenstore::lease;

// LRANGE and DEL in one step: the forwarded touches and releases addressed to this node.
constexpr const char* drain_script =
    "local v = redis.call('LRANGE', KEYS[1], 0, -1) redis.call('DEL', KEYS[1]) return v";

template <class T>
bool parse_int(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

void put_u64(std::string& out, std::uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out.append(b, 8);
}

std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

constexpr std::uint32_t local_mask = 0x00ffffffu;

}  // namespace

std::shared_ptr<shared_room> shared_room::create(std::shared_ptr<redis::redis_connection> conn,
                                                 options opts) {
    return std::shared_ptr<shared_room>(new shared_room(std::move(conn), std::move(opts)));
}

shared_room::shared_room(std::shared_ptr<redis::redis_connection> conn, options opts)
    : conn_(std::move(conn)),
      opts_(std::move(opts)),
      redis_(redis::redis_room::create(
          conn_, {.room = opts_.room,
                  .node_id = opts_.node_id,
                  .lease_ttl = std::chrono::milliseconds(3000),
                  .cursor_interval = std::chrono::milliseconds(opts_.sync_interval),
                  .epoch_ms = 10'000,
                  // The holder's takeover read covers a whole abandon_after.
                  .epochs_kept = static_cast<int>(opts_.abandon_after / 10'000) + 2,
                  .config_interval = std::chrono::milliseconds(1000)})),
      prefix_(redis_->key_prefix()) {}

shared_room::~shared_room() = default;

void shared_room::attach(tokenstore::waiting_room* wr) {
    wr_ = wr;
    // Sessions that idle out or reach their ttl here end for every node.
    wr_->slots().set_expire_observer([this](lease l) { note_ended(l); });
}

void shared_room::note_ended(lease local) {
    const std::uint64_t key = (std::uint64_t(local.gen) << 32) | global_slot(local.slot);
    tokenstore::mutex_lock lock(ended_mu_);
    ended_.push_back(key);
}

void shared_room::start() {
    if (opts_.on_settings) {
        redis_->on_config_change([self = weak_from_this()](std::uint64_t, const redis::redis_room::config_fields& f) {
            auto me = self.lock();
            if (!me) return;
            for (const auto& [name, value] : f)
                if (name == "settings") me->opts_.on_settings(value);
        });
    }
    redis_->start(/*want_lease=*/true);
}

void shared_room::claim_identity(std::string_view identity, std::uint64_t seq,
                                 std::function<void(error_code, std::optional<std::string>)> cb) {
    // As long as the place itself can last (abandon_after after the last poll, and some).
    redis_->claim_identity(identity, "q " + std::to_string(seq), std::max<millis>(opts_.abandon_after, 600'000),
                           std::move(cb));
}

void shared_room::note_admitted(std::string_view identity, lease l, millis hold_for) {
    conn_->command({"SET", prefix_ + "id:" + std::string(identity),
                    "p " + std::to_string(l.slot) + " " + std::to_string(l.gen), "PX",
                    std::to_string(std::max<millis>(hold_for, 1000))},
                   [](error_code, redis::redis_reply) {});
}

void shared_room::publish_settings(std::string settings) {
    redis_->write_config({{"settings", std::move(settings)}}, [room = opts_.room](error_code ec, std::uint64_t) {
        if (ec) spdlog::warn("room {}: the settings change did not reach Redis ({}); other nodes keep theirs", room,
                             ec.message());
    });
}

void shared_room::stop() {
    if (redis_->holds_lease()) redis_->release_lease([](error_code, bool) {});
    redis_->stop();
}

std::optional<std::uint64_t> shared_room::take(millis now) {
    std::optional<std::uint64_t> seq;
    {
        tokenstore::mutex_lock lock(range_mu_);
        auto fresh = [&](const range& r) { return r.next < r.last && now - r.reserved_at < opts_.range_max_age; };
        if (!fresh(current_) && spare_ && fresh(*spare_)) {
            if (current_.next < current_.last) retired_.emplace_back(current_.next, current_.last);
            current_ = *spare_;
            spare_.reset();
        }
        if (fresh(current_)) {
            ++taken_;
            last_take_at_ = now;
            seq = current_.next++;
        }
    }
    // Refill at once rather than at the next tick: a crowd arriving takes ranges fast.
    start_reserve(now);
    return seq;
}

void shared_room::saw(std::uint64_t seq, millis now) { redis_->mark_live(seq, now); }

std::uint32_t shared_room::global_slot(std::uint32_t local) const noexcept {
    return (node_no_.load(std::memory_order_relaxed) << 24) | (local & local_mask);
}

bool shared_room::touch(lease l, millis now) {
    const std::uint32_t owner = owner_of(l.slot);
    if (owner != 0 && owner == node_no_.load(std::memory_order_relaxed))
        return wr_->touch({l.slot & local_mask, l.gen}, now);
    // Another node's pass: self-verifying, so it proceeds unless its node said the session
    // ended (fg:{room}:ended, heard within a sync); that node hears of the activity (once a
    // second per pass) so that the session does not idle out there.
    if (owner == 0) return true;
    const std::uint64_t key = (std::uint64_t(l.gen) << 32) | l.slot;
    {
        tokenstore::mutex_lock lock(revoked_mu_);
        if (revoked_.contains(key)) return false;
    }
    tokenstore::mutex_lock lock(fwd_mu_);
    if (!fwd_touched_.insert(key).second) return true;
    std::string& out = fwd_[owner];
    out.push_back('T');
    put_u32(out, l.slot & local_mask);
    put_u32(out, l.gen);
    return true;
}

bool shared_room::release(lease l, tokenstore::release_reason why) {
    const std::uint32_t owner = owner_of(l.slot);
    if (owner != 0 && owner == node_no_.load(std::memory_order_relaxed)) {
        const lease local{l.slot & local_mask, l.gen};
        if (!wr_->release(local, why)) return false;
        note_ended(local);
        return true;
    }
    if (owner == 0) return false;
    {
        // Gone here at once; its node frees the slot when the forwarded release arrives.
        tokenstore::mutex_lock lock(revoked_mu_);
        revoked_.emplace((std::uint64_t(l.gen) << 32) | l.slot, tokenstore::wall_clock_ms());
    }
    tokenstore::mutex_lock lock(fwd_mu_);
    std::string& out = fwd_[owner];
    out.push_back('R');
    put_u32(out, l.slot & local_mask);
    put_u32(out, l.gen);
    return true;
}


// ---- the admitter thread -------------------------------------------------------------------

std::uint64_t shared_room::before_tick(millis now) {
    tokenstore::ring& q = wr_->queue();
    inbox in;
    {
        tokenstore::mutex_lock lock(inbox_mu_);
        std::swap(in, in_);
    }
    if (in.sync_done) sync_in_flight_ = false;
    if (in.synced) {
        last_synced_ = now;
        ever_synced_.store(true, std::memory_order_relaxed);
        if (in.sync_takeover == takeover_) synced_since_takeover_ = true;
    }
    available_.store(conn_->current_state() == redis::redis_connection::state::connected &&
                         last_synced_ != 0 && now - last_synced_ < opts_.unreachable_after,
                     std::memory_order_relaxed);

    if (in.global_seq && *in.global_seq < global_seq_) {
        // Redis lost writes (restarted without its last second of AOF, or a failover to a
        // replica that lagged): never hand out a seq twice. Put the counter back, if nobody
        // moved it beyond in the meantime.
        spdlog::warn("room {}: the shared seq counter went back from {} to {}; restoring it", opts_.room,
                     global_seq_, *in.global_seq);
        conn_->command({"EVAL",
                        "local v = tonumber(redis.call('GET', KEYS[1]) or '0') "
                        "if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1",
                        "1", prefix_ + "seq", std::to_string(global_seq_)},
                       [](error_code, redis::redis_reply) {});
    }
    if (in.global_seq && *in.global_seq >= global_seq_) {
        global_seq_ = *in.global_seq;
        q.extend(global_seq_);
        seq_seen_.emplace_back(now, global_seq_);
        // Keep the newest reading that is at least settle_delay old, and everything after it.
        while (seq_seen_.size() > 1 && seq_seen_[1].first <= now - opts_.settle_delay)
            seq_seen_.pop_front();
    }
    // Dead marks first, then the cursor: a ticket the holder skipped is not called here.
    if (in.dead_ok) {
        for (const std::uint64_t s : in.dead) q.mark_abandoned(s);
        dead_offset_ += in.dead_read;
        // The list lost entries (see above): read on from its end.
        if (in.dead_len < dead_offset_) dead_offset_ = in.dead_len;
    }
    std::uint64_t called = 0;
    if (in.cursor && in.cursor->cursor > q.walk_cursor()) {
        called = q.follow(in.cursor->cursor, now);
        // Each call here may be claimed here: it holds local capacity until then.
        wr_->slots().reserve(called);
    }
    if (in.active_elsewhere) {
        active_elsewhere_ = *in.active_elsewhere;
        wr_->admission().set_active_elsewhere(active_elsewhere_);
    }
    for (const auto& [kind, l] : in.forwarded) {
        if (kind == 'T') wr_->touch(l, now);
        else if (wr_->release(l, tokenstore::release_reason::explicit_)) note_ended(l);
    }
    if (in.dead_ok) {  // the same sync read the ended passes
        const std::uint32_t me = node_no_.load(std::memory_order_relaxed);
        tokenstore::mutex_lock lock(revoked_mu_);
        for (const std::uint64_t key : in.ended)
            if (owner_of(static_cast<std::uint32_t>(key)) != me) revoked_.emplace(key, now);
        ended_offset_ += in.ended_read;
        if (in.ended_len < ended_offset_) ended_offset_ = in.ended_len;
        if (now >= next_revoked_prune_) {
            // A pass ends by itself at session_ttl: no need to remember it longer.
            next_revoked_prune_ = now + 10'000;
            const millis keep = wr_->policy().session_ttl;
            absl::erase_if(revoked_, [&](const auto& kv) { return now - kv.second > keep; });
        }
    }
    std::vector<std::uint64_t> ended;
    {
        tokenstore::mutex_lock lock(ended_mu_);
        ended.swap(ended_);
    }
    if (!ended.empty()) {
        std::string blob;
        for (const std::uint64_t key : ended) put_u64(blob, key);
        conn_->command({"RPUSH", prefix_ + "ended", std::move(blob)}, [](error_code, redis::redis_reply) {});
        conn_->command({"PEXPIRE", prefix_ + "ended", std::to_string(std::max<millis>(wr_->policy().session_ttl, 60'000))},
                       [](error_code, redis::redis_reply) {});
    }

    // Ranges that went stale unused: their rest are holes; say so (fg:{room}:dead) so that every
    // node stops counting them at once, instead of after the holder's settle delay.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> retired;
    {
        tokenstore::mutex_lock lock(range_mu_);
        auto retire_if_stale = [&](range& r) {
            if (r.next < r.last && now - r.reserved_at >= opts_.range_max_age) {
                retired_.emplace_back(r.next, r.last);
                r.next = r.last;
            }
        };
        retire_if_stale(current_);
        if (spare_) retire_if_stale(*spare_);
        retired.swap(retired_);
    }
    if (!retired.empty()) {
        std::string blob;
        for (const auto& [from, to] : retired)
            for (std::uint64_t s = from; s < to && blob.size() < 8 * 65'536; ++s) put_u64(blob, s);
        conn_->command({"RPUSH", prefix_ + "dead", std::move(blob)}, [](error_code, redis::redis_reply) {});
    }

    const bool held = redis_->holds_lease();
    if (held && !held_) {
        ++takeover_;
        synced_since_takeover_ = live_since_takeover_ = false;
        walk_end_ = q.cursor();
        next_live_ = 0;
        // Whatever the last holder called just now is unknown: no burst at the handover.
        const auto p = wr_->policy();
        if (p.rate_limited()) wr_->admission().budget().take(p.burst, now);
        spdlog::info("room {}: this node ({}) holds the cursor lease", opts_.room, opts_.node_id);
    } else if (!held && held_) {
        spdlog::warn("room {}: this node ({}) no longer holds the cursor lease", opts_.room,
                     opts_.node_id);
    }
    held_ = held;
    if (in.live) {
        live_in_flight_ = false;
        if (in.live_takeover == takeover_ && held) {
            const auto& [from, bits] = *in.live;
            for (std::size_t i = 0; i < bits.size(); ++i)
                if (bits[i]) q.see(from + i, now);
            q.settle_unseen(from, in.live_end);
            walk_end_ = std::max(walk_end_, in.live_end);
            live_since_takeover_ = true;
        }
    }
    calling_ = held && synced_since_takeover_ && live_since_takeover_ && available();
    wr_->admission().set_walk_end(walk_end_);
    wr_->admission().set_calling(calling_);

    // Work to send.
    if (node_no_.load(std::memory_order_relaxed) == 0 && !node_in_flight_.exchange(true)) {
        // The node's number for its passes' slots: 1..255, from a counter all nodes share.
        conn_->command({"INCR", "fg:nodes"},
                       [self = weak_from_this()](error_code ec, redis::redis_reply r) {
                           auto me = self.lock();
                           if (!me) return;
                           if (!ec && r.is_integer() && r.integer > 0) {
                               const auto no = static_cast<std::uint32_t>((r.integer - 1) % 255 + 1);
                               me->node_no_.store(no, std::memory_order_relaxed);
                               spdlog::info("room {}: node {} is number {} in Redis", me->opts_.room,
                                            me->opts_.node_id, no);
                           }
                           me->node_in_flight_.store(false);
                       });
    }
    if (now >= next_sync_ && !sync_in_flight_ && node_no_.load(std::memory_order_relaxed) != 0) {
        next_sync_ = now + opts_.sync_interval;
        start_sync(now);
    }
    if (now >= next_flush_ && !flush_in_flight_.exchange(true)) {
        next_flush_ = now + opts_.flush_interval;
        redis_->flush_liveness(now, [self = weak_from_this()](error_code, std::size_t) {
            if (auto me = self.lock()) me->flush_in_flight_.store(false);
        });
    }
    if (held && now >= next_live_ && !live_in_flight_) {
        next_live_ = now + opts_.liveness_interval;
        start_liveness_read(now);
    }
    start_reserve(now);
    if (now >= next_fwd_reset_) {
        next_fwd_reset_ = now + 1000;
        tokenstore::mutex_lock lock(fwd_mu_);
        fwd_touched_.clear();
    }
    return called;
}

void shared_room::after_tick(millis now) {
    tokenstore::ring& q = wr_->queue();
    std::vector<std::uint64_t> dead = q.take_abandoned();
    if (!calling_) return;  // marks made here while following are the holder's, already shared
    if (!dead.empty()) {
        std::sort(dead.begin(), dead.end());
        std::string blob;
        blob.reserve(dead.size() * 8);
        for (const std::uint64_t s : dead) put_u64(blob, s);
        conn_->command({"RPUSH", prefix_ + "dead", std::move(blob)}, [](error_code, redis::redis_reply) {});
    }
    const std::uint64_t c = q.cursor();
    if (c > published_) {
        published_ = c;
        redis_->publish_cursor({.cursor = c, .dead_below = 0, .at = now}, [](error_code, bool) {});
    }
}

void shared_room::start_sync(millis now) {
    sync_in_flight_ = true;
    struct state {
        int left = 0;
        bool failed = false;
        inbox in;
    };
    auto st = std::make_shared<state>();
    st->in.sync_takeover = takeover_;
    auto done = [self = weak_from_this(), st] {
        if (--st->left != 0) return;
        auto me = self.lock();
        if (!me) return;
        tokenstore::mutex_lock lock(me->inbox_mu_);
        inbox& in = me->in_;
        in.sync_done = true;
        if (st->failed) return;
        in.synced = true;
        in.sync_takeover = st->in.sync_takeover;
        in.global_seq = st->in.global_seq;
        in.cursor = st->in.cursor;
        in.dead.insert(in.dead.end(), st->in.dead.begin(), st->in.dead.end());
        in.dead_read += st->in.dead_read;
        in.dead_len = st->in.dead_len;
        in.ended.insert(in.ended.end(), st->in.ended.begin(), st->in.ended.end());
        in.ended_read += st->in.ended_read;
        in.ended_len = st->in.ended_len;
        in.dead_ok = true;
        in.active_elsewhere = st->in.active_elsewhere;
        in.forwarded.insert(in.forwarded.end(), st->in.forwarded.begin(), st->in.forwarded.end());
    };
    const std::uint32_t me_no = node_no_.load(std::memory_order_relaxed);
    st->left = 8;
    // In this order: the cursor is read before the dead marks, so every mark below it is in.
    redis_->read_cursor([st, done](error_code ec, std::optional<redis::redis_room::cursor_value> c) {
        if (ec) st->failed = true;
        else st->in.cursor = c;
        done();
    });
    conn_->command({"GET", prefix_ + "seq"}, [st, done](error_code ec, redis::redis_reply r) {
        std::uint64_t v = 0;
        if (ec || r.is_error()) st->failed = true;
        else if (r.is_string() && parse_int(r.str, v)) st->in.global_seq = v;
        else st->in.global_seq = 0;
        done();
    });
    conn_->command({"LRANGE", prefix_ + "dead", std::to_string(dead_offset_), "-1"},
                   [st, done](error_code ec, redis::redis_reply r) {
                       if (ec || r.is_error()) st->failed = true;
                       else {
                           st->in.dead_read = r.elements.size();
                           for (const auto& e : r.elements)
                               for (std::size_t i = 0; i + 8 <= e.str.size(); i += 8)
                                   st->in.dead.push_back(get_u64(e.str.data() + i));
                       }
                       done();
                   });
    conn_->command({"LLEN", prefix_ + "dead"}, [st, done](error_code ec, redis::redis_reply r) {
        if (ec || !r.is_integer()) st->failed = true;
        else st->in.dead_len = static_cast<std::uint64_t>(r.integer);
        done();
    });
    conn_->command({"LRANGE", prefix_ + "ended", std::to_string(ended_offset_), "-1"},
                   [st, done](error_code ec, redis::redis_reply r) {
                       if (ec || r.is_error()) st->failed = true;
                       else {
                           st->in.ended_read = r.elements.size();
                           for (const auto& e : r.elements)
                               for (std::size_t i = 0; i + 8 <= e.str.size(); i += 8)
                                   st->in.ended.push_back(get_u64(e.str.data() + i));
                       }
                       done();
                   });
    conn_->command({"LLEN", prefix_ + "ended"}, [st, done](error_code ec, redis::redis_reply r) {
        if (ec || !r.is_integer()) st->failed = true;
        else st->in.ended_len = static_cast<std::uint64_t>(r.integer);
        done();
    });
    conn_->command({"HGETALL", prefix_ + "active"}, [st, done, me_no, now](error_code ec, redis::redis_reply r) {
        if (ec || r.is_error()) st->failed = true;
        else {
            std::uint64_t sum = 0;
            for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
                std::uint32_t no = 0;
                if (!parse_int(r.elements[i].str, no) || no == me_no) continue;
                const std::string& v = r.elements[i + 1].str;
                const auto sp = v.find(' ');
                std::uint64_t n = 0;
                millis at = 0;
                if (sp == std::string::npos || !parse_int(std::string_view(v).substr(0, sp), n) ||
                    !parse_int(std::string_view(v).substr(sp + 1), at))
                    continue;
                if (now - at < 5'000) sum += n;  // a node silent for 5 s is gone
            }
            st->in.active_elsewhere = sum;
        }
        done();
    });
    conn_->command({"EVAL", drain_script, "1", prefix_ + "fwd:" + std::to_string(me_no)},
                   [st, done](error_code ec, redis::redis_reply r) {
                       if (ec || r.is_error()) st->failed = true;
                       else
                           for (const auto& e : r.elements)
                               for (std::size_t i = 0; i + 9 <= e.str.size(); i += 9)
                                   st->in.forwarded.emplace_back(
                                       e.str[i], lease{get_u32(e.str.data() + i + 1),
                                                       get_u32(e.str.data() + i + 5)});
                       done();
                   });
    // What this node holds, for the holder's max_active; and what it forwards to others.
    conn_->command({"HSET", prefix_ + "active", std::to_string(me_no),
                    std::to_string(wr_->slots().active()) + " " + std::to_string(now)},
                   [](error_code, redis::redis_reply) {});
    send_forwards();
}

void shared_room::send_forwards() {
    absl::flat_hash_map<std::uint32_t, std::string> out;
    {
        tokenstore::mutex_lock lock(fwd_mu_);
        out.swap(fwd_);
    }
    for (auto& [owner, blob] : out) {
        const std::string key = prefix_ + "fwd:" + std::to_string(owner);
        conn_->command({"RPUSH", key, std::move(blob)}, [](error_code, redis::redis_reply) {});
        conn_->command({"PEXPIRE", key, "60000"}, [](error_code, redis::redis_reply) {});
    }
}

void shared_room::start_liveness_read(millis now) {
    // The last global seq read at least settle_delay ago: every seq below it was handed out
    // long enough ago for its liveness bit to be in Redis.
    std::uint64_t settled = 0;
    for (const auto& [at, seq] : seq_seen_)
        if (at <= now - opts_.settle_delay) settled = seq;
    const std::uint64_t from = wr_->queue().cursor();
    constexpr std::uint64_t most = std::uint64_t(1) << 22;  // 512 KiB per epoch per read
    const std::uint64_t end = std::min(std::max(settled, from), from + most);
    const int epochs = live_since_takeover_ ? 2 : static_cast<int>(opts_.abandon_after / 10'000) + 2;
    live_in_flight_ = true;
    redis_->read_liveness(from, end - from, now, epochs,
                          [self = weak_from_this(), from, end, tk = takeover_](error_code ec,
                                                                               std::vector<bool> bits) {
                              auto me = self.lock();
                              if (!me) return;
                              tokenstore::mutex_lock lock(me->inbox_mu_);
                              if (ec) {
                                  // Nothing learnt; the next tick may try again.
                                  me->in_.live = std::make_pair(from, std::vector<bool>{});
                                  me->in_.live_end = from;
                                  me->in_.live_takeover = 0;
                                  return;
                              }
                              me->in_.live = std::make_pair(from, std::move(bits));
                              me->in_.live_end = end;
                              me->in_.live_takeover = tk;
                          });
}

void shared_room::start_reserve(millis now) {
    if (reserve_in_flight_.exchange(true)) return;
    std::uint64_t want = 0;
    {
        tokenstore::mutex_lock lock(range_mu_);
        // Always a range ready for at least another half of range_max_age: the current one with
        // more than half its seqs left, or a spare. Unused seqs are holes: until their range
        // retires (before_tick announces them) they count in the places of people behind them,
        // so ranges are sized to what was taken lately and an idle node wastes ~2 seqs a second.
        const millis half = opts_.range_max_age / 2;
        auto good_for = [&](const range& r) { return r.next < r.last && now - r.reserved_at < half; };
        // A spare once the current range is half used or half old: a round trip ahead of need.
        const bool enough = (spare_ && good_for(*spare_)) ||
                            (good_for(current_) && 2 * (current_.last - current_.next) > current_.last - current_.first);
        if (enough) {
            reserve_in_flight_.store(false);
            return;
        }
        // Within two seconds of a join, at least 16: a crowd arrives faster than a round trip.
        const std::uint64_t least = now - last_take_at_ < 2'000 ? 16 : 2;
        want = std::clamp<std::uint64_t>(2 * (taken_ - taken_at_last_reserve_), least, 4096);
        taken_at_last_reserve_ = taken_;
    }
    redis_->reserve_seqs(want, [self = weak_from_this(), now](error_code ec,
                                                                redis::redis_room::seq_range r) {
        auto me = self.lock();
        if (!me) return;
        if (!ec) {
            tokenstore::mutex_lock lock(me->range_mu_);
            // Its age counts from when it was asked for: it was reserved no earlier.
            if (me->spare_ && me->spare_->next < me->spare_->last)
                me->retired_.emplace_back(me->spare_->next, me->spare_->last);
            me->spare_ = range{r.first, r.first, r.last, now};
        }
        me->reserve_in_flight_.store(false);
    });
}

}  // namespace floodgate
