// The router decides which room, if any, protects a request: by Host, method
// and normalised path. Built once from the configuration, then immutable and
// shared by every thread; match() does not allocate.
//
// The one thing not to get wrong: match() must see the path the upstream
// will route on. It takes a path::normalized (never raw target bytes), and it
// ignores each segment's ";params" the way servlet containers do, so
// "/reserve;jsessionid=1" is "/reserve" here as it is there.
//
//   router r;
//   r.add(0, {.prefixes = {"/reserve", "/api/reserve/"}, .case_insensitive = true});
//   auto n = path::normalize_target("//RESERVE/./x").value;
//   r.match("booking.example", "GET", n);  // 0
//
// A room matches a request when all of these hold:
//  - hosts is empty, or lists the request's Host. Both sides are compared
//    without case, without the port, without IPv6 brackets and without one
//    trailing dot ("Booking.Example.:8080" is "booking.example";
//    "[::1]:80" is "::1"). With hosts set, a request without Host never matches.
//  - methods is empty, or lists the method. Compared without case (RFC 9110
//    makes methods case-sensitive, but an upstream that folds "post" into POST
//    must not give a way around the room), and HEAD counts as GET.
//  - the path's match key (see path::match_key; lowercased first when
//    case_insensitive) equals an exact path or starts with a prefix on a
//    segment boundary: "/reserve" matches "/reserve", "/reserve/",
//    "/reserve/x", "/reserve;x", but not "/reserved"; "/api/reserve/" matches
//    everything under it and "/api/reserve" itself. An exact path matches with
//    or without a trailing slash ("/reserve" and "/reserve/"), since many
//    frameworks route both alike. A room with no prefixes and no exact paths
//    matches every path.
// Configured prefixes and exact paths go through path::normalize_target and
// path::match_key at add() time ("/Reserve/" with case_insensitive becomes
// "/reserve/"; "/caf\xC3\xA9" becomes "/caf%C3%A9", as requests do).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/path.hpp"

namespace floodgate {

struct room_match {
    std::vector<std::string> hosts;
    std::vector<std::string> prefixes;
    std::vector<std::string> exact;
    std::vector<std::string> methods;
    bool case_insensitive = false;
};

class router {
public:
    // Adds the rules of one room. Rooms are tried in room_index order (config
    // order), and several add() calls for one index add alternatives.
    // Returns the first error of a prefix or exact path that is not a valid
    // path ("/a%2Fb", "/x?y", "reserve"); such a pattern could never match a
    // request and is left out, so the caller should treat it as a config
    // error. The room's other patterns are kept.
    path::path_error add(std::size_t room_index, room_match m);

    // The index of the first room that matches, or -1.
    int match(std::string_view host, std::string_view method, const path::normalized& p) const;

    bool empty() const { return rooms_.empty(); }

    // The form a Host header or a configured host is compared in (see above),
    // as a view into `host`, before case folding.
    static std::string_view canonical_host(std::string_view host);

private:
    struct room {
        std::size_t index = 0;
        std::vector<std::string> hosts;     // canonical, lowercase, not empty
        std::vector<std::string> methods;   // uppercase
        std::vector<std::string> prefixes;  // match keys, lowercase when ci
        std::vector<std::string> exact;     // match keys without a trailing '/', lowercase when ci
        bool any_path = false;
        bool any_host = false;
        bool ci = false;
    };

    static bool path_matches(const room& r, std::string_view path, bool has_params);

    std::vector<room> rooms_;
};

}  // namespace floodgate
