#include "tokenstore/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

#include "tokenstore/base64url.hpp"

namespace floodgate::tokenstore {
namespace {

constexpr std::size_t ticket_payload_size = 1 + 8 + 8 + 4 + 4 + 8;
constexpr std::size_t pass_payload_size = ticket_payload_size + 4 + 4;

template <class T>
void put(std::uint8_t*& p, T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) *p++ = std::uint8_t(v >> (8 * i));
}

template <class T>
T get(const std::uint8_t*& p) {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= T(*p++) << (8 * i);
    return v;
}

std::size_t encode_payload(const token& t, std::uint8_t* out) {
    std::uint8_t* p = out;
    put<std::uint8_t>(p, static_cast<std::uint8_t>(t.type));
    put(p, t.room);
    put(p, t.seq);
    put(p, t.iat);
    put(p, t.exp);
    put(p, t.binding);
    if (t.type == token_type::pass) {
        put(p, t.slot);
        put(p, t.slot_gen);
    }
    return static_cast<std::size_t>(p - out);
}

bool decode_payload(const std::uint8_t* data, std::size_t n, token& t) {
    const std::uint8_t* p = data;
    if (n == 0) return false;
    const auto type = get<std::uint8_t>(p);
    if (type == std::uint8_t(token_type::ticket)) {
        if (n != ticket_payload_size) return false;
    } else if (type == std::uint8_t(token_type::pass)) {
        if (n != pass_payload_size) return false;
    } else {
        return false;
    }
    t.type = static_cast<token_type>(type);
    t.room = get<std::uint64_t>(p);
    t.seq = get<std::uint64_t>(p);
    t.iat = get<std::uint32_t>(p);
    t.exp = get<std::uint32_t>(p);
    t.binding = get<std::uint64_t>(p);
    if (t.type == token_type::pass) {
        t.slot = get<std::uint32_t>(p);
        t.slot_gen = get<std::uint32_t>(p);
    }
    return true;
}

}  // namespace

std::string_view to_string(verify_status s) noexcept {
    switch (s) {
        case verify_status::ok: return "ok";
        case verify_status::malformed: return "malformed";
        case verify_status::unknown_kid: return "unknown_kid";
        case verify_status::bad_mac: return "bad_mac";
        case verify_status::wrong_type: return "wrong_type";
        case verify_status::wrong_room: return "wrong_room";
        case verify_status::expired: return "expired";
        case verify_status::binding: return "binding";
    }
    return "unknown";
}

std::uint64_t room_id(std::string_view room_name) noexcept {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    std::uint64_t v = 0;
    if (EVP_Digest(room_name.data(), room_name.size(), digest, &n, EVP_sha256(), nullptr) == 1 &&
        n >= 8) {
        const std::uint8_t* p = digest;
        v = get<std::uint64_t>(p);
    }
    return v;
}

void sign_token(const key_ring& keys, const token& t, const client_binding* client,
                std::string& out) {
    const hmac_key& key = keys.signing_key();
    token claims = t;
    if (client != nullptr) claims.binding = key.binding(client->ip_prefix, client->user_agent);

    std::uint8_t payload[pass_payload_size];
    const std::size_t n = encode_payload(claims, payload);
    out.clear();
    out.reserve(3 + key.kid().size() + 1 + base64url::encoded_size(n) + 1 +
                base64url::encoded_size(hmac_key::mac_size));
    out.append("v1.");
    out.append(key.kid());
    out.push_back('.');
    base64url::encode(payload, n, out);
    std::uint8_t mac[hmac_key::mac_size];
    key.mac(out, mac);
    out.push_back('.');
    base64url::encode(mac, sizeof mac, out);
}

std::string sign_token(const key_ring& keys, const token& t, const client_binding* client) {
    std::string out;
    sign_token(keys, t, client, out);
    return out;
}

namespace {

// Whether a and b hold the same n bytes, in a time that depends on n only.
bool equal_in_constant_time(const char* a, const char* b, std::size_t n) noexcept {
    std::uint64_t diff = 0;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t x, y;
        std::memcpy(&x, a + i, 8);
        std::memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; ++i) diff |= std::uint64_t(std::uint8_t(a[i]) ^ std::uint8_t(b[i]));
    return diff == 0;
}

// Format, key and MAC: the claims of a text that some key of the ring signed.
verify_status check_signature(const key_ring& keys, std::string_view text, token& claims,
                              const hmac_key*& key) noexcept {
    if (text.size() > max_token_size || text.substr(0, 3) != "v1.") return verify_status::malformed;
    const std::size_t kid_end = text.find('.', 3);
    if (kid_end == std::string_view::npos) return verify_status::malformed;
    const std::size_t payload_end = text.find('.', kid_end + 1);
    if (payload_end == std::string_view::npos) return verify_status::malformed;
    const std::string_view kid = text.substr(3, kid_end - 3);
    const std::string_view payload_text = text.substr(kid_end + 1, payload_end - kid_end - 1);
    const std::string_view mac_text = text.substr(payload_end + 1);
    if (!hmac_key::valid_kid(kid)) return verify_status::malformed;
    if (mac_text.size() != base64url::encoded_size(hmac_key::mac_size))  // also dots
        return verify_status::malformed;
    if (payload_text.size() > base64url::encoded_size(pass_payload_size)) return verify_status::malformed;

    std::uint8_t payload[base64url::decoded_size(base64url::encoded_size(pass_payload_size))];
    const std::ptrdiff_t n = base64url::decode(payload_text, payload);
    if (n < 0) return verify_status::malformed;
    if (!decode_payload(payload, static_cast<std::size_t>(n), claims)) return verify_status::malformed;
    std::uint8_t mac[base64url::decoded_size(base64url::encoded_size(hmac_key::mac_size))];
    if (base64url::decode(mac_text, mac) != std::ptrdiff_t(hmac_key::mac_size))
        return verify_status::malformed;

    key = keys.find(kid);
    if (key == nullptr) return verify_status::unknown_kid;
    std::uint8_t expected[hmac_key::mac_size];
    key->mac(text.substr(0, payload_end), expected);
    if (CRYPTO_memcmp(expected, mac, hmac_key::mac_size) != 0) return verify_status::bad_mac;
    return verify_status::ok;
}

}  // namespace

verify_result verify_token(const key_ring& keys, std::string_view text, const verify_expect& expect,
                           token_memo* memo) noexcept {
    verify_result r;
    token claims;
    const hmac_key* key = nullptr;
    if (memo && memo->ring_ == keys.id() && memo->size_ == text.size() &&
        equal_in_constant_time(memo->text_, text.data(), text.size())) {
        claims = memo->claims_;
        key = memo->key_;
    } else {
        r.status = check_signature(keys, text, claims, key);
        if (r.status != verify_status::ok) return r;
        if (memo && text.size() <= token_memo::max_text) {
            memo->ring_ = keys.id();
            memo->key_ = key;
            memo->claims_ = claims;
            memo->size_ = text.size();
            std::memcpy(memo->text_, text.data(), text.size());
        }
    }
    if (claims.type != expect.type) {
        r.status = verify_status::wrong_type;
    } else if (claims.room != expect.room) {
        r.status = verify_status::wrong_room;
    } else if (expect.now_s >= claims.exp) {
        r.status = verify_status::expired;
    } else if (claims.binding != 0 &&
               (expect.client == nullptr ||
                key->binding(expect.client->ip_prefix, expect.client->user_agent) !=
                    claims.binding)) {
        r.status = verify_status::binding;
    } else {
        r.status = verify_status::ok;
        r.claims = claims;
    }
    return r;
}

}  // namespace floodgate::tokenstore
