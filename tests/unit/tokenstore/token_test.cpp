#include "tokenstore/token.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <random>
#include <vector>
#include <string>

#include "tokenstore/base64url.hpp"
#include "tokenstore/hmac_key.hpp"

using namespace floodgate::tokenstore;

namespace {

constexpr std::uint32_t now_s = 1'700'000'000;

std::unique_ptr<key_ring> test_ring() {
    auto r = key_ring::parse("k1 " + base64url::encode(std::string(32, 'a')) + "\n", "test");
    REQUIRE(r.ok());
    return *std::move(r);
}

token ticket_for(std::uint64_t room, std::uint64_t seq = 42) {
    return token{.type = token_type::ticket,
                 .room = room,
                 .seq = seq,
                 .iat = now_s,
                 .exp = now_s + 3600};
}

verify_expect expect_ticket(std::uint64_t room, const client_binding* client = nullptr) {
    return {.room = room, .type = token_type::ticket, .now_s = now_s + 1, .client = client};
}

}  // namespace

TEST_CASE("base64url round-trips every length and rejects non-canonical text", "[token]") {
    std::string bytes;
    for (int n = 0; n < 40; ++n) {
        std::string decoded;
        REQUIRE(base64url::decode(base64url::encode(bytes), decoded));
        CHECK(decoded == bytes);
        bytes.push_back(char(n * 37 + 11));
    }
    std::string out;
    CHECK_FALSE(base64url::decode("QQ==", out));  // padding
    CHECK_FALSE(base64url::decode("Q", out));     // 1 mod 4
    CHECK_FALSE(base64url::decode("QR", out));    // unused bits set
    CHECK_FALSE(base64url::decode("a+b/", out));  // plain base64 alphabet
    CHECK(base64url::decode("QQ", out));
    CHECK(out == "A");
}

TEST_CASE("base64url decoding refuses a byte outside the alphabet at any place of a group", "[token]") {
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int b = 0; b < 256; ++b) {
        const auto at = alphabet.find(static_cast<char>(b));
        for (std::size_t place = 0; place < 8; ++place) {
            std::string text = "QUJDREVG";  // "ABCDEF": two groups of four
            text[place] = static_cast<char>(b);
            std::string out;
            INFO("byte " << b << " at " << place);
            REQUIRE(base64url::decode(text, out) == (at != std::string_view::npos));
            if (at == std::string_view::npos) continue;
            // The 6 bits of the character land where the place says.
            const std::size_t bit = place * 6;
            unsigned got = 0;
            for (std::size_t k = 0; k < 6; ++k) {
                const std::size_t pos = bit + k;
                got = got << 1 | ((static_cast<unsigned char>(out[pos / 8]) >> (7 - pos % 8)) & 1u);
            }
            CHECK(got == at);
        }
    }
}

TEST_CASE("a signed ticket verifies and carries its claims", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("vaccine");
    const std::string text = sign_token(*keys, ticket_for(room));
    CHECK(text.rfind("v1.k1.", 0) == 0);
    CHECK(text.size() < 100);
    const verify_result r = verify_token(*keys, text, expect_ticket(room));
    REQUIRE(r.status == verify_status::ok);
    CHECK(r.claims.type == token_type::ticket);
    CHECK(r.claims.room == room);
    CHECK(r.claims.seq == 42);
    CHECK(r.claims.iat == now_s);
    CHECK(r.claims.exp == now_s + 3600);
    CHECK(r.claims.binding == 0);
}

TEST_CASE("a signed pass verifies with its slot and generation", "[token]") {
    auto keys = test_ring();
    token t = ticket_for(room_id("r"), 7);
    t.type = token_type::pass;
    t.slot = 123;
    t.slot_gen = 9;
    const std::string text = sign_token(*keys, t);
    const verify_result r = verify_token(
        *keys, text, {.room = room_id("r"), .type = token_type::pass, .now_s = now_s});
    REQUIRE(r.status == verify_status::ok);
    CHECK(r.claims.slot == 123);
    CHECK(r.claims.slot_gen == 9);
    CHECK(r.claims.seq == 7);
}

