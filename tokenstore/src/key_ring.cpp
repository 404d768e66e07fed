#include "tokenstore/key_ring.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tokenstore/base64url.hpp"
#include "tokenstore/file_io.hpp"

namespace floodgate::tokenstore {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::string errno_text(int e) { return std::strerror(e); }

std::string file_text(const std::vector<std::unique_ptr<hmac_key>>& keys,
                      const std::array<std::unique_ptr<hmac_key>, key_ring::max_keys>& current,
                      std::size_t n) {
    std::string out =
        "# Floodgate token keys, oldest first; the last key signs, every key verifies.\n"
        "# One key per line: <kid> <secret as base64url>. Keep this file private (0600).\n";
    auto line = [&](const hmac_key& k) {
        out.append(k.kid());
        out.push_back(' ');
        out.append(base64url::encode(k.secret()));
        out.push_back('\n');
    };
    for (std::size_t i = 0; i < n; ++i) line(*current[i]);
    for (const auto& k : keys) line(*k);
    return out;
}

absl::StatusOr<std::string> random_bytes(std::size_t n) {
    std::string s(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1)
        return absl::InternalError("RAND_bytes failed: no entropy for a new key");
    return s;
}

absl::StatusOr<std::string> random_kid() {
    static constexpr char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    auto raw = random_bytes(6);
    if (!raw.ok()) return raw.status();
    std::string kid = "k";
    for (unsigned char c : *raw) kid.push_back(alnum[c % 62]);
    return kid;
}

}  // namespace

std::uint64_t key_ring::next_id() noexcept {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

absl::StatusOr<std::unique_ptr<key_ring>> key_ring::parse(std::string_view text,
                                                          std::string_view origin) {
    std::unique_ptr<key_ring> ring(new key_ring());
    mutex_lock lock(ring->mu_);
    std::vector<std::size_t> first_line;  // per key, the line it came from
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const std::size_t nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty() || line.front() == '#') continue;

        const std::string where = std::string(origin) + ":" + std::to_string(line_no) + ": ";
        const std::size_t sp = line.find_first_of(" \t");
        if (sp == std::string_view::npos)
            return absl::InvalidArgumentError(where + "expected '<kid> <secret>', got one field");
        const std::string_view kid = line.substr(0, sp);
        const std::string_view secret_text = trim(line.substr(sp));
        if (secret_text.find_first_of(" \t") != std::string_view::npos)
            return absl::InvalidArgumentError(where +
                                              "expected '<kid> <secret>', got more fields");
        if (!hmac_key::valid_kid(kid))
            return absl::InvalidArgumentError(where + "kid '" + std::string(kid) +
                                              "' must be 1-8 characters [A-Za-z0-9]");
        std::string secret;
        if (!base64url::decode(secret_text, secret))
            return absl::InvalidArgumentError(
                where + "secret of key '" + std::string(kid) +
                "' is not base64url without padding (alphabet A-Z a-z 0-9 - _)");
        if (secret.size() < hmac_key::min_secret_size)
            return absl::InvalidArgumentError(where + "secret of key '" + std::string(kid) +
                                              "' is " + std::to_string(secret.size()) +
                                              " bytes; at least 32 are required");
        const std::size_t n = ring->count_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i)
            if (ring->keys_[i]->kid() == kid)
                return absl::InvalidArgumentError(where + "duplicate kid '" + std::string(kid) +
                                                  "' (first on line " +
                                                  std::to_string(first_line[i]) + ")");
        if (n == max_keys)
            return absl::InvalidArgumentError(where + "more than " + std::to_string(max_keys) +
                                              " keys; remove old ones");
        auto key = hmac_key::create(kid, secret);
        if (!key.ok()) return absl::InvalidArgumentError(where + std::string(key.status().message()));
        ring->keys_[n] = *std::move(key);
        ring->count_.store(n + 1, std::memory_order_release);
        ring->signing_.store(n, std::memory_order_release);
        first_line.push_back(line_no);
    }
    if (ring->count_.load(std::memory_order_relaxed) == 0)
        return absl::InvalidArgumentError(std::string(origin) + ": no keys in the key file");
    return ring;
}

