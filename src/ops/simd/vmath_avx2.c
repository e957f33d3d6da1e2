/*
 * AVX2 + FMA elementwise kernels (8 floats a vector). Built alone with -mavx2 -mfma
 * (meson.build), so that sleef.h declares its 256-bit functions; chosen at run time by
 * vmath.c. Tails use vmaskmovps, so the last partial vector runs the same lane code as the
 * rest. The vector math follows the AVX-512 file (same functions, 8 lanes); see there and
 * docs/kernels.md for why each one.
 */
#include <immintrin.h>
#include <sleef.h>

#include "vmath_bare.h"
#include "vmath_impl.h"

#if DG_VMATH_HAVE_MVEC
/* glibc's libmvec, x86-64 vector function ABI names ('d' = AVX2, 8 lanes). */
__m256 _ZGVdN8v_tanhf(__m256 x);
__m256 _ZGVdN8v_erfcf(__m256 x);
__m256 _ZGVdN8v_log1pf(__m256 x);
#endif

typedef __m256 vf;
typedef __m256 vmask; /* all-ones lanes */
#define VF_WIDTH 8

/* first_lanes(k): k all-ones lanes then zeros, read from a sliding window over this table. */
static const int32_t lane_window[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i first_lanes(int64_t k)
{
    return _mm256_loadu_si256((const __m256i *)(lane_window + 8 - k));
}

static inline vf v_loadu(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_storeu(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf v_load_part(const float *p, int64_t k) { return _mm256_maskload_ps(p, first_lanes(k)); }
static inline void v_store_part(float *p, vf v, int64_t k) { _mm256_maskstore_ps(p, first_lanes(k), v); }
static inline vf v_set1(float a) { return _mm256_set1_ps(a); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf v_min(vf k, vf x) { return _mm256_min_ps(k, x); }
static inline vf v_max(vf k, vf x) { return _mm256_max_ps(k, x); }
static inline vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vmask v_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vmask v_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vf v_select(vmask m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
static inline vf v_keep(vmask m, vf a) { return _mm256_and_ps(m, a); }
static inline vf v_sqrt(vf a) { return _mm256_sqrt_ps(a); }
/* m (p(u) / q(u) + k u) in double, rounded once to float (two halves of 4 lanes): gelu's Mills
 * ratio, where AVX-512 uses a table (vmath_kernels.h; a gather here was 2.7x slower). */
#define DG_VMATH_HAVE_LOOKUP32 0
static inline __m256d ratio_half(__m256d u, __m256d m, __m256d k, const double *p, int np,
                                  const double *q, int nq)
{
    __m256d a = _mm256_set1_pd(p[0]), b = _mm256_set1_pd(q[0]);
    for (int i = 1; i < np; i++)
        a = _mm256_fmadd_pd(a, u, _mm256_set1_pd(p[i]));
    for (int i = 1; i < nq; i++)
        b = _mm256_fmadd_pd(b, u, _mm256_set1_pd(q[i]));
    a = _mm256_div_pd(a, b);
    a = _mm256_fmadd_pd(k, u, a);
    return _mm256_mul_pd(a, m);
}
static inline vf v_ratio_f64(vf u, vf m, vf k, const double *p, int np, const double *q,
                             int nq)
{
    __m256d ulo = _mm256_cvtps_pd(_mm256_castps256_ps128(u));
    __m256d uhi = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
    __m256d mlo = _mm256_cvtps_pd(_mm256_castps256_ps128(m));
    __m256d mhi = _mm256_cvtps_pd(_mm256_extractf128_ps(m, 1));
    __m256d klo = _mm256_cvtps_pd(_mm256_castps256_ps128(k));
    __m256d khi = _mm256_cvtps_pd(_mm256_extractf128_ps(k, 1));
    __m128 rlo = _mm256_cvtpd_ps(ratio_half(ulo, mlo, klo, p, np, q, nq));
    __m128 rhi = _mm256_cvtpd_ps(ratio_half(uhi, mhi, khi, p, np, q, nq));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(rlo), rhi, 1);
}
/* e^x inline, as in vmath_avx512.c (see there for why and how), except that AVX2 has no
 * vscalefps: 2^n is applied as two exact powers of two, 2^(n>>1) then 2^(n - (n>>1)), each a
 * normal float for n in [-150, 129], so only the last multiply rounds (once, into the
 * subnormals or to inf). */
static inline vf v_exp(vf x)
{
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    vf n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-06f), r);
    vf p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i k = _mm256_cvtps_epi32(n); /* NaN lanes give garbage here, but p is NaN */
    __m256i k1 = _mm256_srai_epi32(k, 1);
    __m256i k2 = _mm256_sub_epi32(k, k1);
    vf s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
    vf s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
/* The library exp of the same accuracy class, for the bench's bare loops. */
static inline vf v_exp_library(vf a) { return Sleef_expf8_u10avx2(a); }
static inline vf v_log(vf a) { return Sleef_logf8_u10avx2(a); }
#if DG_VMATH_HAVE_MVEC
static inline vf v_tanh(vf a) { return _ZGVdN8v_tanhf(a); }
static inline vf v_erfc(vf a) { return _ZGVdN8v_erfcf(a); }
static inline vf v_log1p(vf a) { return _ZGVdN8v_log1pf(a); }
#else
static inline vf v_tanh(vf a) { return Sleef_tanhf8_u35avx2(a); }
static inline vf v_erfc(vf a) { return Sleef_erfcf8_u15avx2(a); }
static inline vf v_log1p(vf a) { return Sleef_log1pf8_u10avx2(a); }
#endif

#include "dropout_hash.h"

/* AVX2 has no 64-bit lane multiply: the hash runs one element at a time. */
static void dropout_k(uint64_t base, int64_t start, uint32_t threshold, float scale,
                      const float *x, float *out, int64_t n)
{
    dg__dropout_scalar(base, start, threshold, scale, x, out, n);
}

#include "vmath_kernels.h"

const struct dg_vmath dg__vmath_avx2_table = {
    .isa_name = "avx2",
    DG_VMATH_TABLE_ENTRIES,
};

const struct dg_vmath_bare dg__vmath_avx2_bare = {DG_VMATH_BARE_ENTRIES};
