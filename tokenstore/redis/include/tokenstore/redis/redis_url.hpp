// The `store:` value of a gateway in Redis mode, parsed into connection options.
//
//   redis://127.0.0.1:6379/0            host, port (default 6379), db (default 0)
//   redis://:s3cret@redis.internal/2    password (AUTH <password>)
//   redis://[::1]:6380                  IPv6 literal in brackets
//
// The one thing not to get wrong: the message of a refused URL never repeats the password.
// rediss:// (TLS) and Sentinel discovery are refused with a message saying so (not built yet).
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate::tokenstore::redis {

absl::StatusOr<redis_connection::options> parse_redis_url(std::string_view url);

}  // namespace floodgate::tokenstore::redis
