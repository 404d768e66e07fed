// Tests gateway/include/gateway/text.hpp: the small string helpers the
// request path uses to compare header names and tokens.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/text.hpp"

using namespace floodgate;

namespace {

// The definition: byte by byte, only 'A'-'Z' folded.
bool iequals_bytewise(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (text::lower(a[i]) != text::lower(b[i])) return false;
    return true;
}

}  // namespace

TEST_CASE("iequals folds only ASCII letters", "[text]") {
    CHECK(text::iequals("Floodgate-Ticket", "floodgate-ticket"));
    CHECK(text::iequals("CONTENT-LENGTH", "content-length"));
    CHECK_FALSE(text::iequals("Floodgate-Ticket", "Floodgate-Tickeu"));
    CHECK_FALSE(text::iequals("abc", "abcd"));
    CHECK(text::iequals("", ""));
    // '@' and '`', '[' and '{' differ by 0x20 as letters do, but are not letters.
    CHECK_FALSE(text::iequals("@@@@@@@@", "````````"));
    CHECK_FALSE(text::iequals("[[[[[[[[[", "{{{{{{{{{"));
    CHECK_FALSE(text::iequals("\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0", "\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0"));
}

TEST_CASE("iequals judges every pair of bytes at every place as byte by byte", "[text]") {
    // Strings of 1 to 19 bytes: every place in the 8-byte steps and in the tail.
    for (std::size_t len = 1; len < 20; ++len) {
        for (std::size_t at = 0; at < len; ++at) {
            std::string a(len, 'k'), b(len, 'K');
            for (int x = 0; x < 256; ++x) {
                for (int y = 0; y < 256; ++y) {
                    a[at] = static_cast<char>(x);
                    b[at] = static_cast<char>(y);
                    if (text::iequals(a, b) != iequals_bytewise(a, b)) {
                        INFO("length " << len << ", place " << at << ", bytes " << x << " and " << y);
                        FAIL("iequals differs from the byte-by-byte definition");
                    }
                }
            }
        }
    }
    SUCCEED("all pairs agree");
}
