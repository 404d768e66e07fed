// base64url (RFC 4648 section 5) without padding, as used in tokens and key files.
//
// Decoding is strict: any character outside [A-Za-z0-9_-], '=' padding, a length of 1 mod 4, or
// non-zero unused bits in the last character is an error. So every byte string has exactly one
// accepted encoding, which keeps tokens from being malleable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace floodgate::tokenstore::base64url {

constexpr std::size_t encoded_size(std::size_t n) { return (n * 4 + 2) / 3; }

// Upper bound of the decoded size; exact for valid input.
constexpr std::size_t decoded_size(std::size_t n) { return n * 3 / 4; }

// Appends the encoding of [data, data + n) to out.
void encode(const std::uint8_t* data, std::size_t n, std::string& out);

std::string encode(std::string_view bytes);

// Decodes text into out, which must hold decoded_size(text.size()) bytes. Returns the number of
// bytes written, or -1 if text is not canonical base64url.
std::ptrdiff_t decode(std::string_view text, std::uint8_t* out) noexcept;

// Returns false if text is not canonical base64url.
bool decode(std::string_view text, std::string& out);

}  // namespace floodgate::tokenstore::base64url
