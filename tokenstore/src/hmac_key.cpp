#include "tokenstore/hmac_key.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <atomic>
#include <cstring>

#include "tokenstore/siphash.hpp"

namespace floodgate::tokenstore {
namespace {

// Fetched once per process: EVP_MAC_fetch walks the provider tables and takes locks.
EVP_MAC* hmac_algorithm() {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    return mac;
}

std::atomic<std::uint64_t> next_uid{1};

// Per-thread keyed contexts, duplicated from each key's template on first use. Small and
// round-robin evicted: a thread normally signs with one key and verifies with two or three.
class context_cache {
public:
    ~context_cache() {
        for (auto& e : entries_)
            if (e.ctx != nullptr) EVP_MAC_CTX_free(e.ctx);
    }

    EVP_MAC_CTX* get(std::uint64_t uid, const EVP_MAC_CTX* tmpl) {
        for (auto& e : entries_)
            if (e.uid == uid) return e.ctx;
        auto& e = entries_[victim_];
        victim_ = (victim_ + 1) % entries_.size();
        if (e.ctx != nullptr) EVP_MAC_CTX_free(e.ctx);
        e.ctx = EVP_MAC_CTX_dup(tmpl);
        e.uid = e.ctx != nullptr ? uid : 0;
        return e.ctx;
    }

private:
    struct entry {
        std::uint64_t uid = 0;
        EVP_MAC_CTX* ctx = nullptr;
    };
    std::array<entry, 8> entries_{};
    std::size_t victim_ = 0;
};

thread_local context_cache contexts;

bool hmac_sha256(EVP_MAC_CTX* ctx, const void* key, std::size_t key_size, std::string_view data,
                 std::uint8_t (&out)[32]) {
    std::size_t n = 0;
    return EVP_MAC_init(ctx, static_cast<const unsigned char*>(key), key_size, nullptr) == 1 &&
           EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1 &&
           EVP_MAC_final(ctx, out, &n, sizeof out) == 1 && n == sizeof out;
}

}  // namespace

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
    EVP_MAC* alg = hmac_algorithm();
    if (alg == nullptr) return absl::InternalError("OpenSSL has no HMAC (EVP_MAC_fetch failed)");

    std::unique_ptr<hmac_key> key(new hmac_key());
    std::memcpy(key->kid_.data(), kid.data(), kid.size());
    key->kid_size_ = kid.size();
    key->secret_ = std::string(secret);
    key->uid_ = next_uid.fetch_add(1, std::memory_order_relaxed);
    key->template_ = EVP_MAC_CTX_new(alg);
    if (key->template_ == nullptr) return absl::InternalError("EVP_MAC_CTX_new failed");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(key->template_, params) != 1)
        return absl::InternalError("cannot select SHA256 for HMAC");

    // The binding key is derived from the secret, so it never needs its own storage.
    std::uint8_t derived[32];
    if (!hmac_sha256(key->template_, key->secret_.data(), key->secret_.size(),
                     "floodgate/binding/v1", derived))
        return absl::InternalError("HMAC-SHA256 failed while deriving the binding key");
    std::memcpy(&key->bind_k0_, derived, 8);
    std::memcpy(&key->bind_k1_, derived + 8, 8);
    return key;
}

hmac_key::~hmac_key() {
    if (template_ != nullptr) EVP_MAC_CTX_free(template_);
}

bool hmac_key::mac(std::string_view data, std::uint8_t* out) const noexcept {
    std::uint8_t full[32];
    EVP_MAC_CTX* ctx = contexts.get(uid_, template_);
    // A null key re-initialises HMAC with the key already set: no key schedule per call.
    if (ctx == nullptr || !hmac_sha256(ctx, nullptr, 0, data, full)) return false;
    std::memcpy(out, full, mac_size);
    return true;
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
