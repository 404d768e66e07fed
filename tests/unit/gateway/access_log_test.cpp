// Tests the JSON string writer behind the access log and the gateway's JSON
// answers (gateway/src/access_log.cpp): whatever bytes a client sends, the
// result is one valid JSON string that reads back as the same bytes.
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include <string>

#include "access_log.hpp"

using namespace floodgate;

namespace {

std::string quoted(std::string_view s, bool escape_non_ascii = true) {
    std::string out = "prefix:";
    append_json_string(out, s, escape_non_ascii);
    REQUIRE(out.substr(0, 7) == "prefix:");  // appended, not replaced
    return out.substr(7);
}

}  // namespace

TEST_CASE("a JSON string escapes quotes, backslashes and control bytes and nothing else", "[access_log]") {
    CHECK(quoted("") == R"("")");
    CHECK(quoted("bench") == R"("bench")");
    CHECK(quoted(R"(a"b\c)") == R"("a\"b\\c")");
    CHECK(quoted("\"") == R"("\"")");
    CHECK(quoted("line\r\n\tend") == R"("line\r\n\tend")");
    CHECK(quoted(std::string("a\0b\x1f\x7f", 5)) == R"("a\u0000b\u001f\u007f")");
    CHECK(quoted("caf\xc3\xa9") == R"("caf\u00c3\u00a9")");
    CHECK(quoted("caf\xc3\xa9", /*escape_non_ascii=*/false) == "\"caf\xc3\xa9\"");
}

TEST_CASE("every byte string reads back from its JSON string unchanged", "[access_log]") {
    // All 256 byte values, alone and between plain runs.
    for (int b = 0; b < 256; ++b) {
        const std::string s = std::string("run ") + static_cast<char>(b) + " run";
        const auto v = boost::json::parse(quoted(s));
        const auto& back = v.as_string();
        if (b < 0x80) {
            CHECK(std::string_view(back) == s);
        } else {
            // Escaped one by one, each byte reads back as the code point of its value.
            REQUIRE(back.size() == s.size() + 1);
            CHECK(static_cast<unsigned char>(back[4]) == 0xc0 + (b >> 6));
            CHECK(static_cast<unsigned char>(back[5]) == 0x80 + (b & 0x3f));
        }
    }
}
