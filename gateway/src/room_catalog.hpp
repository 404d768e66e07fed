// Rooms created and deleted at run time through the admin API, shared by every node of a
// Redis store (docs/redis.md, "Rooms created at run time").
//
//   auto catalog = room_catalog::create(conn, {.local = ..., .add = ..., .remove = ...});
//   catalog->start();
//   catalog->created("flash-sale", definition);  // after the admin API made it on this node
//   catalog->deleted("flash-sale");
//
// Redis holds the list: `fg:{rooms}` (hash: room -> its JSON definition, as POSTed) and
// `fg:{rooms}:version` (incremented by every change). Every `interval` the catalog reads the
// version and, when it moved, the list; rooms the list has and this node lacks are added, runtime
// rooms this node has and the list lacks are deleted. A change made on this node is kept as
// pending and sent again until Redis has taken it, so a room created while Redis is away reaches
// the other nodes once it is back, and no reading of the list undoes it meanwhile. A Redis without
// the version key (new, or it lost its data) is given this node's runtime rooms.
//
// Rooms from the config file are never touched: the list only holds rooms made at run time.
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

class room_catalog : public std::enable_shared_from_this<room_catalog> {
public:
    struct hooks {
        // The runtime rooms this node serves: name -> definition.
        std::function<std::map<std::string, std::string>()> local;
        // Another node created a room / deleted one. The hooks log what they do.
        std::function<void(const std::string& room, const std::string& definition)> add;
        std::function<void(const std::string& room)> remove;
    };

    static std::shared_ptr<room_catalog> create(std::shared_ptr<tokenstore::redis::redis_connection> conn,
                                                hooks h,
                                                std::chrono::milliseconds interval = std::chrono::milliseconds(250));

    void start();
    void stop();

    // This node created or deleted a runtime room (main thread).
    void created(const std::string& room, const std::string& definition);
    void deleted(const std::string& room);

    // How many changes made here Redis has not taken yet (for tests and the logs).
    std::size_t pending() const noexcept { return pending_.size(); }

private:
    room_catalog(std::shared_ptr<tokenstore::redis::redis_connection> conn, hooks h,
                 std::chrono::milliseconds interval);
    void tick();
    void send_pending();
    void read_list();
    void reconcile(const tokenstore::redis::redis_reply& list);

    std::shared_ptr<tokenstore::redis::redis_connection> conn_;
    hooks hooks_;
    std::chrono::milliseconds interval_;
    net::steady_timer timer_;
    struct change {
        std::uint64_t no = 0;
        std::optional<std::string> definition;  // nullopt: deleted
    };
    std::map<std::string, change> pending_;  // changes made here and not yet in Redis
    std::map<std::string, std::uint64_t> sending_;  // room -> the pending change's number in flight
    std::uint64_t change_no_ = 0;
    std::optional<std::string> version_;  // of the list last applied
    bool reading_ = false;
    bool stopped_ = false;
};

}  // namespace floodgate
