// The store: URL (tokenstore/redis/redis_url.hpp): what an operator may write, and the messages
// for what they may not.
#include <catch2/catch.hpp>

#include "tokenstore/redis/redis_url.hpp"

using floodgate::tokenstore::redis::parse_redis_url;

TEST_CASE("a redis url gives host port database and password", "[redis][url]") {
    auto plain = parse_redis_url("redis://10.0.0.7");
    REQUIRE(plain.ok());
    CHECK(plain->host == "10.0.0.7");
    CHECK(plain->port == 6379);
    CHECK(plain->db == 0);
    CHECK(plain->password.empty());

    auto full = parse_redis_url("redis://:s3cret@redis.internal:6380/2");
    REQUIRE(full.ok());
    CHECK(full->host == "redis.internal");
    CHECK(full->port == 6380);
    CHECK(full->db == 2);
    CHECK(full->password == "s3cret");

    auto user = parse_redis_url("redis://default:p@ss@h/");
    REQUIRE(user.ok());
    CHECK(user->password == "p@ss");  // the last '@' ends the credentials
    CHECK(user->host == "h");

    auto v6 = parse_redis_url("redis://[::1]:7000");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(v6->port == 7000);
}

TEST_CASE("a bad redis url is refused with a message that never shows the password",
          "[redis][url]") {
    for (const char* bad : {"memory", "http://h", "redis://", "redis://h:0", "redis://h:70000",
                            "redis://h:", "redis://h/x", "redis://[::1", "redis://s3cret@h",
                            "redis://:s3cret@h:port", "redis://h?sentinel=1", "rediss://h"}) {
        auto r = parse_redis_url(bad);
        INFO(bad);
        REQUIRE(!r.ok());
        CHECK(r.status().message().find("store:") == 0);
        CHECK(std::string(r.status().message()).find("s3cret") == std::string::npos);
    }
}
