#include "tokenstore/redis/redis_room.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace floodgate::tokenstore::redis {

namespace {

// Acquire or renew: KEYS[1] lease, ARGV[1] node id, ARGV[2] ttl ms.
constexpr const char* lease_script = R"lua(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1)lua";

// Compare-and-delete: KEYS[1] lease, ARGV[1] node id.
constexpr const char* release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)lua";

// Fenced, monotone publish: KEYS[1] lease, KEYS[2] cursor; ARGV node id, cursor, dead, ms.
constexpr const char* publish_script = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = redis.call('GET', KEYS[2])
if cur then
  local c = tonumber(string.match(cur, '^(%d+)'))
  if c and c > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
return 1)lua";

// Claim: KEYS slotgen, held, free; ARGV max_active, now, expires_at. Returns {slot, gen} or
// {-1, 0} when max_active slots are held.
constexpr const char* claim_script = R"lua(
local max = tonumber(ARGV[1])
local slot
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, 1)
if #expired > 0 then
  slot = expired[1]
else
  if redis.call('ZCARD', KEYS[2]) >= max then return {-1, 0} end
  slot = redis.call('LPOP', KEYS[3])
  if not slot then
    local n = redis.call('HLEN', KEYS[1])
    if n >= max then return {-1, 0} end
    slot = tostring(n)
  end
end
local gen = redis.call('HINCRBY', KEYS[1], slot, 1)
redis.call('ZADD', KEYS[2], ARGV[3], slot)
return {tonumber(slot), gen})lua";

// Touch: KEYS slotgen, held; ARGV slot, gen, now, expires_at.
constexpr const char* touch_script = R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp or tonumber(exp) <= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[1])
return 1)lua";

// Release: KEYS slotgen, held, free; ARGV slot, gen.
constexpr const char* release_slot_script = R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1)lua";

// Compare-and-delete of any key: KEYS[1]; ARGV[1] expected value.
constexpr const char* compare_delete_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)lua";

// Config write: KEYS config, events; ARGV field, value, field, value, ...
constexpr const char* config_script = R"lua(
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', KEYS[2], v)
return v)lua";

std::int64_t steady_now() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
}

template <class T>
bool parse_int(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

std::optional<redis_room::cursor_value> parse_cursor(std::string_view s) {
    redis_room::cursor_value c;
    const auto a = s.find(' ');
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = s.find(' ', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    if (!parse_int(s.substr(0, a), c.cursor) || !parse_int(s.substr(a + 1, b - a - 1), c.dead_below) ||
        !parse_int(s.substr(b + 1), c.at)) {
        return std::nullopt;
    }
    return c;
}

error_code reply_error(const error_code& ec, const redis_reply& r) {
    if (ec) return ec;
    if (r.is_error()) return make_error_code(redis_errc::protocol);
    return {};
}

}  // namespace

std::shared_ptr<redis_room> redis_room::create(std::shared_ptr<redis_connection> conn, options opts) {
    return std::shared_ptr<redis_room>(new redis_room(std::move(conn), std::move(opts)));
}

redis_room::redis_room(std::shared_ptr<redis_connection> conn, options opts)
    : conn_(std::move(conn)),
      opts_(std::move(opts)),
      prefix_("fg:{" + opts_.room + "}:"),
      follow_timer_(conn_->strand()),
      renew_timer_(conn_->strand()) {}

void redis_room::reserve_seqs(std::uint64_t n, std::function<void(error_code, seq_range)> cb) {
    conn_->command({"INCRBY", prefix_ + "seq", std::to_string(n)},
                   [n, cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       if (!ec && (!r.is_integer() || r.integer < static_cast<std::int64_t>(n))) {
                           ec = make_error_code(redis_errc::protocol);
                       }
                       if (ec) return cb(ec, {});
                       const auto last = static_cast<std::uint64_t>(r.integer);
                       cb({}, {last - n, last});
                   });
}

void redis_room::try_lease(std::function<void(error_code, bool)> cb) {
    const std::int64_t sent = steady_now();
    const auto ttl = opts_.lease_ttl;
    conn_->command({"EVAL", lease_script, "1", prefix_ + "lease", opts_.node_id,
                    std::to_string(ttl.count())},
                   [self = shared_from_this(), sent, ttl, cb = std::move(cb)](error_code ec,
                                                                              redis_reply r) {
                       ec = reply_error(ec, r);
                       const bool held = !ec && r.is_integer() && r.integer == 1;
                       // Counted from when the request left, not when the reply came: Redis
                       // started the ttl later than that, so this node gives up first.
                       self->lease_until_.store(
                           held ? sent + std::chrono::duration_cast<std::chrono::steady_clock::duration>(ttl)
                                             .count()
                                : 0,
                           std::memory_order_release);
                       cb(ec, held);
                   });
}

void redis_room::release_lease(std::function<void(error_code, bool)> cb) {
    want_lease_.store(false, std::memory_order_release);
    lease_until_.store(0, std::memory_order_release);
    conn_->command({"EVAL", release_script, "1", prefix_ + "lease", opts_.node_id},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       cb(ec, !ec && r.is_integer() && r.integer == 1);
                   });
}