TEST_CASE("malformed tokens are rejected as malformed", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("vaccine");
    const std::string good = sign_token(*keys, ticket_for(room));
    const auto status = [&](std::string_view text) {
        return verify_token(*keys, text, expect_ticket(room)).status;
    };
    const std::size_t mac_dot = good.rfind('.');
    const std::size_t payload_dot = good.find('.', 3);

    CHECK(status("") == verify_status::malformed);
    CHECK(status("v2" + good.substr(2)) == verify_status::malformed);        // wrong version
    CHECK(status("v1") == verify_status::malformed);
    CHECK(status("v1.k1") == verify_status::malformed);
    CHECK(status("v1.k1.AAAA") == verify_status::malformed);
    std::string bad_b64 = good;
    bad_b64[payload_dot + 3] = '*';
    CHECK(status(bad_b64) == verify_status::malformed);                     // bad base64
    const std::string truncated =
        good.substr(0, payload_dot + 1) + good.substr(payload_dot + 5);       // payload too short
    CHECK(status(truncated) == verify_status::malformed);
    CHECK(status(good + ".x") == verify_status::malformed);                  // extra dot
    CHECK(status(good.substr(0, mac_dot) + ".." + good.substr(mac_dot + 1)) ==
          verify_status::malformed);
    CHECK(status(good.substr(0, good.size() - 1)) == verify_status::malformed);  // short mac
    CHECK(status("v1.bad!kid" + good.substr(payload_dot)) == verify_status::malformed);
    CHECK(status(std::string(500, 'a')) == verify_status::malformed);
}

TEST_CASE("a token with a changed payload or MAC fails the MAC check", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("vaccine");
    token t = ticket_for(room, 1000);
    const std::string good = sign_token(*keys, t);
    // The same layout with another seq, keeping the original MAC.
    t.seq = 1;
    const std::string other = sign_token(*keys, t);
    const std::string forged = other.substr(0, other.rfind('.')) + good.substr(good.rfind('.'));
    CHECK(verify_token(*keys, forged, expect_ticket(room)).status == verify_status::bad_mac);

    std::string flipped = good;
    char& c = flipped[flipped.size() - 2];
    c = c == 'A' ? 'B' : 'A';
    CHECK(verify_token(*keys, flipped, expect_ticket(room)).status == verify_status::bad_mac);

    // Same kid, another secret.
    auto stranger = key_ring::parse("k1 " + base64url::encode(std::string(32, 'b')), "x");
    REQUIRE(stranger.ok());
    CHECK(verify_token(**stranger, good, expect_ticket(room)).status == verify_status::bad_mac);
}

TEST_CASE("an expired token is rejected as expired", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("vaccine");
    const std::string text = sign_token(*keys, ticket_for(room));
    verify_expect e = expect_ticket(room);
    e.now_s = now_s + 3599;
    CHECK(verify_token(*keys, text, e).status == verify_status::ok);
    e.now_s = now_s + 3600;
    CHECK(verify_token(*keys, text, e).status == verify_status::expired);
}

TEST_CASE("a token for room A never verifies for room B", "[token]") {
    auto keys = test_ring();
    const std::string text = sign_token(*keys, ticket_for(room_id("a")));
    CHECK(room_id("a") != room_id("b"));
    CHECK(verify_token(*keys, text, expect_ticket(room_id("b"))).status ==
          verify_status::wrong_room);
}

TEST_CASE("a ticket presented as a pass is rejected as the wrong type", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("a");
    const std::string ticket = sign_token(*keys, ticket_for(room));
    verify_expect e = expect_ticket(room);
    e.type = token_type::pass;
    CHECK(verify_token(*keys, ticket, e).status == verify_status::wrong_type);
}

TEST_CASE("a bound token verifies only for the same client", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("a");
    const client_binding alice{"203.0.113.0/24", "Firefox"};
    const client_binding other_ip{"198.51.100.0/24", "Firefox"};
    const client_binding other_ua{"203.0.113.0/24", "Chrome"};
    const std::string text = sign_token(*keys, ticket_for(room), &alice);
    CHECK(verify_token(*keys, text, expect_ticket(room, &alice)).status == verify_status::ok);
    CHECK(verify_token(*keys, text, expect_ticket(room, &other_ip)).status ==
          verify_status::binding);
    CHECK(verify_token(*keys, text, expect_ticket(room, &other_ua)).status ==
          verify_status::binding);
    CHECK(verify_token(*keys, text, expect_ticket(room)).status == verify_status::binding);
    // An unbound token verifies whatever the client looks like.
    const std::string unbound = sign_token(*keys, ticket_for(room));
    CHECK(verify_token(*keys, unbound, expect_ticket(room, &other_ip)).status ==
          verify_status::ok);
}

TEST_CASE("the binding hash is keyed and separates its fields", "[token]") {
    auto a = key_ring::parse("k1 " + base64url::encode(std::string(32, 'a')), "a");
    auto b = key_ring::parse("k1 " + base64url::encode(std::string(32, 'b')), "b");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    const hmac_key& ka = (*a)->signing_key();
    CHECK(ka.binding("10.0.0.0/24", "UA") != (*b)->signing_key().binding("10.0.0.0/24", "UA"));
    CHECK(ka.binding("10.0.0.0/24", "UA") == ka.binding("10.0.0.0/24", "UA"));
    CHECK(ka.binding("ab", "c") != ka.binding("a", "bc"));
    CHECK(ka.binding("", "") != 0);
}

