// Copyright 2026 The convstore Authors.
//
// The translation unit that builds the tests' precompiled header
// (CONVSTORE_PRECOMPILE_TEST_HEADERS, see CMakeLists.txt); it has no code
// of its own.
