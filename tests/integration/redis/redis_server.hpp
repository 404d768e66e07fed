// A real redis-server for the Redis store's tests: on 127.0.0.1 and a free ephemeral port, in its
// own temporary directory, without persistence unless asked for (AOF). Killed by PID when the object goes away (also
// when a test fails), and stop()/start() let a test cut Redis off and bring it back on the same
// port.
//
//   redis_server redis;                      // started and answering PING
//   auto conn = redis_connection::create(ex, {.port = redis.port()});
//   redis.stop(); ... redis.start();
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace floodgate::test {

class redis_server {
public:
    // none: nothing survives stop(). aof: every write is in the append-only file (fsync always)
    // before Redis answers, so stop() + start() loses nothing, as with a production setup.
    enum class persistence { none, aof };

    explicit redis_server(persistence p = persistence::none);
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    void stop();   // SIGKILL and reap: what a crashed or unreachable Redis looks like
    void start();  // again on the same port; returns once it accepts connections

private:
    std::uint16_t port_ = 0;
    std::string dir_;
    persistence persistence_ = persistence::none;
    pid_t pid_ = -1;
};

}  // namespace floodgate::test
