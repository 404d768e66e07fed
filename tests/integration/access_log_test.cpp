// The access log: one JSON object per line per request, written
// asynchronously to the configured file.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace json = boost::json;
namespace http = floodgate::http;
using namespace floodgate::itest;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

// Polls the file until it has at least n lines (the log is asynchronous).
std::vector<std::string> wait_for_lines(const std::string& path, std::size_t n, ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto lines = lines_of(read_file(path));
        if (lines.size() >= n || std::chrono::steady_clock::now() >= deadline) return lines;
        std::this_thread::sleep_for(50ms);
    }
}

}  // namespace

TEST_CASE("the access log has one JSON object per request with the documented fields",
          "[access_log]") {
    test_upstream up;
    gateway_process gw(
        make_config({.servers = up.address(), .access_log = "{path: {dir}/access.log}"}));
    {
        http_client client(gw.port());
        REQUIRE(client.get("/bytes?n=1234").result_int() == 200);
        REQUIRE(client.get("/status?code=404").result_int() == 404);
        REQUIRE(client.request(http::verb::post, "/count", "hello").body() == "5");
    }
    const auto lines = wait_for_lines(gw.dir() + "/access.log", 3, 5s);
    REQUIRE(lines.size() == 3);

    std::vector<json::object> entries;
    for (const auto& line : lines) {
        INFO("line: " << line);
        boost::system::error_code ec;
        const json::value v = json::parse(line, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(v.is_object());
        const auto& o = v.as_object();
        for (const char* key : {"method", "path", "status", "bytes", "duration_ms", "remote"}) {
            INFO("key " << key);
            CHECK(o.contains(key));
        }
        if (o.contains("method")) CHECK(o.at("method").is_string());
        if (o.contains("path")) CHECK(o.at("path").is_string());
        if (o.contains("status")) CHECK(o.at("status").is_number());
        if (o.contains("bytes")) CHECK(o.at("bytes").is_number());
        if (o.contains("duration_ms")) {
            CHECK(o.at("duration_ms").is_number());
            CHECK(o.at("duration_ms").to_number<double>() >= 0);
        }
        if (o.contains("remote")) {
            REQUIRE(o.at("remote").is_string());
            CHECK(std::string(o.at("remote").as_string()).find("127.0.0.1") != std::string::npos);
        }
        entries.push_back(o);
    }

    auto find = [&](std::string_view path_prefix) -> const json::object* {
        for (const auto& e : entries)
            if (e.contains("path") && e.at("path").is_string() &&
                std::string_view(e.at("path").as_string()).substr(0, path_prefix.size()) ==
                    path_prefix)
                return &e;
        return nullptr;
    };
    const json::object* bytes = find("/bytes");
    const json::object* status = find("/status");
    const json::object* count = find("/count");
    REQUIRE(bytes);
    REQUIRE(status);
    REQUIRE(count);
    CHECK(bytes->at("method").as_string() == "GET");
    CHECK(bytes->at("status").to_number<std::int64_t>() == 200);
    CHECK(bytes->at("bytes").to_number<std::int64_t>() == 1234);
    CHECK(status->at("status").to_number<std::int64_t>() == 404);
    CHECK(status->at("bytes").to_number<std::int64_t>() == 11);  // "status 404\n"
    CHECK(count->at("method").as_string() == "POST");
    CHECK(count->at("bytes").to_number<std::int64_t>() == 1);
}
