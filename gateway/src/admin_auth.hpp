// Who may use the admin API: bearer tokens with a name (for the audit log)
// and a role (operator: may change things; viewer: read only).
//
//   auto tokens = admin_tokens::load(cfg.admin);     // file + environment variable
//   const admin_identity* who = tokens->check(header_value_of_authorization);
//   if (!who) -> 401;  if (who->role == admin_role::viewer && is_change) -> 403
//
// Token lines: "<role> <name> <token>", '#' starts a comment; in the environment
// variable, entries may also be separated by ';'. Tokens are compared in
// constant time (SHA-256 of each, compared with CRYPTO_memcmp, every entry
// checked), so neither the token nor its length leaks through timing.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config.hpp"

namespace floodgate {

enum class admin_role { viewer, operator_ };

struct admin_identity {
    std::string name;
    admin_role role = admin_role::viewer;
};

class admin_tokens {
public:
    // Reads admin.tokens_file (if set) and the environment variable admin.tokens_env
    // (if set and present). Errors name the file and line.
    static absl::StatusOr<std::shared_ptr<const admin_tokens>> load(const admin_config& cfg);

    // Parses token text; origin names it in error messages.
    static absl::StatusOr<std::shared_ptr<const admin_tokens>> parse(std::string_view text,
                                                                     std::string_view origin);

    // The identity for an Authorization header value ("Bearer <token>"), or nullptr.
    const admin_identity* check(std::string_view authorization) const;

    bool empty() const { return entries_.empty(); }
    std::size_t size() const { return entries_.size(); }

private:
    struct entry {
        admin_identity who;
        std::array<unsigned char, 32> digest{};
    };
    absl::Status add_text(std::string_view text, std::string_view origin, bool semicolons);

    std::vector<entry> entries_;
};

}  // namespace floodgate
