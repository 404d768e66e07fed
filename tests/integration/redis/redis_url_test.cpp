// The store: URL (tokenstore/redis/redis_url.hpp): what an operator may write, and the messages
// for what they may not.
#include <catch2/catch.hpp>

#include "tokenstore/redis/redis_url.hpp"

using floodgate::tokenstore::redis::describe;
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
    for (const char* bad :
         {"memory", "http://h", "redis://", "redis://h:0", "redis://h:70000",
          "redis://h:", "redis://h/x", "redis://[::1", "redis://s3cret@h", "redis://:s3cret@h:port",
          "redis://h?sentinel=1", "rediss://h", "redis://:s3cret@h?sentinel_password=s3cret",
          // Sentinel: no master name, bad port, no sentinel, empty host in the list.
          "redis+sentinel://h", "redis+sentinel://h/", "redis+sentinel://:s3cret@h:26379",
          "redis+sentinel://h:0/m", "redis+sentinel://h:99999/m", "redis+sentinel://h:x/m",
          "redis+sentinel:///m", "redis+sentinel://:s3cret@/m", "redis+sentinel://a,,b/m",
          "redis+sentinel://a,/m", "redis+sentinel://[::1/m", "redis+sentinel://h/m/x",
          "redis+sentinel://h/m/-1", "redis+sentinel://h/m?password=s3cret",
          "redis+sentinel://h/m?sentinel_password=",
          "redis+sentinel://h/m?sentinel_password=s3cret%4",
          "redis+sentinel://:s3cret@h:bad/m?sentinel_password=s3cret"}) {
        auto r = parse_redis_url(bad);
        INFO(bad);
        REQUIRE(!r.ok());
        CHECK(r.status().message().find("store:") == 0);
        CHECK(std::string(r.status().message()).find("s3cret") == std::string::npos);
    }
}

TEST_CASE("a redis+sentinel url gives the sentinels, the master name, database and passwords",
          "[redis][url][sentinel]") {
    auto one = parse_redis_url("redis+sentinel://10.0.0.7/mymaster");
    REQUIRE(one.ok());
    REQUIRE(one->sentinels.size() == 1);
    CHECK(one->sentinels[0].host == "10.0.0.7");
    CHECK(one->sentinels[0].port == 26379);
    CHECK(one->master_name == "mymaster");
    CHECK(one->db == 0);
    CHECK(one->password.empty());
    CHECK(one->sentinel_password.empty());
    CHECK(describe(*one) == "the primary 'mymaster' named by Sentinel 10.0.0.7:26379 db 0");

    auto many = parse_redis_url(
        "redis+sentinel://:s3cret@s1:26380,s2,[::1]:26381,[fe80::2]/orders/"
        "3?sentinel_password=a%26b%40c");
    REQUIRE(many.ok());
    REQUIRE(many->sentinels.size() == 4);
    CHECK(many->sentinels[0].host == "s1");
    CHECK(many->sentinels[0].port == 26380);
    CHECK(many->sentinels[1].host == "s2");
    CHECK(many->sentinels[1].port == 26379);
    CHECK(many->sentinels[2].host == "::1");
    CHECK(many->sentinels[2].port == 26381);
    CHECK(many->sentinels[3].host == "fe80::2");
    CHECK(many->sentinels[3].port == 26379);
    CHECK(many->master_name == "orders");
    CHECK(many->db == 3);
    CHECK(many->password == "s3cret");
    CHECK(many->sentinel_password == "a&b@c");
    const std::string shown = describe(*many);
    CHECK(shown == "the primary 'orders' named by Sentinel "
                   "s1:26380,s2:26379,[::1]:26381,[fe80::2]:26379 db 3");

    auto slash = parse_redis_url("redis+sentinel://h:1/m/");
    REQUIRE(slash.ok());
    CHECK(slash->db == 0);

    // A password may hold '?' and '@'; the options start after the credentials.
    auto odd = parse_redis_url("redis+sentinel://:p?w@d@h/m");
    REQUIRE(odd.ok());
    CHECK(odd->password == "p?w@d");
    CHECK(odd->sentinel_password.empty());

    auto plain = parse_redis_url("redis://:s3cret@[::1]:7000/1");
    REQUIRE(plain.ok());
    CHECK(plain->sentinels.empty());
    CHECK(describe(*plain) == "[::1]:7000 db 1");  // no password
}
