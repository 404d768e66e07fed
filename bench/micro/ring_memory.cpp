// Joins 10,000,000 tickets into one ring and prints the resident memory they cost per ticket
// (goal: <= 16 bytes), then calls them all and shows the memory going back.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "tokenstore/ring.hpp"

using namespace floodgate::tokenstore;

namespace {

long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages_total = 0, pages_resident = 0;
    statm >> pages_total >> pages_resident;
    return pages_resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10'000'000;
    const millis t0 = 1'700'000'000'000;
    const long before = rss_bytes();
    auto created = ring::create({}, t0);
    if (!created.ok()) {
        std::fprintf(stderr, "%s\n", std::string(created.status().message()).c_str());
        return 1;
    }
    ring& r = **created;
    const long empty = rss_bytes();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < n; ++i) r.join(t0);
    const double join_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.sweep(n, t0);
    r.publish_index();  // writes the index over every group
    const long full = rss_bytes();
    std::printf("tickets waiting:         %llu\n", static_cast<unsigned long long>(n));
    std::printf("joins:                   %.3f s (%.1f M/s on one thread)\n", join_s,
                double(n) / join_s / 1e6);
    std::printf("rss empty ring:          %.2f MiB (%.2f MiB before)\n", empty / 1048576.0,
                before / 1048576.0);
    std::printf("rss with tickets:        %.2f MiB\n", full / 1048576.0);
    std::printf("bytes per ticket:        %.2f\n", double(full - empty) / double(n));

    while (r.cursor() < n) r.advance(n, t0 + 1'000);
    r.expire_calls(t0 + 1'000'000, 60'000);
    std::printf("rss after all called:    %.2f MiB (tail %llu)\n", rss_bytes() / 1048576.0,
                static_cast<unsigned long long>(r.tail()));
    return 0;
}
