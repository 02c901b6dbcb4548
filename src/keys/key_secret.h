// Copyright 2026 The convstore Authors.
//
// API key secrets: making them from the OS CSPRNG, parsing the key id out
// of one, and hashing them for storage. keys.h documents the format:
// "csk_" + 8-character id + "_" + 43 characters of unpadded base64url
// (32 random bytes).
//
// Why SHA-256 and not a slow KDF (bcrypt, scrypt, Argon2): a slow hash
// protects low-entropy secrets (passwords) from offline guessing by making
// each guess expensive. These secrets carry 256 random bits; guessing one
// takes about 2^255 tries whatever the hash costs, so a fast hash loses
// nothing - and keeps validation at about a microsecond, where a KDF would
// cost tens of milliseconds per request.
//
// Thread safety: free functions without shared state.

#ifndef CONVSTORE_SRC_KEYS_KEY_SECRET_H_
#define CONVSTORE_SRC_KEYS_KEY_SECRET_H_

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "convstore/status.h"

namespace convstore::internal {

inline constexpr std::string_view kSecretTag = "csk_";
inline constexpr size_t kKeyIdChars = 8;
inline constexpr size_t kSecretRandomBytes = 32;
inline constexpr size_t kSecretRandomChars = 43;  // base64url, unpadded
inline constexpr size_t kSecretChars =
    kSecretTag.size() + kKeyIdChars + 1 + kSecretRandomChars;
inline constexpr size_t kKeyHashBytes = 32;

// A fresh key id: 8 characters of [a-z0-9] from the CSPRNG.
Status NewKeyId(std::string* id);
// A fresh secret for key `id`.
Status NewSecret(std::string_view id, std::string* secret);
// True if `id` looks like a key id (8 characters of [a-z0-9]).
bool IsKeyId(std::string_view id);
// True if `secret` has the exact format; *id then views its id part.
bool ParseSecret(std::string_view secret, std::string_view* id);
// A SHA-256 hash held inline (no heap).
using KeyHash = std::array<char, kKeyHashBytes>;
// SHA-256 of the secret into *out: the validation path's form, which
// allocates nothing.
void HashSecretInto(std::string_view secret, KeyHash* out);
// SHA-256 of the secret (32 bytes).
std::string HashSecret(std::string_view secret);
// Constant-time comparison of two hashes (false if their sizes differ).
bool HashEquals(std::string_view a, std::string_view b);
// "csk_<id>": the displayable prefix of key `id`'s secret.
std::string KeyPrefix(std::string_view id);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_KEY_SECRET_H_
