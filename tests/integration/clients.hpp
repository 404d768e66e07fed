// Clients for the integration tests: raw bytes over a socket (for requests no
// library would write: smuggling shapes, trickled headers, pipelining), a
// Beast HTTP/1.1 client that keeps its connection (keep-alive, TLS, 100 MB
// streams), and sockets that misbehave on purpose (a port nobody listens on,
// from ports.hpp; a listener whose connects hang).
//
// The one thing not to get wrong: every read has a timeout. A gateway that
// hangs makes a test fail in seconds, not at the ctest TIMEOUT.
//
//   raw_connection c(gw.port());
//   c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
//   c.read_until("\r\n\r\n", 5s);
//   auto responses = parse_responses(c.received());
#pragma once

#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/net.hpp"
#include "ports.hpp"
#include "process.hpp"

namespace floodgate::itest {

using header_list = std::vector<std::pair<std::string, std::string>>;

// One response, parsed from raw bytes.
struct raw_response {
    unsigned status = 0;
    unsigned version = 11;
    std::string reason;
    header_list headers;
    std::string body;  // decoded (chunked framing removed)

    std::optional<std::string> header(std::string_view name) const;
    std::string field(std::string_view name) const { return header(name).value_or("<absent>"); }
    std::size_t count(std::string_view name) const;
    // The response says Connection: close.
    bool closes() const;
};

// Parses consecutive complete responses from the start of `bytes`. Stops at
// the first incomplete or malformed one and leaves it in *rest. With at_eof,
// a final response delimited by the end of the connection is accepted.
std::vector<raw_response> parse_responses(std::string_view bytes, std::string* rest = nullptr,
                                          bool at_eof = false);

// The status code of the status line `bytes` begins with; 0 if there is none.
unsigned status_of(std::string_view bytes);

// The first line of `bytes`, without its line end.
std::string first_line(std::string_view bytes);

// A blocking TCP connection to 127.0.0.1:port, driven step by step.
class raw_connection {
public:
    explicit raw_connection(std::uint16_t port);
    ~raw_connection();
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    bool connected() const { return connect_errno_ == 0; }
    int connect_errno() const { return connect_errno_; }

    // Sends everything in one write; false if the connection is gone.
    bool send(std::string_view bytes);
    // One byte per interval, reading whatever arrives meanwhile; false once
    // the peer has closed (the rest is not sent).
    bool send_slowly(std::string_view bytes, ms interval);
    // Waits up to `timeout` for bytes and appends them to received();
    // returns how many arrived (0 on timeout or close).
    std::size_t read_some(ms timeout);
    // Reads until received() contains marker; false on timeout or close.
    bool read_until(std::string_view marker, ms timeout);
    // Reads until received() holds n complete responses; false otherwise.
    bool read_responses(std::size_t n, ms timeout);
    // Reads (keeping the bytes) until the peer closes; false on timeout.
    bool wait_closed(ms timeout);
    // The peer closed (FIN or RST seen).
    bool closed() const { return closed_; }
    bool was_reset() const { return reset_; }
    void shutdown_write();

    const std::string& received() const { return received_; }
    std::string take_received() { return std::exchange(received_, {}); }

private:
    int fd_ = -1;
    int connect_errno_ = 0;
    bool closed_ = false;
    bool reset_ = false;
    std::string received_;
};

// Connects, sends `bytes` in one write, returns everything received until the
// peer closes or `read_timeout` passes.
std::string raw_exchange(std::uint16_t port, std::string_view bytes, ms read_timeout = 5s);

// Verification settings of an HTTPS client: the CA file (the test cert
// itself) and the name to verify and send as SNI.
struct client_tls {
    std::string ca_file;
    std::string server_name = "localhost";
};

using response = http::response<http::string_body>;

struct download_result {
    unsigned status = 0;
    std::uint64_t bytes = 0;
    bool pattern_ok = true;  // every byte equals generated_byte(offset)
    bool chunked = false;
};

// A Beast HTTP/1.1 client on one connection (kept across requests). Every
// operation times out after `timeout`; errors throw boost::system::system_error.
// Requests without a Host field get "localhost:<port>".
class http_client {
public:
    explicit http_client(std::uint16_t port, ms timeout = 10s);
    http_client(std::uint16_t port, client_tls tls, ms timeout = 10s);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    response get(std::string target, const header_list& headers = {});
    response request(http::verb method, std::string target, std::string body = {},
                     const header_list& headers = {});
    response send(http::request<http::string_body> req);

    // GETs a /bytes or /chunked target and checks the body against
    // generated_byte() without keeping it.
    download_result download(std::string target);
    // POSTs n generated bytes (Content-Length, or chunked in 64 KiB chunks)
    // without holding them, then reads the response.
    response upload(std::string target, std::uint64_t n, bool chunked);

    // Waits for the server to close this connection; false if it stays open
    // for `timeout` (the client is unusable afterwards either way).
    bool wait_closed(ms timeout);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A listening socket with backlog 0 that never accepts, its queue filled by
// its own connections so that the kernel drops further SYNs: a connect to
// port() hangs. connects_hang() says whether the trick works on this kernel.
class unresponsive_listener {
public:
    unresponsive_listener();
    ~unresponsive_listener();
    unresponsive_listener(const unresponsive_listener&) = delete;
    unresponsive_listener& operator=(const unresponsive_listener&) = delete;

    std::uint16_t port() const { return port_; }
    bool connects_hang() const { return hangs_; }

private:
    int listen_fd_ = -1;
    std::vector<int> fillers_;
    std::uint16_t port_ = 0;
    bool hangs_ = false;
};

}  // namespace floodgate::itest
