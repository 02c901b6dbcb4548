// Copyright 2026 The convstore Authors.
//
// The child side of tests/crash_engines_test.cc: runs the workload of
// crash_engines_workload.h against a Store and reports through a pipe how
// far it got after every call that made what came before it durable. It
// uses no Catch2 macros and leaves only through _exit (the parent SIGKILLs
// it long before it would finish).

#ifndef CONVSTORE_TESTS_CRASH_ENGINES_CHILD_H_
#define CONVSTORE_TESTS_CRASH_ENGINES_CHILD_H_

#include <limits.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "crash_engines_workload.h"

namespace convstore::crash_engines {

namespace ce = ::convstore::crash_engines;

constexpr uint32_t kMagic = 0xC0FFEE02;
constexpr int kMaxRounds = 100000;  // the child is killed long before

// One report: the child has completed `ops_done` ops of the workload, and
// when `durable` is 1 they are all durable (the last one was a barrier
// that returned OK). A report after a CreateKey or RotateKey carries the
// new key's index, id and secret. Smaller than PIPE_BUF, so a write is
// atomic and the parent never sees half of one.
struct Report {
  uint32_t magic = kMagic;
  uint32_t durable = 0;
  uint64_t ops_done = 0;
  uint64_t cache_shed = 0;  // CacheStats::persist_shed
  State state;              // after ops_done ops, to check the replay
  int32_t key_index = -1;
  char key_id[16] = {};
  char secret[96] = {};
};
static_assert(sizeof(Report) <= PIPE_BUF);

inline KeySpec Spec(std::string name) {
  KeySpec spec;
  spec.name = std::move(name);
  spec.owner = "crash";
  spec.scopes = {"chat:write"};
  return spec;
}

inline HistoryOptions FromStorage() {
  HistoryOptions h;
  h.from_storage = true;
  return h;
}

class Child {
 public:
  Child(Store* store, uint64_t seed, int fd)
      : s_(store), seed_(seed), fd_(fd) {}

  [[noreturn]] void Run() {
    Workload w(seed_);
    for (int round = 0; round < kMaxRounds; ++round) {
      std::vector<Op> ops = w.NextRound();
      for (const Op& op : ops) {
        Report r;
        Do(op, &r);
        Workload::ApplyTo(seed_, op, &done_);
        ++ops_done_;
        if (ce::IsBarrier(op.kind)) Send(&r, 1);
      }
      if (!ce::IsBarrier(ops.back().kind)) {
        Report r;
        Send(&r, 0);
      }
    }
    if (!s_->Close().ok()) Fail("close", Status());
    ::_exit(0);
  }

 private:
  [[noreturn]] static void Fail(const char* what, const Status& s) {
    std::fprintf(stderr, "crash child: %s: %s\n", what, s.ToString().c_str());
    ::_exit(3);
  }
  static void Check(const char* what, const Status& s) {
    if (!s.ok()) Fail(what, s);
  }

  void Send(Report* r, uint32_t durable) {
    r->durable = durable;
    r->ops_done = ops_done_;
    r->cache_shed = s_->cache().GetStats().persist_shed;
    r->state = done_;
    if (::write(fd_, r, sizeof(*r)) != static_cast<ssize_t>(sizeof(*r))) {
      ::_exit(7);
    }
  }

  void KeyMade(int index, const StatusOr<CreatedKey>& k, Report* r) {
    Check("key", k.status());
    ids_[index] = k->info.id;
    r->key_index = index;
    std::snprintf(r->key_id, sizeof(r->key_id), "%s", k->info.id.c_str());
    std::snprintf(r->secret, sizeof(r->secret), "%s", k->secret.c_str());
  }

