// Copyright 2026 The convstore Authors.
//
// PeriodicThread: a background thread that runs one function every
// interval until stopped; Stop wakes it out of its wait at once. The
// store's small upkeep threads (cache sweep, key usage flush, memory
// release) are each one of these.
//
// Thread safety: Start and Stop from the owner's thread (Open and Close);
// the function runs on the background thread only, never concurrently
// with itself.

#ifndef CONVSTORE_SRC_PERIODIC_THREAD_H_
#define CONVSTORE_SRC_PERIODIC_THREAD_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <functional>
#include <thread>

#include "mutex.h"

namespace convstore::internal {

class PeriodicThread {
 public:
  PeriodicThread() = default;
  ~PeriodicThread() { Stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs `tick` every `interval` (measured from the end of the previous
  // run) on a new thread named `name` (at most 15 bytes; see
  // thread_name.h), named before Start returns and before its first tick.
  // An interval <= 0 starts nothing. At most once.
  void Start(const char* name, std::chrono::milliseconds interval,
             std::function<void()> tick);
  // Wakes the thread, lets a run in progress finish, and joins it. A tick
  // not yet begun does not run. Idempotent; fine if never started.
  void Stop();

 private:
  void Loop(std::chrono::milliseconds interval,
            const std::function<void()>& tick);

  Mutex mu_;
  CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_PERIODIC_THREAD_H_
