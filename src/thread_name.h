// Copyright 2026 The convstore Authors.
//
// NameThread, NameThisThread: give a thread the name that top -H, ps -L,
// perf and gdb show. The store names each background thread right after
// creating it, before Open (or the part's Start) returns, with a name
// starting "convstore-", so that a profile of an agent process tells the
// writer, the checkpointer and the upkeep threads apart from the
// application's own threads (and from each other).
//
// Linux keeps at most 15 bytes of a name; a longer one is refused (the name
// stays unchanged), so the store's names fit. Best effort: failure changes
// nothing else.
//
// Thread safety: NameThread from the thread that owns `t` (the one that
// created it), while `t` is joinable; NameThisThread from any thread, which
// it names.

#ifndef CONVSTORE_SRC_THREAD_NAME_H_
#define CONVSTORE_SRC_THREAD_NAME_H_

#include <pthread.h>

#include <thread>

namespace convstore::internal {

// Names the calling thread. A thread that names itself before its first
// piece of work has its name in every sample and log line of that work;
// naming it from the creating thread races with its start.
inline void NameThisThread(const char* name) {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

// Names `t` from the thread that created it.
inline void NameThread(std::thread& t, const char* name) {
#if defined(__linux__)
  (void)pthread_setname_np(t.native_handle(), name);
#else
  (void)t;
  (void)name;
#endif
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_THREAD_NAME_H_
