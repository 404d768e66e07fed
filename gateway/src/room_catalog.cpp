#include "room_catalog.hpp"

#include <spdlog/spdlog.h>

#include <set>
#include <utility>
#include <vector>

#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate {

namespace redis = tokenstore::redis;

namespace {

const std::string list_key = "fg:{rooms}";
const std::string version_key = "fg:{rooms}:version";

// KEYS: list, version. ARGV: "set" or "del", room, definition. Returns the new version.
constexpr const char* change_script = R"lua(
if ARGV[1] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
return redis.call('INCR', KEYS[2])
)lua";

// KEYS: list, version. ARGV: the version this node has applied ("" for none).
// Returns {} without a version, {version} when unchanged, else {version, {room, definition, ...}}.
constexpr const char* read_script = R"lua(
local v = redis.call('GET', KEYS[2])
if not v then return {} end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGETALL', KEYS[1])}
)lua";

}  // namespace

std::shared_ptr<room_catalog> room_catalog::create(std::shared_ptr<redis::redis_connection> conn, hooks h,
                                                   std::chrono::milliseconds interval) {
    return std::shared_ptr<room_catalog>(new room_catalog(std::move(conn), std::move(h), interval));
}

room_catalog::room_catalog(std::shared_ptr<redis::redis_connection> conn, hooks h, std::chrono::milliseconds interval)
    : conn_(std::move(conn)), hooks_(std::move(h)), interval_(interval), timer_(conn_->strand()) {}

void room_catalog::start() {
    net::dispatch(conn_->strand(), [self = shared_from_this()] { self->tick(); });
}

void room_catalog::stop() {
    net::dispatch(conn_->strand(), [self = shared_from_this()] {
        self->stopped_ = true;
        self->timer_.cancel();
    });
}

void room_catalog::created(const std::string& room, const std::string& definition) {
    pending_[room] = {++change_no_, definition};
    send_pending();
}

void room_catalog::deleted(const std::string& room) {
    pending_[room] = {++change_no_, std::nullopt};
    send_pending();
}

void room_catalog::tick() {
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

void room_catalog::send_pending() {
    for (const auto& [room, change] : pending_) {
        if (auto it = sending_.find(room); it != sending_.end() && it->second == change.no) continue;
        sending_[room] = change.no;
        const bool set = change.definition.has_value();
        conn_->command({"EVAL", change_script, "2", list_key, version_key, set ? "set" : "del", room,
                        set ? *change.definition : std::string()},
                       [self = weak_from_this(), room, no = change.no, set](error_code ec, redis::redis_reply r) {
                           auto me = self.lock();
                           if (!me) return;
                           if (auto it = me->sending_.find(room); it != me->sending_.end() && it->second == no)
                               me->sending_.erase(it);
                           if (ec || r.is_error()) return;  // stays pending: sent again at the next tick
                           auto it = me->pending_.find(room);
                           if (it == me->pending_.end() || it->second.no != no) return;  // changed again since
                           me->pending_.erase(it);
                           spdlog::info("room {}: {} every node", room,
                                        set ? "created at run time, announced to" : "deleted, announced to");
                           if (!set)  // a room of the same name made later starts without these settings
                               me->conn_->command({"DEL", "fg:{" + room + "}:config"},
                                                  [](error_code, redis::redis_reply) {});
                       });
    }
}

void room_catalog::read_list() {
    if (reading_) return;
    reading_ = true;
    conn_->command({"EVAL", read_script, "2", list_key, version_key, version_.value_or("")},
                   [self = weak_from_this()](error_code ec, redis::redis_reply r) {
                       auto me = self.lock();
                       if (!me) return;
                       me->reading_ = false;
                       if (ec || r.is_error() || r.type != redis::redis_reply::kind::array || me->stopped_) return;
                       if (r.elements.empty()) {
                           // Redis has never had a list, or lost it: it gets this node's rooms.
                           me->version_.reset();
                           for (auto& [room, definition] : me->hooks_.local())
                               if (!me->pending_.count(room)) me->pending_[room] = {++me->change_no_, definition};
                           me->send_pending();
                           return;
                       }
                       if (r.elements.size() < 2) return;  // unchanged
                       me->reconcile(r.elements[1]);
                       me->version_ = r.elements[0].str;
                   });
}

void room_catalog::reconcile(const redis::redis_reply& list) {
    std::map<std::string, std::string> shared;
    for (std::size_t i = 0; i + 1 < list.elements.size(); i += 2)
        shared.emplace(list.elements[i].str, list.elements[i + 1].str);
    const auto local = hooks_.local();
    for (const auto& [room, definition] : shared)
        if (!local.count(room) && !pending_.count(room)) hooks_.add(room, definition);
    for (const auto& [room, definition] : local)
        if (!shared.count(room) && !pending_.count(room)) hooks_.remove(room);
}

}  // namespace floodgate
