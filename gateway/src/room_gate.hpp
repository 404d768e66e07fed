// The waiting room in the data path: what happens to a request for a
// protected route, and the public /__fg/ endpoints.
//
// gate_request() lets a request through only with a valid pass for its room
// (or when the room admits the person at once); otherwise it answers with the
// waiting page, or 503 + JSON for API clients, and a ticket that keeps the
// person's place. serve_public() answers join, status, release and lights.
//
// The one thing not to get wrong: an invalid, expired, tampered or foreign
// token is treated exactly like no token (and counted); it never produces an
// error page, and nothing about why it failed reaches the client.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "generation.hpp"
#include "metrics.hpp"
#include "tokenstore/active_slots.hpp"
#include "tokenstore/token.hpp"

namespace floodgate {

struct client_info {
    std::string_view ip;
    bool tls = false;
    // The connection's memo of the last token that passed its MAC check (tokenstore::token_memo);
    // may be null.
    tokenstore::token_memo* tokens = nullptr;
};

// One of the gateway's own answers (the waiting page, the /__fg/ JSON): a
// status, a constant Content-Type, the body, and the few fields such an answer
// carries (Set-Cookie, Retry-After, Refresh). The session writes its head
// straight out, with "Cache-Control: no-store" and the framing fields; no
// field container is built for it.
struct local_response {
    http::status status = http::status::ok;
    std::string_view content_type;  // a constant
    std::string body;
    std::vector<std::pair<std::string_view, std::string>> fields;  // names are constants

    local_response() = default;
    local_response(http::status st, std::string_view type, std::string b)
        : status(st), content_type(type), body(std::move(b)) {}

    http::status result() const { return status; }
    void result(http::status st) { status = st; }
    unsigned result_int() const { return static_cast<unsigned>(status); }
    // Adds a field; set() replaces the fields of that name first.
    void insert(http::field name, std::string value) { fields.emplace_back(http::to_string(name), std::move(value)); }
    void set(std::string_view name, std::string value);
    void set(http::field name, std::string value) { set(http::to_string(name), std::move(value)); }
    std::size_t count(http::field name) const;
};

struct gate_result {
    bool proceed = false;  // forward the request to the room's upstream
    std::optional<local_response> response;  // when not proceeding
    std::vector<std::string> set_cookies;  // for the proxied response
    std::optional<tokenstore::lease> lease;  // the admitted person's slot
    // For the request counter: proxied (a pass that was valid), admitted (a pass
    // minted now), queued, or rejected (closed, full, admitted on another device).
    request_outcome outcome = request_outcome::proxied;
    // A shared room (several nodes) gave this person a new place: the identity it was given
    // for must be claimed across nodes before the answer goes out (rejoin_duplicate()).
    std::optional<std::uint64_t> joined_seq;
    std::string identity;
};

// A shared room: the person's identity already holds a place or a pass, taken on another node
// (holder: what it stored, "q <seq>" or "p ..."). Gives up the place just taken (joined) and
// answers with the held place, or "already admitted". nullopt: the held place is gone; keep
// the new one.
std::optional<gate_result> rejoin_duplicate(const generation& gen, const room_binding& room,
                                            const http::request_header<>& req, const client_info& client,
                                            std::string_view return_to, std::uint64_t joined,
                                            std::string_view holder, thread_metrics* metrics = nullptr);

// A place given by POST /__fg/v1/rooms/<room>/join in a shared room, for a person with an
// identity: as with gate_result::joined_seq, the identity must be claimed across nodes before
// the answer goes out; public_join_duplicate() is the answer when it already holds a place.
struct public_join_claim {
    const room_binding* room = nullptr;  // null: nothing to claim
    std::uint64_t seq = 0;
    std::string identity;
};
std::optional<local_response> public_join_duplicate(const generation& gen,
                                                                       const public_join_claim& claim,
                                                                       const http::request_header<>& req,
                                                                       const client_info& client,
                                                                       std::string_view holder,
                                                                       thread_metrics* metrics = nullptr);

// A request for a path that room protects. return_to is the normalised
// path and query the person asked for (the waiting page comes back to it).
// metrics (the calling worker's): token rejections and time in line are counted there.
gate_result gate_request(const generation& gen, const room_binding& room,
                         const http::request_header<>& req, const client_info& client,
                         std::string_view return_to, thread_metrics* metrics = nullptr);

// Requests under /__fg/ (path is the normalised path, without the query).
// With `claim`, a join that gives a place in a shared room to a person with an identity fills it
// in instead of taking the place as final (see public_join_claim).
local_response serve_public(const generation& gen, const http::request_header<>& req,
                                               const client_info& client, std::string_view path,
                                               thread_metrics* metrics = nullptr,
                                               public_join_claim* claim = nullptr);

// Releases the slot when the upstream says the person is done
// (response header Floodgate-Release: 1). Returns the Set-Cookie that ends the pass.
std::string release_by_upstream(const room_binding& room, tokenstore::lease lease, bool tls);

// The room's traffic light: green (no queue), yellow (a newcomer waits less
// than page.yellow_wait), red (longer, paused or closed).
std::string_view room_light(const room_binding& room);

// The value of cookie `name` in the request's Cookie fields, or empty.
std::string_view find_cookie(const http::fields& f, std::string_view name);

}  // namespace floodgate
