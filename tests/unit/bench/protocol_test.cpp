#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <string>

#include "loadgen/protocol.hpp"

using namespace floodgate::bench;

namespace {

std::string b64url(const std::string& in) {
    static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(digits[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(digits[(acc << (6 - bits)) & 63]);
    return out;
}

// A token as tokenstore/token.hpp lays it out (the MAC is not checked by the bench).
std::string token(std::uint8_t type, std::uint64_t seq) {
    std::string payload(1, char(type));
    for (int i = 0; i < 8; ++i) payload.push_back(char(0x11 * (i + 1)));  // room
    for (int i = 0; i < 8; ++i) payload.push_back(char((seq >> (8 * i)) & 0xff));
    payload.append(16, '\0');  // iat, exp, binding
    return "v1.abcdefg." + b64url(payload) + "." + b64url(std::string(16, 'm'));
}

}  // namespace

TEST_CASE("a cookie's value is read from its Set-Cookie line", "[protocol]") {
    CHECK(cookie_value("fg_ticket_vaccine=v1.a.b.c; Path=/; HttpOnly", "fg_ticket_vaccine") == "v1.a.b.c");
    CHECK(cookie_value("fg_pass_vaccine=; Path=/; Max-Age=0", "fg_pass_vaccine") == "");
    CHECK_FALSE(cookie_value("fg_pass_vaccine=x", "fg_ticket_vaccine").has_value());
    CHECK_FALSE(cookie_value("fg_ticket_vaccine2=x", "fg_ticket_vaccine").has_value());
}

TEST_CASE("the seq is read from a ticket and nothing else", "[protocol]") {
    CHECK(ticket_seq(token(1, 0)) == 0u);
    CHECK(ticket_seq(token(1, 42)) == 42u);
    CHECK(ticket_seq(token(1, 0x0102030405060708ull)) == 0x0102030405060708ull);
    CHECK_FALSE(ticket_seq(token(2, 42)).has_value());  // a pass
    CHECK_FALSE(ticket_seq("v2.abc.def.ghi").has_value());
    CHECK_FALSE(ticket_seq("v1.abc").has_value());
    CHECK_FALSE(ticket_seq("v1.k.AAAA.m").has_value());  // too short
    CHECK_FALSE(ticket_seq("v1.k.!!!!!!!!!!!!!!!!!!!!!!!!!!.m").has_value());
}

TEST_CASE("a status answer gives the fields a waiting person acts on", "[protocol]") {
    auto a = parse_status(R"({"room":"vaccine","state":"waiting","position":12,"ahead":11,"eta_s":3,)"
                          R"("poll_after_ms":1000,"light":"yellow","ticket":"v1.x.y.z"})");
    REQUIRE(a);
    CHECK(a->state == "waiting");
    CHECK(a->position == 12u);
    CHECK(a->ahead == 11u);
    CHECK(a->eta_s == 3.0);
    CHECK(a->poll_after_ms == 1000u);
    CHECK(a->light == "yellow");
    CHECK(a->ticket == "v1.x.y.z");
    auto unknown = parse_status(R"({"state":"paused","position":1,"ahead":0,"eta_s":null,"poll_after_ms":5000})");
    REQUIRE(unknown);
    CHECK_FALSE(unknown->eta_s.has_value());
    auto admitted = parse_status(R"({"state":"admitted","poll_after_ms":20000,"light":"green","pass":"v1.p.q.r"})");
    REQUIRE(admitted);
    CHECK(admitted->pass == "v1.p.q.r");
    CHECK_FALSE(parse_status("<html>").has_value());
    CHECK_FALSE(parse_status(R"({"error":"over capacity"})").has_value());
}
