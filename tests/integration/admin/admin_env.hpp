// What the admin API and floodgatectl tests share: an operator and a viewer
// token, and a gateway config whose tokens file and state_dir live outside
// the gateway's own temp dir, so a second gateway (a restart) finds them.
//
//   test_upstream app;
//   admin_env env;
//   gateway_process gw(env.config(app.address(), sale_room));
//   // Authorization: Bearer <operator_token> (alice) or <viewer_token> (bob)
//
// Most tests want just that gateway, as a fixture:
//
//   TEST_CASE_METHOD(sale_gateway, "pause stops the calls", "[ctl]") {
//       join_people(gw.port(), 3);
//       CHECK(room_of(gw, "sale").at("mode").as_string() == "queue_all");
//   }
#pragma once

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <string_view>

#include "harness.hpp"
#include "room_helpers.hpp"

namespace floodgate::itest::rooms {

inline constexpr std::string_view operator_token = "op-0123456789abcdef0123";
inline constexpr std::string_view viewer_token = "view-0123456789abcdef01";

// A room in queue_all at 2 people a second: everyone queues, few are called.
inline constexpr std::string_view sale_room =
    "  sale:\n"
    "    match: {paths: [/reserve]}\n"
    "    admission: {rate: 2, burst: 1}\n"
    "    mode: queue_all\n";

struct admin_env {
    temp_dir dir;

    // dir/tokens: "operator alice <operator_token>", "viewer bob <viewer_token>";
    // dir/alice.token: the operator token alone, as `echo TOKEN > file` writes it.
    admin_env() {
        std::ostringstream tokens;
        tokens << "# role name token\noperator alice " << operator_token << "\nviewer bob " << viewer_token << "\n";
        write_file(dir.file("tokens"), tokens.str());
        std::ostringstream alice;
        alice << operator_token << "\n";
        write_file(dir.file("alice.token"), alice.str());
    }

    // Two threads, upstream "app" as the default, state_dir dir/state, then `rooms:` + rooms_yaml.
    std::string config(const std::string& app, std::string_view rooms_yaml) const {
        // A stream, not operator+ chains: GCC 12 -O2 warns falsely (-Warray-bounds) on those.
        std::ostringstream y;
        y << "threads: 2\n"
          << "listen: [{address: 127.0.0.1:0}]\n"
          << "admin: {address: 127.0.0.1:0, tokens_file: " << dir.file("tokens") << "}\n"
          << "state_dir: " << dir.file("state") << "\n"
          << "access_log: off\n"
          << "timeouts: {shutdown_grace: 1s}\n"
          << "upstreams:\n"
          << "  app: {servers: [" << app << "]}\n"
          << "default_upstream: app\n"
          << "rooms:\n"
          << rooms_yaml;
        return y.str();
    }
};

// A gateway with sale_room in front of a test upstream, configured by an admin_env.
struct sale_gateway {
    test_upstream app;
    admin_env env;
    gateway_process gw{env.config(app.address(), sale_room)};
};

// Authorization: Bearer <token>.
inline header_list bearer(std::string_view token) {
    return {{"Authorization", "Bearer " + std::string(token)}};
}

// GET target on the admin listener with the viewer token; the JSON object of its 200 answer.
inline boost::json::object viewer_get(const gateway_process& gw, const std::string& target) {
    auto r = fetch(gw.admin_port(), http::verb::get, target, bearer(viewer_token));
    REQUIRE(r.status == 200);
    return r.json();
}

// GET /admin/v1/rooms/<name>: one room's settings, stats and mode.
inline boost::json::object room_of(const gateway_process& gw, std::string_view name) {
    return viewer_get(gw, "/admin/v1/rooms/" + std::string(name));
}

// People joining over the JSON API (each its own ticket), like phones arriving; each is queued.
inline void join_people(std::uint16_t port, int n, std::string_view path = "/reserve") {
    for (int i = 0; i < n; ++i) {
        auto r = get(port, std::string(path), {accept_json});
        REQUIRE(r.status == 503);
    }
}

}  // namespace floodgate::itest::rooms
