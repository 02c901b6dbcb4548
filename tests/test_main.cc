// Copyright 2026 The convstore Authors.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
