#include "shared_room.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

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

void keep_newest(std::vector<std::uint64_t>& v, std::size_t most) {
    if (v.size() > most) v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() - most));
}

std::uint32_t with_owner(std::uint32_t no, std::uint32_t local) { return (no << 24) | (local & local_mask); }

// Node numbers are leases in Redis, so their ttls run on a steady clock here.
std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Takes a free node number: KEYS[1] fg:{room}:node_next, KEYS[2..256] fg:{room}:node:1..255,
// KEYS[257] fg:{room}:ended; ARGV[1] this process's lease value, ARGV[2] ttl (ms). Tries
// node_next first, then on upwards (wrapping), so numbers that came free are the last to be
// taken again. Returns the number, or 0 when all 255 are held.
// The number's last holder may have left ended passes in fg:{room}:ended: their passes have
// expired, but a node that starts later would read them and refuse this holder's passes with
// the same slot and generation. They are zeroed in place (gen 0 is no pass), which keeps every
// reader's offset into the list valid.
constexpr const char* claim_number_script = R"lua(
local first = math.floor(tonumber(redis.call('GET', KEYS[1]) or '1') or 1)
if first < 1 or first > 255 then first = 1 end
for i = 0, 254 do
  local n = (first - 1 + i) % 255 + 1
  if redis.call('SET', KEYS[n + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    redis.call('SET', KEYS[1], n % 255 + 1)
    local ended = redis.call('LRANGE', KEYS[257], 0, -1)
    local zero = string.rep(string.char(0), 8)
    for k, e in ipairs(ended) do
      local parts, changed = {}, false
      for j = 1, #e - 7, 8 do
        local key = string.sub(e, j, j + 7)
        if string.byte(key, 4) == n then key = zero changed = true end
        parts[#parts + 1] = key
      end
      if changed then redis.call('LSET', KEYS[257], k - 1, table.concat(parts)) end
    end
    return n
  end
end
return 0)lua";

// Keeps a node number: KEYS[1] fg:{room}:node:<n>; ARGV[1] the lease value, ARGV[2] ttl (ms).
// 1: extended; 2: the key was gone (Redis lost it, or it ran out) and is this process's again;
// a string: the value of the process that holds it now.
constexpr const char* renew_number_script = R"lua(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return v)lua";

std::string lease_value(const std::string& node_id) {
    // The node id alone could be a restarted process's too (node_id: gw-a in the config).
    std::random_device rd;
    const std::uint64_t r = (std::uint64_t(rd()) << 32) | rd();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
    return node_id + " " + hex;
}

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
      prefix_(redis_->key_prefix()),
      number_value_(lease_value(opts_.node_id)) {}

shared_room::~shared_room() = default;

void shared_room::attach(tokenstore::waiting_room* wr) {
    wr_ = wr;
    // Sessions that idle out or reach their ttl here end for every node.
    wr_->slots().set_expire_observer([this](lease l) { note_ended(l); });
}

void shared_room::note_ended(lease local) {
    const std::uint64_t key =
        (std::uint64_t(local.gen) << 32) | with_owner(node_no_.load(std::memory_order_relaxed), local.slot);
    tokenstore::mutex_lock lock(ended_mu_);
    ended_.push_back(key);
    // While Redis is away they wait here; past the bound the oldest go (their passes end at
    // their session_ttl anyway).
    keep_newest(ended_, opts_.max_ended);
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
    // The node number is not given back: passes minted under it live on (session_ttl), and its
    // lease keeps the number from anyone else until they have expired.
    stopped_.store(true);
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
    const std::int64_t at = steady_ms();
    if (const std::uint32_t no = mintable_number(at); no != 0) return with_owner(no, local);
    // Only a call that reached this node before it lost its number (or its lease ran short in
    // a long outage: no sync, so nobody new is called here) is claimed in between.
    if (at - unowned_logged_.load(std::memory_order_relaxed) >= 10'000) {
        unowned_logged_.store(at, std::memory_order_relaxed);
        spdlog::warn("room {}: a pass was minted without a node number (this node has none it may use now); it gets "
                     "through every node until its session_ttl and cannot be released",
                     opts_.room);
    }
    return local & local_mask;
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
    queue_forward({owner, 'T', {l.slot & local_mask, l.gen}});
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
    queue_forward({owner, 'R', {l.slot & local_mask, l.gen}});
    return true;
}

void shared_room::queue_forward(const forward& f) {
    if (f.kind == 'T') {
        // One waiting touch says as much as many: the owner applies it when it arrives.
        if (!fwd_queued_.insert(f.key()).second) return;
        fwd_touches_.push_back(f);
    } else {
        fwd_releases_.push_back(f);
    }
    trim_forwards();
}

void shared_room::trim_forwards() {
    // Bounded (Redis may stay away for long): the oldest touches go first, and only a queue of
    // nothing but releases loses its oldest release.
    while (fwd_touches_.size() + fwd_releases_.size() > opts_.max_forwards) {
        ++fwd_dropped_;
        if (!fwd_touches_.empty()) {
            fwd_queued_.erase(fwd_touches_.front().key());
            fwd_touches_.pop_front();
        } else {
            fwd_releases_.pop_front();
        }
    }
    const millis now = tokenstore::wall_clock_ms();
    if (fwd_dropped_ != 0 && now - fwd_dropped_logged_ >= 10'000) {
        spdlog::warn("room {}: {} touches or releases for other nodes dropped: {} are waiting for Redis already",
                     opts_.room, fwd_dropped_, opts_.max_forwards);
        fwd_dropped_ = 0;
        fwd_dropped_logged_ = now;
    }
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
    send_ended();

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
    if (now >= next_number_ && !stopped_.load() && !number_in_flight_.exchange(true)) {
        next_number_ = now + opts_.number_interval;
        if (node_no_.load(std::memory_order_relaxed) == 0) claim_number();
        else renew_number();
    }
    if (now >= next_sync_ && !sync_in_flight_) {
        next_sync_ = now + opts_.sync_interval;
        // Without a number it may mint under, the node does not sync: it is out of step, calls
        // nobody and follows no calls, so it mints nothing (store_failure applies).
        if (mintable_number(steady_ms()) != 0) start_sync(now);
        send_forwards();
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
                   [self = weak_from_this(), st, done](error_code ec, redis::redis_reply r) {
                       if (ec || r.is_error()) st->failed = true;
                       else if (auto me = self.lock()) {
                           // Gone from Redis now: to the inbox whatever else this sync gets (a
                           // sync that fails elsewhere, e.g. while Redis is still loading its
                           // AOF, must not lose them).
                           tokenstore::mutex_lock lock(me->inbox_mu_);
                           for (const auto& e : r.elements)
                               for (std::size_t i = 0; i + 9 <= e.str.size(); i += 9)
                                   me->in_.forwarded.emplace_back(
                                       e.str[i], lease{get_u32(e.str.data() + i + 1),
                                                       get_u32(e.str.data() + i + 5)});
                       }
                       done();
                   });
    // What this node holds, for the holder's max_active.
    conn_->command({"HSET", prefix_ + "active", std::to_string(me_no),
                    std::to_string(wr_->slots().active()) + " " + std::to_string(now)},
                   [](error_code, redis::redis_reply) {});
}

// ---- node numbers ---------------------------------------------------------------------------

millis shared_room::number_ttl() const { return wr_->policy().session_ttl + opts_.number_grace; }

std::uint32_t shared_room::mintable_number(std::int64_t at) const noexcept {
    // Only while the number's lease outlasts the pass: after that another process may take it.
    // The callbacks store the expiry before the number (sequentially consistent), so a number
    // read the same before and after its expiry goes with that expiry.
    const std::uint32_t no = node_no_.load();
    if (no == 0 || at + wr_->policy().session_ttl > number_expires_.load()) return 0;
    return node_no_.load() == no ? no : 0;
}

void shared_room::claim_number() {
    const std::int64_t sent = steady_ms();
    const millis ttl = number_ttl();
    std::vector<std::string> args{"EVAL", claim_number_script, "257", prefix_ + "node_next"};
    for (int n = 1; n <= 255; ++n) args.push_back(prefix_ + "node:" + std::to_string(n));
    args.push_back(prefix_ + "ended");
    args.push_back(number_value_);
    args.push_back(std::to_string(ttl));
    conn_->command(std::move(args), [self = weak_from_this(), sent, ttl](error_code ec, redis::redis_reply r) {
        auto me = self.lock();
        if (!me) return;
        if (!ec && r.is_integer() && r.integer >= 1 && r.integer <= 255) {
            const auto no = static_cast<std::uint32_t>(r.integer);
            me->number_expires_.store(sent + ttl);
            me->node_no_.store(no);
            me->all_taken_logged_ = 0;
            spdlog::info("room {}: node {} holds number {} for its passes ({}node:{}, renewed every {} ms with a "
                         "ttl of {} ms)",
                         me->opts_.room, me->opts_.node_id, no, me->prefix_, no, me->opts_.number_interval, ttl);
        } else if (!ec && r.is_integer() && r.integer == 0) {
            const std::int64_t at = steady_ms();
            if (me->all_taken_logged_ == 0 || at - me->all_taken_logged_ >= 60'000) {
                me->all_taken_logged_ = at;
                spdlog::error("room {}: all 255 node numbers are taken (by running nodes, or by stopped ones whose "
                              "passes may still be live: a number stays taken session_ttl + {} s after its node "
                              "stops); this node mints no passes and is out of step with Redis (store_failure "
                              "applies) until one comes free; trying every {} ms",
                              me->opts_.room, me->opts_.number_grace / 1000, me->opts_.number_interval);
            }
        } else if (!ec) {
            spdlog::warn("room {}: taking a node number failed: {}", me->opts_.room,
                         r.is_error() ? r.str : std::string("unexpected reply"));
        }
        // A connection error: the next tick tries again (the room is out of step meanwhile).
        me->number_in_flight_.store(false);
    });
}

void shared_room::renew_number() {
    const std::uint32_t no = node_no_.load(std::memory_order_relaxed);
    const std::int64_t sent = steady_ms();
    const millis ttl = number_ttl();
    conn_->command({"EVAL", renew_number_script, "1", prefix_ + "node:" + std::to_string(no), number_value_,
                    std::to_string(ttl)},
                   [self = weak_from_this(), no, sent, ttl](error_code ec, redis::redis_reply r) {
                       auto me = self.lock();
                       if (!me) return;
                       if (!ec && r.is_integer() && (r.integer == 1 || r.integer == 2)) {
                           me->number_expires_.store(sent + ttl);
                           if (r.integer == 2)
                               spdlog::warn("room {}: the lease on node number {} was gone from Redis (lost "
                                            "writes?); this node holds it again",
                                            me->opts_.room, no);
                       } else if (!ec && r.is_string()) {
                           // Redis lost the lease (a restart without AOF, a failover) and another
                           // process took the number: it is that one's now. Nothing more is minted
                           // under it here; a new number, at once.
                           spdlog::error("room {}: node number {} is held by another process now ('{}'): Redis "
                                         "lost this node's lease on it. This node takes a new number for new "
                                         "passes; passes it minted under {} still get through until their "
                                         "session_ttl, but their touches and releases go to that process",
                                         me->opts_.room, no, r.str, no);
                           me->number_expires_.store(0);
                           me->node_no_.store(0);
                           me->claim_number();
                           return;
                       }
                       // Redis unreachable: minting goes on while the lease certainly lasts
                       // (number_expires_), and the next renewal tries again.
                       me->number_in_flight_.store(false);
                   });
}

// ---- what other nodes must hear, kept through an outage ---------------------------------------

void shared_room::send_forwards() {
    if (conn_->current_state() != redis::redis_connection::state::connected) return;  // they wait
    if (fwd_in_flight_.exchange(true)) return;
    // Per owner, and what to put back should Redis not take it.
    absl::flat_hash_map<std::uint32_t, std::pair<std::string, std::vector<forward>>> out;
    {
        tokenstore::mutex_lock lock(fwd_mu_);
        for (auto* q : {&fwd_releases_, &fwd_touches_}) {
            for (const forward& f : *q) {
                auto& [blob, recs] = out[f.owner];
                blob.push_back(f.kind);
                put_u32(blob, f.l.slot);
                put_u32(blob, f.l.gen);
                recs.push_back(f);
            }
            q->clear();
        }
        fwd_queued_.clear();
    }
    if (out.empty()) {
        fwd_in_flight_.store(false);
        return;
    }
    auto left = std::make_shared<std::size_t>(out.size());
    for (auto& [owner, batch] : out) {
        const std::string key = prefix_ + "fwd:" + std::to_string(owner);
        conn_->command({"RPUSH", key, std::move(batch.first)},
                       [self = weak_from_this(), left, recs = std::move(batch.second)](error_code ec,
                                                                                     redis::redis_reply r) {
                           auto me = self.lock();
                           if (!me) return;
                           if (ec || r.is_error()) {
                               // Back in front of anything newer (the bound still holds). A reply
                               // lost to a timeout may mean Redis has them already: a record
                               // applied twice is harmless (a touch, or a release of a lease
                               // that is gone).
                               tokenstore::mutex_lock lock(me->fwd_mu_);
                               std::deque<forward> touches, releases;
                               for (const forward& f : recs) {
                                   if (f.kind != 'T') releases.push_back(f);
                                   else if (me->fwd_queued_.insert(f.key()).second) touches.push_back(f);
                               }
                               me->fwd_releases_.insert(me->fwd_releases_.begin(), releases.begin(), releases.end());
                               me->fwd_touches_.insert(me->fwd_touches_.begin(), touches.begin(), touches.end());
                               me->trim_forwards();
                           }
                           if (--*left == 0) me->fwd_in_flight_.store(false);
                       });
        conn_->command({"PEXPIRE", key, "60000"}, [](error_code, redis::redis_reply) {});
    }
}

void shared_room::send_ended() {
    if (conn_->current_state() != redis::redis_connection::state::connected) return;  // they wait
    if (ended_in_flight_.exchange(true)) return;
    std::vector<std::uint64_t> ended;
    {
        tokenstore::mutex_lock lock(ended_mu_);
        ended.swap(ended_);
    }
    if (ended.empty()) {
        ended_in_flight_.store(false);
        return;
    }
    std::string blob;
    for (const std::uint64_t key : ended) put_u64(blob, key);
    conn_->command({"RPUSH", prefix_ + "ended", std::move(blob)},
                   [self = weak_from_this(), ended = std::move(ended)](error_code ec, redis::redis_reply r) {
                       auto me = self.lock();
                       if (!me) return;
                       if (ec || r.is_error()) {
                           tokenstore::mutex_lock lock(me->ended_mu_);
                           me->ended_.insert(me->ended_.begin(), ended.begin(), ended.end());
                           keep_newest(me->ended_, me->opts_.max_ended);
                       }
                       me->ended_in_flight_.store(false);
                   });
    conn_->command({"PEXPIRE", prefix_ + "ended", std::to_string(std::max<millis>(wr_->policy().session_ttl, 60'000))},
                   [](error_code, redis::redis_reply) {});
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
