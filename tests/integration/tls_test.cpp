// TLS on both sides: an HTTPS listener, and upstreams reached over TLS with
// certificate verification.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace floodgate::itest;

TEST_CASE("an HTTPS listener serves a verifying client and says https upstream", "[tls]") {
    temp_dir certs;
    const auto cert = make_test_cert(certs.path());
    test_upstream up;
    gateway_process gw(make_config({.servers = up.address(),
                                    .listen = "{address: 127.0.0.1:0, tls: {cert: " +
                                              cert.cert_file + ", key: " + cert.key_file + "}}"}));
    http_client client(gw.port(), client_tls{cert.cert_file});

    const auto res = client.get("/echo");
    CHECK(res.result_int() == 200);
    CHECK(client.get("/echo").result_int() == 200);
    REQUIRE(up.request_count() == 2);
    const auto r = up.requests().at(0);
    CHECK(r.field("X-Forwarded-Proto") == "https");
}

TEST_CASE("an upstream over TLS verified against its CA is reached", "[tls]") {
    temp_dir certs;
    const auto cert = make_test_cert(certs.path());
    test_upstream up({.tls = true, .cert_file = cert.cert_file, .key_file = cert.key_file});
    gateway_process gw(make_config(
        {.servers = up.address(),
         .upstream = "tls: {enabled: true, ca: " + cert.cert_file + ", server_name: localhost}"}));
    http_client client(gw.port());

    const auto res = client.get("/echo");
    CHECK(res.result_int() == 200);
    CHECK(up.request_count() == 1);
}

TEST_CASE("an upstream over TLS whose certificate fails verification gets 502", "[tls]") {
    temp_dir certs;
    const auto cert = make_test_cert(certs.path(), "server");
    const auto other = make_test_cert(certs.path(), "other");
    test_upstream up({.tls = true, .cert_file = cert.cert_file, .key_file = cert.key_file});
    gateway_process gw(make_config(
        {.servers = up.address(),
         .upstream = "tls: {enabled: true, ca: " + other.cert_file + ", server_name: localhost}"}));
    http_client client(gw.port());

    const auto res = client.get("/echo");
    CHECK(res.result_int() == 502);
    CHECK(up.request_count() == 0);
}
