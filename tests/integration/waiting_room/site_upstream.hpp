// The booking site behind a waiting room, for the room tests: a real HTTP/1.1
// server on 127.0.0.1:0 (its own thread) that records when each request
// arrived, so a test can tell when each person first reached the site, and
// that can answer with `Floodgate-Release: 1` (the site saying "this person
// is done, free the slot"), which the harness's test_upstream cannot.
//
// Every response is 200 with a body starting with site_upstream::marker, so
// a test can tell the site's answer from the gateway's own pages. A request
// whose target contains "release=1" gets `Floodgate-Release: 1`.
//
// The one thing not to get wrong: requests() is the truth about what got
// past the gateway; a bypass test asserts on it, not on what the client saw.
//
//   site_upstream site;
//   ... gateway with `upstreams: {site: {servers: [site.address()]}}` ...
//   CHECK(site.requests().empty());
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace floodgate::itest::rooms {

struct site_request {
    std::chrono::steady_clock::time_point at;  // when the head was read
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;

    // The first field with that name (case-insensitive), or nullopt.
    std::optional<std::string> header(std::string_view name) const;
    std::string path() const { return target.substr(0, target.find('?')); }
};

class site_upstream {
public:
    static constexpr std::string_view marker = "SITE-BODY";

    site_upstream();
    ~site_upstream();
    site_upstream(const site_upstream&) = delete;
    site_upstream& operator=(const site_upstream&) = delete;

    std::uint16_t port() const;
    std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

    std::vector<site_request> requests() const;
    std::size_t request_count() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace floodgate::itest::rooms
