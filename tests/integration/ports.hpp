// Ports on 127.0.0.1 for tests: one that nobody listens on (for an upstream that is down, or
// for a server the test starts itself, such as redis-server), and the address of a port.
//
//   const std::uint16_t port = unused_port();
//   sockaddr_in a = loopback(port);
//   ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // ECONNREFUSED
//
// The one thing not to get wrong: the port is free when unused_port() returns, not after; a
// server started on it may find it taken by another process and should try a new one.
#pragma once

#include <netinet/in.h>

#include <cstdint>

namespace floodgate::itest {

// A port on 127.0.0.1 that nobody listens on (bound, then released). Throws
// std::runtime_error if no port can be bound.
std::uint16_t unused_port();

// 127.0.0.1:port as a socket address.
sockaddr_in loopback(std::uint16_t port);

}  // namespace floodgate::itest