  void Do(const Op& op, Report* r) {
    Cache& cache = s_->cache();
    const auto j = static_cast<uint32_t>(op.n);
    switch (op.kind) {
      case OpKind::kAppend: {
        StatusOr<AppendResult> a =
            s_->Append(ce::ConvId(op.target),
                       ce::GenerateMessage(seed_, op.target,
                                           done_.epoch[op.target], op.n));
        Check("append", a.status());
        if (a->seq != op.n) Fail("append seq", Status());
        break;
      }
      case OpKind::kDeleteConv:
        Check("delete", s_->DeleteConversation(ce::ConvId(op.target)).status());
        break;
      case OpKind::kCacheSet:
        Check("set", cache.Set("kv", ce::CacheKey(op.target),
                               ce::CacheValue(seed_, op.target, j),
                               ce::CacheTtl(seed_, op.target, j)));
        break;
      case OpKind::kCacheDelete:
        Check("cache delete", cache.Delete("kv", ce::CacheKey(op.target)));
        break;
      case OpKind::kCacheShort:
        Check("short set", cache.Set("short", ce::CacheKey(op.target), "short",
                                     ce::kShortTtl));
        break;
      case OpKind::kIncrement: {
        StatusOr<int64_t> v =
            cache.Increment("ctr", "hits", 1, std::chrono::milliseconds(0));
        Check("increment", v.status());
        if (*v != done_.counter + 1) Fail("increment value", Status());
        // The same count in a counter with a window (a TTL that outlives
        // the test): it must keep both its count and its expiry.
        v = cache.Increment("ctr", "window", 1, ce::kLongTtl);
        Check("increment window", v.status());
        if (*v != done_.counter + 1) Fail("window value", Status());
        break;
      }
      case OpKind::kAuditSync:
        Check("record", s_->audit().Record(ce::AuditRecordFor(seed_, j)));
        break;
      case OpKind::kAuditAsync:
        Check("record async",
              s_->audit().RecordAsync(ce::AuditRecordFor(seed_, j)));
        break;
      case OpKind::kAnalytics:
        DoAnalytics(j);
        break;
      case OpKind::kCreateKey:
        KeyMade(static_cast<int>(op.n),
                s_->keys().CreateKey(Spec("key " + std::to_string(op.n))), r);
        break;
      case OpKind::kRevokeKey:
        Check("revoke", s_->keys().RevokeKey(ids_[op.target]));
        break;
      case OpKind::kRotateKey:
        KeyMade(static_cast<int>(op.n),
                s_->keys().RotateKey(
                    ids_[op.target],
                    op.long_overlap ? ce::kLongTtl : std::chrono::hours(0)),
                r);
        break;
      case OpKind::kFlush:
        Check("flush", s_->Flush());
        break;
      case OpKind::kPrune: {
        MessageRetention mr;
        mr.max_messages_per_conversation = ce::kKeepMessages;
        mr.keep_first_system = false;
        mr.batch_rows = 100000;  // one transaction: all or nothing
        Check("prune", s_->PruneMessages(mr).status());
        break;
      }
    }
  }

  void DoAnalytics(uint32_t a) {
    Analytics& an = s_->analytics();
    const uint32_t s = done_.an_session;
    const ce::Step step = ce::SessionSteps(seed_, s)[done_.an_step];
    const std::string id = ce::SessionId(s);
    const int64_t at = ce::AnalyticsAt(a);
    switch (step.kind) {
      case ce::StepKind::kStart: {
        SessionStart st;
        st.session_id = id;
        st.tenant = "acme";
        st.channel = "phone";
        st.started_at_us = at;
        Check("start session", an.StartSession(st));
        break;
      }
      case ce::StepKind::kTurn: {
        TurnMetrics t;
        t.session_id = id;
        t.turn_number = step.turn;
        t.at_us = at;
        t.e2e_ms = ce::E2eMs(seed_, s, step.turn);
        t.llm_model = "model-a";
        Check("turn", an.RecordTurn(t));
        break;
      }
      case ce::StepKind::kError:
        Check("error", an.RecordError(ce::ErrorFor(s, step.turn, at)));
        break;
      case ce::StepKind::kMetric:
        Check("metric",
              an.RecordMetric(ce::MetricFor(seed_, s, step.turn, at)));
        break;
      case ce::StepKind::kEvent:
        Check("event", an.RecordEvent(ce::EventFor(s, step.turn, at)));
        break;
      case ce::StepKind::kEnd: {
        SessionEnd e;
        e.session_id = id;
        e.final_state = "done";
        e.ended_at_us = at;
        Check("end session", an.EndSession(e));
        break;
      }
    }
  }

  Store* s_;
  uint64_t seed_;
  int fd_;
  uint64_t ops_done_ = 0;
  State done_;
  std::string ids_[ce::kMaxKeys];
};

[[noreturn]] inline void RunChild(const std::string& path, uint64_t seed,
                                  int fd) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(2);  // commits in between too
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "crash child: open: %s\n",
                 opened.status().ToString().c_str());
    ::_exit(2);
  }
  Child(opened->get(), seed, fd).Run();
}

}  // namespace convstore::crash_engines

#endif  // CONVSTORE_TESTS_CRASH_ENGINES_CHILD_H_
