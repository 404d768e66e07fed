#include "tokenstore/hmac_key.hpp"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but
// HMAC through EVP_MAC costs a context copy (with an allocation) at init and at
// final, and a provider call per step: about twice the time of the two or three
// SHA-256 blocks that a token's MAC is. The low-level functions are the same
// code (SHA-NI where the CPU has it) without that, and the keyed pads can be
// hashed once per key, which EVP_MAC does not expose.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

#include "tokenstore/siphash.hpp"

namespace floodgate::tokenstore {

// HMAC-SHA256 (RFC 2104) with the key's two pad blocks already hashed.
struct hmac_key::pads {
    SHA256_CTX inner;
    SHA256_CTX outer;

    explicit pads(std::string_view key) {
        std::uint8_t block[SHA256_CBLOCK] = {};
        if (key.size() > sizeof block) {
            SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
        } else {
            std::memcpy(block, key.data(), key.size());
        }
        std::uint8_t pad[SHA256_CBLOCK];
        for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = block[i] ^ 0x36;
        SHA256_Init(&inner);
        SHA256_Update(&inner, pad, sizeof pad);
        for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = block[i] ^ 0x5c;
        SHA256_Init(&outer);
        SHA256_Update(&outer, pad, sizeof pad);
        OPENSSL_cleanse(block, sizeof block);
        OPENSSL_cleanse(pad, sizeof pad);
    }
    ~pads() {
        OPENSSL_cleanse(&inner, sizeof inner);
        OPENSSL_cleanse(&outer, sizeof outer);
    }

    // The copies need no wiping: a final hashes at least one more block, which
    // replaces the keyed state they started from.
    void mac(std::string_view data, std::uint8_t (&out)[SHA256_DIGEST_LENGTH]) const {
        SHA256_CTX c = inner;
        SHA256_Update(&c, data.data(), data.size());
        SHA256_Final(out, &c);
        c = outer;
        SHA256_Update(&c, out, SHA256_DIGEST_LENGTH);
        SHA256_Final(out, &c);
    }
};

bool hmac_key::valid_kid(std::string_view kid) noexcept {
    if (kid.empty() || kid.size() > max_kid_size) return false;
    for (char c : kid) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

absl::StatusOr<std::unique_ptr<hmac_key>> hmac_key::create(std::string_view kid,
                                                           std::string_view secret) {
    if (!valid_kid(kid))
        return absl::InvalidArgumentError("key id must be 1-8 characters [A-Za-z0-9], got '" +
                                          std::string(kid) + "'");
    if (secret.size() < min_secret_size)
        return absl::InvalidArgumentError("secret of key '" + std::string(kid) + "' is " +
                                          std::to_string(secret.size()) +
                                          " bytes; at least 32 are required");
    std::unique_ptr<hmac_key> key(new hmac_key());
    std::memcpy(key->kid_.data(), kid.data(), kid.size());
    key->kid_size_ = kid.size();
    key->secret_ = std::string(secret);
    key->pads_ = std::make_unique<pads>(key->secret_);

    // The binding key is derived from the secret, so it never needs its own storage.
    std::uint8_t derived[SHA256_DIGEST_LENGTH];
    key->pads_->mac("floodgate/binding/v1", derived);
    std::memcpy(&key->bind_k0_, derived, 8);
    std::memcpy(&key->bind_k1_, derived + 8, 8);
    OPENSSL_cleanse(derived, sizeof derived);
    return key;
}

hmac_key::~hmac_key() = default;

void hmac_key::mac(std::string_view data, std::uint8_t* out) const noexcept {
    std::uint8_t full[SHA256_DIGEST_LENGTH];
    pads_->mac(data, full);
    std::memcpy(out, full, mac_size);
}

std::uint64_t hmac_key::binding(std::string_view ip_prefix,
                                std::string_view user_agent) const noexcept {
    siphash h(bind_k0_, bind_k1_);
    h.update_u64(ip_prefix.size());
    h.update(ip_prefix);
    h.update(user_agent);
    const std::uint64_t v = h.finish();
    return v == 0 ? 1 : v;
}

}  // namespace floodgate::tokenstore
