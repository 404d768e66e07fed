// Small string helpers for std::string_view. Debian's Abseil is built with its
// own absl::string_view (not std::string_view), so absl::StrCat and friends do
// not accept std::string_view; these fill that gap without conversions.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace floodgate::text {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' ||
                          s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                          s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

namespace detail {
// lower() of each of the eight bytes of w: 0x20 added to each byte from 'A' to
// 'Z'; other bytes, those from 0x80 too, are left as they are.
inline std::uint64_t lower8(std::uint64_t w) {
    constexpr std::uint64_t ones = 0x0101010101010101, highs = ones * 0x80;
    const std::uint64_t low7 = w & (ones * 0x7f);
    const std::uint64_t from_a = low7 + ones * (0x80 - 'A');      // high bit: low7 >= 'A'
    const std::uint64_t past_z = low7 + ones * (0x80 - 'Z' - 1);  // high bit: low7 > 'Z'
    return w | ((from_a & ~past_z & ~w & highs) >> 2);
}
}  // namespace detail

// ASCII case-insensitive equality (header names, tokens): eight bytes at a time.
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    std::size_t i = 0;
    for (; a.size() - i >= 8; i += 8) {
        std::uint64_t x, y;
        std::memcpy(&x, a.data() + i, 8);
        std::memcpy(&y, b.data() + i, 8);
        if (x != y && detail::lower8(x) != detail::lower8(y)) return false;
    }
    for (; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

inline bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

namespace detail {
// Strings of any kind (std::string_view, Boost's string_view, char arrays),
// characters and numbers.
template <class T>
void append(std::string& out, const T& v) {
    if constexpr (std::is_same_v<T, char>) out.push_back(v);
    else if constexpr (std::is_floating_point_v<T>) {
        char buf[32];  // shortest form: 0.5, 10000000, 1e+12 (to_string would give 0.500000)
        out.append(buf, static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%.10g", static_cast<double>(v))));
    } else if constexpr (std::is_arithmetic_v<T>) out.append(std::to_string(v));
    else if constexpr (std::is_convertible_v<const T&, std::string_view>) out.append(std::string_view(v));
    else out.append(v.data(), v.size());
}
}  // namespace detail

// cat("a", sv, 42) == "a" + sv + "42"
template <class... Args>
std::string cat(const Args&... args) {
    std::string out;
    (detail::append(out, args), ...);
    return out;
}

template <class Range>
std::string join(const Range& items, std::string_view sep) {
    std::string out;
    bool first = true;
    for (const auto& i : items) {
        if (!first) out.append(sep);
        first = false;
        detail::append(out, i);
    }
    return out;
}

}  // namespace floodgate::text