TEST_CASE("a token signed with a key the ring lacks is rejected as unknown kid", "[token]") {
    auto keys = test_ring();
    auto other = key_ring::parse("zz9 " + base64url::encode(std::string(32, 'a')), "o");
    REQUIRE(other.ok());
    const std::uint64_t room = room_id("a");
    const std::string text = sign_token(**other, ticket_for(room));
    CHECK(verify_token(*keys, text, expect_ticket(room)).status == verify_status::unknown_kid);
}

TEST_CASE("tokens are reported with stable reason names", "[token]") {
    CHECK(to_string(verify_status::ok) == "ok");
    CHECK(to_string(verify_status::bad_mac) == "bad_mac");
    CHECK(to_string(verify_status::wrong_room) == "wrong_room");
    CHECK(to_string(verify_status::binding) == "binding");
}

TEST_CASE("a key's MAC is HMAC-SHA256, for secrets shorter and longer than a block", "[token]") {
    // RFC 4231 test case 6: a 131-byte key, hashed first.
    auto long_key = hmac_key::create("k", std::string(131, '\xaa'));
    REQUIRE(long_key.ok());
    std::uint8_t mac[hmac_key::mac_size];
    (*long_key)->mac("Test Using Larger Than Block-Size Key - Hash Key First", mac);
    const std::uint8_t rfc4231_6[hmac_key::mac_size] = {0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f,
                                                        0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5, 0xb7, 0x7f};
    CHECK(std::equal(mac, mac + sizeof mac, rfc4231_6));

    // A 32-byte secret and text of several lengths, against OpenSSL's one-shot HMAC.
    const std::string secret = "0123456789abcdef0123456789ABCDEF";
    auto key = hmac_key::create("k", secret);
    REQUIRE(key.ok());
    std::string text;
    for (int n = 0; n <= 200; ++n) {  // one, two and three blocks, the padding at every place
        unsigned char full[32];
        unsigned len = 0;
        REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                     reinterpret_cast<const unsigned char*>(text.data()), text.size(), full, &len) != nullptr);
        (*key)->mac(text, mac);
        INFO("text of " << n << " bytes");
        CHECK(std::equal(mac, mac + sizeof mac, full));
        text.push_back(static_cast<char>('a' + n % 26));
    }
}

namespace {

bool same_result(const verify_result& a, const verify_result& b) {
    if (a.status != b.status) return false;
    if (a.status != verify_status::ok) return true;
    const token &x = a.claims, &y = b.claims;
    return x.type == y.type && x.room == y.room && x.seq == y.seq && x.iat == y.iat &&
           x.exp == y.exp && x.binding == y.binding && x.slot == y.slot && x.slot_gen == y.slot_gen;
}

}  // namespace

TEST_CASE("a remembered token is still checked for type, room, expiry and binding", "[token]") {
    auto keys = test_ring();
    const std::uint64_t room = room_id("a");
    const client_binding alice{"203.0.113.0/24", "Firefox"};
    const client_binding other_ip{"198.51.100.0/24", "Firefox"};
    const std::string text = sign_token(*keys, ticket_for(room, 77), &alice);
    token_memo memo;
    for (int i = 0; i < 2; ++i) {  // the first call fills the memo, the second reads it
        const verify_result r = verify_token(*keys, text, expect_ticket(room, &alice), &memo);
        REQUIRE(r.status == verify_status::ok);
        CHECK(r.claims.seq == 77);
    }
    CHECK(verify_token(*keys, text, expect_ticket(room, &other_ip), &memo).status ==
          verify_status::binding);
    CHECK(verify_token(*keys, text, expect_ticket(room), &memo).status == verify_status::binding);
    CHECK(verify_token(*keys, text, expect_ticket(room_id("b"), &alice), &memo).status ==
          verify_status::wrong_room);
    verify_expect later = expect_ticket(room, &alice);
    later.now_s = now_s + 3600;
    CHECK(verify_token(*keys, text, later, &memo).status == verify_status::expired);
    verify_expect as_pass = expect_ticket(room, &alice);
    as_pass.type = token_type::pass;
    CHECK(verify_token(*keys, text, as_pass, &memo).status == verify_status::wrong_type);
    CHECK(verify_token(*keys, text, expect_ticket(room, &alice), &memo).status == verify_status::ok);
}

