// Node-API bindings (plain C node_api.h, no npm dependency). Typed arrays are used in place
// (napi_get_typedarray_info, zero copy); element offsets are added here. Range checks are the
// TS adapter's job (src/backend/native/index.ts): this layer only checks argument kinds.
#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "attention.h"
#include "columns.h"
#include "elementwise.h"
#include "gemm.h"
#include "gemm_nf4.h"
#include "pool.h"
#include "random.h"
#include "sparse.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

using dora::GemmArgs;

bool fail(napi_env env, const char* msg) {
  napi_throw_error(env, "DORA_NATIVE", msg);
  return false;
}

bool get_i64(napi_env env, napi_value v, int64_t* out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) return fail(env, "dora_native: expected a number");
  return true;
}

template <typename T>
bool get_array(napi_env env, napi_value v, napi_typedarray_type want, T** out, size_t* len) {
  napi_typedarray_type type;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &data, &ab, &off) != napi_ok || type != want)
    return fail(env, "dora_native: expected a typed array of the kernel's element type");
  *out = static_cast<T*>(data);  // already adjusted by the view's byte offset
  return true;
}

// Shared argument parsing of gemm / gemmNaive:
// (form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate)
bool parse_gemm(napi_env env, napi_callback_info info, GemmArgs* g) {
  size_t argc = 18;
  napi_value v[18];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  if (argc != 18) return fail(env, "dora_native.gemm: expected 18 arguments");
  int64_t form, aOff, bOff, cOff;
  float *a, *b, *c;
  size_t la, lb, lc;
  bool acc;
  if (!get_i64(env, v[0], &form) || !get_i64(env, v[1], &g->m) || !get_i64(env, v[2], &g->n) ||
      !get_i64(env, v[3], &g->k) || !get_array(env, v[4], napi_float32_array, &a, &la) ||
      !get_i64(env, v[5], &aOff) || !get_i64(env, v[6], &g->lda) || !get_i64(env, v[7], &g->strideA) ||
      !get_array(env, v[8], napi_float32_array, &b, &lb) || !get_i64(env, v[9], &bOff) ||
      !get_i64(env, v[10], &g->ldb) || !get_i64(env, v[11], &g->strideB) ||
      !get_array(env, v[12], napi_float32_array, &c, &lc) || !get_i64(env, v[13], &cOff) ||
      !get_i64(env, v[14], &g->ldc) || !get_i64(env, v[15], &g->strideC) || !get_i64(env, v[16], &g->batch))
    return false;
  if (napi_get_value_bool(env, v[17], &acc) != napi_ok) return fail(env, "dora_native.gemm: accumulate must be a boolean");
  g->form = static_cast<int>(form);
  g->a = a + aOff;
  g->b = b + bOff;
  g->c = c + cOff;
  g->accumulate = acc;
  return true;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  GemmArgs g;
  if (parse_gemm(env, info, &g)) dora::gemm(g);
  return nullptr;
}

napi_value GemmNaive(napi_env env, napi_callback_info info) {
  GemmArgs g;
  if (parse_gemm(env, info, &g)) dora::gemm_naive(g);
  return nullptr;
}

// gemmScaled(form, m, n, k, a, aOff, lda, b, bOff, ldb, scale, axis, c, cOff, ldc, accumulate): one 2-d GEMM with
// op(B) scaled along k (axis 0) or n (axis 1); see GemmArgs::bscale.
napi_value GemmScaled(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value v[16];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  if (argc != 16) { fail(env, "dora_native.gemmScaled: expected 16 arguments"); return nullptr; }
  GemmArgs g;
  int64_t form, aOff, bOff, cOff, axis;
  float *a, *b, *sc, *c;
  size_t la, lb, ls, lc;
  bool acc;
  if (!get_i64(env, v[0], &form) || !get_i64(env, v[1], &g.m) || !get_i64(env, v[2], &g.n) || !get_i64(env, v[3], &g.k) ||
      !get_array(env, v[4], napi_float32_array, &a, &la) || !get_i64(env, v[5], &aOff) || !get_i64(env, v[6], &g.lda) ||
      !get_array(env, v[7], napi_float32_array, &b, &lb) || !get_i64(env, v[8], &bOff) || !get_i64(env, v[9], &g.ldb) ||
      !get_array(env, v[10], napi_float32_array, &sc, &ls) || !get_i64(env, v[11], &axis) ||
      !get_array(env, v[12], napi_float32_array, &c, &lc) || !get_i64(env, v[13], &cOff) || !get_i64(env, v[14], &g.ldc))
    return nullptr;
  if (napi_get_value_bool(env, v[15], &acc) != napi_ok) { fail(env, "dora_native.gemmScaled: accumulate must be a boolean"); return nullptr; }
  g.form = static_cast<int>(form);
  g.a = a + aOff; g.strideA = 0;
  g.b = b + bOff; g.strideB = 0;
  g.c = c + cOff; g.strideC = 0;
  g.batch = 1;
  g.accumulate = acc;
  g.bscale = sc;
  g.bscale_axis = static_cast<int>(axis);
  dora::gemm(g);
  return nullptr;
}

napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value v;
  napi_get_cb_info(env, info, &argc, &v, nullptr, nullptr);
  int64_t n;
  if (argc == 1 && get_i64(env, v, &n)) dora::set_num_threads(static_cast<int>(n));
  return nullptr;
}

napi_value NumThreads(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_int32(env, dora::num_threads(), &r);
  return r;
}

napi_value Isa(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_string_utf8(env, dora::gemm_kernel().isa, NAPI_AUTO_LENGTH, &r);
  return r;
}

// setIsa(name) -> boolean: for tests and benches of the slower paths on a capable machine.
napi_value SetIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value v;
  napi_get_cb_info(env, info, &argc, &v, nullptr, nullptr);
  char buf[32] = {0};
  size_t len = 0;
  bool ok = argc == 1 && napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) == napi_ok &&
            dora::gemm_set_isa(buf);
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

// ---- elementwise and row kernels: argument readers, then one binding per kernel ----
struct Args {
  napi_env env;
  napi_value v[20];
  size_t argc = 20;
  bool ok = true;
  Args(napi_env e, napi_callback_info info, size_t want) : env(e) {
    napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
    if (argc != want) ok = fail(env, "dora_native: wrong number of arguments");
  }
  float* f32(int i, bool nullable = false) {
    if (!ok) return nullptr;
    napi_valuetype t;
    napi_typeof(env, v[i], &t);
    if (nullable && t == napi_null) return nullptr;
    return typed<float>(i, napi_float32_array);
  }
  int64_t i64(int i) {
    int64_t x = 0;
    if (ok) ok = get_i64(env, v[i], &x);
    return x;
  }
  // Argument i as a typed array of `type` (T its element type).
  template <typename T>
  T* typed(int i, napi_typedarray_type type) {
    if (!ok) return nullptr;
    T* p = nullptr;
    size_t len;
    ok = get_array(env, v[i], type, &p, &len);
    return p;
  }
  int32_t* i32(int i) { return typed<int32_t>(i, napi_int32_array); }
  double* f64s(int i) { return typed<double>(i, napi_float64_array); }
  double f64(int i) {
    double x = 0;
    if (ok && napi_get_value_double(env, v[i], &x) != napi_ok) ok = fail(env, "dora_native: expected a number");
    return x;
  }
  bool flag(int i) {
    bool x = false;
    if (ok && napi_get_value_bool(env, v[i], &x) != napi_ok) ok = fail(env, "dora_native: expected a boolean");
    return x;
  }
  // `count` head-stride triples (batch, head, seq) from a Float64Array.
  bool strides(int i, int count, dora::HeadStrides* out) {
    double* p = nullptr;
    size_t len = 0;
    if (ok) ok = get_array(env, v[i], napi_float64_array, &p, &len);
    if (ok && len != static_cast<size_t>(3 * count)) ok = fail(env, "dora_native: wrong number of strides");
    if (!ok) return false;
    for (int t = 0; t < count; t++)
      out[t] = {static_cast<int64_t>(p[3 * t]), static_cast<int64_t>(p[3 * t + 1]), static_cast<int64_t>(p[3 * t + 2])};
    return true;
  }
};

// ---- threading of the elementwise and row kernels ----
// The per-ISA table functions stay single-threaded (attention calls them from inside its own pool tasks,
// and the pool runs one job at a time); the bindings below split large calls into chunks here.
// The chunking depends on the sizes only, never on the thread count, so results are identical at any
// DORA_NUM_THREADS.
constexpr int64_t kGrain = 1 << 15;  // elements per chunk: ~10-50 µs of work, well above the pool's hand-off