bool redis_room::holds_lease() const noexcept {
    const std::int64_t until = lease_until_.load(std::memory_order_acquire);
    return until != 0 && steady_now() < until;
}

void redis_room::publish_cursor(cursor_value c, std::function<void(error_code, bool)> cb) {
    conn_->command({"EVAL", publish_script, "2", prefix_ + "lease", prefix_ + "cursor", opts_.node_id,
                    std::to_string(c.cursor), std::to_string(c.dead_below), std::to_string(c.at)},
                   [self = shared_from_this(), c, cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       const bool ok = !ec && r.is_integer() && r.integer == 1;
                       if (ok) self->store_cursor(c);
                       cb(ec, ok);
                   });
}

void redis_room::read_cursor(std::function<void(error_code, std::optional<cursor_value>)> cb) {
    conn_->command({"GET", prefix_ + "cursor"},
                   [self = shared_from_this(), cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       if (ec) return cb(ec, std::nullopt);
                       if (r.is_nil()) return cb({}, std::nullopt);
                       auto c = parse_cursor(r.str);
                       if (!c) return cb(make_error_code(redis_errc::protocol), std::nullopt);
                       self->store_cursor(*c);
                       cb({}, c);
                   });
}

void redis_room::store_cursor(const cursor_value& c) {
    mutex_lock lock(mu_);
    // Forwards only: a read that raced a newer publish must not move a follower back.
    if (!cursor_ || cursor_->cursor <= c.cursor) cursor_ = c;
}

std::optional<redis_room::cursor_value> redis_room::cursor() const {
    mutex_lock lock(mu_);
    return cursor_;
}

void redis_room::start(bool want_lease) {
    want_lease_.store(want_lease, std::memory_order_release);
    net::post(conn_->strand(), [self = shared_from_this()] {
        if (self->running_.exchange(true)) return;
        self->do_follow();
        self->do_renew();
    });
}

void redis_room::stop() {
    net::post(conn_->strand(), [self = shared_from_this()] {
        self->running_.store(false);
        self->lease_until_.store(0, std::memory_order_release);
        self->follow_timer_.cancel();
        self->renew_timer_.cancel();
    });
}

void redis_room::do_follow() {
    if (!running_.load()) return;
    read_cursor([](error_code, std::optional<cursor_value>) {});
    if (on_config_ && std::chrono::steady_clock::now() >= next_config_check_) {
        next_config_check_ = std::chrono::steady_clock::now() + opts_.config_interval;
        check_config();
    }
    follow_timer_.expires_after(opts_.cursor_interval);
    follow_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->do_follow();
    });
}

void redis_room::do_renew() {
    if (!running_.load()) return;
    if (want_lease_.load(std::memory_order_acquire)) try_lease([](error_code, bool) {});
    renew_timer_.expires_after(opts_.lease_ttl / 3);
    renew_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->do_renew();
    });
}

void redis_room::mark_live(std::uint64_t seq, millis now) {
    const std::int64_t e = epoch_of(now);
    mutex_lock lock(mu_);
    if (e != live_epoch_) {
        if (e < live_epoch_) return;  // a late caller; the newer epoch already counts it
        // A new epoch: bits of the old one not flushed yet go out with the new epoch's (seen
        // a moment ago is seen in this epoch too), so a join just before the boundary is never
        // lost.
        live_epoch_ = e;
        seen_.clear();
    }
    if (seen_.insert(seq).second) unflushed_.push_back(seq);
}

