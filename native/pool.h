// Persistent thread pool: size from DORA_NUM_THREADS (default: hardware threads), resizable with
// set_num_threads. run(n, fn) executes fn(0..n-1) with the calling thread taking part; workers spin
// briefly after each job, then sleep on a condition variable, so back-to-back GEMMs pay no wake-up.
#pragma once
#include <cstdint>

namespace dora {

using TaskFn = void (*)(void* ctx, int task, int ntasks);

int num_threads();
void set_num_threads(int n);
// Runs fn(ctx, t, ntasks) for t in [0, ntasks) on up to num_threads() threads; returns when all done.
void parallel_run(int ntasks, TaskFn fn, void* ctx);

}  // namespace dora
