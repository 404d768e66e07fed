// Tickets and passes: self-contained signed tokens, so a node needs no lookup to trust one.
//
// Text form: "v1.<kid>.<payload>.<mac>", payload and mac in base64url without padding.
//   payload (little-endian): u8 type (1 ticket, 2 pass) | u64 room | u64 seq | u32 iat |
//                            u32 exp | u64 binding | pass only: u32 slot | u32 slot_gen
//   mac: HMAC-SHA256(key[kid], "v1.<kid>.<payload>") truncated to 16 bytes.
// With a 7-character kid (as generated) a ticket is 78 characters, a pass 89.
//
//   token t{.type = token_type::ticket, .room = room_id("vaccine"), .seq = 42,
//           .iat = now_s, .exp = now_s + 3600};
//   std::string text = sign_token(keys, t, &client);           // client may be nullptr
//   verify_result r = verify_token(keys, text, {.room = t.room, .type = token_type::ticket,
//                                               .now_s = now_s, .client = &client});
//   if (r.status == verify_status::ok) use(r.claims);
//
// The one thing not to get wrong: a result other than ok means "no token" to the caller, and the
// reason is for counters and logs only, never shown to the client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenstore/key_ring.hpp"

namespace floodgate::tokenstore {

enum class token_type : std::uint8_t { ticket = 1, pass = 2 };

struct token {
    token_type type = token_type::ticket;
    std::uint64_t room = 0;      // room_id(name)
    std::uint64_t seq = 0;       // the ticket's place in the queue
    std::uint32_t iat = 0;       // issued at, Unix seconds
    std::uint32_t exp = 0;       // expires at, Unix seconds (valid while now < exp)
    std::uint64_t binding = 0;   // hmac_key::binding() of the client; 0 = unbound
    std::uint32_t slot = 0;      // pass only: active slot index
    std::uint32_t slot_gen = 0;  // pass only: the slot's generation (see active_slots::lease)
};

// What the client looks like now, for bound tokens. Empty strings are fine.
struct client_binding {
    std::string_view ip_prefix;   // e.g. "203.0.113.0/24" or "2001:db8:1::/48"
    std::string_view user_agent;
};

enum class verify_status : std::uint8_t {
    ok,
    malformed,    // not a v1 token: empty, wrong version, bad base64url, wrong size, extra dots
    unknown_kid,  // signed with a key this ring does not have
    bad_mac,      // tampered, or signed by someone else
    wrong_type,   // a ticket presented as a pass, or the reverse
    wrong_room,   // signed for another room
    expired,
    binding,      // bound to a different client
};
inline constexpr int verify_status_count = 8;
std::string_view to_string(verify_status s) noexcept;

struct verify_result {
    verify_status status = verify_status::malformed;
    token claims{};  // meaningful only when status == ok
};

struct verify_expect {
    std::uint64_t room = 0;
    token_type type = token_type::ticket;
    std::uint32_t now_s = 0;                 // Unix seconds
    const client_binding* client = nullptr;  // needed only for bound tokens
};

// A stable 64-bit id for a room name (truncated SHA-256), the same on every node. Two room names
// collide with probability 2^-64; the gateway should still refuse a config where they do.
std::uint64_t room_id(std::string_view room_name) noexcept;

inline constexpr std::size_t max_token_size = 160;

// Signs t with the ring's newest key. If client is not null, t.binding is replaced by the
// client's binding under that key.
std::string sign_token(const key_ring& keys, const token& t,
                       const client_binding* client = nullptr);
// Same, into out (cleared first; keeps its capacity, so a reused string never allocates).
void sign_token(const key_ring& keys, const token& t, const client_binding* client,
                std::string& out);

// The last token that passed its MAC check on one connection: a browser polling over a
// kept-alive connection presents the same text every time. verify_token() with a memo compares
// the text (in constant time) with the remembered one and, when it is the same text under the
// same ring, takes the remembered claims instead of decoding the text and computing its HMAC
// again. Type, room, expiry and binding are checked on every call, as without a memo, so the
// result is always the one verify_token() without a memo gives. Texts longer than the tokens
// this library signs are checked in full and not remembered. Not thread-safe: one per
// connection (168 bytes).
class token_memo {
public:
    static constexpr std::size_t max_text = 96;  // a pass with an 8-character kid is 90
    void clear() noexcept { ring_ = 0; }

private:
    friend verify_result verify_token(const key_ring&, std::string_view, const verify_expect&,
                                      token_memo*) noexcept;
    std::uint64_t ring_ = 0;         // key_ring::id(); 0: empty
    const hmac_key* key_ = nullptr;  // in that ring, which never drops a key
    token claims_{};
    std::size_t size_ = 0;
    char text_[max_text];
};

// Checks format, key, MAC (constant time), type, room, expiry and binding, in that order.
// With a memo, the text that last passed the first three with it skips them (see token_memo).
verify_result verify_token(const key_ring& keys, std::string_view text, const verify_expect& expect,
                           token_memo* memo = nullptr) noexcept;

}  // namespace floodgate::tokenstore
