#include "tokenstore/file_io.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "temp_dir.hpp"

using namespace floodgate::tokenstore;
namespace fs = std::filesystem;

namespace {

std::string contents(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("replace_file puts the new contents in place, private, with no temporary file left",
          "[file_io]") {
    temp_dir dir("fg-file-io");
    const std::string path = dir.sub("state");
    REQUIRE(replace_file(path, "first\n").ok());
    CHECK(contents(path) == "first\n");
    REQUIRE(replace_file(path, "second\n").ok());
    CHECK(contents(path) == "second\n");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("a replace that cannot create its temporary file says which file and why",
          "[file_io]") {
    temp_dir dir("fg-file-io");
    const std::string path = dir.sub("missing/state");
    const absl::Status st = replace_file(path, "x");
    CHECK(st.code() == absl::StatusCode::kUnavailable);
    CHECK(st.message() == path + ".tmp: cannot create: No such file or directory");
}

TEST_CASE("a failed rename leaves the old file and no temporary file, and the caller words the "
          "error",
          "[file_io]") {
    temp_dir dir("fg-file-io");
    const fs::path target = dir.sub("taken");
    fs::create_directory(target);
    fs::create_directory(target / "inside");  // a non-empty directory cannot be renamed over
    const absl::Status st =
        replace_file(target.string(), "x", [](const replace_error& e) {
            CHECK(e.step == replace_error::rename);
            return absl::InternalError("renaming onto " + e.file);
        });
    CHECK(st.code() == absl::StatusCode::kInternal);
    CHECK(st.message() == "renaming onto " + target.string());
    CHECK(fs::is_directory(target / "inside"));
    CHECK_FALSE(fs::exists(target.string() + ".tmp"));
}
