// Copyright 2026 The convstore Authors.

#include "audit/audit_chain.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace convstore {

const char* AuditBreakName(AuditBreak reason) {
  switch (reason) {
    case AuditBreak::kNone:
      return "ok";
    case AuditBreak::kContentHash:
      return "content hash mismatch";
    case AuditBreak::kPrevHash:
      return "prev-hash mismatch";
    case AuditBreak::kGap:
      return "gap in ids";
    case AuditBreak::kAnchor:
      return "anchor mismatch";
    case AuditBreak::kColumnType:
      return "column type mismatch";
  }
  return "unknown";
}

namespace internal {
namespace {

void PutU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutString(std::string_view s, std::string* out) {
  PutU64(s.size(), out);
  out->append(s);
}

}  // namespace

std::string GenesisHash() { return std::string(kAuditHashBytes, '\0'); }

std::string EncodeAuditRecord(int64_t id, int64_t ts_us, const AuditEvent& e) {
  std::string out;
  out.reserve(16 + 6 * 8 + e.actor.size() + e.action.size() +
              e.resource.size() + e.outcome.size() + e.details_json.size() +
              e.source_address.size());
  PutU64(static_cast<uint64_t>(id), &out);
  PutU64(static_cast<uint64_t>(ts_us), &out);
  for (const std::string* s : {&e.actor, &e.action, &e.resource, &e.outcome,
                               &e.details_json, &e.source_address}) {
    PutString(*s, &out);
  }
  return out;
}

std::string AuditRecordHash(std::string_view prev_hash, int64_t id,
                            int64_t ts_us, const AuditEvent& e) {
  std::string input(prev_hash);
  input += EncodeAuditRecord(id, ts_us, e);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(),
                 nullptr) != 1 ||
      len != kAuditHashBytes) {
    // Only on an OpenSSL without SHA-256; an empty hash never verifies.
    return std::string();
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

ChainChecker::ChainChecker(int64_t anchor_id, std::string anchor_hash)
    : anchored_(anchor_id != 0 || !anchor_hash.empty()),
      anchor_hash_(anchor_hash),
      expected_id_(anchor_id + 1),
      expected_prev_(anchored_ ? std::move(anchor_hash) : GenesisHash()) {
  result_.anchor_id = anchor_id;
  result_.anchor_hash = HexOf(expected_prev_);
  result_.last_id = anchor_id;
  result_.last_hash = result_.anchor_hash;
}

void ChainChecker::Break(const AuditRow& row, AuditBreak reason,
                         std::string detail) {
  result_.ok = false;
  result_.broken_id = row.id;
  result_.expected_id = expected_id_;
  result_.reason = reason;
  result_.detail = std::move(detail);
}

bool ChainChecker::Check(const AuditRow& row) {
  if (!result_.ok) return false;
  ++result_.records_checked;
  const bool first = result_.records_checked == 1;
  if (row.id != expected_id_) {
    Break(row, first && anchored_ ? AuditBreak::kAnchor : AuditBreak::kGap,
          "record " + std::to_string(row.id) + " follows " +
              (first ? (anchored_ ? "the anchor " : "genesis ")
                     : std::string("record ")) +
              std::to_string(expected_id_ - 1) + "; expected id " +
              std::to_string(expected_id_));
    return false;
  }
  if (row.prev_hash != expected_prev_) {
    Break(row, first && anchored_ ? AuditBreak::kAnchor : AuditBreak::kPrevHash,
          "record " + std::to_string(row.id) + " has prev_hash " +
              HexOf(row.prev_hash) + ", expected " + HexOf(expected_prev_));
    return false;
  }
  if (!row.type_error.empty()) {
    Break(row, AuditBreak::kColumnType,
          "record " + std::to_string(row.id) + ": " + row.type_error);
    return false;
  }
  const std::string computed =
      AuditRecordHash(row.prev_hash, row.id, row.ts_us, row.event);
  if (computed != row.hash) {
    Break(row, AuditBreak::kContentHash,
          "record " + std::to_string(row.id) + " stores hash " +
              HexOf(row.hash) + " but its content hashes to " +
              HexOf(computed));
    return false;
  }
  expected_id_ = row.id + 1;
  expected_prev_ = row.hash;
  result_.last_id = row.id;
  result_.last_hash = HexOf(row.hash);
  if (row.event.actor == "system" && row.event.action == "audit.prune") {
    // Written by SqliteAudit::Prune in the transaction that set the anchor.
    const nlohmann::json d =
        nlohmann::json::parse(row.event.details_json, nullptr, false);
    attested_ = true;
    attested_by_ = row.id;
    attested_id_ = -1;  // names no anchor unless it parses
    attested_hash_.clear();
    if (d.is_object() && d.contains("anchor_id") &&
        d["anchor_id"].is_number_integer() && d.contains("anchor_hash") &&
        d["anchor_hash"].is_string()) {
      attested_id_ = d["anchor_id"].get<int64_t>();
      attested_hash_ = d["anchor_hash"].get<std::string>();
    }
  }
  return true;
}

void ChainChecker::Finish() {
  if (!result_.ok || !anchored_) return;
  const int64_t anchor_id = result_.anchor_id;
  if (attested_ && attested_id_ == anchor_id &&
      attested_hash_ == HexOf(anchor_hash_)) {
    return;
  }
  result_.ok = false;
  result_.broken_id = attested_ ? attested_by_ : anchor_id + 1;
  result_.expected_id = anchor_id + 1;
  result_.reason = AuditBreak::kAnchor;
  result_.detail =
      attested_
          ? "the anchor (" + std::to_string(anchor_id) +
                ") is not the one audit.prune record " +
                std::to_string(attested_by_) + " names (" +
                std::to_string(attested_id_) +
                "): records were deleted outside Prune"
          : "there is an anchor (" + std::to_string(anchor_id) +
                ") but no audit.prune record names it: records were deleted "
                "outside Prune";
}

}  // namespace internal
}  // namespace convstore
