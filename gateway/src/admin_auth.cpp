#include "admin_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gateway/text.hpp"

namespace floodgate {

namespace {

std::array<unsigned char, 32> digest_of(std::string_view s) {
    std::array<unsigned char, 32> d{};
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
    return d;
}

bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.' || c == '@'))
            return false;
    return true;
}

}  // namespace

absl::Status admin_tokens::add_text(std::string_view text, std::string_view origin, bool semicolons) {
    std::size_t line_no = 0;
    while (!text.empty()) {
        std::size_t end = text.find_first_of(semicolons ? "\n;" : "\n");
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        ++line_no;
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = text::trim(line);
        if (line.empty()) continue;
        std::vector<std::string_view> words;
        while (!line.empty()) {
            const std::size_t sp = line.find_first_of(" \t");
            words.push_back(line.substr(0, sp));
            line = sp == std::string_view::npos ? std::string_view() : text::trim(line.substr(sp));
        }
        const std::string where = semicolons ? text::cat(origin, " entry ", line_no) : text::cat(origin, ":", line_no);
        if (words.size() != 3)
            return absl::InvalidArgumentError(
                text::cat(where, ": expected \"<role> <name> <token>\" (role operator or viewer), got ",
                          words.size(), " words"));
        entry e;
        if (words[0] == "operator") e.who.role = admin_role::operator_;
        else if (words[0] == "viewer") e.who.role = admin_role::viewer;
        else
            return absl::InvalidArgumentError(
                text::cat(where, ": role must be operator or viewer, got \"", words[0], "\""));
        if (!valid_name(words[1]))
            return absl::InvalidArgumentError(
                text::cat(where, ": name must be 1-64 of A-Z a-z 0-9 _ - . @ (it is written to the audit log)"));
        if (words[2].size() < 16)
            return absl::InvalidArgumentError(
                text::cat(where, ": the token of \"", words[1], "\" is ", words[2].size(),
                          " characters; use at least 16 random characters (openssl rand -hex 24)"));
        for (const auto& other : entries_)
            if (other.who.name == words[1])
                return absl::InvalidArgumentError(text::cat(where, ": name \"", words[1], "\" appears twice"));
        e.who.name = std::string(words[1]);
        e.digest = digest_of(words[2]);
        entries_.push_back(std::move(e));
    }
    return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const admin_tokens>> admin_tokens::parse(std::string_view text,
                                                                        std::string_view origin) {
    auto t = std::make_shared<admin_tokens>();
    if (auto st = t->add_text(text, origin, false); !st.ok()) return st;
    return std::shared_ptr<const admin_tokens>(std::move(t));
}

absl::StatusOr<std::shared_ptr<const admin_tokens>> admin_tokens::load(const admin_config& cfg) {
    auto t = std::make_shared<admin_tokens>();
    if (!cfg.tokens_file.empty()) {
        std::ifstream in(cfg.tokens_file, std::ios::binary);
        if (!in)
            return absl::NotFoundError(text::cat("admin.tokens_file: cannot open ", cfg.tokens_file));
        std::ostringstream ss;
        ss << in.rdbuf();
        if (auto st = t->add_text(ss.str(), cfg.tokens_file, false); !st.ok()) return st;
    }
    if (!cfg.tokens_env.empty()) {
        if (const char* v = std::getenv(cfg.tokens_env.c_str()); v != nullptr)
            if (auto st = t->add_text(v, text::cat("$", cfg.tokens_env), true); !st.ok()) return st;
    }
    return std::shared_ptr<const admin_tokens>(std::move(t));
}

const admin_identity* admin_tokens::check(std::string_view authorization) const {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size() || !text::iequals(authorization.substr(0, scheme.size()), scheme))
        return nullptr;
    const auto d = digest_of(text::trim(authorization.substr(scheme.size())));
    const admin_identity* found = nullptr;
    for (const auto& e : entries_)  // every entry, no early exit
        if (CRYPTO_memcmp(d.data(), e.digest.data(), d.size()) == 0) found = &e.who;
    return found;
}

}  // namespace floodgate
