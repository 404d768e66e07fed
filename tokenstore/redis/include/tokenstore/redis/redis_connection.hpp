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
// Sentinel: with `sentinels` and `master_name` set, host and port are not used. Every connect
// asks the sentinels in turn (each bounded by connect_timeout and command_timeout) for the
// primary's address (SENTINEL get-master-addr-by-name), connects there, AUTH and SELECT as usual,
// and accepts commands only once ROLE says "master"; anything else is a failed attempt (backoff,
// ask again). While connected, the sentinel that named the primary is asked again every
// sentinel_check (on a connection of its own); when it names another node, or a -READONLY reply
// arrives (the primary was demoted under us; the reply still reaches its handler), the
// connection drops and rediscovers. status().primary names the node in use.
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
    not_primary,        // Sentinel mode: the node is not (or no longer) the primary
    no_primary,         // Sentinel mode: a sentinel did not name a primary
};
const boost::system::error_category& redis_category() noexcept;
inline error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    struct address {
        std::string host;
        std::uint16_t port = 0;
    };

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
        // Sentinel discovery when not empty (host and port are then unused).
        std::vector<address> sentinels{};
        std::string master_name{};
        std::string sentinel_password{};  // AUTH to the sentinels when set
        // How often a connected node asks the sentinel that named the primary whether it still
        // does; a different answer (a failover) makes the connection rediscover at once.
        std::chrono::milliseconds sentinel_check{1000};
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
        std::string primary{};       // host:port of the node in use (or last used); empty before
        std::uint64_t primary_changes = 0;  // connects to a node other than the one before
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
    // One connect goes through up to two phases: asking a sentinel for the primary's address,
    // then the handshake with the data node (AUTH, SELECT, ROLE in Sentinel mode).
    enum class phase : std::uint8_t { asking_sentinel, handshake };

    void do_connect();
    void do_connect_to(const address& where, phase p);
    void on_connect(error_code ec);
    void on_primary_address(const redis_reply& r);
    void on_role(const redis_reply& r);
    void set_ready();
    void close_socket();
    void do_check_primary();
    void on_check_primary(std::uint64_t gen, error_code ec, const redis_reply& r);
    void do_write();
    void on_write(error_code ec, std::size_t n);
    void do_read();
    void on_read(error_code ec, std::size_t n);
    void do_watchdog();
    void fail(error_code ec, std::string_view what);  // closes, fails in-flight, schedules retry
    void fail_all(error_code ec);
    void set_state(state s, std::string_view error);
    void enqueue(const std::vector<std::string>& args, handler h);
    bool sentinel_mode() const noexcept { return !opts_.sentinels.empty(); }

    const options opts_;
    net::strand<net::any_io_executor> strand_;
    tcp::socket socket_;
    tcp::resolver resolver_;
    net::steady_timer retry_timer_;
    net::steady_timer watchdog_;
    net::steady_timer connect_timer_;
    net::steady_timer check_timer_;  // Sentinel mode: the next check of the primary
    redisReader* reader_ = nullptr;
    std::string out_;          // formatted commands waiting for the next write
    std::string writing_;      // the write in flight
    std::vector<char> in_;     // read buffer
    std::deque<pending> in_flight_;
    bool connected_ = false;          // strand only; the socket is up (the handshake may still run)
    bool ready_ = false;              // strand only; command() is accepted
    phase phase_ = phase::handshake;  // strand only
    address target_;                  // strand only; where the current attempt connects
    std::size_t sentinel_ = 0;        // strand only; the sentinel to ask next
    std::size_t asked_ = 0;           // strand only; sentinels that failed in this round
    // Sentinel mode: a plain connection to opts_.sentinels[checked_], for the checks.
    std::shared_ptr<redis_connection> check_;  // strand only
    std::size_t checked_ = 0;                  // strand only
    bool stopped_ = false;     // strand only
    std::uint64_t attempt_ = 0;  // strand only; connection generation, guards stale completions
    std::chrono::milliseconds backoff_;

    std::atomic<state> state_{state::connecting};
    mutable mutex mu_;
    status_report report_ ABSL_GUARDED_BY(mu_);
};

// "host:port", "[v6]:port": for logs and status().primary.
std::string to_string(const redis_connection::address& a);

}  // namespace floodgate::tokenstore::redis

template <>
struct boost::system::is_error_code_enum<floodgate::tokenstore::redis::redis_errc> : std::true_type {};
