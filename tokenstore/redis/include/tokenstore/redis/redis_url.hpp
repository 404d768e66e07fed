// The `store:` value of a gateway in Redis mode, parsed into connection options.
//
//   redis://127.0.0.1:6379/0            host, port (default 6379), db (default 0)
//   redis://:s3cret@redis.internal/2    password (AUTH <password>)
//   redis://[::1]:6380                  IPv6 literal in brackets
//   redis+sentinel://10.0.0.1,10.0.0.2:26380/mymaster/2
//       Sentinel discovery: the sentinels (port default 26379), the master name, db (default 0);
//       a password is for the data nodes; ?sentinel_password=... (%-escapes allowed) is AUTH to
//       the sentinels.
//
// The one thing not to get wrong: the message of a refused URL never repeats a password.
// rediss:// (TLS) is refused with a message saying so (not built yet).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tokenstore/redis/redis_connection.hpp"

namespace floodgate::tokenstore::redis {

absl::StatusOr<redis_connection::options> parse_redis_url(std::string_view url);

// Where the options point, for a log line, without the password:
// "10.0.0.5:6379 db 0" or "the primary 'mymaster' named by Sentinel 10.0.0.1:26379,... db 0".
std::string describe(const redis_connection::options& o);

}  // namespace floodgate::tokenstore::redis
