// Copyright 2026 The convstore Authors.

#include "demo_services.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace convstore::tools {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

constexpr char kKeyOwner[] = "demo";
constexpr char kToolsNs[] = "tools";
constexpr char kRateNs[] = "rate";
constexpr char kDemoAction[] = "demo.run";
// The demo's percentile check allows the analytics' documented error.
constexpr double kPercentileTolerance = 0.01;

// Exact percentile of `values`, interpolated between the two nearest ranks
// at p*(n-1), as Analytics::Aggregate defines it.
double ExactPercentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - std::floor(rank));
}

std::string Verdict(bool ok) { return ok ? "OK" : "MISMATCH"; }

Status RecordKey(Keys& keys, DemoServices* w, std::ostream& out,
                 const std::string& indent) {
  KeySpec spec;
  spec.name = "demo-agent";
  spec.owner = kKeyOwner;
  spec.scopes = {"chat:read", "chat:write"};
  StatusOr<CreatedKey> key = keys.CreateKey(spec);
  if (!key.ok()) return key.status().WithPrefix("CreateKey");
  w->key_id = key->info.id;
  w->key_secret = key->secret;
  for (int i = 0; i < 3; ++i) {
    StatusOr<KeyInfo> v = keys.ValidateKey(w->key_secret, "chat:write");
    if (!v.ok()) return v.status().WithPrefix("ValidateKey");
  }
  std::string wrong = w->key_secret;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  if (!keys.ValidateKey(wrong, "chat:write").status().IsUnauthenticated() ||
      !keys.ValidateKey(w->key_secret, "admin").status().IsPermissionDenied()) {
    return Status::Internal("a wrong secret or a missing scope was accepted");
  }
  StatusOr<std::vector<KeyInfo>> listed = keys.ListKeys(kKeyOwner);
  if (!listed.ok()) return listed.status().WithPrefix("ListKeys");
  for (const KeyInfo& k : *listed) {
    if (k.id == w->key_id) w->validations = k.request_count;
  }
  out << indent << "key       " << key->info.prefix
      << " created (scopes chat:read, chat:write; only its hash is stored), "
      << w->validations
      << " validations; a wrong secret and a missing scope refused\n";
  return Status::OK();
}

Status RecordCache(Cache& cache, DemoServices* w, std::ostream& out,
                   const std::string& indent) {
  w->cache_live = {{"weather:lisbon", R"({"c":21,"sky":"clear"})"},
                   {"weather:berlin", R"({"c":9,"sky":"rain"})"}};
  for (const auto& [key, value] : w->cache_live) {
    Status s = cache.Set(kToolsNs, key, value, hours(1));
    if (!s.ok()) return s.WithPrefix("cache Set");
  }
  w->cache_expired_key = "weather:stale";
  Status s = cache.Set(kToolsNs, w->cache_expired_key, "{}", milliseconds(1));
  if (!s.ok()) return s.WithPrefix("cache Set");
  w->counter_key = "alice:requests";
  for (int i = 0; i < 5; ++i) {
    StatusOr<int64_t> n = cache.Increment(kRateNs, w->counter_key, 1, hours(1));
    if (!n.ok()) return n.status().WithPrefix("cache Increment");
    w->counter = *n;
  }
  out << indent << "cache     " << w->cache_live.size()
      << " tool results with a 1 h TTL, one with 1 ms; counter " << kRateNs
      << "/" << w->counter_key << " = " << w->counter << "\n";
  return Status::OK();
}

Status RecordSessions(Analytics& analytics,
                      const std::vector<DemoConversation>& conversations,
                      DemoServices* w, std::ostream& out,
                      const std::string& indent) {
  int64_t turns = 0;
  for (size_t i = 0; i < conversations.size(); ++i) {
    const DemoConversation& c = conversations[i];
    std::mt19937 rng(static_cast<uint32_t>(i + 101));
    auto ms = [&rng](int lo, int hi) {
      return static_cast<double>(lo + static_cast<int>(rng() % (hi - lo + 1)));
    };
    SessionStart start;
    start.session_id = "session-" + c.id;
    start.conversation_id = c.id;
    start.user_id = c.user;
    start.tenant = i % 2 == 0 ? "acme" : "globex";
    start.channel = "phone";
    Status s = analytics.StartSession(start);
    if (!s.ok()) return s.WithPrefix("StartSession");
    DemoServices::Tenant& tenant = w->tenants[start.tenant];
    ++tenant.sessions;
    for (size_t k = 0; k < c.user_turns; ++k) {
      TurnMetrics t;
      t.session_id = start.session_id;
      t.turn_number = static_cast<int64_t>(k);
      t.interrupted = k % 7 == 6;
      t.eou_delay_ms = ms(150, 300);
      t.stt_ttfb_ms = ms(80, 200);
      t.llm_ttft_ms = ms(150, 600);
      t.tts_ttfb_ms = ms(60, 160);
      t.e2e_ms =
          *t.eou_delay_ms + *t.stt_ttfb_ms + *t.llm_ttft_ms + *t.tts_ttfb_ms;
      t.prompt_tokens = 400 + static_cast<int64_t>(k) * 60;
      t.completion_tokens = static_cast<int64_t>(ms(20, 120));
      t.cost = 0.000002 *
               static_cast<double>(*t.prompt_tokens + *t.completion_tokens);
      t.llm_model = "demo-llm";
      t.llm_provider = "demo";
      s = analytics.RecordTurn(t);
      if (!s.ok()) return s.WithPrefix("RecordTurn");
      tenant.e2e_ms.push_back(*t.e2e_ms);
      ++turns;
    }
    SessionEnd end;
    end.session_id = start.session_id;
    end.status = SessionStatus::kCompleted;
    end.final_state = "goodbye";
    s = analytics.EndSession(end);
    if (!s.ok()) return s.WithPrefix("EndSession");
  }
  out << indent << "sessions  " << conversations.size()
      << " voice sessions for tenants acme and globex, " << turns
      << " turns with STT, LLM and TTS latencies, tokens and cost\n";
  return Status::OK();
}

}  // namespace

