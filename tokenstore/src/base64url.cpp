#include "tokenstore/base64url.hpp"

#include <array>

namespace floodgate::tokenstore::base64url {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_reverse() {
    std::array<std::int8_t, 256> r{};
    for (auto& v : r) v = -1;
    for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(alphabet[i])] = std::int8_t(i);
    return r;
}
constexpr auto reverse = make_reverse();

// The reverse table for each place in a group of four, its 6 bits already
// shifted to where they land in the group's 24; bit 31 marks a byte outside
// the alphabet. One OR of four lookups decodes a group and checks it.
constexpr std::array<std::uint32_t, 256> make_placed(int shift) {
    std::array<std::uint32_t, 256> r{};
    for (int c = 0; c < 256; ++c)
        r[c] = reverse[c] < 0 ? 0x80000000u : std::uint32_t(reverse[c]) << shift;
    return r;
}
constexpr std::array<std::uint32_t, 256> placed[4] = {make_placed(18), make_placed(12), make_placed(6),
                                                      make_placed(0)};

}  // namespace

void encode(const std::uint8_t* data, std::size_t n, std::string& out) {
    const std::size_t at = out.size();
    out.resize(at + encoded_size(n));
    char* o = out.data() + at;
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t v = (std::uint32_t(data[i]) << 16) |
                                (std::uint32_t(data[i + 1]) << 8) | data[i + 2];
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        const std::uint32_t v = std::uint32_t(data[i]) << 16;
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        const std::uint32_t v = (std::uint32_t(data[i]) << 16) | (std::uint32_t(data[i + 1]) << 8);
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
    }
}

std::string encode(std::string_view bytes) {
    std::string out;
    out.reserve(encoded_size(bytes.size()));
    encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), out);
    return out;
}

std::ptrdiff_t decode(std::string_view text, std::uint8_t* out) noexcept {
    const std::size_t n = text.size();
    if (n % 4 == 1) return -1;
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t o = 0;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const std::uint32_t v =
            placed[0][s[i]] | placed[1][s[i + 1]] | placed[2][s[i + 2]] | placed[3][s[i + 3]];
        if (v & 0x80000000u) return -1;
        out[o++] = std::uint8_t(v >> 16);
        out[o++] = std::uint8_t(v >> 8);
        out[o++] = std::uint8_t(v);
    }
    const std::size_t rest = n - i;
    if (rest == 2) {
        const int a = reverse[s[i]], b = reverse[s[i + 1]];
        if ((a | b) < 0 || (b & 0x0f) != 0) return -1;
        out[o++] = std::uint8_t((a << 2) | (b >> 4));
    } else if (rest == 3) {
        const int a = reverse[s[i]], b = reverse[s[i + 1]], c = reverse[s[i + 2]];
        if ((a | b | c) < 0 || (c & 0x03) != 0) return -1;
        const std::uint32_t v = (std::uint32_t(a) << 18) | (std::uint32_t(b) << 12) |
                                (std::uint32_t(c) << 6);
        out[o++] = std::uint8_t(v >> 16);
        out[o++] = std::uint8_t(v >> 8);
    }
    return static_cast<std::ptrdiff_t>(o);
}

bool decode(std::string_view text, std::string& out) {
    out.resize(decoded_size(text.size()));
    const auto n = decode(text, reinterpret_cast<std::uint8_t*>(out.data()));
    if (n < 0) {
        out.clear();
        return false;
    }
    out.resize(static_cast<std::size_t>(n));
    return true;
}

}  // namespace floodgate::tokenstore::base64url
