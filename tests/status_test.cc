// Copyright 2026 The convstore Authors.

#include "convstore/status.h"

#include <catch2/catch.hpp>
#include <string>

namespace convstore {
namespace {

TEST_CASE("Status carries code and message", "[status]") {
  Status ok;
  CHECK(ok.ok());
  CHECK(ok.ToString() == "OK");
  Status s = Status::IOError("disk full");
  CHECK_FALSE(s.ok());
  CHECK(s.IsIOError());
  CHECK_FALSE(s.IsNotFound());
  CHECK(s.ToString() == "IOError: disk full");
  CHECK(s.WithPrefix("commit").ToString() == "IOError: commit: disk full");
  CHECK(Status::OK().WithPrefix("x").ok());
}

TEST_CASE("StatusOr holds a value or an error", "[status]") {
  StatusOr<std::string> v(std::string("hi"));
  REQUIRE(v.ok());
  CHECK(*v == "hi");
  CHECK(v->size() == 2);
  StatusOr<int> e(Status::NotFound("nope"));
  CHECK_FALSE(e.ok());
  CHECK(e.status().IsNotFound());
  // An OK status without a value is itself a bug, reported as Internal.
  StatusOr<int> bad{Status::OK()};
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInternal);
}

}  // namespace
}  // namespace convstore
