// Copyright 2026 The convstore Authors.
//
// RingDeque: a double-ended queue in one circular buffer, for the cache's
// per-conversation messages. std::deque allocates a 64-byte map and a
// 512-byte block for every entry, even an empty one; with 100,000 cached
// conversations of a few messages each that is about 60 MB the cache
// charged nothing for (docs/benchmarks.md, "What a cache entry costs").
// RingDeque holds nothing while empty and at most four slots per element:
//  - it allocates on the first push (kMinCapacity slots) and doubles when
//    full;
//  - pop_front halves the buffer once a quarter or less is in use (when the
//    allocator has the smaller buffer to give; pop_front never throws), and
//    frees it when the deque empties;
//  - clear() frees it.
// Elements move when the buffer is reallocated, so references to them last
// only until the next push or pop.
//
// Thread safety: none; the owner (a cache shard) locks.

#ifndef CONVSTORE_SRC_RING_DEQUE_H_
#define CONVSTORE_SRC_RING_DEQUE_H_

#include <cassert>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <utility>

namespace convstore::internal {

template <typename T>
class RingDeque {
 public:
  static constexpr size_t kMinCapacity = 4;

  RingDeque() = default;
  RingDeque(const RingDeque&) = delete;
  RingDeque& operator=(const RingDeque&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Slots allocated (0 while empty).
  size_t capacity() const { return capacity_; }

  T& operator[](size_t i) { return buf_[Slot(i)]; }
  const T& operator[](size_t i) const { return buf_[Slot(i)]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }
  // The slot the next push_back fills, or null when that push reallocates.
  // For a caller to prefetch it; it is valid until the next push, pop or
  // clear().
  const T* next_back_slot() const {
    return size_ == capacity_ ? nullptr
                              : &buf_[(head_ + size_) & (capacity_ - 1)];
  }

  void push_back(T v) {
    if (size_ == capacity_) Resize(Grown());
    buf_[(head_ + size_) & (capacity_ - 1)] = std::move(v);
    ++size_;
  }
  void push_front(T v) {
    if (size_ == capacity_) Resize(Grown());
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    buf_[head_] = std::move(v);
    ++size_;
  }
  void pop_front() {
    assert(size_ > 0);
    buf_[head_] = T();  // releases what the element holds now
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    if (size_ == 0) {
      clear();
    } else if (capacity_ > kMinCapacity && size_ <= capacity_ / 4) {
      Shrink();
    }
  }
  void clear() {
    buf_.reset();
    capacity_ = 0;
    head_ = 0;
    size_ = 0;
  }

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = const T&;

    const T& operator*() const { return (*d_)[i_]; }
    const T* operator->() const { return &(*d_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }
    bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

   private:
    friend class RingDeque;
    const_iterator(const RingDeque* d, size_t i) : d_(d), i_(i) {}
    const RingDeque* d_;
    size_t i_;
  };
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

 private:
  size_t Slot(size_t i) const {
    assert(i < size_);
    return (head_ + i) & (capacity_ - 1);
  }
  size_t Grown() const { return capacity_ == 0 ? kMinCapacity : capacity_ * 2; }
  // Moves the elements, oldest first, into a buffer of `capacity` slots (a
  // power of two, at least size_).
  void Resize(size_t capacity) {
    MoveTo(std::make_unique<T[]>(capacity), capacity);
  }
  // Halves the buffer if memory for the smaller one is to be had: a pop
  // never fails, as std::deque's does not (the cache pops to free memory).
  void Shrink() {
    const size_t capacity = capacity_ / 2;
    std::unique_ptr<T[]> next(new (std::nothrow) T[capacity]());
    if (next != nullptr) MoveTo(std::move(next), capacity);
  }
  void MoveTo(std::unique_ptr<T[]> next, size_t capacity) {
    for (size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
    buf_ = std::move(next);
    capacity_ = capacity;
    head_ = 0;
  }

  std::unique_ptr<T[]> buf_;
  size_t capacity_ = 0;  // 0 or a power of two
  size_t head_ = 0;      // slot of element 0
  size_t size_ = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_RING_DEQUE_H_
