// One pipelined connection to Redis, driven by Asio, for the Redis-backed store (docs/redis.md).
//
//   auto conn = redis_connection::create(ioc.get_executor(), {.host = "127.0.0.1", .port = 6379});
//   conn->start();
//   conn->command({"INCRBY", "fg:{vaccine}:seq", "1000"}, [](error_code ec, redis_reply r) {
//       if (!ec && r.is_integer()) use(r.integer);
//   });
//
// Commands are formatted with hiredis's redisFormatCommandArgv and written in batches: whatever
// is queued while a write is in flight goes out in the next write, so many commands are in flight
// at once. Replies are parsed with hiredis's redisReader and matched to commands in order. The
// socket, timers and buffers stay under Asio (a strand), so nothing blocks an I/O thread.
//
// Failure: a command not answered within command_timeout closes the connection (a lost reply
// would shift every later reply onto the wrong command), every command in flight fails with
// `timed_out`, and the connection reconnects with exponential backoff. While not connected,
// command() fails at once with `not_connected`: callers decide (docs/redis.md "Failure
// behaviour"); nothing queues without bound.
//
// The one thing not to get wrong: handlers run on the connection's strand, never inline in
// command(); do not block in them. A Redis error reply (-ERR ...) is not an error_code: it arrives
// with ec == {} and reply.is_error().
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/net.hpp"
#include "tokenstore/mutex.hpp"

struct redisReader;

namespace floodgate::tokenstore::redis {

// A reply, copied out of hiredis's redisReply.
struct redis_reply {
    enum class kind : std::uint8_t { nil, string, status, error, integer, array };
    kind type = kind::nil;
    std::string str{};  // string, status, error
    std::int64_t integer = 0;
    std::vector<redis_reply> elements{};

    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_error() const noexcept { return type == kind::error; }
    bool is_integer() const noexcept { return type == kind::integer; }
    bool is_string() const noexcept { return type == kind::string; }
};

enum class redis_errc {
    not_connected = 1,  // command() while the connection is not up
    timed_out,          // no reply within command_timeout
    connection_lost,    // the connection closed with this command in flight
    protocol,           // the reply stream could not be parsed
    stopped,            // stop() was called
    overloaded,         // max_in_flight commands are already waiting for replies
};
const boost::system::error_category& redis_category() noexcept;
inline error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    struct options {
        std::string host = "127.0.0.1";
        std::uint16_t port = 6379;
        std::string password{};  // AUTH on connect when set
        int db = 0;              // SELECT on connect when not 0
        std::chrono::milliseconds connect_timeout{1000};
        std::chrono::milliseconds command_timeout{1000};
        std::chrono::milliseconds backoff_min{100};  // first retry; doubles up to backoff_max
        std::chrono::milliseconds backoff_max{5000};
        std::size_t max_in_flight = 100'000;  // beyond it, command() fails with overloaded
    };

    enum class state : std::uint8_t {
        connecting,    // the first attempt, before any success or failure
        connected,
        reconnecting,  // lost or never reached; retrying with backoff
        down,          // stopped
    };

    struct status_report {
        state st = state::connecting;
        std::string last_error{};  // empty until something failed
        std::uint64_t connects = 0;  // successful connects so far
        std::uint64_t failures = 0;  // lost connections and failed attempts
        std::uint64_t timeouts = 0;  // commands that timed out
    };

    using handler = std::function<void(error_code, redis_reply)>;

    static std::shared_ptr<redis_connection> create(net::any_io_executor ex, options opts);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Both are safe from any thread. stop() fails everything in flight with `stopped`.
    void start();
    void stop();

    // Safe from any thread. The handler runs on the connection's strand, exactly once.
    void command(std::vector<std::string> args, handler h);

    // Safe from any thread.
    status_report status() const;
    state current_state() const noexcept { return state_.load(std::memory_order_acquire); }
    const net::strand<net::any_io_executor>& strand() const noexcept { return strand_; }

private:
    struct pending {
        handler h;
        std::chrono::steady_clock::time_point sent;
    };

    redis_connection(net::any_io_executor ex, options opts);
    void do_connect();
    void on_connect(error_code ec);
    void do_write();
    void on_write(error_code ec, std::size_t n);
    void do_read();
    void on_read(error_code ec, std::size_t n);
    void do_watchdog();
    void fail(error_code ec, std::string_view what);  // closes, fails in-flight, schedules retry
    void fail_all(error_code ec);
    void set_state(state s, std::string_view error);
    void enqueue(const std::vector<std::string>& args, handler h);

    const options opts_;
    net::strand<net::any_io_executor> strand_;
    tcp::socket socket_;
    tcp::resolver resolver_;
    net::steady_timer retry_timer_;
    net::steady_timer watchdog_;
    net::steady_timer connect_timer_;
    redisReader* reader_ = nullptr;
    std::string out_;          // formatted commands waiting for the next write
    std::string writing_;      // the write in flight
    std::vector<char> in_;     // read buffer
    std::deque<pending> in_flight_;
    bool connected_ = false;   // strand only
    bool stopped_ = false;     // strand only
    std::uint64_t attempt_ = 0;  // strand only; connection generation, guards stale completions
    std::chrono::milliseconds backoff_;

    std::atomic<state> state_{state::connecting};
    mutable mutex mu_;
    status_report report_ ABSL_GUARDED_BY(mu_);
};

}  // namespace floodgate::tokenstore::redis

template <>
struct boost::system::is_error_code_enum<floodgate::tokenstore::redis::redis_errc> : std::true_type {};
