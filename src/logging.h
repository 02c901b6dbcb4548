// Copyright 2026 The convstore Authors.
//
// The store's spdlog logger, built from Options::log_level and
// Options::log_sink. Each store has its own logger object (not registered in
// spdlog's global registry), so two stores in one process can log to
// different places.
//
// Thread safety: the returned logger is thread-safe.

#ifndef CONVSTORE_SRC_LOGGING_H_
#define CONVSTORE_SRC_LOGGING_H_

#include <spdlog/logger.h>

#include <memory>

#include "convstore/options.h"

namespace convstore::internal {

std::shared_ptr<spdlog::logger> MakeLogger(const Options& options);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_LOGGING_H_