// Runs body(begin, end, chunk) over [0, n) in chunks of `grain` through the pool (directly when one chunk).
template <typename F>
void parallel_chunks(int64_t n, int64_t grain, const F& body) {
  if (n <= 0) return;
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1) { body(0, n, 0); return; }
  struct Ctx { const F* body; int64_t n, grain; } ctx{&body, n, grain};
  dora::parallel_run(static_cast<int>(chunks), [](void* c, int t, int) {
    const Ctx& x = *static_cast<const Ctx*>(c);
    const int64_t b = t * x.grain;
    (*x.body)(b, std::min(x.n, b + x.grain), t);
  }, &ctx);
}

// Rows per chunk for row kernels of `cols` columns (at least one row).
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

napi_value UnaryForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  int op = static_cast<int>(a.i64(0));
  float *out = a.f32(1), *x = a.f32(2);
  int64_t n = a.i64(3);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) { k.unary_forward(op, out + b, x + b, e - b); });
  return nullptr;
}

napi_value UnaryBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  int op = static_cast<int>(a.i64(0));
  float *dx = a.f32(1), *dy = a.f32(2), *x = a.f32(3), *y = a.f32(4);
  int64_t n = a.i64(5);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) { k.unary_backward(op, dx + b, dy + b, x + b, y + b, e - b); });
  return nullptr;
}

// binaryFlat(op, out, a, aOff, b, bOff, n): op 0 add, 1 sub, 2 mul, 3 div.
napi_value BinaryFlat(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  int op = static_cast<int>(a.i64(0));
  float *out = a.f32(1), *x = a.f32(2);
  int64_t xo = a.i64(3);
  float* y = a.f32(4);
  int64_t yo = a.i64(5), n = a.i64(6);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) { k.binary_flat(op, out + b, x + xo + b, y + yo + b, e - b); });
  return nullptr;
}

napi_value SiluMulForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  float *out = a.f32(0), *g = a.f32(1), *u = a.f32(2);
  int64_t n = a.i64(3);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) { k.silu_mul_forward(out + b, g + b, u + b, e - b); });
  return nullptr;
}

napi_value SiluMulBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float *dg = a.f32(0), *du = a.f32(1), *dy = a.f32(2), *g = a.f32(3), *u = a.f32(4);
  int64_t n = a.i64(5);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) { k.silu_mul_backward(dg + b, du + b, dy + b, g + b, u + b, e - b); });
  return nullptr;
}

napi_value SoftmaxForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 5);
  float *out = a.f32(0), *x = a.f32(1);
  int64_t rows = a.i64(2), cols = a.i64(3);
  bool log = a.flag(4);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(rows, row_grain(cols), [&](int64_t b, int64_t e, int) {
    k.softmax_forward(out + b * cols, x + b * cols, e - b, cols, log);
  });
  return nullptr;
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float *dx = a.f32(0), *dy = a.f32(1), *y = a.f32(2);
  int64_t rows = a.i64(3), cols = a.i64(4);
  bool log = a.flag(5);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(rows, row_grain(cols), [&](int64_t b, int64_t e, int) {
    k.softmax_backward(dx + b * cols, dy + b * cols, y + b * cols, e - b, cols, log);
  });
  return nullptr;
}

// crossEntropyForward(loss, lse, logits, targets, rows, cols, ignoreIndex) -> counted rows
napi_value CrossEntropyForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  float *loss = a.f32(0), *lse = a.f32(1), *logits = a.f32(2);
  int32_t* targets = a.i32(3);
  int64_t rows = a.i64(4), cols = a.i64(5), ignore = a.i64(6);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  std::atomic<int64_t> counted{0};
  parallel_chunks(rows, row_grain(cols), [&](int64_t b, int64_t e, int) {
    counted += k.cross_entropy_forward(loss + b, lse + b, logits + b * cols, targets + b, e - b, cols, ignore);
  });
  napi_value r;
  napi_create_int64(env, counted.load(), &r);
  return r;
}

