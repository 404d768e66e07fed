#include "redis_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "ports.hpp"

namespace floodgate::test {

namespace {

bool accepts(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = itest::loopback(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

redis_server::redis_server(persistence p) : persistence_(p) {
    port_ = itest::unused_port();
    char tmpl[] = "/tmp/fg-redis-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    // Another process may take the port between unused_port() and redis-server's bind: try again
    // on a new one.
    for (int attempt = 0;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::runtime_error&) {
            if (attempt == 4) throw;
            port_ = itest::unused_port();
        }
    }
}

redis_server::~redis_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

void redis_server::start() {
    if (pid_ > 0) return;
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        if (::chdir(dir_.c_str()) != 0) ::_exit(127);
        // Its log goes to a file in its directory, not into the test's output.
        const int log = ::open("redis.log", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            ::dup2(log, STDOUT_FILENO);
            ::dup2(log, STDERR_FILENO);
            ::close(log);
        }
        const bool aof = persistence_ == persistence::aof;
        ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", aof ? "yes" : "no", "--appendfsync", "always",
                 "--daemonize", "no", "--dir", dir_.c_str(), "--loglevel", "warning",
                 static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!accepts(port_)) {
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("redis-server exited at start (port " + port + ")");
        }
        if (std::chrono::steady_clock::now() > deadline) {
            stop();
            throw std::runtime_error("redis-server did not accept connections within 10 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void redis_server::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
}

}  // namespace floodgate::test
