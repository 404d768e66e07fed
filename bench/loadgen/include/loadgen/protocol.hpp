// The parts of the waiting-room protocol floodgate-bench reads from answers:
// cookies from Set-Cookie, the seq inside a ticket, and a status JSON body.
// Pure functions, unit-tested without a gateway.
//
//   cookie_value("fg_ticket_vaccine=v1.k.p.m; Path=/; HttpOnly", "fg_ticket_vaccine") == "v1.k.p.m"
//   ticket_seq(ticket) == 42   // the ticket's place in line (join order)
//
// The one thing not to get wrong: the seq is read for measuring order only;
// the bench never builds or alters a token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace floodgate::bench {

// The value a Set-Cookie header sets for `name`, or nullopt when it sets another cookie.
std::optional<std::string_view> cookie_value(std::string_view set_cookie, std::string_view name);

// The seq inside a ticket ("v1.<kid>.<payload>.<mac>", payload in base64url:
// u8 type | u64 room | u64 seq | ..., little-endian); nullopt if it is not a ticket.
std::optional<std::uint64_t> ticket_seq(std::string_view token);

// The fields of a status answer (GET /__fg/v1/rooms/{room}/status, or the 503
// JSON of a protected page) that a person acts on.
struct status_answer {
    std::string state;           // waiting, paused, admitted, expired, closed, full, already_admitted
    std::optional<std::uint64_t> position, ahead;
    std::optional<double> eta_s;  // null while unknown
    std::uint64_t poll_after_ms = 1000;
    std::string light;
    std::string ticket, pass;  // when the answer carries them
};

// nullopt when the body is not a JSON object with a "state".
std::optional<status_answer> parse_status(std::string_view body);

}  // namespace floodgate::bench
