// See gateway/include/gateway/router.hpp for the matching rules.
//
// Patterns are stored as match keys without their trailing '/', so a prefix
// is "key starts with P, then ends or has '/'", and an exact path is "key is
// P, or P followed by one '/'". A path without parameters is its own key and
// is compared directly; otherwise the key is read lazily through
// path::key_reader. Case is folded character by character when the room is
// case-insensitive, so match() never allocates.
#include "gateway/router.hpp"

#include <algorithm>

#include "gateway/text.hpp"

namespace floodgate {
namespace {

// Does the match key of `path` start with `pattern` on a segment boundary?
// With `exact`, at most one '/' may follow.
bool key_matches(std::string_view path, std::string_view pattern, bool ci, bool exact) {
    path::key_reader k(path);
    for (const char pc : pattern) {
        int c = k.next();
        if (c < 0) return false;
        if (ci) c = static_cast<unsigned char>(text::lower(static_cast<char>(c)));
        if (c != static_cast<unsigned char>(pc)) return false;
    }
    const int c = k.next();
    if (c < 0) return true;
    if (c != '/') return false;
    return !exact || k.next() < 0;
}

// The same for a path without parameters, whose key is the path itself.
bool plain_matches(std::string_view path, std::string_view pattern, bool ci, bool exact) {
    if (path.size() < pattern.size()) return false;
    const std::string_view head = path.substr(0, pattern.size());
    if (ci ? !text::iequals(head, pattern) : head != pattern) return false;
    const std::string_view rest = path.substr(pattern.size());
    if (rest.empty()) return true;
    if (rest.front() != '/') return false;
    return !exact || rest.size() == 1;
}

bool method_listed(const std::vector<std::string>& methods, std::string_view method) {
    for (const auto& m : methods) {
        if (text::iequals(m, method)) return true;
        if (m == "GET" && text::iequals(method, "HEAD")) return true;
    }
    return false;
}

// `host` is canonical and lowercase, like the listed hosts.
bool host_listed(const std::vector<std::string>& hosts, std::string_view host) {
    for (const auto& h : hosts)
        if (h == host) return true;
    return false;
}

// A DNS name has at most 253 characters; a longer Host matches no listed host.
constexpr std::size_t max_host = 256;

}  // namespace

std::string_view router::canonical_host(std::string_view host) {
    host = text::trim(host);
    if (!host.empty() && host.front() == '[') {
        const std::size_t close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(1, close - 1);
    }
    const std::size_t colon = host.find(':');
    if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos)
        host = host.substr(0, colon);
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    return host;
}

path::path_error router::add(std::size_t room_index, room_match m) {
    room r;
    r.index = room_index;
    r.ci = m.case_insensitive;
    r.any_path = m.prefixes.empty() && m.exact.empty();
    r.any_host = m.hosts.empty();
    for (const auto& h : m.hosts) {
        const std::string_view c = canonical_host(h);
        if (!c.empty()) r.hosts.push_back(text::to_lower(c));
    }
    for (auto& method : m.methods) {
        for (auto& c : method) c = (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
        r.methods.push_back(std::move(method));
    }

    path::path_error first_error = path::path_error::ok;
    auto to_key = [&](const std::string& pattern, std::vector<std::string>& into) {
        auto n = path::normalize_target(pattern);
        if (n.error == path::path_error::ok && n.value.has_query)
            n.error = path::path_error::not_origin_form;
        if (n.error != path::path_error::ok) {
            if (first_error == path::path_error::ok) first_error = n.error;
            return;
        }
        std::string key = path::match_key(n.value.path);
        if (r.ci) key = text::to_lower(key);
        if (!key.empty() && key.back() == '/') key.pop_back();
        into.push_back(std::move(key));
    };
    for (const auto& p : m.prefixes) to_key(p, r.prefixes);
    for (const auto& p : m.exact) to_key(p, r.exact);

    const auto pos = std::upper_bound(rooms_.begin(), rooms_.end(), room_index,
                                      [](std::size_t i, const room& x) { return i < x.index; });
    rooms_.insert(pos, std::move(r));
    return first_error;
}

bool router::path_matches(const room& r, std::string_view path, bool has_params) {
    if (r.any_path) return true;
    const auto matches = has_params ? key_matches : plain_matches;
    for (const auto& p : r.prefixes)
        if (matches(path, p, r.ci, false)) return true;
    for (const auto& e : r.exact)
        if (matches(path, e, r.ci, true)) return true;
    return false;
}

int router::match(std::string_view host, std::string_view method, const path::normalized& p) const {
    const std::string_view canonical = canonical_host(host);
    char lower[max_host];
    const std::size_t n = std::min(canonical.size(), max_host);
    for (std::size_t i = 0; i < n; ++i) lower[i] = text::lower(canonical[i]);
    // Too long: an empty view never equals a listed host (those are not empty).
    const std::string_view h =
        canonical.size() < max_host ? std::string_view(lower, n) : std::string_view();
    const std::string_view path = p.path;
    const bool has_params =
        path.find(';') != std::string_view::npos || path.find("%3B") != std::string_view::npos;
    for (const auto& r : rooms_) {
        if (!r.any_host && !host_listed(r.hosts, h)) continue;
        if (!r.methods.empty() && !method_listed(r.methods, method)) continue;
        if (path_matches(r, path, has_params)) return static_cast<int>(r.index);
    }
    return -1;
}

}  // namespace floodgate