Status RecordServices(Store& store,
                      const std::vector<DemoConversation>& conversations,
                      DemoServices* written, std::ostream& out,
                      const std::string& indent) {
  Status s = RecordKey(store.keys(), written, out, indent);
  if (s.ok()) s = RecordCache(store.cache(), written, out, indent);
  if (s.ok()) {
    s = RecordSessions(store.analytics(), conversations, written, out, indent);
  }
  if (!s.ok()) return s;
  AuditEvent event;
  event.actor = "demo";
  event.action = kDemoAction;
  event.resource = "demo";
  event.outcome = "ok";
  event.details_json =
      nlohmann::json{{"conversations", conversations.size()}}.dump();
  s = store.audit().Record(event);
  if (!s.ok()) return s.WithPrefix("audit Record");
  out << indent << "audit     " << kDemoAction
      << " recorded; the key's creation and the two refusals were audited "
         "automatically\n";
  return Status::OK();
}

Status VerifyServices(Store& store, const DemoServices& w, std::ostream& out,
                      const std::string& indent, size_t* failures) {
  // The key: still known with its usage, and the secret still validates.
  StatusOr<std::vector<KeyInfo>> listed = store.keys().ListKeys(kKeyOwner);
  if (!listed.ok()) return listed.status().WithPrefix("ListKeys");
  int64_t count = -1;
  for (const KeyInfo& k : *listed) {
    if (k.id == w.key_id) count = k.request_count;
  }
  const bool key_ok = count == w.validations &&
                      store.keys().ValidateKey(w.key_secret, "chat:write").ok();
  out << indent << "key       validates after the restart, usage count "
      << count << " (expected " << w.validations << "): " << Verdict(key_ok)
      << "\n";

  // The cache: live entries back, the expired one not, the counter kept.
  bool cache_ok = true;
  for (const auto& [key, value] : w.cache_live) {
    StatusOr<std::string> got = store.cache().Get(kToolsNs, key);
    cache_ok = cache_ok && got.ok() && *got == value;
  }
  const bool expired_gone =
      store.cache().Get(kToolsNs, w.cache_expired_key).status().IsNotFound();
  StatusOr<std::string> counter = store.cache().Get(kRateNs, w.counter_key);
  cache_ok = cache_ok && expired_gone && counter.ok() &&
             *counter == std::to_string(w.counter);
  out << indent << "cache     " << w.cache_live.size()
      << " live entries back, the expired one "
      << (expired_gone ? "not" : "ALSO") << " reloaded, counter "
      << (counter.ok() ? *counter : counter.status().ToString()) << ": "
      << Verdict(cache_ok) << "\n";

  // Analytics: per tenant, sessions, turns and the end-to-end percentiles.
  AggregateQuery q;
  q.group_by = GroupBy::kTenant;
  StatusOr<AggregateResult> agg = store.analytics().Aggregate(q);
  if (!agg.ok()) return agg.status().WithPrefix("Aggregate");
  bool analytics_ok = agg->groups.size() == w.tenants.size();
  for (const GroupAggregate& g : agg->groups) {
    auto it = w.tenants.find(g.key);
    if (it == w.tenants.end()) {
      analytics_ok = false;
      continue;
    }
    double p50 = -1, p95 = -1;
    for (const LatencyStats& l : g.latencies) {
      if (l.field == "e2e_ms") p50 = l.p50, p95 = l.p95;
    }
    const double want50 = ExactPercentile(it->second.e2e_ms, 0.50);
    const double want95 = ExactPercentile(it->second.e2e_ms, 0.95);
    // A tenant whose sessions recorded no turn (--turns 1: only the
    // system prompt) has no latencies to compare.
    const bool no_turns = it->second.e2e_ms.empty();
    const bool ok =
        g.sessions == it->second.sessions &&
        g.turns == static_cast<int64_t>(it->second.e2e_ms.size()) &&
        (no_turns
             ? p50 == -1 && p95 == -1
             : std::abs(p50 - want50) <= kPercentileTolerance * want50 &&
                   std::abs(p95 - want95) <= kPercentileTolerance * want95);
    analytics_ok = analytics_ok && ok;
    std::ostringstream line;
    line.precision(4);
    line << indent << "analytics " << g.key << ": " << g.sessions
         << " sessions, " << g.turns << " turns, success "
         << g.success_rate * 100 << "%, e2e p50 " << p50 << " ms (exact "
         << want50 << "), p95 " << p95 << " ms (exact " << want95
         << "): " << Verdict(ok) << "\n";
    out << line.str();
  }

  // The audit chain verifies and holds the demo's record.
  StatusOr<AuditVerification> v = store.audit().Verify();
  if (!v.ok()) return v.status().WithPrefix("audit Verify");
  AuditQuery aq;
  aq.action = kDemoAction;
  StatusOr<AuditPage> page = store.audit().Query(aq);
  if (!page.ok()) return page.status().WithPrefix("audit Query");
  const bool audit_ok = v->ok && page->records.size() == 1;
  out << indent << "audit     chain of " << v->records_checked
      << " records verifies, " << kDemoAction << " found: " << Verdict(audit_ok)
      << "\n";

  *failures += (key_ok ? 0 : 1) + (cache_ok ? 0 : 1) + (analytics_ok ? 0 : 1) +
               (audit_ok ? 0 : 1);
  return Status::OK();
}

}  // namespace convstore::tools
