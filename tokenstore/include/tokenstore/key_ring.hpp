// The set of token keys shared by every node: the newest key signs, every key verifies, so keys
// rotate without logging anyone out.
//
//   auto ring = key_ring::load_or_generate("/var/lib/floodgate/token-keys");
//   if (!ring.ok()) return ring.status();          // "token-keys:3: secret is 16 bytes; ..."
//   const hmac_key& k = (*ring)->signing_key();    // sign with this
//   const hmac_key* v = (*ring)->find(kid);        // verify with this (nullptr: unknown kid)
//   (*ring)->rotate();                             // new newest key, file rewritten
//
// Key file: UTF-8 text, one key per line as "<kid> <secret>", where kid is 1-8 characters
// [A-Za-z0-9] and secret is base64url without padding of at least 32 random bytes. Blank lines
// and lines starting with '#' are ignored. Keys are listed oldest first; the last one signs.
//
// Thread-safety: signing_key() and find() are lock-free and may run on every request thread
// while rotate() runs on another. The one thing not to get wrong: a key, once added, is never
// removed or moved while the ring lives, which is what makes the lock-free readers safe; to drop
// old keys, edit the file and load a new key_ring.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenstore/mutex.hpp"
#include "tokenstore/hmac_key.hpp"

namespace floodgate::tokenstore {

class key_ring {
public:
    static constexpr std::size_t max_keys = 64;

    // Reads a key file. Errors name the file and line: "keys:4: duplicate kid 'a1' (line 2)".
    static absl::StatusOr<std::unique_ptr<key_ring>> load(const std::string& path);

    // Parses key file text; origin names it in error messages. The ring has no file, so
    // rotate() only changes memory.
    static absl::StatusOr<std::unique_ptr<key_ring>> parse(std::string_view text,
                                                           std::string_view origin);

    // Creates path (which must not exist) with mode 0600 holding one random 32-byte key.
    static absl::Status generate_key_file(const std::string& path);

    // load(path), generating the file first if it does not exist.
    static absl::StatusOr<std::unique_ptr<key_ring>> load_or_generate(const std::string& path);

    key_ring(const key_ring&) = delete;
    key_ring& operator=(const key_ring&) = delete;

    // The key that signs: the newest one, unless a key was added with add_verifying() and not
    // yet given sign_with(). The ring is never empty.
    const hmac_key& signing_key() const noexcept { return *keys_[signing_.load(std::memory_order_acquire)]; }

    // The key with this id, or nullptr.
    const hmac_key* find(std::string_view kid) const noexcept {
        const std::size_t n = count_.load(std::memory_order_acquire);
        for (std::size_t i = n; i-- > 0;)
            if (keys_[i]->kid() == kid) return keys_[i].get();
        return nullptr;
    }

    std::size_t size() const noexcept { return count_.load(std::memory_order_acquire); }

    // Adds a new random key (it signs from now on) and, if the ring came from a file, rewrites
    // the file atomically (temporary file, fsync, rename; mode 0600) before the key is used.
    // Returns the new kid.
    absl::StatusOr<std::string> rotate() ABSL_LOCKS_EXCLUDED(mu_);

    // Adds a given key as the newest one (same file handling as rotate()).
    absl::Status add(std::string_view kid, std::string_view secret) ABSL_LOCKS_EXCLUDED(mu_);

    // Several nodes sharing keys (docs/redis.md, "Token keys"): a new key must verify on every
    // node before any node signs with it. generate() makes one (a kid unused here, a random
    // 32-byte secret, base64url) without adding it; add_verifying() adds a key that verifies
    // at once and signs only after sign_with(). add_verifying() keeps the key even when the
    // file cannot be rewritten (read-only mount): the status then says so. AlreadyExists: the
    // kid is in the ring (nothing changed).
    absl::StatusOr<std::pair<std::string, std::string>> generate() const;
    absl::Status add_verifying(std::string_view kid, std::string_view secret_b64) ABSL_LOCKS_EXCLUDED(mu_);
    bool sign_with(std::string_view kid) ABSL_LOCKS_EXCLUDED(mu_);  // false: no such kid

    const std::string& path() const noexcept { return path_; }
    // Unique among the rings this process makes, never 0. A token_memo names its ring by this:
    // an address can be reused once a ring is gone, an id cannot.
    std::uint64_t id() const noexcept { return id_; }

private:
    key_ring() = default;
    // Adds key; it signs if `sign`. With a file, the file is rewritten first; `keep_unsaved`
    // keeps the key in memory when that fails (the status still reports it).
    absl::Status add_locked(std::unique_ptr<hmac_key> key, bool sign, bool keep_unsaved = false)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

    static std::uint64_t next_id() noexcept;
    const std::uint64_t id_ = next_id();
    std::string path_;
    mutex mu_;  // serialises writers; readers use count_ only
    // Slots [0, count_) are written once before count_ is published and never change after.
    std::array<std::unique_ptr<hmac_key>, max_keys> keys_;
    std::atomic<std::size_t> count_{0};
    std::atomic<std::size_t> signing_{0};  // < count_
};

}  // namespace floodgate::tokenstore
