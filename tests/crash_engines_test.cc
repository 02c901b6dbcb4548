// Copyright 2026 The convstore Authors.
//
// Crash survival of everything besides conversation messages: the cache,
// the audit log, API keys and analytics (with some appends, prunes and
// deletes of conversations in between, so that all of them share the
// writer's LSN order as they do in use).
//
// A child process runs a deterministic mixed workload
// (crash_engines_workload.h). After every call that makes what came before
// it durable - a Flush, a PruneMessages, and the kSync calls (audit
// Record, CreateKey, RevokeKey, RotateKey) - it reports through a pipe how
// many ops of the workload it has completed (and, for a new key, its id and
// secret). The parent SIGKILLs it at a random moment, replays the workload
// from the same seed to learn what the child had done by then, reopens the
// file and checks the contract (docs/durability.md): the file holds an LSN
// prefix, so for each object its state must be one it passed through
// between the last acknowledged point and the end of the round the child
// was in, i.e.
//  * cache: every acknowledged Set is there with its exact value unless a
//    later op of that key may have replaced it; an acknowledged Delete stays
//    done; a value is never torn or mixed; short-TTL entries stay expired;
//  * audit: Verify is ok; the child's records are 1..m in order, field for
//    field, with m at least the acknowledged count;
//  * keys: every acknowledged key validates unless a revoke or rotation of
//    it may have happened; an acknowledged revoke or rotation stays done;
//    every stored key has its audit record, and no rotation is half stored;
//  * analytics: CheckConsistency finds no orphans or stale rollups; the
//    sessions, turns, errors, metrics, events and ends present are a prefix
//    of the workload's, field for field, with no duplicate, and Aggregate
//    counts them;
//  * conversations: acknowledged appends are there, acknowledged deletes
//    and prunes stay done;
//  * PRAGMA integrity_check is ok, and the reopened store takes new writes
//    of each kind, closes cleanly, and a second reopen sees them.
//
// The child uses no Catch2 macros and leaves with _exit.

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "convstore/convstore.h"
#include "crash_engines_child.h"
#include "crash_engines_workload.h"
#include "crash_testutil.h"
#include "testutil.h"

