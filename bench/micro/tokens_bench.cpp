// Token sign and verify on one core. Goal: <= 0.5 us each.
#include <benchmark/benchmark.h>

#include <openssl/evp.h>

#include <string>

#include "tokenstore/base64url.hpp"
#include "tokenstore/token.hpp"

using namespace floodgate::tokenstore;

namespace {

constexpr std::uint32_t now_s = 1'700'000'000;

std::unique_ptr<key_ring> make_keys() {
    auto r = key_ring::parse("old " + base64url::encode(std::string(32, 'o')) + "\nk1 " +
                                 base64url::encode(std::string(32, 'k')) + "\n",
                             "bench");
    return *std::move(r);
}

const std::uint64_t vaccine = room_id("vaccine");  // computed once per room, at config time

token ticket(std::uint64_t seq) {
    return {.type = token_type::ticket,
            .room = vaccine,
            .seq = seq,
            .iat = now_s,
            .exp = now_s + 3600};
}

void BM_sign_ticket(benchmark::State& state) {
    auto keys = make_keys();
    std::string out;
    std::uint64_t seq = 0;
    for (auto _ : state) {
        sign_token(*keys, ticket(seq++), nullptr, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sign_ticket);

void BM_sign_pass_bound(benchmark::State& state) {
    auto keys = make_keys();
    const client_binding client{"203.0.113.0/24",
                                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"};
    std::string out;
    token t = ticket(1);
    t.type = token_type::pass;
    t.slot = 17;
    t.slot_gen = 3;
    for (auto _ : state) {
        ++t.seq;
        sign_token(*keys, t, &client, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sign_pass_bound);

void BM_verify_ticket(benchmark::State& state) {
    auto keys = make_keys();
    const std::string text = sign_token(*keys, ticket(42));
    const verify_expect e{.room = vaccine, .type = token_type::ticket, .now_s = now_s};
    for (auto _ : state) {
        verify_result r = verify_token(*keys, text, e);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_verify_ticket);

// The same ticket again on one connection (a browser polling over keep-alive): the memo
// stands in for base64 and the HMAC; type, room and expiry are still checked.
void BM_verify_ticket_remembered(benchmark::State& state) {
    auto keys = make_keys();
    const std::string text = sign_token(*keys, ticket(42));
    const verify_expect e{.room = vaccine, .type = token_type::ticket, .now_s = now_s};
    token_memo memo;
    for (auto _ : state) {
        verify_result r = verify_token(*keys, text, e, &memo);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_verify_ticket_remembered);

void BM_verify_pass_bound(benchmark::State& state) {
    auto keys = make_keys();
    const client_binding client{"203.0.113.0/24",
                                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"};
    token t = ticket(42);
    t.type = token_type::pass;
    const std::string text = sign_token(*keys, t, &client);
    const verify_expect e{
        .room = vaccine, .type = token_type::pass, .now_s = now_s, .client = &client};
    for (auto _ : state) {
        verify_result r = verify_token(*keys, text, e);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_verify_pass_bound);

void BM_verify_bad_mac(benchmark::State& state) {
    auto keys = make_keys();
    std::string text = sign_token(*keys, ticket(42));
    text[text.size() - 3] = text[text.size() - 3] == 'A' ? 'B' : 'A';
    const verify_expect e{.room = vaccine, .type = token_type::ticket, .now_s = now_s};
    for (auto _ : state) {
        verify_result r = verify_token(*keys, text, e);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_verify_bad_mac);

void BM_verify_on_threads(benchmark::State& state) {
    static std::unique_ptr<key_ring> keys = make_keys();
    static const std::string text = sign_token(*keys, ticket(42));
    const verify_expect e{.room = vaccine, .type = token_type::ticket, .now_s = now_s};
    for (auto _ : state) {
        verify_result r = verify_token(*keys, text, e);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_verify_on_threads)->Threads(2)->UseRealTime();

// The cost the design warns about: fetching the algorithm and keying a context per call.
void BM_hmac_fetch_per_call(benchmark::State& state) {
    const std::string key(32, 'k');
    const std::string data(70, 'd');
    unsigned char out[32];
    for (auto _ : state) {
        EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
        std::size_t n = 0;
        EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size());
        EVP_MAC_final(ctx, out, &n, sizeof out);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_hmac_fetch_per_call);

}  // namespace

BENCHMARK_MAIN();
