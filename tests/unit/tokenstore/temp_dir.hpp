// A fresh directory for one test, under $TMPDIR (or /tmp), removed with everything in it when
// the test ends, also when it fails.
//
//   temp_dir dir("fg-keys");
//   const std::string path = dir.sub("token-keys");  // <dir>/token-keys
#pragma once

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <system_error>

namespace floodgate::tokenstore {

class temp_dir {
public:
    explicit temp_dir(const std::string& prefix) {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

}  // namespace floodgate::tokenstore
