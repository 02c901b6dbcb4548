// Copyright 2026 The convstore Authors.

#include "keys/key_secret.h"

#include <absl/strings/escaping.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>

namespace convstore::internal {
namespace {

constexpr std::string_view kIdAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

Status Random(unsigned char* buf, size_t n) {
  if (RAND_bytes(buf, static_cast<int>(n)) != 1) {
    return Status::Internal("the OS random number generator failed");
  }
  return Status::OK();
}

}  // namespace

Status NewKeyId(std::string* id) {
  id->clear();
  // Rejection sampling keeps the 36 characters uniform: bytes >= 252 (the
  // largest multiple of 36 below 256) are drawn again.
  while (id->size() < kKeyIdChars) {
    std::array<unsigned char, 16> buf;
    Status s = Random(buf.data(), buf.size());
    if (!s.ok()) return s;
    for (unsigned char b : buf) {
      if (b >= 252 || id->size() == kKeyIdChars) continue;
      id->push_back(kIdAlphabet[b % kIdAlphabet.size()]);
    }
  }
  return Status::OK();
}

Status NewSecret(std::string_view id, std::string* secret) {
  std::array<unsigned char, kSecretRandomBytes> raw;
  Status s = Random(raw.data(), raw.size());
  if (!s.ok()) return s;
  std::string random;
  absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
      &random);
  OPENSSL_cleanse(raw.data(), raw.size());
  secret->clear();
  secret->reserve(kSecretChars);
  secret->append(kSecretTag);
  secret->append(id);
  secret->push_back('_');
  secret->append(random);
  OPENSSL_cleanse(random.data(), random.size());
  if (secret->size() != kSecretChars) {
    return Status::Internal("secret encoding has an unexpected length");
  }
  return Status::OK();
}

bool IsKeyId(std::string_view id) {
  if (id.size() != kKeyIdChars) return false;
  for (char c : id) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

bool ParseSecret(std::string_view secret, std::string_view* id) {
  if (secret.size() != kSecretChars) return false;
  if (secret.substr(0, kSecretTag.size()) != kSecretTag) return false;
  std::string_view maybe_id = secret.substr(kSecretTag.size(), kKeyIdChars);
  if (!IsKeyId(maybe_id)) return false;
  if (secret[kSecretTag.size() + kKeyIdChars] != '_') return false;
  for (char c : secret.substr(kSecretTag.size() + kKeyIdChars + 1)) {
    if (!IsBase64UrlChar(c)) return false;
  }
  *id = maybe_id;
  return true;
}

// OpenSSL 3's one-shot SHA256() looks the algorithm up in its provider
// tables on every call (about 450 ns here, more than the rest of a
// validation); a digest fetched once and a context reused per thread take
// about 150 ns.
class Sha256Context {
 public:
  Sha256Context() : ctx_(EVP_MD_CTX_new()) {}
  ~Sha256Context() { EVP_MD_CTX_free(ctx_); }
  Sha256Context(const Sha256Context&) = delete;
  Sha256Context& operator=(const Sha256Context&) = delete;

  bool Digest(std::string_view data, unsigned char* out) {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    unsigned int n = 0;
    return ctx_ != nullptr && md != nullptr &&
           EVP_DigestInit_ex2(ctx_, md, nullptr) == 1 &&
           EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1 &&
           EVP_DigestFinal_ex(ctx_, out, &n) == 1 && n == kKeyHashBytes;
  }

 private:
  EVP_MD_CTX* const ctx_;
};

void HashSecretInto(std::string_view secret, KeyHash* out) {
  auto* bytes = reinterpret_cast<unsigned char*>(out->data());
  thread_local Sha256Context ctx;
  if (!ctx.Digest(secret, bytes)) {
    SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
           bytes);
  }
}

std::string HashSecret(std::string_view secret) {
  KeyHash h;
  HashSecretInto(secret, &h);
  return std::string(h.data(), h.size());
}

bool HashEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string KeyPrefix(std::string_view id) {
  std::string p(kSecretTag);
  p.append(id);
  return p;
}

}  // namespace convstore::internal