// crossEntropyBackward(dlogits, logits, lse, targets, rows, cols, ignoreIndex, scaleRows | null, scale)
napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 9);
  float *dl = a.f32(0), *logits = a.f32(1), *lse = a.f32(2);
  int32_t* targets = a.i32(3);
  int64_t rows = a.i64(4), cols = a.i64(5), ignore = a.i64(6);
  float* scale_rows = a.f32(7, true);
  double scale = a.f64(8);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(rows, row_grain(cols), [&](int64_t b, int64_t e, int) {
    k.cross_entropy_backward(dl + b * cols, logits + b * cols, lse + b, targets + b, e - b, cols, ignore,
                             scale_rows ? scale_rows + b : nullptr, scale);
  });
  return nullptr;
}

napi_value RmsNormForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  float *y = a.f32(0), *rstd = a.f32(1), *x = a.f32(2), *w = a.f32(3, true);
  int64_t rows = a.i64(4), cols = a.i64(5);
  double eps = a.f64(6);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(rows, row_grain(cols), [&](int64_t b, int64_t e, int) {
    k.rmsnorm_forward(y + b * cols, rstd + b, x + b * cols, w, e - b, cols, eps);
  });
  return nullptr;
}

napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  float *dx = a.f32(0), *dw = a.f32(1, true), *dy = a.f32(2), *x = a.f32(3), *w = a.f32(4, true), *rstd = a.f32(5);
  int64_t rows = a.i64(6), cols = a.i64(7);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  const int64_t grain = row_grain(cols), chunks = (rows + grain - 1) / grain;
  if (!dw || chunks <= 1) {
    parallel_chunks(rows, grain, [&](int64_t b, int64_t e, int) {
      k.rmsnorm_backward(dx + b * cols, dw, dy + b * cols, x + b * cols, w, rstd + b, e - b, cols);
    });
    return nullptr;
  }
  // dw sums over all rows: each chunk accumulates its own partial, added into dw in chunk order.
  std::vector<float> partial(static_cast<size_t>(chunks * cols), 0.f);
  parallel_chunks(rows, grain, [&](int64_t b, int64_t e, int t) {
    k.rmsnorm_backward(dx + b * cols, partial.data() + t * cols, dy + b * cols, x + b * cols, w, rstd + b, e - b, cols);
  });
  for (int64_t t = 0; t < chunks; t++)
    for (int64_t c = 0; c < cols; c++) dw[c] += partial[t * cols + c];
  return nullptr;
}

napi_value AdamwStep(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  float *p = a.f32(0), *g = a.f32(1), *m = a.f32(2), *v = a.f32(3);
  int64_t n = a.i64(4);
  double lr = a.f64(5), b1 = a.f64(6), b2 = a.f64(7), eps = a.f64(8), wd = a.f64(9), step = a.f64(10);
  if (!a.ok) return nullptr;
  const auto& k = dora::elementwise();
  parallel_chunks(n, kGrain, [&](int64_t b, int64_t e, int) {
    k.adamw_step(p + b, g + b, m + b, v + b, e - b, lr, b1, b2, eps, wd, step);
  });
  return nullptr;
}

// attentionForward(out, lse, q, k, v, b, h, hkv, sq, sk, d, scale, strides: Float64Array [q, k, v, out] × 3)
napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  dora::AttentionArgs g{};
  g.out = a.f32(0);
  g.lse = a.f32(1);
  g.q = a.f32(2);
  g.k = a.f32(3);
  g.v = a.f32(4);
  g.b = a.i64(5), g.h = a.i64(6), g.hkv = a.i64(7), g.sq = a.i64(8), g.sk = a.i64(9), g.d = a.i64(10);
  g.scale = static_cast<float>(a.f64(11));
  dora::HeadStrides st[4];
  if (a.strides(12, 4, st)) {
    g.qs = st[0], g.ks = st[1], g.vs = st[2], g.os = st[3];
    dora::attention_forward(g);
  }
  return nullptr;
}

// attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, b, h, hkv, sq, sk, d, scale,
//                   strides: Float64Array [q, k, v, out, dout] × 3); dq / dk / dv use the strides of q / k / v
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 17);
  dora::AttentionArgs g{};
  g.dq = a.f32(0);
  g.dk = a.f32(1);
  g.dv = a.f32(2);
  g.dout = a.f32(3);
  g.q = a.f32(4);
  g.k = a.f32(5);
  g.v = a.f32(6);
  g.out = a.f32(7);
  g.lse = a.f32(8);
  g.b = a.i64(9), g.h = a.i64(10), g.hkv = a.i64(11), g.sq = a.i64(12), g.sk = a.i64(13), g.d = a.i64(14);
  g.scale = static_cast<float>(a.f64(15));
  dora::HeadStrides st[5];
  if (a.strides(16, 5, st)) {
    g.qs = st[0], g.ks = st[1], g.vs = st[2], g.os = st[3], g.gs = st[4];
    dora::attention_backward(g);
  }
  return nullptr;
}

