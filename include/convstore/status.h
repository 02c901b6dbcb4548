// Copyright 2026 The convstore Authors.
//
// Status and StatusOr<T>: how every convstore call reports success or failure.
// No exception crosses the public API; a failed call returns a Status with a
// code and a message that says what went wrong and what to do about it.
//
// Thread safety: Status and StatusOr are values. Distinct objects may be used
// from different threads; one object is not synchronized.
//
// Example:
//   convstore::StatusOr<convstore::AppendResult> r = store->Append(id, msg);
//   if (!r.ok()) { log(r.status().ToString()); return; }
//   use(r->seq, r->lsn);

#ifndef CONVSTORE_STATUS_H_
#define CONVSTORE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace convstore {

enum class StatusCode : int {
  kOk = 0,
  // The caller passed something the store will not take (bad id, invalid
  // UTF-8, content over the limit, malformed metadata JSON, ...). Nothing was
  // written; retrying the same input fails the same way.
  kInvalidArgument = 1,
  // The thing asked for does not exist.
  kNotFound = 2,
  // A deadline passed (Flush, WaitDurable, a full queue). The operation may
  // still complete later; nothing was lost.
  kDeadlineExceeded = 3,
  // The write queue is full and the call was told not to wait (or its wait
  // ran out). Nothing was enqueued; retry later.
  kResourceExhausted = 4,
  // The store is closed or closing, or was opened in a mode that forbids the
  // call.
  kFailedPrecondition = 5,
  // The on-disk data is damaged or not a convstore database.
  kCorruption = 6,
  // The file was written by a newer convstore (schema version too high), or a
  // feature is not supported by this build.
  kNotSupported = 7,
  // The storage layer failed (I/O error, disk full, locked for too long).
  // Often transient: the store keeps the writes in memory and retries.
  kIOError = 8,
  // A bug or broken invariant inside convstore.
  kInternal = 9,
  // A transient condition (busy database); retrying is expected to work.
  kUnavailable = 10,
  // The caller is known but may not do this: an API key that is revoked,
  // expired, or lacks the required scope (keys.h).
  kPermissionDenied = 11,
  // The caller could not be identified: a malformed, unknown or wrong API
  // key secret (keys.h).
  kUnauthenticated = 12,
};

// Returns a stable human-readable name for `code`, e.g. "IOError".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status. Cheap to create and copy.
  Status() = default;
  Status(StatusCode code, std::string_view message);

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(StatusCode::kInvalidArgument, msg);
  }
  static Status NotFound(std::string_view msg) {
    return Status(StatusCode::kNotFound, msg);
  }
  static Status DeadlineExceeded(std::string_view msg) {
    return Status(StatusCode::kDeadlineExceeded, msg);
  }
  static Status ResourceExhausted(std::string_view msg) {
    return Status(StatusCode::kResourceExhausted, msg);
  }
  static Status FailedPrecondition(std::string_view msg) {
    return Status(StatusCode::kFailedPrecondition, msg);
  }
  static Status Corruption(std::string_view msg) {
    return Status(StatusCode::kCorruption, msg);
  }
  static Status NotSupported(std::string_view msg) {
    return Status(StatusCode::kNotSupported, msg);
  }
  static Status IOError(std::string_view msg) {
    return Status(StatusCode::kIOError, msg);
  }
  static Status Internal(std::string_view msg) {
    return Status(StatusCode::kInternal, msg);
  }
  static Status Unavailable(std::string_view msg) {
    return Status(StatusCode::kUnavailable, msg);
  }
  static Status PermissionDenied(std::string_view msg) {
    return Status(StatusCode::kPermissionDenied, msg);
  }
  static Status Unauthenticated(std::string_view msg) {
    return Status(StatusCode::kUnauthenticated, msg);
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsInvalidArgument() const {
    return code_ == StatusCode::kInvalidArgument;
  }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsDeadlineExceeded() const {
    return code_ == StatusCode::kDeadlineExceeded;
  }
  bool IsResourceExhausted() const {
    return code_ == StatusCode::kResourceExhausted;
  }
  bool IsFailedPrecondition() const {
    return code_ == StatusCode::kFailedPrecondition;
  }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsNotSupported() const { return code_ == StatusCode::kNotSupported; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }
  bool IsPermissionDenied() const {
    return code_ == StatusCode::kPermissionDenied;
  }
  bool IsUnauthenticated() const {
    return code_ == StatusCode::kUnauthenticated;
  }

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>". OK stays OK.
  Status WithPrefix(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value of type T or a non-OK Status. Accessing the value of a
// non-OK StatusOr is a programming error (asserts in debug builds).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): implicit by design.
  StatusOr(Status status) : status_(std::move(status)) {
    if (status_.ok()) {
      status_ = Status::Internal("StatusOr constructed from an OK Status");
    }
  }
  // NOLINTNEXTLINE(google-explicit-constructor): implicit by design.
  StatusOr(T value) : value_(std::move(value)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace convstore

#endif  // CONVSTORE_STATUS_H_
