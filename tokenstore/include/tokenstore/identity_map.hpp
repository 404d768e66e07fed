// Identity -> place de-duplication: one person (an identity such as a verified user id) holds one
// place in a room however many tabs or devices they open.
//
//   identity_map ids;
//   identity_map::entry e = ids.find_or_insert("user-17", now, 600'000,
//       [&](const identity_map::entry* old) -> std::optional<identity_map::entry> {
//           if (old && still_useful(*old)) return std::nullopt;  // keep the old place
//           return identity_map::entry{.seq = *ring.join(now)};  // a new place
//       });
//
// Entries expire ttl after their last find_or_insert (or set_lease); purge() drops expired ones.
// Sharded by a keyed hash (random key per process) so a crowd of identities spreads over
// shards and nobody can aim them at one; each shard has its own mutex and hash map. Identities
// are stored as 64-bit keyed hashes, not as text.
//
// The one thing not to get wrong: the decision callback runs with the shard locked, so it must
// be short (a ring join is fine) and must not call back into this map.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/clock.hpp"
#include "tokenstore/page_allocator.hpp"

namespace floodgate::tokenstore {

class identity_map {
public:
    struct entry {
        std::uint64_t seq = 0;    // the identity's ticket
        std::uint64_t lease = 0;  // (gen << 32 | slot) of its pass; 0 = none yet
        millis expires_at = 0;
    };

    // Called with the existing live entry (or nullptr); returns a replacement to store, or
    // nullopt to keep the existing entry (if there is none, nothing is stored).
    using decide_fn = absl::FunctionRef<std::optional<entry>(const entry* existing)>;

    struct result {
        std::optional<entry> e;  // the entry now stored, if any
        bool replaced = false;   // the callback's entry was stored
    };

    identity_map();

    // Looks up identity; lets decide() keep or replace the entry; refreshes its expiry to
    // now + ttl. Thread-safe.
    result find_or_insert(std::string_view identity, millis now, millis ttl, decide_fn decide);

    std::optional<entry> find(std::string_view identity, millis now) const;

    // Records the pass of the identity's ticket seq. False if the identity now maps elsewhere.
    bool set_lease(std::string_view identity, std::uint64_t seq, std::uint64_t lease, millis now,
                   millis ttl);

    void erase(std::string_view identity);

    // Drops expired entries; returns how many. Call now and then (the admitter does).
    std::size_t purge(millis now);

    std::size_t size() const;

private:
    static constexpr std::size_t shard_count = 64;
    struct alignas(64) shard {
        mutable mutex mu;
        // Its table's pages go back to the system when it grows (page_allocator.hpp).
        absl::flat_hash_map<std::uint64_t, entry, absl::Hash<std::uint64_t>, std::equal_to<std::uint64_t>,
                            page_allocator<std::pair<const std::uint64_t, entry>>>
            map ABSL_GUARDED_BY(mu);
    };

    std::uint64_t key_of(std::string_view identity) const noexcept;
    shard& shard_of(std::uint64_t key) noexcept { return shards_[key % shard_count]; }
    const shard& shard_of(std::uint64_t key) const noexcept { return shards_[key % shard_count]; }

    std::uint64_t k0_ = 0, k1_ = 0;
    std::array<shard, shard_count> shards_;
};

}  // namespace floodgate::tokenstore
