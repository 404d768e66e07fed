// Namespace aliases for the networking libraries. Every file that does I/O
// includes this one header; Asio and Beast themselves are compiled once, in
// the floodgate_net library (net_impl.cpp), so including it is cheap.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace floodgate {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
}  // namespace floodgate