absl::StatusOr<std::unique_ptr<key_ring>> key_ring::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(path + ": cannot open key file: " + errno_text(errno));
    std::ostringstream buf;
    buf << in.rdbuf();
    auto ring = parse(buf.str(), path);
    if (!ring.ok()) return ring.status();
    (*ring)->path_ = path;
    return ring;
}

absl::Status key_ring::generate_key_file(const std::string& path) {
    auto kid = random_kid();
    if (!kid.ok()) return kid.status();
    auto secret = random_bytes(32);
    if (!secret.ok()) return secret.status();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return absl::AlreadyExistsError(path + ": cannot create: " + errno_text(errno));
    ::fchmod(fd, 0600);  // the umask may only narrow the mode; make it exactly 0600
    const std::string text =
        "# Floodgate token keys, oldest first; the last key signs, every key verifies.\n"
        "# One key per line: <kid> <secret as base64url>. Keep this file private (0600).\n" +
        *kid + " " + base64url::encode(*secret) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int e = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        return absl::UnavailableError(path + ": write failed: " + errno_text(e));
    }
    return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<key_ring>> key_ring::load_or_generate(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
        auto s = generate_key_file(path);
        if (!s.ok()) return s;
    }
    return load(path);
}

absl::Status key_ring::add_locked(std::unique_ptr<hmac_key> key, bool sign, bool keep_unsaved) {
    const std::size_t n = count_.load(std::memory_order_relaxed);
    if (find(key->kid()) != nullptr)
        return absl::AlreadyExistsError("kid '" + std::string(key->kid()) + "' already exists");
    if (n == max_keys)
        return absl::ResourceExhaustedError("key ring holds " + std::to_string(max_keys) +
                                            " keys; remove old keys from the file and reload");
    absl::Status saved = absl::OkStatus();
    if (!path_.empty()) {
        std::vector<std::unique_ptr<hmac_key>> extra;
        extra.push_back(std::move(key));
        saved = replace_file(path_, file_text(extra, keys_, n));
        if (!saved.ok() && !keep_unsaved) return saved;
        key = std::move(extra.front());
    }
    keys_[n] = std::move(key);
    count_.store(n + 1, std::memory_order_release);
    if (sign) signing_.store(n, std::memory_order_release);
    return saved;
}

absl::Status key_ring::add(std::string_view kid, std::string_view secret) {
    auto key = hmac_key::create(kid, secret);
    if (!key.ok()) return key.status();
    mutex_lock lock(mu_);
    return add_locked(*std::move(key), /*sign=*/true);
}

absl::StatusOr<std::pair<std::string, std::string>> key_ring::generate() const {
    auto secret = random_bytes(32);
    if (!secret.ok()) return secret.status();
    for (int attempt = 0; attempt < 16; ++attempt) {
        auto kid = random_kid();
        if (!kid.ok()) return kid.status();
        if (find(*kid) == nullptr) return std::pair{*kid, base64url::encode(*secret)};
    }
    return absl::InternalError("could not pick an unused kid");
}

absl::Status key_ring::add_verifying(std::string_view kid, std::string_view secret_b64) {
    std::string secret;
    if (!base64url::decode(secret_b64, secret))
        return absl::InvalidArgumentError("secret of key '" + std::string(kid) + "' is not base64url");
    auto key = hmac_key::create(kid, secret);
    if (!key.ok()) return key.status();
    mutex_lock lock(mu_);
    return add_locked(*std::move(key), /*sign=*/false, /*keep_unsaved=*/true);
}

bool key_ring::sign_with(std::string_view kid) {
    mutex_lock lock(mu_);
    const std::size_t n = count_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
        if (keys_[i]->kid() != kid) continue;
        signing_.store(i, std::memory_order_release);
        return true;
    }
    return false;
}

absl::StatusOr<std::string> key_ring::rotate() {
    auto secret = random_bytes(32);
    if (!secret.ok()) return secret.status();
    mutex_lock lock(mu_);
    for (int attempt = 0; attempt < 16; ++attempt) {
        auto kid = random_kid();
        if (!kid.ok()) return kid.status();
        if (find(*kid) != nullptr) continue;
        auto key = hmac_key::create(*kid, *secret);
        if (!key.ok()) return key.status();
        auto s = add_locked(*std::move(key), /*sign=*/true);
        if (!s.ok()) return s;
        return *kid;
    }
    return absl::InternalError("could not pick an unused kid");
}

}  // namespace floodgate::tokenstore