// rope(out, x, cos, sin, b, h, s, d, inverse, strides: Float64Array [out, x] × 3)
napi_value Rope(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  float *out = a.f32(0), *x = a.f32(1), *cos = a.f32(2), *sin = a.f32(3);
  int64_t b = a.i64(4), h = a.i64(5), s = a.i64(6), d = a.i64(7);
  bool inverse = a.flag(8);
  dora::HeadStrides st[2];
  if (a.strides(9, 2, st)) dora::rope(out, st[0], x, st[1], cos, sin, b, h, s, d, inverse);
  return nullptr;
}

// gemmNf4(form, m, n, k, a, aOff, lda, codes, absmax, lut, blockSize, c, cOff, ldc, accumulate, naive)
napi_value GemmNf4(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value v[16];
  napi_get_cb_info(env, info, &argc, v, nullptr, nullptr);
  if (argc != 16) { fail(env, "dora_native.gemmNf4: expected 16 arguments"); return nullptr; }
  dora::Nf4GemmArgs g;
  int64_t form, aOff, cOff;
  float *a, *absmax, *lut, *c;
  uint8_t* codes;
  size_t len;
  bool naive;
  if (!get_i64(env, v[0], &form) || !get_i64(env, v[1], &g.m) || !get_i64(env, v[2], &g.n) || !get_i64(env, v[3], &g.k) ||
      !get_array(env, v[4], napi_float32_array, &a, &len) || !get_i64(env, v[5], &aOff) || !get_i64(env, v[6], &g.lda) ||
      !get_array(env, v[7], napi_uint8_array, &codes, &len) || !get_array(env, v[8], napi_float32_array, &absmax, &len) ||
      !get_array(env, v[9], napi_float32_array, &lut, &len) || !get_i64(env, v[10], &g.block) ||
      !get_array(env, v[11], napi_float32_array, &c, &len) || !get_i64(env, v[12], &cOff) || !get_i64(env, v[13], &g.ldc))
    return nullptr;
  if (napi_get_value_bool(env, v[14], &g.accumulate) != napi_ok || napi_get_value_bool(env, v[15], &naive) != napi_ok) {
    fail(env, "dora_native.gemmNf4: accumulate and naive must be booleans");
    return nullptr;
  }
  g.form = static_cast<int>(form);
  g.a = a + aOff;
  g.codes = codes;
  g.absmax = absmax;
  g.lut = lut;
  g.c = c + cOff;
  if (naive) dora::gemm_nf4_naive(g);
  else dora::gemm_nf4(g);
  return nullptr;
}

// columnScale(out, x, scale, offset, bias|null, rows, cols); columnDot(out, g, z, bias|null, rows, cols)
napi_value ColumnScale(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  float *out = a.f32(0), *x = a.f32(1), *scale = a.f32(2);
  double offset = a.f64(3);
  float* bias = a.f32(4, true);
  int64_t rows = a.i64(5), cols = a.i64(6);
  if (a.ok) dora::column_scale(out, x, scale, offset, bias, rows, cols);
  return nullptr;
}

napi_value ColumnDot(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float *out = a.f32(0), *g = a.f32(1), *z = a.f32(2), *bias = a.f32(3, true);
  int64_t rows = a.i64(4), cols = a.i64(5);
  if (a.ok) dora::column_dot(out, g, z, bias, rows, cols);
  return nullptr;
}

// lowRankProducts(gu|null, v|null, g, u|null, b|null, bScale|null, T, n, r, dot|null, z|null, bias|null); the pairs
// (gu, u), (v, b), (dot, z) are checked to come together by the TS adapter
napi_value LowRankProducts(napi_env env, napi_callback_info info) {
  Args a(env, info, 12);
  float *gu = a.f32(0, true), *v = a.f32(1, true), *g = a.f32(2), *u = a.f32(3, true), *b = a.f32(4, true);
  float* bscale = a.f32(5, true);
  int64_t T = a.i64(6), out = a.i64(7), r = a.i64(8);
  float *dot = a.f32(9, true), *z = a.f32(10, true), *bias = a.f32(11, true);
  if (a.ok) dora::low_rank_products(gu, v, g, u, b, bscale, T, out, r, dot, z, bias);
  return nullptr;
}