namespace convstore {
namespace {

using crash_engines::FromStorage;
using crash_engines::kMagic;
using crash_engines::Op;
using crash_engines::OpKind;
using crash_engines::Report;
using crash_engines::RunChild;
using crash_engines::Spec;
using crash_engines::State;
using crash_engines::Workload;
using test::OpenOrDie;
using test::TempDir;
namespace ce = crash_engines;

// What the parent knows after the kill: the states the workload passed
// through from the last acknowledged point to the end of the round the
// child was in (the file must show one of them, object by object), and
// the keys whose secrets the child reported.
struct Window {
  std::vector<State> states;
  std::map<int, std::pair<std::string, std::string>> keys;  // id, secret
  std::set<int> from_rotation;  // key indices a rotation made
  uint64_t durable_ops = 0;
  uint64_t last_ops = 0;
};

// Parses the reports and replays the workload.
Window Replay(uint64_t seed, const std::string& buf) {
  REQUIRE(buf.size() % sizeof(Report) == 0);
  Window w;
  std::map<uint64_t, State> reported;
  for (size_t i = 0; i < buf.size() / sizeof(Report); ++i) {
    Report r;
    std::memcpy(&r, buf.data() + i * sizeof(Report), sizeof(Report));
    REQUIRE(r.magic == kMagic);
    REQUIRE(r.ops_done >= w.last_ops);
    // Shedding would void the cache checks (a shed write leaves the older
    // state by contract); the default queue bound never gets near it here.
    REQUIRE(r.cache_shed == 0);
    w.last_ops = r.ops_done;
    if (r.durable == 1) w.durable_ops = r.ops_done;
    reported[r.ops_done] = r.state;
    if (r.key_index >= 0) {
      w.keys[r.key_index] = {std::string(r.key_id, strnlen(r.key_id, 16)),
                             std::string(r.secret, strnlen(r.secret, 96))};
    }
  }
  Workload wl(seed);
  std::vector<Op> ops;
  while (ops.size() <= w.last_ops) {
    std::vector<Op> round = wl.NextRound();
    ops.insert(ops.end(), round.begin(), round.end());
  }
  State s;
  for (size_t i = 0; i <= ops.size(); ++i) {
    auto it = reported.find(i);
    if (it != reported.end()) {
      INFO("op " << i);
      REQUIRE(it->second == s);  // the replay matches the child
    }
    if (i >= w.durable_ops) w.states.push_back(s);
    if (i == ops.size()) break;
    if (ops[i].kind == OpKind::kRotateKey) {
      w.from_rotation.insert(static_cast<int>(ops[i].n));
    }
    Workload::ApplyTo(seed, ops[i], &s);
  }
  return w;
}

template <typename F>
bool Any(const Window& w, F f) {
  return std::any_of(w.states.begin(), w.states.end(), f);
}

void CheckConversations(uint64_t seed, Store* store, const Window& w) {
  std::map<std::string, int64_t> present;
  for (int c = 0; c < ce::kConvs; ++c) {
    INFO("conversation " << c);
    StatusOr<std::vector<MessagePtr>> h =
        store->History(ce::ConvId(c), FromStorage());
    REQUIRE(h.ok());
    if (h->empty()) {
      CHECK(Any(w, [&](const State& s) { return s.count[c] == s.cut[c]; }));
      continue;
    }
    uint32_t epoch = 0;
    REQUIRE(std::sscanf((*h)[0]->content.c_str(), "c%*d/e%u/", &epoch) == 1);
    const int64_t lo = (*h)[0]->seq;
    const int64_t hi = lo + static_cast<int64_t>(h->size()) - 1;
    INFO("epoch " << epoch << ", seqs " << lo << ".." << hi);
    for (size_t i = 0; i < h->size(); ++i) {
      const MessagePtr& m = (*h)[i];
      const int64_t seq = lo + static_cast<int64_t>(i);
      const Message want = ce::GenerateMessage(seed, c, epoch, seq);
      REQUIRE(m->seq == seq);  // gap-free
      CHECK(m->content == want.content);
      CHECK(m->role == want.role);
      CHECK(m->tokens_in == want.tokens_in);
      CHECK(m->created_at_us == want.created_at_us);
    }
    // An acknowledged append is there, an acknowledged delete or prune
    // stays done.
    CHECK(Any(w, [&](const State& s) {
      return s.epoch[c] == epoch && s.count[c] == hi && s.cut[c] + 1 == lo;
    }));
    present[ce::ConvId(c)] = hi;
  }
  StatusOr<ConversationPage> page = store->ListConversations(ListOptions{});
  REQUIRE(page.ok());
  std::map<std::string, int64_t> listed;
  for (const ConversationInfo& info : page->conversations) {
    listed[info.conversation_id] = info.message_count;
    CHECK(info.last_seq == info.message_count);
  }
  CHECK(listed == present);
}

// The rows of namespace `ns` in the file: key -> (value, expires_at_us).
std::map<std::string, std::pair<std::string, int64_t>> CacheRows(
    const std::string& path, const std::string& ns) {
  std::map<std::string, std::pair<std::string, int64_t>> rows;
  sqlite3* db = nullptr;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT key, value, expires_at_us FROM "
                             "cache_entries WHERE ns = ?",
                             -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, ns.data(), static_cast<int>(ns.size()),
                    SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto* value = static_cast<const char*>(sqlite3_column_blob(st, 1));
    rows[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = {
        std::string(value == nullptr ? "" : value,
                    static_cast<size_t>(sqlite3_column_bytes(st, 1))),
        sqlite3_column_int64(st, 2)};
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

void CheckCache(uint64_t seed, Store* store, const std::string& path,
                const Window& w) {
  Cache& cache = store->cache();
  const auto rows = CacheRows(path, "kv");
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (int k = 0; k < ce::kCacheKeys; ++k) {
    INFO("cache key " << k);
    StatusOr<std::string> v = cache.Get("kv", ce::CacheKey(k));
    auto row = rows.find(ce::CacheKey(k));
    if (!v.ok()) {
      REQUIRE(v.status().code() == StatusCode::kNotFound);
      CHECK(row == rows.end());  // nothing expires here: no row left behind
      CHECK(Any(w, [&](const State& s) {
        const uint32_t j = s.cache_ops[k];
        return j == 0 || ce::CacheOpIsDelete(seed, k, j);
      }));
      continue;
    }
    uint32_t j = 0;
    REQUIRE(std::sscanf(v->c_str(), "k%*d/j%u/", &j) == 1);
    INFO("value of op " << j);
    CHECK(*v == ce::CacheValue(seed, k, j));  // never torn or mixed
    CHECK_FALSE(ce::CacheOpIsDelete(seed, k, j));
    CHECK(Any(w, [&](const State& s) { return s.cache_ops[k] == j; }));
    // The file holds what memory reloaded, with the op's expiry.
    REQUIRE(row != rows.end());
    CHECK(row->second.first == *v);
    if (ce::CacheTtl(seed, k, j).count() == 0) {
      CHECK(row->second.second == 0);
    } else {
      CHECK(row->second.second > now_us);
      CHECK(row->second.second <=
            now_us + std::chrono::microseconds(ce::kLongTtl).count());
    }
  }
  for (int k = 0; k < ce::kShortKeys; ++k) {
    CHECK(cache.Get("short", ce::CacheKey(k)).status().code() ==
          StatusCode::kNotFound);
  }
  StatusOr<std::string> ctr = cache.Get("ctr", "hits");
  const int64_t counter = ctr.ok() ? std::stoll(*ctr) : 0;
  INFO("counter " << counter << " (" << ctr.status().ToString() << ")");
  CHECK(Any(w, [&](const State& s) { return s.counter == counter; }));
  // The window counter is written right after "hits": a kill between the
  // two leaves it one behind.
  StatusOr<std::string> window = cache.Get("ctr", "window");
  const auto counters = CacheRows(path, "ctr");
  if (window.ok()) {
    REQUIRE(counters.count("window") == 1);
    CHECK(counters.at("window").second > now_us);
  }
  const int64_t windowed = window.ok() ? std::stoll(*window) : 0;
  INFO("window counter " << windowed << " (" << window.status().ToString()
                         << ")");
  CHECK(Any(w, [&](const State& s) {
    return s.counter == windowed || s.counter == windowed + 1;
  }));
}

void CheckAudit(uint64_t seed, Store* store, const Window& w) {
  StatusOr<AuditVerification> v = store->audit().Verify();
  REQUIRE(v.ok());
  INFO("break at " << v->broken_id << ": " << v->detail);
  CHECK(v->ok);
  std::vector<AuditRecord> mine;  // newest first
  AuditQuery q;
  q.actor = "crash-child";
  q.limit = 10000;
  do {
    StatusOr<AuditPage> page = store->audit().Query(q);
    REQUIRE(page.ok());
    mine.insert(mine.end(), page->records.begin(), page->records.end());
    q.before_id = page->next_before_id;
  } while (q.before_id != 0);
  std::reverse(mine.begin(), mine.end());
  for (size_t i = 0; i < mine.size(); ++i) {
    INFO("record " << i + 1 << " id " << mine[i].id);
    const AuditEvent want =
        ce::AuditRecordFor(seed, static_cast<uint32_t>(i + 1));
    REQUIRE(mine[i].event.resource == want.resource);  // in order, no gap
    CHECK(mine[i].event.details_json == want.details_json);
    CHECK(mine[i].event.action == want.action);
    if (i > 0) CHECK(mine[i].id > mine[i - 1].id);
  }
  INFO(mine.size() << " records");
  CHECK(Any(w, [&](const State& s) { return s.audit == mine.size(); }));
}

void CheckKeys(Store* store, const Window& w) {
  Keys& keys = store->keys();
  for (const auto& [index, key] : w.keys) {
    INFO("key " << index << " " << key.first);
    std::set<uint8_t> could;
    for (const State& s : w.states) could.insert(s.key_state[index]);
    StatusOr<KeyInfo> got = keys.ValidateKey(key.second, "chat:write");
    if (got.ok()) {
      CHECK(got->id == key.first);
      CHECK(could.count(ce::kKeyActive) + could.count(ce::kKeyRotatedLong) > 0);
    } else {
      INFO(got.status().ToString());
      REQUIRE(got.status().code() == StatusCode::kPermissionDenied);
      CHECK(could.count(ce::kKeyRevoked) + could.count(ce::kKeyRotatedNow) > 0);
    }
    // A key change commits with its audit record.
    if (w.from_rotation.count(index) != 0) continue;
    AuditQuery q;
    q.resource = key.first;
    q.action = "key.create";
    StatusOr<AuditPage> created = store->audit().Query(q);
    REQUIRE(created.ok());
    CHECK(created->records.size() == 1);
  }
  StatusOr<std::vector<KeyInfo>> all = keys.ListKeys(std::nullopt);
  REQUIRE(all.ok());
  INFO(all->size() << " keys");
  CHECK(Any(w, [&](const State& s) { return s.keys == all->size(); }));
  // Whatever the kill cut, every key in the file came with its audit
  // record, and a rotation is whole: the new key's old key names it as its
  // successor (and is ended), so it cannot be rotated a second time.
  std::map<std::string, KeyInfo> by_id;
  for (const KeyInfo& k : *all) by_id[k.id] = k;
  for (const KeyInfo& k : *all) {
    INFO("stored key " << k.id << " rotated from [" << k.rotated_from << "]");
    AuditQuery q;
    q.action = k.rotated_from.empty() ? "key.create" : "key.rotate";
    q.resource = k.rotated_from.empty() ? k.id : k.rotated_from;
    StatusOr<AuditPage> made = store->audit().Query(q);
    REQUIRE(made.ok());
    CHECK(made->records.size() == 1);
    if (k.rotated_from.empty()) continue;
    auto old = by_id.find(k.rotated_from);
    REQUIRE(old != by_id.end());
    CHECK(old->second.replaced_by == k.id);
    CHECK(old->second.expires_at_us != 0);
  }
}

// Whether `step` of a session is in `d`; checks its fields and time (the
// `a`-th analytics op) when it is.
bool StepPresent(uint64_t seed, uint32_t s, const ce::Step& step,
                 const SessionDetail& d, uint32_t a) {
  const int64_t at = ce::AnalyticsAt(a);
  const std::string turn = std::to_string(step.turn);
  switch (step.kind) {
    case ce::StepKind::kStart:
      CHECK(d.summary.start.session_id == ce::SessionId(s));
      CHECK(d.summary.start.started_at_us == at);
      return true;
    case ce::StepKind::kTurn: {
      if (d.turns.size() < step.turn) return false;
      const TurnMetrics& t = d.turns[step.turn - 1];
      REQUIRE(t.turn_number == static_cast<int64_t>(step.turn));
      CHECK(t.e2e_ms == ce::E2eMs(seed, s, step.turn));
      CHECK(t.at_us == at);
      return true;
    }
    case ce::StepKind::kError: {
      const ErrorRecord want = ce::ErrorFor(s, step.turn, at);
      const auto n = std::count_if(
          d.errors.begin(), d.errors.end(),
          [&](const ErrorRecord& e) { return e.message == want.message; });
      REQUIRE(n <= 1);
      if (n == 0) return false;
      const ErrorRecord& e = *std::find_if(
          d.errors.begin(), d.errors.end(),
          [&](const ErrorRecord& x) { return x.message == want.message; });
      CHECK(e.at_us == at);
      CHECK(e.type == want.type);
      CHECK(e.severity == want.severity);
      return true;
    }
    case ce::StepKind::kMetric: {
      const Metric want = ce::MetricFor(seed, s, step.turn, at);
      const auto n =
          std::count_if(d.metrics.begin(), d.metrics.end(),
                        [&](const Metric& m) { return m.tags == want.tags; });
      REQUIRE(n <= 1);
      if (n == 0) return false;
      const Metric& m =
          *std::find_if(d.metrics.begin(), d.metrics.end(),
                        [&](const Metric& x) { return x.tags == want.tags; });
      CHECK(m.name == want.name);
      CHECK(m.value == want.value);
      CHECK(m.at_us == at);
      return true;
    }
    case ce::StepKind::kEvent: {
      const std::string to = "s" + turn;
      auto is_it = [&](const Event& e) {
        const auto* st = std::get_if<StateTransition>(&e.body);
        return st != nullptr && st->to_state == to;
      };
      const auto n = std::count_if(d.events.begin(), d.events.end(), is_it);
      REQUIRE(n <= 1);
      if (n == 0) return false;
      const Event& e = *std::find_if(d.events.begin(), d.events.end(), is_it);
      CHECK(e.at_us == at);
      CHECK(std::get<StateTransition>(e.body).from_state ==
            "s" + std::to_string(step.turn - 1));
      return true;
    }
    case ce::StepKind::kEnd:
      if (d.summary.status == SessionStatus::kActive) return false;
      CHECK(d.summary.final_state == "done");
      CHECK(d.summary.ended_at_us == at);
      return true;
  }
  return false;
}

void CheckAnalytics(uint64_t seed, Store* store, const Window& w) {
  Analytics& an = store->analytics();
  // Walk the sessions the workload made, in order, and count the ops
  // present; they must be a prefix of the workload's analytics ops: once
  // one is missing, nothing after it (in this session or a later one) is
  // there.
  uint32_t present = 0;
  uint32_t turns_present = 0;
  uint32_t sessions_present = 0;
  bool prefix_ended = false;
  for (uint32_t s = 0;; ++s) {
    INFO("session " << s);
    StatusOr<SessionDetail> d = an.GetSession(ce::SessionId(s));
    if (!d.ok()) {
      REQUIRE(d.status().code() == StatusCode::kNotFound);
      break;
    }
    REQUIRE_FALSE(prefix_ended);  // nothing after a partial session
    ++sessions_present;
    size_t turns = 0, errors = 0, metrics = 0, events = 0;
    const std::vector<ce::Step> steps = ce::SessionSteps(seed, s);
    for (size_t i = 0; i < steps.size(); ++i) {
      INFO("step " << i << " (kind " << static_cast<int>(steps[i].kind)
                   << ", turn " << steps[i].turn << ")");
      const bool here = StepPresent(seed, s, steps[i], *d, present + 1);
      if (!here) {
        prefix_ended = true;
        continue;
      }
      REQUIRE_FALSE(prefix_ended);  // a step after a missing one
      ++present;
      turns += steps[i].kind == ce::StepKind::kTurn;
      errors += steps[i].kind == ce::StepKind::kError;
      metrics += steps[i].kind == ce::StepKind::kMetric;
      events += steps[i].kind == ce::StepKind::kEvent;
    }
    // Nothing besides the workload's own records.
    CHECK(d->turns.size() == turns);
    CHECK(d->errors.size() == errors);
    CHECK(d->metrics.size() == metrics);
    CHECK(d->events.size() == events);
    turns_present += static_cast<uint32_t>(d->turns.size());
  }
  INFO(present << " analytics ops present");
  CHECK(Any(w, [&](const State& s) { return s.analytics == present; }));
  StatusOr<ConsistencyReport> c = an.CheckConsistency(false);
  REQUIRE(c.ok());
  CHECK(c->orphan_turns == 0);
  CHECK(c->orphan_errors == 0);
  CHECK(c->orphan_events == 0);
  CHECK(c->stale_rollups == 0);
  AggregateQuery q;
  q.range.from_us = ce::kT0;
  q.range.to_us = ce::kT0 + int64_t{3600} * 1'000'000 * 24;
  StatusOr<AggregateResult> agg = an.Aggregate(q);
  REQUIRE(agg.ok());
  int64_t turns = 0, sessions = 0;
  for (const GroupAggregate& g : agg->groups) {
    turns += g.turns;
    sessions += g.sessions;
  }
  CHECK(turns == turns_present);
  CHECK(sessions == sessions_present);
}

// New writes of each kind on the reopened store; a second reopen sees them.
void WriteAfterCrash(const Options& o, const Window& w) {
  auto store = OpenOrDie(o);
  REQUIRE(store->Append("after", test::Msg(Role::kUser, "after")).ok());
  REQUIRE(store->DeleteConversation(ce::ConvId(0)).ok());
  REQUIRE(store->cache().Set("kv", "after", "v", ce::kLongTtl).ok());
  REQUIRE(store->cache().Delete("kv", ce::CacheKey(1)).ok());
  AuditEvent e = ce::AuditRecordFor(0, 0);
  e.actor = "parent";
  REQUIRE(store->audit().Record(e).ok());
  StatusOr<CreatedKey> key = store->keys().CreateKey(Spec("after"));
  REQUIRE(key.ok());
  std::string revoked;  // the secret of a key revoked now
  for (const auto& [index, k] : w.keys) {
    if (!store->keys().ValidateKey(k.second).ok()) continue;
    REQUIRE(store->keys().RevokeKey(k.first).ok());
    revoked = k.second;
    break;
  }
  Analytics& an = store->analytics();
  SessionStart start;
  start.session_id = "after-call";
  REQUIRE(an.StartSession(start).ok());
  TurnMetrics turn;
  turn.session_id = "after-call";
  turn.turn_number = 1;
  REQUIRE(an.RecordTurn(turn).ok());
  SessionEnd end;
  end.session_id = "after-call";
  REQUIRE(an.EndSession(end).ok());
  StatusOr<CloseReport> closed = store->Close();
  REQUIRE(closed.ok());
  CHECK(closed->remaining == 0);
  store.reset();

  store = OpenOrDie(o);
  CHECK(test::Contents(test::Hist(store.get(), "after")) ==
        std::vector<std::string>{"after"});
  CHECK(test::Hist(store.get(), ce::ConvId(0)).empty());
  StatusOr<std::string> after = store->cache().Get("kv", "after");
  REQUIRE(after.ok());
  CHECK(*after == "v");
  CHECK(store->cache().Get("kv", ce::CacheKey(1)).status().code() ==
        StatusCode::kNotFound);
  AuditQuery q;
  q.actor = "parent";
  CHECK(store->audit().Query(q)->records.size() == 1);
  StatusOr<AuditVerification> v = store->audit().Verify();
  REQUIRE(v.ok());
  CHECK(v->ok);
  CHECK(store->keys().ValidateKey(key->secret).ok());
  if (!revoked.empty()) {
    CHECK(store->keys().ValidateKey(revoked).status().code() ==
          StatusCode::kPermissionDenied);
  }
  StatusOr<SessionDetail> d = store->analytics().GetSession("after-call");
  REQUIRE(d.ok());
  CHECK(d->turns.size() == 1);
  CHECK(d->summary.status == SessionStatus::kCompleted);
  REQUIRE(store->Close().ok());
}

// One fork / random kill / reopen / verify cycle.
void CrashOnce(uint64_t seed) {
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.File("crash/store.db");
  const auto delay =
      std::chrono::milliseconds(static_cast<int64_t>(ce::Mix(seed) % 700));
  INFO("kill after " << delay.count() << " ms");

  const crash_test::Killed k =
      crash_test::RunAndKill([&](int fd) { RunChild(path, seed, fd); }, delay);
  const std::string& buf = k.reports;
  const int status = k.status;
  const auto killed = k.at;
  INFO("child status " << status);
  REQUIRE(WIFSIGNALED(status));  // never finishes or fails on its own
  REQUIRE(WTERMSIG(status) == SIGKILL);

  const Window w = Replay(seed, buf);
  INFO("ops: durable " << w.durable_ops << ", reported " << w.last_ops
                       << ", issued at most "
                       << w.durable_ops + w.states.size() - 1);
  if (std::getenv("CRASH_ENGINES_VERBOSE") != nullptr) {
    const State& s = w.states.front();
    std::fprintf(stderr,
                 "kill %lld ms: durable %llu ops, reported %llu, window %zu; "
                 "acked audit %u analytics %u keys %u counter %lld\n",
                 static_cast<long long>(delay.count()),
                 static_cast<unsigned long long>(w.durable_ops),
                 static_cast<unsigned long long>(w.last_ops), w.states.size(),
                 s.audit, s.analytics, s.keys,
                 static_cast<long long>(s.counter));
  }
  // Every short-TTL entry has expired by the time the file is reopened.
  std::this_thread::sleep_until(killed + 3 * ce::kShortTtl);

  Options o = test::TestOptions(dir);
  o.path = path;
  {
    auto store = OpenOrDie(o);
    CHECK(crash_test::IntegrityCheck(path) == "ok");
    CheckConversations(seed, store.get(), w);
    CheckCache(seed, store.get(), path, w);
    CheckAudit(seed, store.get(), w);
    CheckKeys(store.get(), w);
    CheckAnalytics(seed, store.get(), w);
    REQUIRE(store->Close().ok());
  }
  WriteAfterCrash(o, w);
  CHECK(crash_test::IntegrityCheck(path) == "ok");
}

uint64_t BaseSeed() {
  return ce::Mix(static_cast<uint64_t>(Catch::rngSeed()) * 1000003u + 29);
}

TEST_CASE(
    "SIGKILL keeps every acknowledged cache audit key and analytics write",
    "[crash]") {
  const uint64_t base = BaseSeed();
  for (int i = 0; i < 12; ++i) {
    INFO("iteration " << i);
    CrashOnce(ce::Mix(base + static_cast<uint64_t>(i)));
  }
}

TEST_CASE("SIGKILL of the mixed workload 150 times", "[crash][slow]") {
  const uint64_t base = BaseSeed() ^ 0x5eed;
  for (int i = 0; i < 150; ++i) {
    INFO("iteration " << i);
    CrashOnce(ce::Mix(base + static_cast<uint64_t>(i)));
  }
}

}  // namespace
}  // namespace convstore
