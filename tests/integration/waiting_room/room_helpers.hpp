// Helpers for the waiting-room integration tests: a gateway config with a
// booking site upstream and rooms, one-shot HTTP requests as a person makes
// them (a fresh connection each, like a phone coming back after a while),
// cookies, the status JSON, token surgery for the bypass table, and token key
// files.
//
// The one thing not to get wrong: a person waits as long as the server says
// (poll_after_ms), never less; wait_for_pass() polls exactly then, and checks
// on every answer that the person's `ahead` did not grow.
//
//   site_upstream site;
//   test_upstream app;
//   gateway_process gw(room_config(app.address(), site.address(),
//       "  concert: {match: {paths: [/reserve]}, upstream: site, admission: {rate: 5}}\n"));
//   auto r = fetch(gw.port(), http::verb::get, "/reserve", {{"Accept", "application/json"}});
//   std::string ticket = r.cookie("fg_ticket_concert").value();
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace floodgate::itest::rooms {

using steady = std::chrono::steady_clock;

// A whole gateway config: upstream "app" (the default, for unprotected paths)
// and "site" (for rooms that say `upstream: site`), then `rooms:` followed by
// rooms_yaml (each room indented two spaces), then `extra` top-level lines.
std::string room_config(const std::string& app_address, const std::string& site_address,
                        std::string_view rooms_yaml, std::string_view extra = {});

// One answer, as a person's browser or app sees it.
struct reply {
    unsigned status = 0;
    header_list headers;
    std::string body;

    std::optional<std::string> header(std::string_view name) const;
    std::size_t count(std::string_view name) const;
    // The value that `Set-Cookie: name=value; ...` sets, if the answer sets that cookie.
    std::optional<std::string> cookie(std::string_view name) const;
    // The body parsed as a JSON object; empty when it is not one.
    boost::json::object json() const;
    bool from_site() const;  // the body came from the site upstream
};

// One request on a fresh connection to the gateway at 127.0.0.1:port.
reply fetch(std::uint16_t port, http::verb method, std::string target, const header_list& headers = {},
            std::string body = {});
inline reply get(std::uint16_t port, std::string target, const header_list& headers = {}) {
    return fetch(port, http::verb::get, std::move(target), headers);
}

// Fields of the status JSON, with defaults when absent.
std::string json_string(const boost::json::object& o, std::string_view key);
std::int64_t json_int(const boost::json::object& o, std::string_view key, std::int64_t fallback = -1);

inline std::pair<std::string, std::string> cookie_header(std::string_view name, std::string_view value) {
    return {"Cookie", std::string(name) + "=" + std::string(value)};
}
inline const std::pair<std::string, std::string> accept_json{"Accept", "application/json"};

// Polls GET /__fg/v1/rooms/<room>/status with the ticket (as cookie, or as the
// Floodgate-Ticket header when use_header) at the poll_after_ms the server gives,
// until it says "admitted", and returns the pass. Fails the test if `ahead`
// grows between two polls, if the state is neither waiting nor admitted, or at
// the deadline.
std::string wait_for_pass(std::uint16_t port, std::string_view room, std::string_view ticket,
                          std::chrono::milliseconds deadline, bool use_header = false,
                          const header_list& extra_headers = {});

// Token surgery: "v1.<kid>.<payload>.<mac>".
std::vector<std::string> token_parts(std::string_view token);
std::string join_parts(const std::vector<std::string>& parts);
// The same token with the character at `index` of part `part` replaced by a
// different base64url character.
std::string change_char(std::string_view token, std::size_t part, std::size_t index);

// What a pass says about itself (payload, little-endian: u8 type, u64 room,
// u64 seq, u32 iat, u32 exp, u64 binding, u32 slot, u32 slot_gen). Used only
// to make sure a test's forged material means what the test says it means.
struct pass_claims {
    std::uint64_t seq = 0;
    std::uint32_t exp = 0;
    std::uint32_t slot = 0;
    std::uint32_t slot_gen = 0;
};
std::optional<pass_claims> decode_pass(std::string_view token);

// Random bytes in base64url without padding.
std::string random_base64url(std::size_t bytes);
// The text of a token key file with one key: "<kid> <32 random bytes, base64url>".
std::string key_file_text(std::string_view kid);

// Waits until the gateway's output holds `text` at least `times` times.
bool wait_for_log(const gateway_process& gw, std::string_view text, std::size_t times,
                  std::chrono::milliseconds timeout);
std::size_t count_in_logs(const gateway_process& gw, std::string_view text);

}  // namespace floodgate::itest::rooms
