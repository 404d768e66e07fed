#include "tokenstore/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace floodgate::tokenstore {
namespace {

absl::Status default_error(const replace_error& e) {
    static constexpr const char* what[] = {"cannot create", "write failed", "fsync failed",
                                           "rename failed"};
    return absl::UnavailableError(e.file + ": " + what[e.step] + ": " + std::strerror(e.error));
}

std::string directory_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::Status replace_file(const std::string& path, std::string_view data) {
    return replace_file(path, data, default_error);
}

absl::Status replace_file(const std::string& path, std::string_view data,
                          absl::FunctionRef<absl::Status(const replace_error&)> on_error) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return on_error({replace_error::create, tmp, errno});
    ::fchmod(fd, 0600);  // the umask may only narrow the mode; make it exactly 0600
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = n < 0 ? errno : EIO;
            ::close(fd);
            ::unlink(tmp.c_str());
            return on_error({replace_error::write, tmp, e});
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return on_error({replace_error::sync, tmp, e});
    }
    if (::close(fd) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return on_error({replace_error::sync, tmp, e});
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return on_error({replace_error::rename, path, e});
    }
    sync_directory(directory_of(path));
    return absl::OkStatus();
}

void sync_directory(const std::string& dir) noexcept {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace floodgate::tokenstore
