// A TCP connection with or without TLS on top, behind one type, so that the
// session and the proxy are written once for both. The choice is made per
// connection at run time and costs one predictable branch per operation.
//
// Timeouts are set on the TCP layer (tcp().expires_after()), which also bounds
// TLS reads and writes. A stream is not movable once TLS is on: keep it where
// it was made (a coroutine frame or a unique_ptr).
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "gateway/net.hpp"

namespace floodgate {

class stream {
public:
    using executor_type = beast::tcp_stream::executor_type;
    using socket_type = boost::asio::ip::tcp::socket;

    explicit stream(socket_type socket) : plain_(std::in_place, std::move(socket)) {}
    stream(socket_type socket, ssl::context& ctx) : tls_(std::in_place, std::move(socket), ctx) {}

    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    bool is_tls() const { return tls_.has_value(); }
    beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
    socket_type& socket() { return tcp().socket(); }
    ssl::stream<beast::tcp_stream>& tls() { return *tls_; }
    executor_type get_executor() { return tcp().get_executor(); }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
        return plain_->async_read_some(buffers, std::forward<Token>(token));
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
        return plain_->async_write_some(buffers, std::forward<Token>(token));
    }

    // Closes the socket at once; pending operations complete with an error.
    void close() {
        error_code ec;
        tcp().socket().close(ec);
    }

    // Half-closes the sending side so the peer sees end of stream.
    void shutdown_send() {
        error_code ec;
        tcp().socket().shutdown(socket_type::shutdown_send, ec);
    }

private:
    std::optional<beast::tcp_stream> plain_;
    std::optional<ssl::stream<beast::tcp_stream>> tls_;
};

// Completion token for coroutines: results come back as a tuple, with the
// error code first, instead of as exceptions (no exceptions on the data path).
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

}  // namespace floodgate