void redis_room::flush_liveness(millis now, std::function<void(error_code, std::size_t)> cb) {
    std::vector<std::uint64_t> batch;
    std::int64_t e = 0;
    {
        mutex_lock lock(mu_);
        batch.swap(unflushed_);
        // Bits recorded in an earlier epoch go into the current one: still seen recently.
        e = std::max<std::int64_t>(live_epoch_, epoch_of(now));
    }
    if (batch.empty()) {
        net::post(conn_->strand(), [cb = std::move(cb)] { cb({}, 0); });
        return;
    }
    const std::string key = prefix_ + "live:" + std::to_string(e);
    constexpr std::size_t per_command = 1024;
    struct join_state {
        std::size_t left = 0;
        error_code first_error{};
        std::vector<std::uint64_t> failed{};
        std::size_t written = 0;
        std::function<void(error_code, std::size_t)> cb;
    };
    auto js = std::make_shared<join_state>();
    js->left = (batch.size() + per_command - 1) / per_command + 1;  // + the PEXPIRE
    js->cb = std::move(cb);
    auto done = [self = shared_from_this(), js, e](error_code ec, std::vector<std::uint64_t> seqs) {
        if (ec) {
            if (!js->first_error) js->first_error = ec;
            js->failed.insert(js->failed.end(), seqs.begin(), seqs.end());
        } else {
            js->written += seqs.size();
        }
        if (--js->left != 0) return;
        if (!js->failed.empty()) {
            mutex_lock lock(self->mu_);
            if (self->live_epoch_ == e) {
                for (auto s : js->failed) self->seen_.erase(s);
            }
        }
        js->cb(js->first_error, js->written);
    };
    for (std::size_t i = 0; i < batch.size(); i += per_command) {
        const std::size_t end = std::min(batch.size(), i + per_command);
        std::vector<std::string> args{"BITFIELD", key};
        args.reserve(2 + 4 * (end - i));
        std::vector<std::uint64_t> seqs(batch.begin() + static_cast<std::ptrdiff_t>(i),
                                        batch.begin() + static_cast<std::ptrdiff_t>(end));
        for (auto s : seqs) {
            args.emplace_back("SET");
            args.emplace_back("u1");
            args.push_back(std::to_string(s));
            args.emplace_back("1");
        }
        conn_->command(std::move(args), [done, seqs = std::move(seqs)](error_code ec, redis_reply r) mutable {
            done(reply_error(ec, r), std::move(seqs));
        });
    }
    const millis keep = opts_.epoch_ms * opts_.epochs_kept;
    conn_->command({"PEXPIRE", key, std::to_string(keep)},
                   [done](error_code ec, redis_reply r) { done(reply_error(ec, r), {}); });
}

void redis_room::read_liveness(std::uint64_t from, std::uint64_t count, millis now, int epochs,
                               std::function<void(error_code, std::vector<bool>)> cb) {
    if (count == 0 || epochs <= 0) {
        net::post(conn_->strand(), [cb = std::move(cb)] { cb({}, {}); });
        return;
    }
    const std::uint64_t first_byte = from / 8;
    const std::uint64_t last_byte = (from + count - 1) / 8;
    struct join_state {
        int left = 0;
        error_code first_error{};
        std::string bits{};  // OR of all epochs, from first_byte
        std::function<void(error_code, std::vector<bool>)> cb;
    };
    auto js = std::make_shared<join_state>();
    js->left = epochs;
    js->bits.assign(last_byte - first_byte + 1, '\0');
    js->cb = std::move(cb);
    const std::int64_t e = epoch_of(now);
    for (int k = 0; k < epochs; ++k) {
        conn_->command({"GETRANGE", prefix_ + "live:" + std::to_string(e - k), std::to_string(first_byte),
                        std::to_string(last_byte)},
                       [js, from, count, first_byte](error_code ec, redis_reply r) {
                           ec = reply_error(ec, r);
                           if (ec && !js->first_error) js->first_error = ec;
                           if (!ec) {
                               for (std::size_t i = 0; i < r.str.size() && i < js->bits.size(); ++i) {
                                   js->bits[i] = static_cast<char>(js->bits[i] | r.str[i]);
                               }
                           }
                           if (--js->left != 0) return;
                           if (js->first_error) return js->cb(js->first_error, {});
                           std::vector<bool> live(count);
                           for (std::uint64_t i = 0; i < count; ++i) {
                               // Redis numbers bits from the most significant bit of byte 0.
                               const std::uint64_t bit = from + i;
                               const auto byte = static_cast<unsigned char>(js->bits[bit / 8 - first_byte]);
                               live[i] = ((byte >> (7 - bit % 8)) & 1U) != 0;
                           }
                           js->cb({}, std::move(live));
                       });
    }
}

void redis_room::claim_slot(std::uint32_t max_active, millis now, millis expires_at,
                            std::function<void(error_code, slot_claim)> cb) {
    conn_->command({"EVAL", claim_script, "3", prefix_ + "slotgen", prefix_ + "held", prefix_ + "free",
                    std::to_string(max_active), std::to_string(now), std::to_string(expires_at)},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       if (!ec && (r.elements.size() != 2 || !r.elements[0].is_integer() ||
                                   !r.elements[1].is_integer())) {
                           ec = make_error_code(redis_errc::protocol);
                       }
                       if (ec) return cb(ec, {});
                       if (r.elements[0].integer < 0) return cb({}, {});
                       cb({}, {true, static_cast<std::uint32_t>(r.elements[0].integer),
                               static_cast<std::uint32_t>(r.elements[1].integer)});
                   });
}

