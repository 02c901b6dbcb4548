// Copyright 2026 The convstore Authors.
//
// libFuzzer target: a random sequence of Store operations (Append with
// random bytes, ids and roles, History from memory or storage,
// DeleteConversation, Flush, ListConversations, Close + reopen) against a
// fresh store, compared after every step with a simple in-memory model
// (std::map of conversation id -> messages). Any difference, and any Status
// other than OK or InvalidArgument, aborts.
//
// Small limits (ids of 32 bytes, content of 256, a cache of 2
// conversations x 4 messages) make the fuzzer reach the rejections, the
// evictions and the read-through paths quickly.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
//     -DCONVSTORE_FUZZ=ON && cmake --build build-fuzz
//   ./build-fuzz/fuzz/store_ops_fuzzer -max_total_time=45 CORPUS_DIR

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "fuzz_util.h"

namespace convstore::fuzz {
namespace {

Options FuzzOptions(const std::string& path) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.max_id_bytes = 32;
  o.max_content_bytes = 256;
  o.max_metadata_bytes = 128;
  o.max_tokens_per_message = 1000;
  o.cache_shards = 1;
  o.cache_max_conversations = 2;
  o.cache_max_messages_per_conversation = 4;
  o.read_connections = 1;
  o.sqlite_cache_mib = 1;
  return o;
}

// A fresh store file, made once: copying its bytes is much cheaper than
// running the migrations for every input.
const std::string& EmptyStoreBytes() {
  static const std::string* const bytes =
      new std::string(NewStoreBytes(FuzzOptions(""), "template.db"));
  return *bytes;
}

std::string Describe(const Message& m) {
  return std::to_string(m.seq) + "|" +
         std::to_string(static_cast<int>(m.role)) + "|" + m.content + "|" +
         m.user_id + "|" + std::to_string(m.tokens_in) + "|" +
         std::to_string(m.tokens_out) + "|" + m.tool_call_id + "|" +
         m.tool_name + "|" + m.metadata + "|" + std::to_string(m.created_at_us);
}

std::string Id(FuzzedDataProvider& in) {
  // Mostly a few well-formed ids so operations meet each other; sometimes
  // arbitrary bytes.
  if (in.ConsumeIntegralInRange<int>(0, 7) != 0) {
    return "c" + std::to_string(in.ConsumeIntegralInRange<int>(0, 4));
  }
  return in.ConsumeRandomLengthString(40);
}

std::string Text(FuzzedDataProvider& in, size_t max) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return std::string();
    case 1:
      return "plain text ✓";
    default:
      return in.ConsumeRandomLengthString(max);
  }
}

Message RandomMessage(FuzzedDataProvider& in) {
  Message m;
  m.role = static_cast<Role>(in.ConsumeIntegralInRange<int>(-1, 4));
  m.content = Text(in, 300);
  if (in.ConsumeBool()) m.user_id = Text(in, 40);
  if (in.ConsumeBool()) {
    m.tool_call_id = Text(in, 40);
    m.tool_name = Text(in, 40);
  }
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      break;
    case 1:
      m.metadata = R"({"k":[1,2,{"x":null}]})";
      break;
    default:
      m.metadata = in.ConsumeRandomLengthString(150);
  }
  m.tokens_in = in.ConsumeIntegralInRange<int64_t>(-2, 1002);
  m.tokens_out = in.ConsumeBool() ? in.ConsumeIntegral<int64_t>()
                                  : in.ConsumeIntegralInRange<int64_t>(0, 10);
  // Fixed unless negative: created_at 0 means "now", which the model
  // cannot predict.
  m.created_at_us = in.ConsumeBool() ? -1 : 1'700'000'000'000'000;
  return m;
}

using Model = std::map<std::string, std::vector<Message>>;

