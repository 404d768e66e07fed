// Replacing a small state file whole: whoever reads it, also after kill -9 or a power cut, finds
// the old contents or the new ones, never a mix and never an empty file. The key file, the
// gateway's runtime.json and a room journal's snapshot are written this way.
//
//   if (auto st = replace_file(dir + "/runtime.json", text); !st.ok()) return st;
//   // "/var/lib/floodgate/runtime.json.tmp: write failed: No space left on device"
//
// The steps: write <path>.tmp (created with mode 0600, then set to exactly 0600), fsync it,
// rename it over <path>, fsync the directory (a failure of that last step is not reported: see
// sync_directory). On a failure <path> is untouched and the temporary file is removed.
//
// The one thing not to get wrong: <path>.tmp belongs to this function; one that is found at
// start-up is what an interrupted replace left, and may be deleted.
#pragma once

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace floodgate::tokenstore {

// The step of replace_file that failed, for callers that word their own errors.
struct replace_error {
    enum step_t { create, write, sync, rename } step;
    const std::string& file;  // the temporary file; for rename, the destination path
    int error;                // errno
};

// On a failure: absl::UnavailableError("<file>: cannot create: <strerror>"), likewise
// "write failed", "fsync failed" and "rename failed".
absl::Status replace_file(const std::string& path, std::string_view data);

// The same, with the error of a failed step made by on_error.
absl::Status replace_file(const std::string& path, std::string_view data,
                          absl::FunctionRef<absl::Status(const replace_error&)> on_error);

// fsyncs a directory, so that files created in it, renamed into it or removed from it stay so
// after a power cut. Failures are ignored: the names are in place, only their durability is
// in doubt.
void sync_directory(const std::string& dir) noexcept;

}  // namespace floodgate::tokenstore
