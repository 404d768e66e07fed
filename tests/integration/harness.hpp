// The integration-test harness, in one include: the floodgate process
// (process.hpp), the test upstream (test_upstream.hpp) and the clients
// (clients.hpp). Each test starts its own gateway and upstreams:
//
//   TEST_CASE("a GET is proxied to the upstream", "[proxy]") {
//       test_upstream up;
//       gateway_process gw(make_config({.servers = up.address()}));
//       http_client client(gw.port());
//       CHECK(client.get("/echo").result_int() == 200);
//       CHECK(up.request_count() == 1);
//   }
#pragma once

#include "clients.hpp"
#include "process.hpp"
#include "test_upstream.hpp"
