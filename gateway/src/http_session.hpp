// One client connection: reads requests (HTTP/1.1 keep-alive, TLS or not),
// checks them, and relays each to an upstream and the response back, with the
// bodies streamed through a fixed buffer in both directions.
//
// The session is a coroutine that owns everything it uses; it lives exactly
// as long as the connection. The one thing not to get wrong: nothing is sent
// to an upstream before the request head has passed every check, and an
// upstream connection that saw any framing or I/O error is never reused.
#pragma once

#include <memory>
#include <string>

#include "gateway/path.hpp"
#include "stream.hpp"
#include "tokenstore/token.hpp"
#include "worker.hpp"

namespace floodgate {

struct local_response;

class http_session {
public:
    http_session(worker& w, listener_state& l, tcp::socket socket);
    http_session(const http_session&) = delete;
    http_session& operator=(const http_session&) = delete;
    ~http_session();

    net::awaitable<void> run();

    // Shutdown: an idle connection is closed now, a busy one after its response.
    void close_if_idle();
    void close_now() { s_.close(); }

private:
    struct exchange;

    net::awaitable<void> serve();
    net::awaitable<bool> proxy(exchange& x);
    net::awaitable<void> tunnel(upstream_connection& up);
    // An answer of the gateway's own under way (start_local()).
    struct local_progress {
        bool keep = false;       // the connection stays open after it
        bool coalesced = false;  // the body is in head_ too (a short one)
        std::size_t sent = 0;    // bytes of head_ sent
        error_code ec;
    };
    local_progress start_local(exchange& x, const local_response& res);
    bool respond_local_now(exchange& x, const local_response& res);
    net::awaitable<bool> respond_local(exchange& x, local_response res);
    net::awaitable<bool> respond_error(exchange* x, http::status status, std::string_view detail);
    net::awaitable<void> refuse(exchange& x, http::status status, std::string_view detail);
    net::awaitable<void> linger_close();
    void log(const exchange& x);

    worker& w_;
    listener_state& l_;
    stream s_;
    beast::flat_buffer buffer_;
    std::string remote_ip_;
    std::unique_ptr<char[]> relay_;
    std::shared_ptr<const generation> gen_;  // the settings the current request uses
    std::string head_;  // a serialized message head, reused between requests
    path::result norm_;  // the current request's normalised target (storage reused)
    tokenstore::token_memo tokens_;  // the last token that passed its MAC check here
    std::size_t requests_ = 0;
    std::size_t pipeline_depth_ = 0;
    bool idle_ = false;
};

}  // namespace floodgate
