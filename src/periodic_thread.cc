// Copyright 2026 The convstore Authors.

#include "periodic_thread.h"

#include <string>
#include <utility>

#include "thread_name.h"

namespace convstore::internal {

void PeriodicThread::Start(const char* name, std::chrono::milliseconds interval,
                           std::function<void()> tick) {
  if (interval.count() <= 0 || thread_.joinable()) return;
  // Named twice: by itself, so its first tick already runs under the name,
  // and from here, so the name is set when Start returns.
  thread_ = std::thread(
      [this, interval, tick = std::move(tick), name = std::string(name)] {
        NameThisThread(name.c_str());
        Loop(interval, tick);
      });
  NameThread(thread_, name);
}

void PeriodicThread::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void PeriodicThread::Loop(std::chrono::milliseconds interval,
                          const std::function<void()>& tick) {
  for (;;) {
    {
      MutexLock lock(&mu_);
      const auto deadline = DeadlineAfter(interval);
      while (!stop_ && CondVar::Clock::now() < deadline) {
        cv_.WaitUntil(&mu_, deadline);
      }
      if (stop_) return;
    }
    tick();
  }
}

}  // namespace convstore::internal
