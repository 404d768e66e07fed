// One token-signing key: a key id (kid) and a secret, able to compute the truncated
// HMAC-SHA256 that tokens carry and the keyed client-binding hash.
//
//   auto key = hmac_key::create("k1", secret);           // secret: at least 32 bytes
//   std::uint8_t mac[hmac_key::mac_size];
//   (*key)->mac(text, mac);
//
// Thread-safe and allocation-free: the key's two HMAC pad blocks are hashed once, when it is
// created, and each MAC starts from copies of those states (hmac_key.cpp says why not EVP_MAC).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace floodgate::tokenstore {

class hmac_key {
public:
    static constexpr std::size_t mac_size = 16;  // HMAC-SHA256 truncated to 128 bits
    static constexpr std::size_t min_secret_size = 32;
    static constexpr std::size_t max_kid_size = 8;

    // kid: 1-8 characters [A-Za-z0-9]; secret: at least min_secret_size bytes.
    static absl::StatusOr<std::unique_ptr<hmac_key>> create(std::string_view kid,
                                                            std::string_view secret);
    static bool valid_kid(std::string_view kid) noexcept;

    ~hmac_key();
    hmac_key(const hmac_key&) = delete;
    hmac_key& operator=(const hmac_key&) = delete;

    std::string_view kid() const noexcept { return {kid_.data(), kid_size_}; }
    const std::string& secret() const noexcept { return secret_; }

    // Writes the first mac_size bytes of HMAC-SHA256(secret, data) to out.
    void mac(std::string_view data, std::uint8_t* out) const noexcept;

    // Keyed 64-bit hash of a client's IP prefix and User-Agent for binding tokens to a client;
    // never 0 (0 means "unbound" in a token). The key is derived from this key's secret, so a
    // token's binding is checked with the key that signed it and survives rotation.
    std::uint64_t binding(std::string_view ip_prefix, std::string_view user_agent) const noexcept;

private:
    hmac_key() = default;

    std::array<char, max_kid_size> kid_{};
    std::size_t kid_size_ = 0;
    std::string secret_;
    struct pads;
    std::unique_ptr<const pads> pads_;  // the secret's inner and outer HMAC states
    std::uint64_t bind_k0_ = 0, bind_k1_ = 0;
};

}  // namespace floodgate::tokenstore