TEST_CASE("a memo never vouches for a token under another ring or for other text", "[token]") {
    const std::uint64_t room = room_id("a");
    token_memo memo;
    auto keys = test_ring();
    const std::string good = sign_token(*keys, ticket_for(room));
    REQUIRE(verify_token(*keys, good, expect_ticket(room), &memo).status == verify_status::ok);

    // Same kid, another secret: the memo's text does not make it valid there.
    auto stranger = key_ring::parse("k1 " + base64url::encode(std::string(32, 'b')), "x");
    REQUIRE(stranger.ok());
    CHECK(verify_token(**stranger, good, expect_ticket(room), &memo).status ==
          verify_status::bad_mac);

    // The first ring gone and another made, most likely at the same address, whose k1 has
    // another secret: the remembered text is checked again.
    REQUIRE(verify_token(*keys, good, expect_ticket(room), &memo).status == verify_status::ok);
    keys.reset();
    auto next = key_ring::parse("k1 " + base64url::encode(std::string(32, 'c')), "y");
    REQUIRE(next.ok());
    CHECK(verify_token(**next, good, expect_ticket(room), &memo).status == verify_status::bad_mac);

    // A changed text is checked in full and does not replace the remembered one.
    auto ring = test_ring();
    const std::string text = sign_token(*ring, ticket_for(room));
    REQUIRE(verify_token(*ring, text, expect_ticket(room), &memo).status == verify_status::ok);
    for (std::size_t i = 0; i < text.size(); ++i) {
        std::string changed = text;
        changed[i] = changed[i] == 'A' ? 'B' : 'A';
        CHECK(verify_token(*ring, changed, expect_ticket(room), &memo).status != verify_status::ok);
        CHECK(verify_token(*ring, text.substr(0, i), expect_ticket(room), &memo).status !=
              verify_status::ok);
    }
    CHECK(verify_token(*ring, text, expect_ticket(room), &memo).status == verify_status::ok);
    // A rotated ring keeps its keys: what it signed before still verifies.
    REQUIRE(ring->rotate().ok());
    CHECK(verify_token(*ring, text, expect_ticket(room), &memo).status == verify_status::ok);
    memo.clear();
    CHECK(verify_token(*ring, text, expect_ticket(room), &memo).status == verify_status::ok);
}

TEST_CASE("verify_token gives the same answer with a memo as without, whatever comes in", "[token]") {
    std::mt19937_64 rng(20261123);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<std::unique_ptr<key_ring>> rings;
    rings.push_back(test_ring());
    rings.push_back(*key_ring::parse("k1 " + base64url::encode(std::string(32, 'b')) + "\nk2 " +
                                         base64url::encode(std::string(40, 'z')) + "\n",
                                     "two"));
    const client_binding clients[] = {{"203.0.113.0/24", "Firefox"}, {"198.51.100.0/24", "Firefox"}};
    const std::uint64_t rooms[] = {room_id("a"), room_id("b")};

    std::vector<std::string> texts;
    std::vector<verify_expect> fits;  // what each signed text verifies as
    for (auto& ring : rings)
        for (std::uint64_t room : rooms)
            for (int bound = 0; bound < 2; ++bound)
                for (token_type type : {token_type::ticket, token_type::pass}) {
                    token t = ticket_for(room, texts.size() + 1);
                    t.type = type;
                    t.slot = 3;
                    t.slot_gen = 5;
                    t.exp = now_s + 10 + static_cast<std::uint32_t>(texts.size());
                    texts.push_back(sign_token(*ring, t, bound ? &clients[0] : nullptr));
                    fits.push_back({.room = room, .type = type, .now_s = now_s, .client = &clients[0]});
                }
    const std::size_t signed_count = texts.size();
    for (std::size_t i = 0; i < signed_count; ++i) {  // near misses of each
        std::string changed = texts[i];
        changed[3 + pick(changed.size() - 3)] ^= 1;
        texts.push_back(changed);
        texts.push_back(texts[i].substr(0, texts[i].size() - 1));
    }

    token_memo memo;
    std::size_t accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        const key_ring& ring = *rings[pick(100) < 90 ? 0 : 1];  // mostly one ring, as in use
        // A run of the same text, as a browser polling over one connection sends it.
        const std::size_t which = pick(100) < 70 ? i / 8 % signed_count : pick(texts.size());
        const std::string& text = texts[which];
        // Mostly what the text was signed for, else anything.
        verify_expect e{.room = rooms[pick(2)],
                        .type = pick(2) ? token_type::ticket : token_type::pass,
                        .now_s = now_s,
                        .client = pick(4) ? &clients[pick(2)] : nullptr};
        if (which < signed_count && pick(100) < 70) e = fits[which];
        e.now_s = now_s + static_cast<std::uint32_t>(pick(40));
        const verify_result with = verify_token(ring, text, e, &memo);
        const verify_result without = verify_token(ring, text, e);
        INFO("text " << text << " room " << e.room << " now " << e.now_s);
        REQUIRE(same_result(with, without));
        accepted += with.status == verify_status::ok;
    }
    CHECK(accepted > 1500);  // about a tenth: the run is not all refusals
}
