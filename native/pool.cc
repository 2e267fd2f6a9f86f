// Thread pool behind parallel_run (see pool.h). One job at a time (callers are the JS thread only);
// tasks are claimed from an atomic counter, so ntasks may exceed the thread count.
#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace dora {
namespace {

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stop{false};
  // current job
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int ntasks = 0;
  std::atomic<int> next{0};
  std::atomic<int> pending{0};  // workers that have not finished the current generation
  int size = 1;                 // threads including the caller

  void drain() {
    for (;;) {
      int t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t, ntasks);
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      // Spin a while (a GEMM sequence calls back within microseconds), then sleep.
      int spins = 0;
      uint64_t g;
      while ((g = generation.load(std::memory_order_acquire)) == seen && !stop.load(std::memory_order_relaxed)) {
        if (++spins > 200000) {
          std::unique_lock<std::mutex> lk(mu);
          cv.wait(lk, [&] { return generation.load(std::memory_order_acquire) != seen || stop.load(); });
          spins = 0;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
      }
      if (stop.load()) return;
      seen = g;
      drain();
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void start(int n) {
    size = n < 1 ? 1 : n;
    stop = false;
    for (int i = 1; i < size; i++) workers.emplace_back([this] { worker_loop(); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }

  void run(int n, TaskFn f, void* c) {
    if (size == 1 || n == 1) {
      for (int t = 0; t < n; t++) f(c, t, n);
      return;
    }
    fn = f; ctx = c; ntasks = n;
    next.store(0, std::memory_order_relaxed);
    pending.store(size - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu);
      generation.fetch_add(1, std::memory_order_release);
    }
    cv.notify_all();
    drain();
    while (pending.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
};

int default_threads() {
  if (const char* s = std::getenv("DORA_NUM_THREADS")) {
    int n = std::atoi(s);
    if (n > 0) return n;
  }
  unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock.
  static Pool* p = [] {
    auto* q = new Pool();
    q->start(default_threads());
    return q;
  }();
  return *p;
}

}  // namespace

int num_threads() { return pool().size; }

void set_num_threads(int n) {
  Pool& p = pool();
  if (n < 1) n = 1;
  if (n == p.size) return;
  p.shutdown();
  p.start(n);
}

void parallel_run(int ntasks, TaskFn fn, void* ctx) {
  if (ntasks <= 0) return;
  pool().run(ntasks, fn, ctx);
}

}  // namespace dora
