/*
 * AVX-512 elementwise kernels (16 floats a vector). Built alone with -mavx512f -mavx512dq
 * -mavx512bw -mavx512vl -mfma (meson.build), so that sleef.h declares its 512-bit functions;
 * chosen at run time by vmath.c only on CPUs that run AVX-512. Tails use masked loads and
 * stores, so the last partial vector runs the very same lane code as the rest.
 *
 * Vector math choices (measured max ulp against double libm, throughput on Zen 4, 1 thread,
 * 64K floats; see docs/kernels.md):
 *   exp   inline (below): 0.90 ulp, 5.4 Gelem/s, against SLEEF expf u10 0.97 ulp at 3.6
 *         and libmvec expf 2.6 ulp at 3.5 (and a scalar loop for subnormal results).
 *   log   SLEEF logf u10 (0.5 ulp, 1.9 Gelem/s): u35 is 2.4x faster but 2.2 ulp near x = 1,
 *         where losses evaluate log(p) of confident predictions; libmvec logf is 3.9 ulp there.
 *   sqrt  vsqrtps: correctly rounded.
 *   gelu, gelu': no library erfc (vmath_kernels.h: an inline exp and a piecewise polynomial in float).
 *   tanh, erfc, log1p: libmvec (glibc >= 2.35) when the build finds it: tanhf 1.4 ulp at
 *         2.5 Gelem/s against SLEEF u35 2.6 ulp / 2.0, erfcf (bench only) 1.6 ulp at 1.0 against SLEEF
 *         u15 at 0.33, log1pf 1.2 ulp at 2.5 against SLEEF u10 at 1.4. Without libmvec: SLEEF.
 */
#include <immintrin.h>
#include <sleef.h>

#include "vmath_bare.h"
#include "vmath_impl.h"

#if DG_VMATH_HAVE_MVEC
/* glibc's libmvec, x86-64 vector function ABI names ('e' = AVX-512, 16 lanes). */
__m512 _ZGVeN16v_tanhf(__m512 x);
__m512 _ZGVeN16v_erfcf(__m512 x);
__m512 _ZGVeN16v_log1pf(__m512 x);
#endif

typedef __m512 vf;
typedef __mmask16 vmask;
#define VF_WIDTH 16

static inline __mmask16 first_lanes(int64_t k) { return (__mmask16)((1u << k) - 1u); }

static inline vf v_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_storeu(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf v_load_part(const float *p, int64_t k) { return _mm512_maskz_loadu_ps(first_lanes(k), p); }
static inline void v_store_part(float *p, vf v, int64_t k) { _mm512_mask_storeu_ps(p, first_lanes(k), v); }
static inline vf v_set1(float a) { return _mm512_set1_ps(a); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf v_min(vf k, vf x) { return _mm512_min_ps(k, x); }
static inline vf v_max(vf k, vf x) { return _mm512_max_ps(k, x); }
static inline vf v_abs(vf a) { return _mm512_abs_ps(a); }
static inline vmask v_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vmask v_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vf v_select(vmask m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vf v_keep(vmask m, vf a) { return _mm512_maskz_mov_ps(m, a); }
static inline vf v_sqrt(vf a) { return _mm512_sqrt_ps(a); }
/* 32-entry tables (gelu's Mills ratio, vmath_kernels.h) */
#define DG_VMATH_HAVE_LOOKUP32 1
typedef __m512i vi;
static inline vi v_index32(vf v)
{
    return _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 20), _mm512_set1_epi32(31));
}
/* two-register permute: 32 entries, every index in range */
static inline vf v_lookup32(const float *table, vi i)
{
    return _mm512_permutex2var_ps(_mm512_load_ps(table), i, _mm512_load_ps(table + 16));
}
/* e^x inline rather than a SLEEF call: an opaque call makes the compiler spill every live
 * vector and mask around it (all zmm are caller-saved), which cost sigmoid a quarter of its
 * speed. x = n ln2 + r, |r| <= ln2/2, with ln2 in two parts (ln2_hi has 15 significant bits,
 * so n * ln2_hi is exact); e^r by its Taylor polynomial to degree 7 (truncation below 0.05
 * ulp); 2^n applied by vscalefps, which overflows to inf and rounds once into the
 * subnormals. x is clamped to [-104, 89] first (e^x is already 0 or inf in float there), and
 * the clamps keep NaN. Measured 0.9x ulp, see tests/test_vmath.c. */
static inline vf v_exp(vf x)
{
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    vf n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-06f), r);
    vf p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
/* The library exp of the same accuracy class, for the bench's bare loops. */
static inline vf v_exp_library(vf a) { return Sleef_expf16_u10avx512f(a); }
static inline vf v_log(vf a) { return Sleef_logf16_u10avx512f(a); }
#if DG_VMATH_HAVE_MVEC
static inline vf v_tanh(vf a) { return _ZGVeN16v_tanhf(a); }
static inline vf v_erfc(vf a) { return _ZGVeN16v_erfcf(a); }
static inline vf v_log1p(vf a) { return _ZGVeN16v_log1pf(a); }
#else
static inline vf v_tanh(vf a) { return Sleef_tanhf16_u35avx512f(a); }
static inline vf v_erfc(vf a) { return Sleef_erfcf16_u15avx512f(a); }
static inline vf v_log1p(vf a) { return Sleef_log1pf16_u10avx512f(a); }
#endif

#include "dropout_hash.h"

/* The hash of 8 consecutive elements idx .. idx + 7 (64-bit lanes; vpmullq is AVX-512DQ). */
static inline __m512i dropout_u24_x8(__m512i base, __m512i idx)
{
    const __m512i golden = _mm512_set1_epi64((long long)DG_DROPOUT_GOLDEN);
    __m512i z = _mm512_add_epi64(base, _mm512_mullo_epi64(idx, golden));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                           _mm512_set1_epi64((long long)DG_DROPOUT_MIX1));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                           _mm512_set1_epi64((long long)DG_DROPOUT_MIX2));
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    return _mm512_srli_epi64(z, 40);
}

/* 16 elements a step (two hashes of 8 lanes); the tail element by element, with the same
 * integer hash, so the mask never depends on where a chunk starts. */
static void dropout_k(uint64_t base, int64_t start, uint32_t threshold, float scale,
                      const float *x, float *out, int64_t n)
{
    const __m512i vbase = _mm512_set1_epi64((long long)base);
    const __m512i thr = _mm512_set1_epi64((long long)threshold);
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512 vscale = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(start + i), lanes);
        __mmask8 lo = _mm512_cmpge_epu64_mask(dropout_u24_x8(vbase, idx), thr);
        idx = _mm512_add_epi64(idx, _mm512_set1_epi64(8));
        __mmask8 hi = _mm512_cmpge_epu64_mask(dropout_u24_x8(vbase, idx), thr);
        __mmask16 keep = (__mmask16)((unsigned)lo | (unsigned)hi << 8);
        __m512 v = x != NULL ? _mm512_mul_ps(_mm512_loadu_ps(x + i), vscale) : vscale;
        _mm512_storeu_ps(out + i, _mm512_maskz_mov_ps(keep, v));
    }
    dg__dropout_scalar(base, start + i, threshold, scale, x ? x + i : NULL, out + i, n - i);
}

#include "vmath_kernels.h"

const struct dg_vmath dg__vmath_avx512_table = {
    .isa_name = "avx512",
    DG_VMATH_TABLE_ENTRIES,
};

const struct dg_vmath_bare dg__vmath_avx512_bare = {DG_VMATH_BARE_ENTRIES};