// doraNormTerms(out: Float64Array, w, wOff, rowStride, colStride, a, b, s, rows, cols, r)
napi_value DoraNormTerms(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  double* out = a.f64s(0);
  float* w = a.f32(1);
  int64_t wOff = a.i64(2), si = a.i64(3), sp = a.i64(4);
  float *A = a.f32(5), *B = a.f32(6);
  double s = a.f64(7);
  int64_t rows = a.i64(8), cols = a.i64(9), r = a.i64(10);
  if (a.ok) dora::dora_norm_terms(out, w + wOff, si, sp, A, B, s, rows, cols, r);
  return nullptr;
}

// sparseGemm(form, c, alpha, scale|null, values, rowPtr, cols, rows, n, k, w, wOff, accumulate)
// sparseGemmDot(form, out, g, scale|null, values, rowPtr, cols, rows, n, k, w, wOff)
// sampledGemm(form, out, a, scale|null, rowPtr, cols, rows, n, k, w, wOff, accumulate, dot|null, values|null); form 0 nn, 1 nt
// The arguments the three sparse kernels share, from position `at` on: rowPtr, cols, rows, n, k, w, wOff (the weight
// view's start is applied here).
// The per-entry part of the CSR checks (src/backend/native/index.ts checkCsr checks the types, rowPtr's length and
// rowPtr[0] first): every row's entries inside cols, its columns strictly ascending inside [0, k). Here rather than in
// TypeScript because it reads every entry, and a fused layer call checks the same drop list four or five times
// (the JS loop cost ~0.15 ms of a 512x512 DoRA layer call with dropout at T 1024). Throws naming the op.
bool check_pattern(Args& a, const char* op, const int32_t* row_ptr, const int32_t* cols, size_t ncols, int64_t rows,
                   int64_t k) {
  for (int64_t t = 0; t < rows; t++) {
    const int32_t e0 = row_ptr[t], e1 = row_ptr[t + 1];
    if (e1 < e0 || static_cast<size_t>(e1) > ncols) {
      const std::string m = std::string("native ") + op + ": rowPtr[" + std::to_string(t + 1) + "] = " + std::to_string(e1) +
                            " is below rowPtr[" + std::to_string(t) + "] or past cols (" + std::to_string(ncols) + ")";
      return a.ok = fail(a.env, m.c_str());
    }
    int64_t prev = -1;
    for (int32_t e = e0; e < e1; e++) {
      const int64_t j = cols[e];
      if (j <= prev || j >= k) {
        const std::string m = std::string("native ") + op + ": row " + std::to_string(t) + " has column " + std::to_string(j) +
                              " (columns must ascend strictly inside [0, " + std::to_string(k) + "))";
        return a.ok = fail(a.env, m.c_str());
      }
      prev = j;
    }
  }
  return true;
}

// Arguments at, at + 1 as a CSR pattern (rowPtr, cols) over rows × k, checked entry by entry (check_pattern).
bool csr_pattern(Args& a, const char* op, int at, int64_t rows, int64_t k, const int32_t** row_ptr, const int32_t** cols) {
  *row_ptr = a.i32(at);
  int32_t* c = nullptr;
  size_t ncols = 0;
  if (a.ok) a.ok = get_array(a.env, a.v[at + 1], napi_int32_array, &c, &ncols);
  *cols = c;
  return a.ok && check_pattern(a, op, *row_ptr, c, ncols, rows, k);
}

// The (rowPtr, cols, rows, k) arguments at `at`..`at + 3` of the element-wise CSR ops, checked; false after an error.
struct Csr {
  const int32_t* row_ptr = nullptr;
  const int32_t* cols = nullptr;
  int64_t rows = 0, k = 0;
};

bool csr_args(Args& a, const char* op, int at, Csr& p) {
  p.rows = a.i64(at + 2);
  p.k = a.i64(at + 3);
  return a.ok && csr_pattern(a, op, at, p.rows, p.k, &p.row_ptr, &p.cols);
}

