// A small list of named entries that every node of a Redis store shares (docs/redis.md): the
// rooms created at run time ("rooms": room -> its JSON definition) and the token keys rotated
// through the admin API ("keys": kid -> "<unix ms> <secret>").
//
//   auto rooms = shared_catalog::create(conn, "rooms", {.local = ..., .add = ..., .remove = ...});
//   rooms->start();
//   rooms->set("flash-sale", definition);  // after the admin API made it on this node
//   rooms->erase("flash-sale");
//
// Redis holds the list: `fg:{<name>}` (hash: entry -> value) and `fg:{<name>}:version`
// (incremented by every change, in the same script). Every `interval` the catalog reads the
// version and, when it moved, the list; entries the list has and this node lacks go to `add`,
// entries this node has and the list lacks go to `remove`. A change made on this node is kept as
// pending and sent again until Redis has taken it, so a change made while Redis is away reaches
// the other nodes once it is back, and no reading of the list undoes it meanwhile. A Redis
// without the version key (new, or it lost its data) is given this node's entries.
//
// The one thing not to get wrong: everything runs on the connection's strand, which is the main
// thread (the admin API's thread): the hooks change the runtime state and the generation there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gateway/net.hpp"

namespace floodgate::tokenstore::redis {
class redis_connection;
struct redis_reply;
}  // namespace floodgate::tokenstore::redis

namespace floodgate {

class shared_catalog : public std::enable_shared_from_this<shared_catalog> {
public:
    using entries = std::map<std::string, std::string>;
    struct hooks {
        std::function<entries()> local;  // what this node has: entry -> value
        // Another node added an entry / removed one. The hooks log what they do.
        std::function<void(const std::string& entry, const std::string& value)> add;
        std::function<void(const std::string& entry)> remove;
        // Redis took a change made here (set: added, else removed). Optional.
        std::function<void(const std::string& entry, bool set)> announced{};
    };

    static std::shared_ptr<shared_catalog> create(std::shared_ptr<tokenstore::redis::redis_connection> conn,
                                                  const std::string& name, hooks h,
                                                  std::chrono::milliseconds interval = std::chrono::milliseconds(250));

    void start();
    void stop();

    // This node added or removed an entry (main thread).
    void set(const std::string& entry, const std::string& value);
    void erase(const std::string& entry);

    // How many changes made here Redis has not taken yet.
    std::size_t pending() const noexcept { return pending_.size(); }

private:
    shared_catalog(std::shared_ptr<tokenstore::redis::redis_connection> conn, const std::string& name, hooks h,
                   std::chrono::milliseconds interval);
    void tick();
    void send_pending();
    void read_list();
    void reconcile(const tokenstore::redis::redis_reply& list);

    std::shared_ptr<tokenstore::redis::redis_connection> conn_;
    const std::string list_key_, version_key_;
    hooks hooks_;
    std::chrono::milliseconds interval_;
    net::steady_timer timer_;
    struct change {
        std::uint64_t no = 0;
        std::optional<std::string> value;  // nullopt: removed
    };
    std::map<std::string, change> pending_;  // changes made here and not yet in Redis
    std::map<std::string, std::uint64_t> sending_;  // entry -> the pending change's number in flight
    std::uint64_t change_no_ = 0;
    std::optional<std::string> version_;  // of the list last applied
    bool reading_ = false;
    bool stopped_ = false;
};

}  // namespace floodgate
