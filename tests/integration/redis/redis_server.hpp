// A real redis-server for the Redis store's tests: on 127.0.0.1 and a free ephemeral port, in its
// own temporary directory, without persistence unless asked for (AOF). Killed by PID when the object goes away (also
// when a test fails), and stop()/start() let a test cut Redis off and bring it back on the same
// port. It can also be a replica of another one, or a sentinel monitoring one under the name
// "mymaster" (quorum 1, down-after-milliseconds 1000, failover-timeout 3000).
//
//   redis_server redis;                      // started and answering PING
//   auto conn = redis_connection::create(ex, {.port = redis.port()});
//   redis.stop(); ... redis.start();
//
//   redis_server primary;
//   redis_server replica(redis_server::replica_of{primary.port()});
//   redis_server sentinel(redis_server::sentinel_for{primary.port()});
//   sentinel.query({"SENTINEL", "FAILOVER", "mymaster"});  // "+OK\r\n"
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace floodgate::test {

class redis_server {
public:
    // none: nothing survives stop(). aof: every write is in the append-only file (fsync always)
    // before Redis answers, so stop() + start() loses nothing, as with a production setup.
    enum class persistence { none, aof };
    struct replica_of {
        std::uint16_t primary_port;
    };
    struct sentinel_for {
        std::uint16_t primary_port;
    };
    static constexpr const char* master_name = "mymaster";

    explicit redis_server(persistence p = persistence::none);
    explicit redis_server(replica_of r);
    explicit redis_server(sentinel_for s);
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    void stop();   // SIGKILL and reap: what a crashed or unreachable Redis looks like
    void start();  // again on the same port; returns once it accepts connections

    // One command on a fresh connection; the reply as RESP text ("+OK\r\n", ":1\r\n", ...),
    // empty when no reply came within 2 s.
    std::string query(const std::vector<std::string>& args) const;
    // query(args) every 100 ms until the reply contains `text`; false at the timeout.
    bool wait_for(const std::vector<std::string>& args, const std::string& text,
                  std::chrono::milliseconds timeout) const;

private:
    void start_on_a_free_port();
    std::vector<std::string> arguments() const;

    std::uint16_t port_ = 0;
    std::string dir_;
    persistence persistence_ = persistence::none;
    std::uint16_t primary_port_ = 0;  // a replica's or a sentinel's primary
    bool sentinel_ = false;
    pid_t pid_ = -1;
};

}  // namespace floodgate::test
