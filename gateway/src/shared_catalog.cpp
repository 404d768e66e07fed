#include "shared_catalog.hpp"

#include <spdlog/spdlog.h>

#include <set>
#include <utility>
#include <vector>

#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate {

namespace redis = tokenstore::redis;

namespace {

// KEYS: list, version. ARGV: "set" or "del", entry, value. Returns the new version.
constexpr const char* change_script = R"lua(
if ARGV[1] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
return redis.call('INCR', KEYS[2])
)lua";

// KEYS: list, version. ARGV: the version this node has applied ("" for none).
// Returns {} without a version, {version} when unchanged, else {version, {entry, value, ...}}.
constexpr const char* read_script = R"lua(
local v = redis.call('GET', KEYS[2])
if not v then return {} end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGETALL', KEYS[1])}
)lua";

}  // namespace

std::shared_ptr<shared_catalog> shared_catalog::create(std::shared_ptr<redis::redis_connection> conn,
                                                       const std::string& name, hooks h,
                                                       std::chrono::milliseconds interval) {
    return std::shared_ptr<shared_catalog>(new shared_catalog(std::move(conn), name, std::move(h), interval));
}

shared_catalog::shared_catalog(std::shared_ptr<redis::redis_connection> conn, const std::string& name, hooks h,
                               std::chrono::milliseconds interval)
    : conn_(std::move(conn)),
      list_key_("fg:{" + name + "}"),
      version_key_(list_key_ + ":version"),
      hooks_(std::move(h)),
      interval_(interval),
      timer_(conn_->strand()) {}

void shared_catalog::start() {
    net::dispatch(conn_->strand(), [self = shared_from_this()] { self->tick(); });
}

void shared_catalog::stop() {
    net::dispatch(conn_->strand(), [self = shared_from_this()] {
        self->stopped_ = true;
        self->timer_.cancel();
    });
}

void shared_catalog::set(const std::string& entry, const std::string& value) {
    pending_[entry] = {++change_no_, value};
    send_pending();
}

void shared_catalog::erase(const std::string& entry) {
    pending_[entry] = {++change_no_, std::nullopt};
    send_pending();
}

void shared_catalog::tick() {
    if (stopped_) return;
    if (conn_->current_state() == redis::redis_connection::state::connected) {
        send_pending();
        read_list();
    }
    timer_.expires_after(interval_);
    timer_.async_wait([self = weak_from_this()](error_code ec) {
        if (auto me = self.lock(); me && !ec) me->tick();
    });
}

void shared_catalog::send_pending() {
    for (const auto& [entry, change] : pending_) {
        if (auto it = sending_.find(entry); it != sending_.end() && it->second == change.no) continue;
        sending_[entry] = change.no;
        const bool set = change.value.has_value();
        conn_->command({"EVAL", change_script, "2", list_key_, version_key_, set ? "set" : "del", entry,
                        set ? *change.value : std::string()},
                       [self = weak_from_this(), entry, no = change.no, set](error_code ec, redis::redis_reply r) {
                           auto me = self.lock();
                           if (!me) return;
                           if (auto it = me->sending_.find(entry); it != me->sending_.end() && it->second == no)
                               me->sending_.erase(it);
                           if (ec || r.is_error()) return;  // stays pending: sent again at the next tick
                           auto it = me->pending_.find(entry);
                           if (it == me->pending_.end() || it->second.no != no) return;  // changed again since
                           me->pending_.erase(it);
                           if (me->hooks_.announced) me->hooks_.announced(entry, set);
                       });
    }
}

void shared_catalog::read_list() {
    if (reading_) return;
    reading_ = true;
    conn_->command({"EVAL", read_script, "2", list_key_, version_key_, version_.value_or("")},
                   [self = weak_from_this()](error_code ec, redis::redis_reply r) {
                       auto me = self.lock();
                       if (!me) return;
                       me->reading_ = false;
                       if (ec || r.is_error() || r.type != redis::redis_reply::kind::array || me->stopped_) return;
                       if (r.elements.empty()) {
                           // Redis has never had a list, or lost it: it gets this node's entries.
                           me->version_.reset();
                           for (auto& [entry, value] : me->hooks_.local())
                               if (!me->pending_.count(entry)) me->pending_[entry] = {++me->change_no_, value};
                           me->send_pending();
                           return;
                       }
                       if (r.elements.size() < 2) return;  // unchanged
                       me->reconcile(r.elements[1]);
                       me->version_ = r.elements[0].str;
                   });
}

void shared_catalog::reconcile(const redis::redis_reply& list) {
    entries shared;
    for (std::size_t i = 0; i + 1 < list.elements.size(); i += 2)
        shared.emplace(list.elements[i].str, list.elements[i + 1].str);
    const entries local = hooks_.local();
    for (const auto& [entry, value] : shared)
        if (!local.count(entry) && !pending_.count(entry)) hooks_.add(entry, value);
    for (const auto& [entry, value] : local)
        if (!shared.count(entry) && !pending_.count(entry)) hooks_.remove(entry);
}

}  // namespace floodgate
