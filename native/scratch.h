// Scratch buffers that outlive a call: a kernel keeps a thread_local std::vector and grows it on demand, instead of
// allocating (and page-faulting: ~14 µs a 4 KiB page on the 2-vCPU VMs we measure on) its buffers on every call.
#pragma once
#include <cstdint>
#include <vector>

namespace dora {

// v's storage, at least n elements; contents left from earlier calls (the caller writes what it reads).
template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace dora