void sparse_pattern(Args& a, const char* op, int at, dora::SparseArgs& s) {
  s.rows = a.i64(at + 2);
  s.n = a.i64(at + 3);
  s.k = a.i64(at + 4);
  const float* w = a.f32(at + 5);
  const int64_t wOff = a.i64(at + 6);
  if (a.ok) s.w = w + wOff;
  if (a.ok) csr_pattern(a, op, at, s.rows, s.k, &s.row_ptr, &s.cols);
}

napi_value SparseGemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  dora::SparseArgs s{};
  s.form = a.i64(0) == 1 ? dora::kNT : dora::kNN;
  s.c = a.f32(1);
  s.alpha = static_cast<float>(a.f64(2));
  s.scale = a.f32(3, true);
  s.vals = a.f32(4);
  sparse_pattern(a, "sparseGemm", 5, s);
  s.accumulate = a.flag(12);
  if (!a.ok) return nullptr;
  dora::sparse().sparse_gemm(s);
  return nullptr;
}

napi_value SparseGemmDot(napi_env env, napi_callback_info info) {
  Args a(env, info, 12);
  dora::SparseArgs s{};
  s.form = a.i64(0) == 1 ? dora::kNT : dora::kNN;
  s.c = a.f32(1);
  s.g = a.f32(2);
  s.scale = a.f32(3, true);
  s.vals = a.f32(4);
  sparse_pattern(a, "sparseGemmDot", 5, s);
  if (!a.ok) return nullptr;
  dora::sparse().sparse_gemm_dot(s);
  return nullptr;
}

napi_value SampledGemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 14);
  dora::SparseArgs s{};
  s.form = a.i64(0) == 1 ? dora::kNT : dora::kNN;
  s.c = a.f32(1);
  s.x = a.f32(2);
  s.scale = a.f32(3, true);
  sparse_pattern(a, "sampledGemm", 4, s);
  s.accumulate = a.flag(11);
  s.dot = a.f32(12, true);
  s.vals = a.f32(13, true);
  if (!a.ok) return nullptr;
  if (s.dot && !s.vals && s.rows > 0 && s.row_ptr[s.rows] > s.row_ptr[0]) {  // (an empty values array reads as null)
    fail(env, "dora_native.sampledGemm: dot needs the values");
    return nullptr;
  }
  dora::sparse().sampled_gemm(s);
  return nullptr;
}

// sparseTransposedGemm(out: Float64Array, values, rowPtr, cols, rows, k, v, n)
napi_value SparseTransposedGemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  double* out = a.f64s(0);
  const float* values = a.f32(1);
  const float* v = a.f32(6);
  const int64_t n = a.i64(7);
  Csr p;
  if (csr_args(a, "sparseTransposedGemm", 2, p)) dora::sparse_transposed_gemm(out, values, p.row_ptr, p.cols, p.rows, p.k, v, n);
  return nullptr;
}

// gatherSparse(values, x, rowPtr, cols, rows, k) (Backend.gatherSparse)
napi_value GatherSparse(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float* values = a.f32(0);
  const float* x = a.f32(1);
  Csr p;
  if (csr_args(a, "gatherSparse", 2, p)) dora::gather_sparse(values, x, p.row_ptr, p.cols, p.rows, p.k);
  return nullptr;
}

// addSparse(out, alpha, values, rowPtr, cols, rows, k) (Backend.addSparse)
napi_value AddSparse(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  float* out = a.f32(0);
  const double alpha = a.f64(1);
  const float* values = a.f32(2);
  Csr p;
  if (csr_args(a, "addSparse", 3, p)) dora::add_sparse(out, alpha, values, p.row_ptr, p.cols, p.rows, p.k);
  return nullptr;
}

// positionsToCsr(pos: Int32Array, rowLen, rows, rowPtr: Int32Array) (Backend.positionsToCsr); every position is checked
// before any is rewritten
napi_value PositionsToCsr(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  int32_t* pos = nullptr;
  size_t count = 0;
  if (a.ok) a.ok = get_array(env, a.v[0], napi_int32_array, &pos, &count);
  const int64_t row_len = a.i64(1), rows = a.i64(2);
  int32_t* row_ptr = a.i32(3);
  if (!a.ok) return nullptr;
  const int64_t n = row_len * rows;
  int64_t prev = -1;
  for (size_t e = 0; e < count; e++) {
    if (pos[e] <= prev || pos[e] >= n) {
      const std::string m = "native positionsToCsr: position " + std::to_string(pos[e]) + " at index " + std::to_string(e) +
                            " is not above the previous one (" + std::to_string(prev) + ") inside [0, " + std::to_string(n) + ")";
      fail(env, m.c_str());
      return nullptr;
    }
    prev = pos[e];
  }
  dora::positions_to_csr(pos, static_cast<int64_t>(count), row_len, rows, row_ptr);
  return nullptr;
}

