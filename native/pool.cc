// Thread pool behind parallel_run (see pool.h). One job at a time (callers are the JS thread only);
// tasks are claimed from an atomic counter, so ntasks may exceed the thread count.
//
// The caller waits for the job's TASKS, not for the workers: a worker that is asleep or descheduled when a job
// starts (another process holds its core) simply misses it, instead of stalling the caller until it checks in
// (on a loaded machine that wait cost ms per call). So a late worker must never run a task of a job it did not
// see start: the job number and the next task index share one 64-bit word, and a task is claimed by a
// compare-and-swap on that word, which fails once a newer job has been published.
#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
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
  std::atomic<bool> stop{false};
  // The current job. fn/ctx are written before `claim` publishes the job and are read only by a thread that
  // has claimed one of its tasks; the caller does not start the next job before every task is done.
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  std::atomic<uint64_t> limit{0};  // (job << 32) | ntasks
  std::atomic<uint64_t> claim{0};  // (job << 32) | next unclaimed task
  std::atomic<int> done{0};        // tasks of the current job finished
  uint32_t job = 0;                // the caller's last job number
  int size = 1;                    // threads including the caller

  // Runs tasks of job `j` until none is left or a newer job is out.
  void work(uint32_t j) {
    for (;;) {
      uint64_t c = claim.load(std::memory_order_acquire);
      const uint64_t lim = limit.load(std::memory_order_acquire);
      if ((c >> 32) != j || (lim >> 32) != j) return;
      const uint32_t t = static_cast<uint32_t>(c), n = static_cast<uint32_t>(lim);
      if (t >= n) return;
      if (!claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) continue;
      fn(ctx, static_cast<int>(t), static_cast<int>(n));
      done.fetch_add(1, std::memory_order_release);
    }
  }

  void worker_loop() {
    uint32_t seen = static_cast<uint32_t>(claim.load(std::memory_order_acquire) >> 32);
    for (;;) {
      // Spin a while (a GEMM sequence calls back within microseconds), then sleep. Briefly: ~2000 pauses are tens
      // of µs; 200000 (ms) kept a core busy through the single-threaded stretches between kernels, and a LoRA
      // training step at 2 threads ran 10-20% slower (medians 876-1013 vs 783-815 ms, alternating A/B runs).
      int spins = 0;
      uint32_t j;
      while ((j = static_cast<uint32_t>(claim.load(std::memory_order_acquire) >> 32)) == seen && !stop.load(std::memory_order_relaxed)) {
        if (++spins > 2000) {
          std::unique_lock<std::mutex> lk(mu);
          cv.wait(lk, [&] { return static_cast<uint32_t>(claim.load(std::memory_order_acquire) >> 32) != seen || stop.load(); });
          spins = 0;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
      }
      if (stop.load()) return;
      seen = j;
      work(j);
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
    const uint64_t j = ++job;
    fn = f; ctx = c;
    done.store(0, std::memory_order_relaxed);
    limit.store((j << 32) | static_cast<uint32_t>(n), std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(mu);  // a worker about to sleep re-checks `claim` under the lock
      claim.store(j << 32, std::memory_order_release);
    }
    cv.notify_all();
    work(static_cast<uint32_t>(j));
    while (done.load(std::memory_order_acquire) != n) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
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
