// A blocking HTTP/1.1 client for floodgate's admin API: one connection per
// request, `Authorization: Bearer <token>` on every request, and a deadline on
// every step (connect, write, each read), so an operator never stares at a
// hung terminal. Each call runs one Beast operation on a private io_context
// until it completes or its deadline passes; nothing runs in the background.
//
// The one thing not to get wrong: the token goes into the Authorization
// header and nowhere else; no message made here contains it.
//
//   admin_client c({"127.0.0.1", "9090"}, token);
//   api_reply r = c.request(http::verb::get, "/admin/v1/rooms");
//   if (!r.reached()) std::cerr << r.transport_error;   // exit 3
//   else if (r.status >= 400) ...                        // exit 1
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "cli_args.hpp"
#include "gateway/net.hpp"

namespace floodgate::ctl {

// An answer from the API, or why there is none.
struct api_reply {
    unsigned status = 0;  // 0: the API was not reached (see transport_error)
    std::string body;
    std::string transport_error;  // "connection refused", "timed out after 5 s", ...
    bool reached() const { return status != 0; }
};

class admin_client {
public:
    using event_handler = std::function<bool(std::string_view event, std::string_view data)>;

    admin_client(admin_address at, std::string token);

    api_reply request(http::verb method, std::string_view target, std::string body = {});

    // Follows a server-sent-events stream. on_event gets each event's name and
    // data (multi-line data joined with '\n'); returning false ends the stream.
    // Returns the status (200 when on_event ended it), the API's answer when it
    // refused, or a transport error when the stream broke or fell silent for
    // `idle`.
    api_reply follow(std::string_view target, const event_handler& on_event,
                     std::chrono::seconds idle = std::chrono::seconds(10));

private:
    // Runs the io_context until the one pending operation has completed.
    void run();
    bool connect(beast::tcp_stream& s, api_reply& out);
    http::request<http::string_body> make_request(http::verb method, std::string_view target,
                                                  std::string body) const;
    std::string describe(const error_code& ec, std::chrono::seconds deadline) const;

    admin_address at_;
    std::string token_;
    net::io_context ioc_;
};

}  // namespace floodgate::ctl