void CheckHistory(Store* store, const Model& model, const std::string& id,
                  bool from_storage) {
  HistoryOptions h;
  h.from_storage = from_storage;
  StatusOr<std::vector<MessagePtr>> got = store->History(id, h);
  if (!got.ok()) {
    Check(got.status().IsInvalidArgument(),
          "History: " + got.status().ToString());
    Check(model.find(id) == model.end(), "History refused a stored id");
    return;
  }
  auto it = model.find(id);
  const size_t want = it == model.end() ? 0 : it->second.size();
  Check(got->size() == want, "History of '" + id + "' has " +
                                 std::to_string(got->size()) + " messages, " +
                                 "model " + std::to_string(want));
  for (size_t i = 0; i < want; ++i) {
    Check(Describe(*(*got)[i]) == Describe(it->second[i]),
          "History of '" + id + "' differs at " + std::to_string(i) + ": " +
              Describe(*(*got)[i]) + " vs " + Describe(it->second[i]));
  }
}

std::unique_ptr<Store> OpenStore(const std::string& path) {
  StatusOr<std::unique_ptr<Store>> s = Store::Open(FuzzOptions(path));
  Check(s.ok(), "open: " + s.status().ToString());
  return std::move(s).value();
}

}  // namespace
}  // namespace convstore::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convstore;
  using namespace convstore::fuzz;
  const std::string path = (ScratchDir() / "ops.db").string();
  ResetDb(path, EmptyStoreBytes());
  FuzzedDataProvider in(data, size);
  Model model;
  std::unique_ptr<Store> store = OpenStore(path);
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // Append
        const std::string id = Id(in);
        Message m = RandomMessage(in);
        AppendOptions ao;
        ao.sync = in.ConsumeIntegralInRange<int>(0, 7) == 0;
        StatusOr<AppendResult> r = store->Append(id, m, ao);
        if (!r.ok()) {
          Check(r.status().IsInvalidArgument(),
                "Append: " + r.status().ToString());
          break;
        }
        std::vector<Message>& conv = model[id];
        m.seq = static_cast<int64_t>(conv.size()) + 1;
        Check(r->seq == m.seq, "Append seq " + std::to_string(r->seq) +
                                   ", model " + std::to_string(m.seq));
        Check(m.created_at_us >= 0, "negative created_at accepted");
        conv.push_back(m);
        break;
      }
      case 4:
      case 5:  // History
        CheckHistory(store.get(), model, Id(in), in.ConsumeBool());
        break;
      case 6: {  // DeleteConversation
        const std::string id = Id(in);
        StatusOr<uint64_t> r = store->DeleteConversation(id);
        if (!r.ok()) {
          Check(r.status().IsInvalidArgument(),
                "Delete: " + r.status().ToString());
          Check(model.find(id) == model.end(), "Delete refused a stored id");
          break;
        }
        model.erase(id);
        break;
      }
      case 7: {  // Flush
        Status s = store->Flush();
        Check(s.ok(), "Flush: " + s.ToString());
        break;
      }
      case 8: {  // ListConversations
        ListOptions lo;
        lo.limit = 100;
        StatusOr<ConversationPage> page = store->ListConversations(lo);
        Check(page.ok(), "List: " + page.status().ToString());
        Check(page->conversations.size() == model.size(),
              "List has " + std::to_string(page->conversations.size()) +
                  " conversations, model " + std::to_string(model.size()));
        for (const ConversationInfo& c : page->conversations) {
          auto it = model.find(c.conversation_id);
          Check(it != model.end(),
                "List shows unknown '" + c.conversation_id + "'");
          Check(c.message_count == static_cast<int64_t>(it->second.size()),
                "List count of '" + c.conversation_id + "'");
        }
        break;
      }
      case 9: {  // Close + reopen
        StatusOr<CloseReport> c = store->Close();
        Check(c.ok(), "Close: " + c.status().ToString());
        Check(c->failed == 0 && c->remaining == 0, "Close left writes");
        store.reset();
        store = OpenStore(path);
        break;
      }
    }
  }
  // Everything is still there after a clean close.
  StatusOr<CloseReport> c = store->Close();
  Check(c.ok(), "final Close: " + c.status().ToString());
  store = OpenStore(path);
  for (const auto& [id, msgs] : model) {
    CheckHistory(store.get(), model, id, true);
  }
  Check(store->Close().ok(), "last Close");
  return 0;
}
