// Copyright 2026 The convstore Authors.

#include "logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <string>
#include <utility>

namespace convstore::internal {
namespace {

LogLevel FromSpdlog(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return LogLevel::kTrace;
    case spdlog::level::debug:
      return LogLevel::kDebug;
    case spdlog::level::info:
      return LogLevel::kInfo;
    case spdlog::level::warn:
      return LogLevel::kWarn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return LogLevel::kError;
    default:
      return LogLevel::kOff;
  }
}

spdlog::level::level_enum ToSpdlog(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::warn;
}

// Hands each formatted line (without the trailing newline) to the caller's
// LogSink. Exceptions from the callback are swallowed: logging must never
// take the writer thread down.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogSink callback) : sink_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string line(buf.data(), buf.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
      line.pop_back();
    }
    try {
      sink_(FromSpdlog(msg.level), line);
    } catch (...) {
    }
  }
  void flush_() override {}

 private:
  LogSink sink_;
};

}  // namespace

std::shared_ptr<spdlog::logger> MakeLogger(const Options& options) {
  spdlog::sink_ptr sink;
  if (options.log_sink) {
    sink = std::make_shared<CallbackSink>(options.log_sink);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>("convstore", sink);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [convstore] [%l] %v");
  logger->set_level(ToSpdlog(options.log_level));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace convstore::internal
