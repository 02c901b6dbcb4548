// Copyright 2026 The convstore Authors.
//
// libFuzzer target: Store::Open on a damaged file must return a Status and
// never crash. The first input byte picks the file:
//   even: the rest of the input is the whole file;
//   odd:  a valid store file (3 conversations, made at start-up) with the
//         rest of the input applied as patches of 5 bytes each - a 32-bit
//         little-endian offset (modulo the file size) and the byte to put
//         there - and, when bit 1 of the first byte is set, truncated to
//         the offset of the last patch.
// Bit 2 turns on Options::verify_on_open. When Open succeeds the store is
// used - History from memory and from storage, ListConversations, an
// Append, Flush, Close - and every call must return (any Status).
//
//   ./build-fuzz/fuzz/open_corrupt_fuzzer -max_total_time=45 CORPUS_DIR

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "convstore/convstore.h"
#include "fuzz_util.h"

namespace convstore::fuzz {
namespace {

Options FuzzOptions(const std::string& path) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.read_connections = 1;
  o.sqlite_cache_mib = 1;
  // Do not wait out a retry budget on a file that fails every write.
  o.retry_budget = std::chrono::milliseconds(50);
  o.queue_full_wait = std::chrono::milliseconds(50);
  return o;
}

const std::string& SeedStoreBytes() {
  static const std::string* const bytes = [] {
    const std::string path = (ScratchDir() / "seed.db").string();
    {
      // Merging every message puts them all in the packed index, so patches
      // reach its rows too: conv-0's 70 messages fill one message_chunks
      // row (RunLength 65 for the first conversation key) and start a
      // message_tails row; the others' fit in their tails.
      Options o = FuzzOptions(path);
      o.index_merge_rows = 1;
      StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
      Check(s.ok(), "open seed: " + s.status().ToString());
      for (int c = 0; c < 3; ++c) {
        for (int i = 0; i < (c == 0 ? 70 : 5); ++i) {
          Message m;
          m.role = i == 0 ? Role::kSystem : Role::kUser;
          m.content = "seed " + std::to_string(c) + "/" + std::to_string(i);
          m.user_id = "u" + std::to_string(c);
          m.metadata = R"({"i":1})";
          Check((*s)->Append("conv-" + std::to_string(c), m).ok(),
                "seed append");
        }
      }
      Check((*s)->cache()
                .Set("ns", "key", "value", std::chrono::milliseconds(0))
                .ok(),
            "seed cache");
      Check((*s)->Close().ok(), "close seed");
    }
    return new std::string(ReadFile(path));
  }();
  return *bytes;
}

}  // namespace
}  // namespace convstore::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)convstore::fuzz::SeedStoreBytes();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convstore;
  using namespace convstore::fuzz;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string file;
  if ((mode & 1) == 0) {
    file.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    file = SeedStoreBytes();
    size_t last = file.size();
    for (size_t i = 1; i + 5 <= size; i += 5) {
      uint32_t off;
      std::memcpy(&off, data + i, sizeof(off));
      last = off % file.size();
      file[last] = static_cast<char>(data[i + 4]);
    }
    if ((mode & 2) != 0) file.resize(last);
  }
  const std::string path = (ScratchDir() / "corrupt.db").string();
  ResetDb(path, file);
  Options o = FuzzOptions(path);
  o.verify_on_open = (mode & 4) != 0;
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(o);
  if (!opened.ok()) {
    Check(!opened.status().message().empty(), "empty error message");
    return 0;
  }
  // CONVSTORE_FUZZ_VERBOSE=1 prints what each call returned, to replay one
  // input by hand.
  static const bool verbose = std::getenv("CONVSTORE_FUZZ_VERBOSE") != nullptr;
  auto note = [&](const char* what, const Status& st) {
    if (verbose) std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
  };
  Store* store = opened->get();
  for (int c = 0; c < 3; ++c) {
    const std::string id = "conv-" + std::to_string(c);
    note("History", store->History(id).status());
    HistoryOptions h;
    h.from_storage = true;
    note("History from storage", store->History(id, h).status());
  }
  note("ListConversations", store->ListConversations().status());
  note("cache Get", store->cache().Get("ns", "key").status());
  Message m;
  m.content = "after";
  note("Append", store->Append("conv-0", m).status());
  // Short timeouts: on a damaged page the writer keeps retrying (degraded,
  // Corruption) and Flush / Close wait out their timeout.
  note("Flush", store->Flush(std::chrono::milliseconds(200)));
  note("Close", store->Close(std::chrono::milliseconds(500)).status());
  return 0;
}