// dropoutDraw(out: Int32Array, count, last, n, p, state: Uint32Array(4)) → new count (Backend.dropoutDraw)
napi_value DropoutDraw(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  size_t cap = 0, words = 0;
  int32_t* out = nullptr;
  uint32_t* state = nullptr;
  if (a.ok) a.ok = get_array(env, a.v[0], napi_int32_array, &out, &cap);
  const int64_t count = a.i64(1), last = a.i64(2), n = a.i64(3);
  const double p = a.f64(4);
  if (a.ok) a.ok = get_array(env, a.v[5], napi_uint32_array, &state, &words);
  if (a.ok && words != 4) a.ok = fail(env, "dora_native.dropoutDraw: state must hold 4 words");
  if (!a.ok) return nullptr;
  const int64_t r = dora::dropout_draw(out, static_cast<int64_t>(cap), count, last, n, p, state);
  napi_value v;
  napi_create_int64(env, r, &v);
  return v;
}

// Tensor buffers (ArrayBuffers: malloc'd, uninitialised for kernel outputs, src/tensor/buffer.ts) of a few MB are
// allocated and freed by the hundred per training step. glibc serves such sizes by fresh mmaps or trims them off the
// heap top on free, so each step re-faults its memory page by page (first touch measured ~3.5 ms per MB on these VMs).
// Kept on the heap instead, freed buffers are reused: a LoRA step at 2 threads ran 675-766 vs 780-792 ms median and
// its slow outliers went, for ~2% more peak RSS. DORA_MALLOC_DEFAULTS=1 leaves glibc's settings alone.
void tune_malloc() {
#if defined(__GLIBC__)
  const char* keep = std::getenv("DORA_MALLOC_DEFAULTS");
  if (keep && std::strcmp(keep, "1") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // up to 32 MiB from the heap (glibc's ceiling for this setting)
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // keep up to 256 MiB of free heap top before returning it
  mallopt(M_TOP_PAD, 16 << 20);          // grow the heap in 16 MiB steps
#endif
}

napi_value Init(napi_env env, napi_value exports) {
  tune_malloc();
  const napi_property_descriptor props[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmNaive", nullptr, GemmNaive, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmScaled", nullptr, GemmScaled, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmNf4", nullptr, GemmNf4, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setNumThreads", nullptr, SetNumThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"numThreads", nullptr, NumThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"isa", nullptr, Isa, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setIsa", nullptr, SetIsa, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unaryForward", nullptr, UnaryForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unaryBackward", nullptr, UnaryBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxForward", nullptr, SoftmaxForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxBackward", nullptr, SoftmaxBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsNormForward", nullptr, RmsNormForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsNormBackward", nullptr, RmsNormBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binaryFlat", nullptr, BinaryFlat, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"siluMulForward", nullptr, SiluMulForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"siluMulBackward", nullptr, SiluMulBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crossEntropyForward", nullptr, CrossEntropyForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"crossEntropyBackward", nullptr, CrossEntropyBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamwStep", nullptr, AdamwStep, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnScale", nullptr, ColumnScale, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnDot", nullptr, ColumnDot, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"lowRankProducts", nullptr, LowRankProducts, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"doraNormTerms", nullptr, DoraNormTerms, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sparseGemm", nullptr, SparseGemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sparseTransposedGemm", nullptr, SparseTransposedGemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addSparse", nullptr, AddSparse, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gatherSparse", nullptr, GatherSparse, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"positionsToCsr", nullptr, PositionsToCsr, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sampledGemm", nullptr, SampledGemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sparseGemmDot", nullptr, SparseGemmDot, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionForward", nullptr, AttentionForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionBackward", nullptr, AttentionBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"dropoutDraw", nullptr, DropoutDraw, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rope", nullptr, Rope, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
