// Copyright 2026 The convstore Authors.

#include "cache/cache_entry.h"

#include <cstring>
#include <new>

namespace convstore::internal {

void CacheEntryDeleter::operator()(CacheEntry* e) const {
  CacheEntry::Destroy(e);
}

CacheEntryPtr CacheEntry::Create(const HashedNsKey& k,
                                 std::shared_ptr<const std::string> value) {
  const size_t bytes = CacheEntryBytes(k.view.ns, k.view.key, value->size());
  const bool inline_value = value->size() <= kCacheInlineValueMax;
  const size_t chars =
      k.view.ns.size() + k.view.key.size() + (inline_value ? value->size() : 0);
  void* block = ::operator new(sizeof(CacheEntry) + chars);
  auto* e = new (block) CacheEntry();
  e->hash_ = k.hash;
  e->ns_size_ = static_cast<uint32_t>(k.view.ns.size());
  e->key_size_ = static_cast<uint32_t>(k.view.key.size());
  char* p = e->chars();
  std::memcpy(p, k.view.ns.data(), k.view.ns.size());
  p += k.view.ns.size();
  std::memcpy(p, k.view.key.data(), k.view.key.size());
  p += k.view.key.size();
  if (inline_value) {
    e->value_size_ = static_cast<uint32_t>(value->size());
    if (!value->empty()) std::memcpy(p, value->data(), value->size());
  } else {
    e->shared_ = std::move(value);
  }
  e->bytes = bytes;
  return CacheEntryPtr(e);
}

void CacheEntry::Destroy(CacheEntry* e) {
  e->~CacheEntry();
  ::operator delete(static_cast<void*>(e));
}

std::shared_ptr<const std::string> CacheEntry::SharedValue() const {
  if (shared_) return shared_;
  return std::make_shared<const std::string>(value());
}

}  // namespace convstore::internal
