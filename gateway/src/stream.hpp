// A TCP connection with or without TLS on top, behind one type, so that the
// session and the proxy are written once for both. The choice is made per
// connection at run time and costs one predictable branch per operation.
//
// Timeouts: expires_after() sets one deadline for the operations that follow;
// one still pending when it passes completes with beast::error::timeout (the
// socket is cancelled, not closed), and so does any operation started after
// it passed, until the next expires_after(). Setting a deadline only stores a
// time: one timer per connection wakes up when the earliest deadline it was
// armed for arrives and re-arms itself if the deadline moved later since, so
// a request costs no timer operations (beast::tcp_stream starts and cancels a
// timer for every read and write).
//
// A stream is not movable, and must outlive its pending operations: keep it
// where it was made (a coroutine frame or a unique_ptr).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "drain_read.hpp"
#include "gateway/net.hpp"

namespace floodgate {

// steady_clock as of the kernel's last tick (CLOCK_MONOTONIC_COARSE: the same
// clock, at most a few milliseconds behind), read from memory without asking
// the clock source, which a virtual machine makes slow. For deadlines and idle
// times of seconds, which a request sets several of.
inline std::chrono::steady_clock::time_point coarse_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    using std::chrono::steady_clock;
    return steady_clock::time_point(std::chrono::duration_cast<steady_clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

namespace stream_detail {

// Completes an operation's handler with beast::error::timeout instead of
// operation_aborted when the stream's deadline cancelled it.
template <class Handler>
struct timed_handler {
    Handler handler;
    const bool* timed_out;

    template <class... Args>
    void operator()(error_code ec, Args&&... args) {
        if (ec == net::error::operation_aborted && *timed_out) ec = beast::error::timeout;
        std::move(handler)(ec, std::forward<Args>(args)...);
    }
};

}  // namespace stream_detail

class stream {
public:
    using executor_type = net::any_io_executor;
    using socket_type = boost::asio::ip::tcp::socket;
    using clock = std::chrono::steady_clock;

    explicit stream(socket_type socket)
        : plain_(std::in_place, std::move(socket)), d_(std::make_shared<deadline>(plain_->get_executor(), *plain_)) {}
    stream(socket_type socket, ssl::context& ctx)
        : tls_(std::in_place, std::move(socket), ctx),
          d_(std::make_shared<deadline>(tls_->get_executor(), tls_->next_layer())) {}
    ~stream() {
        d_->socket = nullptr;
        d_->timer.cancel();
    }

    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    bool is_tls() const { return tls_.has_value(); }
    socket_type& socket() { return tls_ ? tls_->next_layer() : *plain_; }
    ssl::stream<socket_type>& tls() { return *tls_; }
    executor_type get_executor() { return socket().get_executor(); }

    template <class Rep, class Period>
    void expires_after(std::chrono::duration<Rep, Period> d) {
        d_->set(coarse_now() + std::chrono::duration_cast<clock::duration>(d), d_);
    }
    void expires_never() { d_->set(clock::time_point::max(), d_); }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return start<void(error_code, std::size_t)>(std::forward<Token>(token), [this, buffers](auto h) {
            if (tls_) tls_->async_read_some(buffers, std::move(h));
            else plain_->async_read_some(plain_buffers(buffers), std::move(h));
        });
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return start<void(error_code, std::size_t)>(std::forward<Token>(token), [this, buffers](auto h) {
            if (tls_) tls_->async_write_some(buffers, std::move(h));
            else plain_->async_write_some(buffers, std::move(h));
        });
    }

    // Sends what a plain TCP socket takes at once, without waiting: usually all
    // of a small message, which then costs no asynchronous operation (no
    // reactor registration, no trip through the scheduler). Returns 0 under
    // TLS or when the socket's buffer is full; ec is set only for a failure.
    std::size_t try_send(net::const_buffer b, error_code& ec) {
        ec = {};
        if (tls_) return 0;
        const ssize_t n =
            stream_detail::send_nocancel(plain_->native_handle(), b.data(), b.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            ec = error_code(errno, net::error::get_system_category());
        return 0;
    }

    // Reads the TCP layer itself, under TLS too: for discarding what a peer still sends.
    template <class MutableBuffers, class Token>
    auto async_read_some_tcp(const MutableBuffers& buffers, Token&& token) {
        return start<void(error_code, std::size_t)>(std::forward<Token>(token), [this, buffers](auto h) {
            socket().async_read_some(plain_buffers(buffers), std::move(h));
        });
    }

    template <class Token>
    auto async_connect(const tcp::endpoint& ep, Token&& token) {
        return start<void(error_code)>(std::forward<Token>(token),
                                       [this, ep](auto h) { socket().async_connect(ep, std::move(h)); });
    }

    template <class Token>
    auto async_handshake(ssl::stream_base::handshake_type type, Token&& token) {
        return start<void(error_code)>(std::forward<Token>(token),
                                       [this, type](auto h) { tls_->async_handshake(type, std::move(h)); });
    }

    // Closes the socket at once; pending operations complete with an error.
    void close() {
        error_code ec;
        socket().close(ec);
    }

    // For a connected TCP socket: no Nagle delay, and reads told what is left
    // unread (drain_read.hpp), under TLS too (harmless there).
    void set_tcp_options() {
        error_code ignored;
        socket().set_option(tcp::no_delay(true), ignored);
        stream_detail::enable_unread_count(socket().native_handle());
    }

    // Half-closes the sending side so the peer sees end of stream.
    void shutdown_send() {
        error_code ec;
        socket().shutdown(socket_type::shutdown_send, ec);
    }

private:
    // A single buffer read from the plain socket tells the reactor when the
    // read emptied the socket, so the next read waits for epoll instead of
    // trying a recv() first (drain_read.hpp).
    template <class MutableBuffers>
    static auto plain_buffers(const MutableBuffers& buffers) {
        if constexpr (std::is_same_v<MutableBuffers, net::mutable_buffer>) return stream_detail::drain_buffer(buffers);
        else return buffers;
    }

    // Shared with the timer's pending wait, which may complete after the stream is gone.
    struct deadline {
        deadline(const executor_type& ex, socket_type& s) : timer(ex), socket(&s) {}

        void set(clock::time_point t, const std::shared_ptr<deadline>& self) {
            at = t;
            timed_out = false;
            if (t < armed_for) arm(self);
        }

        void arm(const std::shared_ptr<deadline>& self) {
            armed_for = at;
            timer.expires_at(at);
            timer.async_wait([self](error_code ec) {
                if (ec || !self->socket) return;  // cancelled (re-armed earlier) or the stream is gone
                self->armed_for = clock::time_point::max();
                if (self->at == clock::time_point::max()) return;
                if (clock::now() < self->at) {
                    self->arm(self);  // the deadline moved later since this wait began
                    return;
                }
                self->timed_out = true;
                error_code ignored;
                self->socket->cancel(ignored);
            });
        }

        net::steady_timer timer;
        socket_type* socket;
        clock::time_point at = clock::time_point::max();
        clock::time_point armed_for = clock::time_point::max();  // the pending wait's expiry
        bool timed_out = false;
    };

    template <class Signature, class Token, class Start>
    auto start(Token&& token, Start begin) {
        return net::async_initiate<Token, Signature>(
            [this, begin = std::move(begin)](auto handler) mutable {
                if (d_->timed_out) {
                    // The deadline has passed: fail at once, as beast::tcp_stream does.
                    const error_code ec = beast::error::timeout;
                    if constexpr (std::is_same_v<Signature, void(error_code, std::size_t)>)
                        net::post(get_executor(), beast::bind_front_handler(std::move(handler), ec, std::size_t{0}));
                    else
                        net::post(get_executor(), beast::bind_front_handler(std::move(handler), ec));
                    return;
                }
                begin(stream_detail::timed_handler<decltype(handler)>{std::move(handler), &d_->timed_out});
            },
            token);
    }

    std::optional<socket_type> plain_;
    std::optional<ssl::stream<socket_type>> tls_;
    std::shared_ptr<deadline> d_;
};

// Completion token for coroutines: results come back as a tuple, with the
// error code first, instead of as exceptions (no exceptions on the data path).
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

}  // namespace floodgate

// A timed_handler runs where, and allocates and is cancelled as, the handler it wraps.
template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, floodgate::stream_detail::timed_handler<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type get(
        const floodgate::stream_detail::timed_handler<Handler>& h) noexcept {
        return Associator<Handler, DefaultCandidate>::get(h.handler);
    }
    static auto get(const floodgate::stream_detail::timed_handler<Handler>& h, const DefaultCandidate& c) noexcept
        -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
        return Associator<Handler, DefaultCandidate>::get(h.handler, c);
    }
};
