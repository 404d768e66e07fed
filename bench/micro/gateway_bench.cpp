// Microbenchmarks of the gateway's per-request work before anything is
// proxied: normalising the target and matching it to a room, and the header
// rules (raw checks, framing, hop-by-hop removal, forwarding headers) on a
// request as a phone browser sends it. Google Benchmark; results in
// bench/RESULTS.md.
#include <benchmark/benchmark.h>

#include <boost/beast/http.hpp>
#include <string>
#include <vector>

#include "gateway/headers.hpp"
#include "gateway/path.hpp"
#include "gateway/router.hpp"

namespace {

using namespace floodgate;
namespace http = boost::beast::http;

// Ten rooms, like a ticketing site with several events, the booking room last.
router make_router() {
    router r;
    for (int i = 0; i < 9; ++i)
        r.add(static_cast<std::size_t>(i),
              {.hosts = {},
               .prefixes = {"/event" + std::to_string(i) + "/book", "/api/event" + std::to_string(i) + "/"},
               .exact = {"/event" + std::to_string(i)},
               .methods = {},
               .case_insensitive = false});
    r.add(9, {.hosts = {"booking.example"},
              .prefixes = {"/reserve", "/api/reserve/"},
              .exact = {},
              .methods = {"GET", "POST"},
              .case_insensitive = true});
    return r;
}

void BM_route_protected_path(benchmark::State& state) {
    const router r = make_router();
    for (auto _ : state) {
        auto n = path::normalize_target("/Reserve/seat;jsessionid=42?slot=7&name=kim");
        benchmark::DoNotOptimize(r.match("booking.example:443", "GET", n.value));
    }
}
BENCHMARK(BM_route_protected_path);

void BM_route_unprotected_path(benchmark::State& state) {
    const router r = make_router();
    for (auto _ : state) {
        auto n = path::normalize_target("/static/app.4f2a9c.js");
        benchmark::DoNotOptimize(r.match("booking.example", "GET", n.value));
    }
}
BENCHMARK(BM_route_unprotected_path);

void BM_route_tricky_path(benchmark::State& state) {
    const router r = make_router();
    for (auto _ : state) {
        auto n = path::normalize_target("//a/..//%72eserve/./x/%2e%2e/seat?slot=7");
        benchmark::DoNotOptimize(r.match("booking.example", "GET", n.value));
    }
}
BENCHMARK(BM_route_tricky_path);

constexpr std::string_view phone_request =
    "GET /reserve?slot=7 HTTP/1.1\r\n"
    "Host: booking.example\r\n"
    "User-Agent: Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    "Accept-Language: ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: fg_pass_booking=v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB; "
    "session=abc123\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "\r\n";

void BM_header_rules_phone_request(benchmark::State& state) {
    http::request_parser<http::empty_body> proto;
    boost::beast::error_code ec;
    proto.put(boost::asio::buffer(phone_request.data(), phone_request.size()), ec);
    const http::fields original = proto.get().base();
    for (auto _ : state) {
        benchmark::DoNotOptimize(headers::scan_raw_header(phone_request, 100));
        http::fields f = original;  // each request arrives with its own fields
        benchmark::DoNotOptimize(headers::check_request_framing(f, 11));
        benchmark::DoNotOptimize(headers::strip_hop_by_hop(f, false));
        headers::add_forwarded(f, "203.0.113.7", true, "booking.example", "floodgate");
        benchmark::DoNotOptimize(f);
    }
}
BENCHMARK(BM_header_rules_phone_request);

}  // namespace

BENCHMARK_MAIN();
