#include "redis_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

// Where the complete RESP value that starts at `pos` ends, or npos while it is incomplete.
std::size_t resp_end(const std::string& s, std::size_t pos) {
    if (pos >= s.size()) return std::string::npos;
    const auto eol = s.find("\r\n", pos);
    if (eol == std::string::npos) return std::string::npos;
    const char type = s[pos];
    if (type == '+' || type == '-' || type == ':') return eol + 2;
    const long n = std::strtol(s.c_str() + pos + 1, nullptr, 10);
    if (type == '$') {
        const std::size_t end = eol + 2 + (n < 0 ? 0 : static_cast<std::size_t>(n) + 2);
        return end <= s.size() ? end : std::string::npos;
    }
    std::size_t next = eol + 2;  // '*': n elements follow (none for a nil array)
    for (long i = 0; i < n && next != std::string::npos; ++i) next = resp_end(s, next);
    return next;
}

}  // namespace

redis_server::redis_server(persistence p) : persistence_(p) {
    start_on_a_free_port();
}

redis_server::redis_server(replica_of r) : primary_port_(r.primary_port) {
    start_on_a_free_port();
}

redis_server::redis_server(sentinel_for s) : primary_port_(s.primary_port), sentinel_(true) {
    start_on_a_free_port();
}

void redis_server::start_on_a_free_port() {
    port_ = itest::unused_port();
    char tmpl[] = "/tmp/fg-redis-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    if (sentinel_) {
        // A sentinel rewrites its config file, so it lives in the server's own directory.
        std::ofstream conf(dir_ + "/sentinel.conf");
        const std::string m = master_name;
        conf << "sentinel monitor " << m << " 127.0.0.1 " << primary_port_ << " 1\n"
             << "sentinel down-after-milliseconds " << m << " 1000\n"
             << "sentinel failover-timeout " << m << " 3000\n"
             << "sentinel parallel-syncs " << m << " 1\n";
    }
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

std::vector<std::string> redis_server::arguments() const {
    std::vector<std::string> a{"redis-server"};
    if (sentinel_) a.insert(a.end(), {dir_ + "/sentinel.conf", "--sentinel"});
    a.insert(a.end(), {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--daemonize", "no",
                       "--dir", dir_, "--loglevel", "warning"});
    if (sentinel_) return a;
    const bool aof = persistence_ == persistence::aof;
    a.insert(a.end(),
             {"--save", "", "--appendonly", aof ? "yes" : "no", "--appendfsync", "always"});
    if (primary_port_ != 0)
        a.insert(a.end(), {"--replicaof", "127.0.0.1", std::to_string(primary_port_)});
    return a;
}

redis_server::~redis_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

void redis_server::start() {
    if (pid_ > 0) return;
    const std::string port = std::to_string(port_);
    const std::vector<std::string> args = arguments();
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // gone with the test, even if the test crashes
        if (::chdir(dir_.c_str()) != 0) ::_exit(127);
        // Its log goes to a file in its directory, not into the test's output.
        const int log = ::open("redis.log", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            ::dup2(log, STDOUT_FILENO);
            ::dup2(log, STDERR_FILENO);
            ::close(log);
        }
        ::execvp("redis-server", argv.data());
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

std::string redis_server::query(const std::vector<std::string>& args) const {
    std::string request = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) request += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    timeval tv{.tv_sec = 2, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a = itest::loopback(port_);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size())) {
        char buf[4096];
        while (resp_end(reply, 0) == std::string::npos) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                reply.clear();
                break;
            }
            reply.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return reply;
}

bool redis_server::wait_for(const std::vector<std::string>& args, const std::string& text,
                            std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (query(args).find(text) != std::string::npos) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace floodgate::test
