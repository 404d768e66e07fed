#include "tokenstore/key_ring.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tokenstore/base64url.hpp"
#include "tokenstore/token.hpp"
#include "temp_dir.hpp"

using namespace floodgate::tokenstore;
namespace fs = std::filesystem;

namespace {

std::string secret(char c, std::size_t n = 32) { return base64url::encode(std::string(n, c)); }

void write(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string error_of(std::string_view text) {
    auto r = key_ring::parse(text, "keys");
    REQUIRE_FALSE(r.ok());
    return std::string(r.status().message());
}

token some_ticket() {
    return {.type = token_type::ticket, .room = room_id("r"), .seq = 1, .iat = 10, .exp = 2000};
}

const verify_expect expect{.room = room_id("r"), .type = token_type::ticket, .now_s = 100};

}  // namespace

TEST_CASE("a key file loads with comments, blank lines, and the last key signing", "[keys]") {
    auto r = key_ring::parse("# keys\n\nold " + secret('a') + "\r\n  new\t" + secret('b') + "  \n",
                             "keys");
    REQUIRE(r.ok());
    CHECK((*r)->size() == 2);
    CHECK((*r)->signing_key().kid() == "new");
    CHECK((*r)->find("old") != nullptr);
    CHECK((*r)->find("nope") == nullptr);
}

TEST_CASE("key file errors name the line and the problem", "[keys]") {
    CHECK(error_of("") == "keys: no keys in the key file");
    CHECK(error_of("# only a comment\n") == "keys: no keys in the key file");
    CHECK(error_of("a " + secret('a') + "\nlonely\n") ==
          "keys:2: expected '<kid> <secret>', got one field");
    CHECK(error_of("a " + secret('a') + " extra\n") ==
          "keys:1: expected '<kid> <secret>', got more fields");
    CHECK(error_of("\n\nbad-kid " + secret('a')) ==
          "keys:3: kid 'bad-kid' must be 1-8 characters [A-Za-z0-9]");
    CHECK(error_of("waytoolongkid " + secret('a')) ==
          "keys:1: kid 'waytoolongkid' must be 1-8 characters [A-Za-z0-9]");
    CHECK(error_of("a " + secret('a') + "=\n").find("keys:1: secret of key 'a' is not base64url") ==
          0);
    CHECK(error_of("a " + secret('a', 16)) == "keys:1: secret of key 'a' is 16 bytes; at least 32 are required");
    CHECK(error_of("a " + secret('a') + "\n# x\nb " + secret('b') + "\na " + secret('c')) ==
          "keys:4: duplicate kid 'a' (first on line 1)");
}

TEST_CASE("a missing key file is reported with its path", "[keys]") {
    temp_dir dir("fg-keys");
    auto r = key_ring::load(dir.sub("absent"));
    REQUIRE_FALSE(r.ok());
    CHECK(std::string(r.status().message()).find("absent: cannot open key file") !=
          std::string::npos);
}

TEST_CASE("a generated key file has mode 0600 and a usable key", "[keys]") {
    temp_dir dir("fg-keys");
    const std::string path = dir.sub("token-keys");
    const mode_t old_umask = ::umask(0);  // even a permissive umask must not widen the mode
    const absl::Status s = key_ring::generate_key_file(path);
    ::umask(old_umask);
    REQUIRE(s.ok());
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto r = key_ring::load(path);
    REQUIRE(r.ok());
    CHECK((*r)->size() == 1);
    CHECK((*r)->signing_key().secret().size() == 32);
    // Never overwrites an existing key.
    CHECK_FALSE(key_ring::generate_key_file(path).ok());
}

TEST_CASE("load_or_generate creates the key file once and then reuses it", "[keys]") {
    temp_dir dir("fg-keys");
    const std::string path = dir.sub("k");
    auto first = key_ring::load_or_generate(path);
    REQUIRE(first.ok());
    auto second = key_ring::load_or_generate(path);
    REQUIRE(second.ok());
    CHECK((*first)->signing_key().kid() == (*second)->signing_key().kid());
    CHECK((*first)->signing_key().secret() == (*second)->signing_key().secret());
}

TEST_CASE("after rotation old tokens still verify and new ones use the new kid", "[keys]") {
    temp_dir dir("fg-keys");
    const std::string path = dir.sub("k");
    REQUIRE(key_ring::generate_key_file(path).ok());
    auto ring = key_ring::load(path);
    REQUIRE(ring.ok());
    key_ring& keys = **ring;
    const std::string old_kid(keys.signing_key().kid());
    const std::string old_token = sign_token(keys, some_ticket());

    auto new_kid = keys.rotate();
    REQUIRE(new_kid.ok());
    CHECK(*new_kid != old_kid);
    CHECK(keys.size() == 2);
    const std::string new_token = sign_token(keys, some_ticket());
    CHECK(new_token.rfind("v1." + *new_kid + ".", 0) == 0);
    CHECK(verify_token(keys, old_token, expect).status == verify_status::ok);
    CHECK(verify_token(keys, new_token, expect).status == verify_status::ok);

    // The file was rewritten (still 0600): another node loading it verifies both and signs new.
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto reloaded = key_ring::load(path);
    REQUIRE(reloaded.ok());
    CHECK((*reloaded)->signing_key().kid() == *new_kid);
    CHECK(verify_token(**reloaded, old_token, expect).status == verify_status::ok);
    CHECK(verify_token(**reloaded, new_token, expect).status == verify_status::ok);
}

TEST_CASE("a ring without a file rotates in memory", "[keys]") {
    auto r = key_ring::parse("a " + secret('a'), "mem");
    REQUIRE(r.ok());
    auto kid = (*r)->rotate();
    REQUIRE(kid.ok());
    CHECK((*r)->signing_key().kid() == *kid);
    CHECK((*r)->add("a", std::string(32, 'z')).code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("a key file that cannot be rewritten leaves the ring unchanged", "[keys]") {
    temp_dir dir("fg-keys");
    const std::string path = dir.sub("k");
    write(path, "a " + secret('a') + "\n");
    auto ring = key_ring::load(path);
    REQUIRE(ring.ok());
    fs::remove_all(dir.path());  // the directory is gone: the temporary file cannot be created
    CHECK_FALSE((*ring)->rotate().ok());
    CHECK((*ring)->size() == 1);
    CHECK((*ring)->signing_key().kid() == "a");
}

TEST_CASE("a key shared by another node verifies at once and signs only when told", "[keys]") {
    temp_dir dir("fg-keys");
    const std::string path = dir.sub("k");
    write(path, "a " + secret('a') + "\n");
    auto ring = key_ring::load(path);
    REQUIRE(ring.ok());
    key_ring& keys = **ring;

    // Node A makes the key; node B (another ring from the same file) learns it.
    auto made = keys.generate();
    REQUIRE(made.ok());
    CHECK(keys.size() == 1);  // generate() adds nothing
    auto other = key_ring::parse("a " + secret('a'), "node b");
    REQUIRE(other.ok());
    REQUIRE((*other)->add_verifying(made->first, made->second).ok());  // a ring without a file
    REQUIRE(keys.add_verifying(made->first, made->second).ok());
    CHECK(keys.add_verifying(made->first, made->second).code() == absl::StatusCode::kAlreadyExists);

    // Both verify a token signed with the new key, neither signs with it yet.
    CHECK(keys.signing_key().kid() == "a");
    CHECK((*other)->signing_key().kid() == "a");
    CHECK(sign_token(keys, some_ticket()).rfind("v1.a.", 0) == 0);
    REQUIRE(keys.sign_with(made->first));
    const std::string fresh = sign_token(keys, some_ticket());
    CHECK(fresh.rfind("v1." + made->first + ".", 0) == 0);
    CHECK(verify_token(**other, fresh, expect).status == verify_status::ok);
    CHECK_FALSE(keys.sign_with("nosuch"));

    // A key file that cannot be rewritten (read-only mount): the key is kept in memory anyway.
    fs::remove_all(dir.path());
    auto late = keys.generate();
    REQUIRE(late.ok());
    CHECK_FALSE(keys.add_verifying(late->first, late->second).ok());
    CHECK(keys.find(late->first) != nullptr);
    CHECK(keys.size() == 3);
}
