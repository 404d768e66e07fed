// A std::mutex carrying Abseil's thread-safety annotations, so data can be marked
// ABSL_GUARDED_BY and ThreadSanitizer still sees every lock (Debian's libabsl is not built with
// TSan, so mutex hides its happens-before edges and TSan reports false races).
//
//   mutable mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_);
//   void add() { mutex_lock lock(mu_); ++n_; }
//
// Use it only off the hot path or for a few instructions; it is a plain futex mutex.
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace floodgate::tokenstore {

class ABSL_LOCKABLE mutex {
public:
    void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { m_.lock(); }
    void unlock() ABSL_UNLOCK_FUNCTION() { m_.unlock(); }

private:
    std::mutex m_;
};

class ABSL_SCOPED_LOCKABLE mutex_lock {
public:
    explicit mutex_lock(mutex& m) ABSL_EXCLUSIVE_LOCK_FUNCTION(m) : m_(m) { m_.lock(); }
    ~mutex_lock() ABSL_UNLOCK_FUNCTION() { m_.unlock(); }
    mutex_lock(const mutex_lock&) = delete;
    mutex_lock& operator=(const mutex_lock&) = delete;

private:
    mutex& m_;
};

}  // namespace floodgate::tokenstore