void redis_room::touch_slot(std::uint32_t slot, std::uint32_t gen, millis now, millis expires_at,
                            std::function<void(error_code, bool)> cb) {
    conn_->command({"EVAL", touch_script, "2", prefix_ + "slotgen", prefix_ + "held",
                    std::to_string(slot), std::to_string(gen), std::to_string(now),
                    std::to_string(expires_at)},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       cb(ec, !ec && r.is_integer() && r.integer == 1);
                   });
}

void redis_room::release_slot(std::uint32_t slot, std::uint32_t gen,
                              std::function<void(error_code, bool)> cb) {
    conn_->command({"EVAL", release_slot_script, "3", prefix_ + "slotgen", prefix_ + "held",
                    prefix_ + "free", std::to_string(slot), std::to_string(gen)},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       cb(ec, !ec && r.is_integer() && r.integer == 1);
                   });
}

void redis_room::count_active(millis now, std::function<void(error_code, std::uint64_t)> cb) {
    conn_->command({"ZCOUNT", prefix_ + "held", "(" + std::to_string(now), "+inf"},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       if (!ec && !r.is_integer()) ec = make_error_code(redis_errc::protocol);
                       cb(ec, ec ? 0 : static_cast<std::uint64_t>(r.integer));
                   });
}

void redis_room::claim_identity(std::string_view identity, std::string_view value, millis ttl,
                                std::function<void(error_code, std::optional<std::string>)> cb) {
    conn_->command({"SET", prefix_ + "id:" + std::string(identity), std::string(value), "NX", "GET",
                    "PX", std::to_string(ttl)},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       if (ec) return cb(ec, std::nullopt);
                       if (r.is_nil()) return cb({}, std::nullopt);
                       cb({}, std::move(r.str));
                   });
}

void redis_room::release_identity(std::string_view identity, std::string_view value,
                                  std::function<void(error_code, bool)> cb) {
    conn_->command({"EVAL", compare_delete_script, "1", prefix_ + "id:" + std::string(identity),
                    std::string(value)},
                   [cb = std::move(cb)](error_code ec, redis_reply r) {
                       ec = reply_error(ec, r);
                       cb(ec, !ec && r.is_integer() && r.integer == 1);
                   });
}

void redis_room::write_config(config_fields fields, std::function<void(error_code, std::uint64_t)> cb) {
    std::vector<std::string> args{"EVAL", config_script, "2", prefix_ + "config", prefix_ + "events"};
    for (auto& [k, v] : fields) {
        if (k == "version") {
            net::post(conn_->strand(), [cb = std::move(cb)] {
                cb(make_error_code(redis_errc::protocol), 0);
            });
            return;
        }
        args.push_back(std::move(k));
        args.push_back(std::move(v));
    }
    conn_->command(std::move(args), [cb = std::move(cb)](error_code ec, redis_reply r) {
        ec = reply_error(ec, r);
        if (!ec && !r.is_integer()) ec = make_error_code(redis_errc::protocol);
        cb(ec, ec ? 0 : static_cast<std::uint64_t>(r.integer));
    });
}

void redis_room::read_config(std::function<void(error_code, std::uint64_t, config_fields)> cb) {
    conn_->command({"HGETALL", prefix_ + "config"}, [cb = std::move(cb)](error_code ec, redis_reply r) {
        ec = reply_error(ec, r);
        if (!ec && (r.type != redis_reply::kind::array || r.elements.size() % 2 != 0)) {
            ec = make_error_code(redis_errc::protocol);
        }
        if (ec) return cb(ec, 0, {});
        std::uint64_t version = 0;
        config_fields fields;
        for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
            if (r.elements[i].str == "version") {
                parse_int(r.elements[i + 1].str, version);
            } else {
                fields.emplace_back(std::move(r.elements[i].str), std::move(r.elements[i + 1].str));
            }
        }
        cb({}, version, std::move(fields));
    });
}

void redis_room::on_config_change(std::function<void(std::uint64_t, const config_fields&)> h) {
    on_config_ = std::move(h);
}

void redis_room::check_config() {
    // One HGET a second; the whole hash only when the version moved.
    conn_->command({"HGET", prefix_ + "config", "version"},
                   [self = shared_from_this()](error_code ec, redis_reply r) {
                       std::uint64_t v = 0;
                       if (ec || !r.is_string() || !parse_int(r.str, v) || v == self->config_version_) {
                           return;
                       }
                       self->read_config([self](error_code ec2, std::uint64_t version,
                                                config_fields fields) {
                           if (ec2 || version <= self->config_version_) return;
                           self->config_version_ = version;
                           self->on_config_(version, fields);
                       });
                   });
}

}  // namespace floodgate::tokenstore::redis
