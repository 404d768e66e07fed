#include "tokenstore/identity_map.hpp"

#include <openssl/rand.h>

#include <chrono>

#include "tokenstore/siphash.hpp"

namespace floodgate::tokenstore {

identity_map::identity_map() {
    std::uint64_t k[2] = {0, 0};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(k), sizeof k) != 1) {
        // No entropy: fall back to something unpredictable enough for sharding only.
        k[0] = static_cast<std::uint64_t>(
            std::chrono::steady_clock::now().time_since_epoch().count());
        k[1] = reinterpret_cast<std::uintptr_t>(this);
    }
    k0_ = k[0];
    k1_ = k[1];
}

std::uint64_t identity_map::key_of(std::string_view identity) const noexcept {
    return siphash::hash(k0_, k1_, identity);
}

identity_map::result identity_map::find_or_insert(std::string_view identity, millis now,
                                                  millis ttl, decide_fn decide) {
    const std::uint64_t key = key_of(identity);
    shard& s = shard_of(key);
    mutex_lock lock(s.mu);
    auto it = s.map.find(key);
    const entry* existing = nullptr;
    if (it != s.map.end()) {
        if (it->second.expires_at > now)
            existing = &it->second;
        else
            s.map.erase(it);
    }
    result r;
    std::optional<entry> replacement = decide(existing);
    if (replacement) {
        replacement->expires_at = now + ttl;
        s.map.insert_or_assign(key, *replacement);
        r.e = *replacement;
        r.replaced = true;
    } else if (existing != nullptr) {
        auto& e = s.map.find(key)->second;
        e.expires_at = now + ttl;
        r.e = e;
    }
    return r;
}

std::optional<identity_map::entry> identity_map::find(std::string_view identity,
                                                      millis now) const {
    const std::uint64_t key = key_of(identity);
    const shard& s = shard_of(key);
    mutex_lock lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end() || it->second.expires_at <= now) return std::nullopt;
    return it->second;
}

bool identity_map::set_lease(std::string_view identity, std::uint64_t seq, std::uint64_t lease,
                             millis now, millis ttl) {
    const std::uint64_t key = key_of(identity);
    shard& s = shard_of(key);
    mutex_lock lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end() || it->second.seq != seq) return false;
    it->second.lease = lease;
    it->second.expires_at = now + ttl;
    return true;
}

void identity_map::erase(std::string_view identity) {
    const std::uint64_t key = key_of(identity);
    shard& s = shard_of(key);
    mutex_lock lock(s.mu);
    s.map.erase(key);
}

std::size_t identity_map::purge(millis now) {
    std::size_t n = 0;
    for (auto& s : shards_) {
        mutex_lock lock(s.mu);
        n += absl::erase_if(s.map, [now](const auto& kv) { return kv.second.expires_at <= now; });
    }
    return n;
}

std::size_t identity_map::size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
        mutex_lock lock(s.mu);
        n += s.map.size();
    }
    return n;
}

}  // namespace floodgate::tokenstore
