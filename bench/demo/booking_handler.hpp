// Routes one HTTP request of the demo booking site to its answer.
//
// Booking routes (/reserve and /api/..., except /api/stats) pass through the
// load model: the request takes a place in flight (503 at once above the hard
// limit) and is answered after the modelled latency, waited on an Asio timer
// so the thread keeps serving others. /ping and /api/stats are answered at
// once and never count toward capacity.
#pragma once

#include "booking_state.hpp"
#include "demo_options.hpp"
#include "gateway/net.hpp"
#include "load_meter.hpp"

namespace floodgate::demo {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

class booking_handler {
public:
    booking_handler(const demo_options& options, booking_state& state, load_meter& meter);

    // Completes on the caller's executor; never throws for any request.
    net::awaitable<response> handle(request req);

private:
    response booking_route(const request& req, std::string_view path);
    response reserve(const request& req);
    response stats(const request& req);

    const demo_options& options_;
    booking_state& state_;
    load_meter& meter_;
};

}  // namespace floodgate::demo
