// Copyright 2026 The convstore Authors.
//
// ReorderBuffer: puts the writes the writer pulls back into LSN order.
// Producers take LSNs in one order and reach the queue in another, so the
// writer holds each write that arrives early until every smaller LSN has
// arrived. The LSNs held lie in a window just above the next one due: every
// write holds queue room from before it takes its LSN until it commits, so
// no LSN lies Options::queue_max_items or more above the next one due. They
// are kept in a ring of slots indexed by LSN: a write moves in once and out
// once. A binary heap moved each 80-byte write about log2(n) times on the
// way out, through its variant's move: with the rest of Pull that was 6.9%
// of the writer thread at 2 appending threads (docs/benchmarks.md, "Writes
// put in order by slot").
//  - The ring starts at kMinSlots and doubles while an LSN lies beyond it,
//    up to `max_slots`; it never shrinks (the heap's vector did not either).
//  - Put refuses an LSN handed out already, held already, or `max_slots` or
//    more above the next one due: each a bug before the queue, which the
//    writer sets aside as a dead letter.
//  - T is a nothrow-movable type with a `uint64_t lsn` member (WriteOp).
//
// Thread safety: none; the writer thread owns it.

#ifndef CONVSTORE_SRC_REORDER_BUFFER_H_
#define CONVSTORE_SRC_REORDER_BUFFER_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace convstore::internal {

template <typename T>
class ReorderBuffer {
  // Grow moves the held values into the new ring; a move that threw halfway
  // would leave some in each.
  static_assert(std::is_nothrow_move_constructible_v<T>);

 public:
  static constexpr size_t kMinSlots = 1024;
  static constexpr size_t kMaxSlots = size_t{1} << 32;
  static_assert((kMinSlots & (kMinSlots - 1)) == 0, "a power of two");

  // `next_lsn`: the first LSN to hand out. `max_slots`: how far the ring may
  // grow; rounded up to a power of two within [kMinSlots, kMaxSlots].
  ReorderBuffer(uint64_t next_lsn, size_t max_slots)
      : slots_(kMinSlots), next_(next_lsn), max_slots_(kMinSlots) {
    while (max_slots_ < max_slots && max_slots_ < kMaxSlots) max_slots_ *= 2;
  }
  ReorderBuffer(const ReorderBuffer&) = delete;
  ReorderBuffer& operator=(const ReorderBuffer&) = delete;

  // Takes `v`. False (and `v` untouched) when its LSN was handed out
  // already, is held, or lies max_slots() or more above next_lsn().
  [[nodiscard]] bool Put(T&& v) {
    if (v.lsn < next_) return false;
    const uint64_t ahead = v.lsn - next_;
    if (ahead >= max_slots_) return false;
    if (ahead >= slots_.size()) Grow(ahead);
    std::optional<T>& slot = At(v.lsn);
    if (slot.has_value()) return false;
    slot.emplace(std::move(v));
    ++size_;
    return true;
  }

  // The value with LSN next_lsn(), or nullptr while it has not arrived.
  T* Next() {
    std::optional<T>& slot = At(next_);
    return slot.has_value() ? &*slot : nullptr;
  }

  // Moves out Next(), which must be non-null, and advances next_lsn().
  T TakeNext() {
    std::optional<T>& slot = At(next_);
    assert(slot.has_value());
    T v = std::move(*slot);
    slot.reset();
    --size_;
    ++next_;
    return v;
  }

  // The held value with the smallest LSN, or nullptr when empty. Walks the
  // slots from next_lsn() up to it: the length of the gap (Pull asks only
  // when next_lsn() itself has not arrived).
  const T* Oldest() const {
    if (size_ == 0) return nullptr;
    for (uint64_t lsn = next_; lsn < next_ + slots_.size(); ++lsn) {
      const std::optional<T>& slot = At(lsn);
      if (slot.has_value()) return &*slot;
    }
    assert(false && "size_ counts a value outside the window");
    return nullptr;
  }

  uint64_t next_lsn() const { return next_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t slots() const { return slots_.size(); }
  size_t max_slots() const { return max_slots_; }

 private:
  std::optional<T>& At(uint64_t lsn) {
    return slots_[static_cast<size_t>(lsn) & (slots_.size() - 1)];
  }
  const std::optional<T>& At(uint64_t lsn) const {
    return slots_[static_cast<size_t>(lsn) & (slots_.size() - 1)];
  }

  // Re-slots the held values into a ring with more than `ahead` slots
  // (ahead < max_slots_, so it ends at max_slots_ at most).
  void Grow(uint64_t ahead) {
    size_t n = slots_.size();
    while (n <= ahead) n *= 2;
    std::vector<std::optional<T>> bigger(n);
    for (uint64_t lsn = next_; lsn < next_ + slots_.size(); ++lsn) {
      std::optional<T>& from = At(lsn);
      if (from.has_value()) {
        bigger[static_cast<size_t>(lsn) & (n - 1)] = std::move(from);
      }
    }
    slots_.swap(bigger);
  }

  std::vector<std::optional<T>> slots_;  // a power of two of them
  uint64_t next_;
  size_t max_slots_;  // a power of two, >= kMinSlots
  size_t size_ = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_REORDER_BUFFER_H_
