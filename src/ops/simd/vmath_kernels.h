/*
 * The elementwise kernels, written once over a small vector layer that each ISA file defines
 * before including this header (vmath_avx2.c, vmath_avx512.c):
 *
 *   vf, vmask, VF_WIDTH                      vector of floats, lane mask, lanes per vector
 *   v_loadu(p), v_storeu(p, v)               unaligned full-width load / store
 *   v_load_part(p, k), v_store_part(p, v, k) first k < VF_WIDTH lanes (masked: the other
 *                                            lanes read as 0 and memory past k is not touched)
 *   v_set1, v_add, v_sub, v_mul, v_div, v_fmadd(a, b, c) = a*b + c, v_fnmadd(a, b, c) = c - a*b
 *   v_min(k, x), v_max(k, x)                 x if x is NaN (the x86 rule: second operand wins)
 *   v_rcp_approx(a)                          1/a to 12 bits or better (only where that is enough)
 *   v_abs, v_gt(a, b), v_ge(a, b), v_select(m, if_true, if_false), v_keep(m, a) = m ? a : 0
 *   v_exp, v_log, v_log1p, v_tanh, v_erfc, v_sqrt   vector math (inline, SLEEF or libmvec)
 *   v_exp_library                            SLEEF's exp, for the bench's bare loops only
 *
 * Why one body: both ISAs must compute the same formulas with the same cut-offs, and the
 * tail (n not a multiple of VF_WIDTH) goes through the very same lane code under a mask, so a
 * value's result never depends on where a thread's chunk boundary falls. ISA files are built
 * with -ffp-contract=off: every fused multiply-add here is explicit, never the compiler's.
 */
#ifndef DG_VMATH_KERNELS_H
#define DG_VMATH_KERNELS_H

#define DG_VMATH_INLINE static inline __attribute__((always_inline))

typedef vf (*unary_lane_fn)(vf x);
typedef vf (*binary_lane_fn)(vf a, vf b);

/* Applies f to n elements: full vectors, then one masked vector. f is a constant at every
 * call site, so after inlining it is a direct (inlined) call. */
DG_VMATH_INLINE void unary_loop(const float *x, float *out, int64_t n, unary_lane_fn f)
{
    int64_t i = 0;
    for (; i + VF_WIDTH <= n; i += VF_WIDTH)
        v_storeu(out + i, f(v_loadu(x + i)));
    if (i < n)
        v_store_part(out + i, f(v_load_part(x + i, n - i)), n - i);
}

DG_VMATH_INLINE void binary_loop(const float *a, const float *b, float *out, int64_t n,
                                 binary_lane_fn f)
{
    int64_t i = 0;
    for (; i + VF_WIDTH <= n; i += VF_WIDTH)
        v_storeu(out + i, f(v_loadu(a + i), v_loadu(b + i)));
    if (i < n)
        v_store_part(out + i, f(v_load_part(a + i, n - i), v_load_part(b + i, n - i)), n - i);
}

/* ---- lane functions -------------------------------------------------------------------- */

/* sigmoid(x) = 1 / (1 + e^-x) as num / (1 + e) with e = e^-|x| in (0, 1]: no overflow, and
 * for x < 0 the numerator e keeps full relative accuracy down into the subnormals (1 / (1 +
 * e^-x) would flush to 0 below x = -88). One exp, one correctly rounded division. */
DG_VMATH_INLINE vf sigmoid_lane(vf x)
{
    vf e = v_exp(v_sub(v_set1(0.0f), v_abs(x)));
    vf num = v_select(v_ge(x, v_set1(0.0f)), v_set1(1.0f), e);
    return v_div(num, v_add(v_set1(1.0f), e));
}

/* 2 * Phi(x) = erfc(-x / sqrt 2), accurate in the left tail where 1 + erf would cancel.
 * The argument t = -x / sqrt 2 cannot be exact in float, and erfc magnifies a relative error
 * in t by about 2 t^2 (100 at x = -10), so the rounding error of t is carried separately:
 * t_hi + t_lo = -x * (c_hi + c_lo) to about 2^-48, and to first order
 *   erfc(t_hi + t_lo) = erfc(t_hi) * (1 - d(t_hi) * t_lo),  d(t) = 2 e^-t^2 / (sqrt(pi) erfc(t)).
 * d only needs a few per cent accuracy (t_lo is 2^-24 t): for t > 0 it is approximated by
 * 2t + 1 / (t + 0.886) (exact at 0 and asymptotically; the reciprocal is the hardware
 * estimate, 12+ bits, a division here cost a fifth of gelu's speed); for t <= 0 the correction is below
 * 0.3 ulp and is skipped. x must already be clamped to [-20, 20] (no infinities). */
DG_VMATH_INLINE vf twice_normal_cdf(vf x)
{
    const float c_hi = 0.70710677f;            /* (float)(1 / sqrt 2) */
    const float c_lo = 1.21016175e-08f;        /* 1 / sqrt 2 - c_hi */
    vf neg_x = v_sub(v_set1(0.0f), x);
    vf t_hi = v_mul(neg_x, v_set1(c_hi));
    vf t_lo = v_fmadd(neg_x, v_set1(c_lo), v_fmadd(neg_x, v_set1(c_hi), v_sub(v_set1(0.0f), t_hi)));
    vf e = v_erfc(t_hi);
    vf d = v_add(v_add(t_hi, t_hi), v_rcp_approx(v_add(t_hi, v_set1(0.886f))));
    d = v_keep(v_gt(t_hi, v_set1(0.0f)), d);
    return v_fnmadd(v_mul(e, d), t_lo, e);
}

DG_VMATH_INLINE vf gelu_clamp(vf x)
{
    return v_min(v_set1(DG_VMATH_GELU_CLAMP), v_max(v_set1(-DG_VMATH_GELU_CLAMP), x));
}

/* gelu(x) = x Phi(x) = (x / 2) erfc(-x / sqrt 2). Phi uses x clamped to [-20, 20] (where it
 * is already 0 or 1 in float); the factor x is clamped only below, so gelu(-inf) = -0 rather
 * than -inf * 0 = NaN, gelu(+inf) = inf, NaN stays NaN. */
DG_VMATH_INLINE vf gelu_lane(vf x)
{
    vf xc = gelu_clamp(x);
    vf half_x = v_mul(v_max(v_set1(-DG_VMATH_GELU_CLAMP), x), v_set1(0.5f));
    return v_mul(half_x, twice_normal_cdf(xc));
}

/* softplus(x) = log1p(e^x), x itself above 20 (PyTorch). log1p(e^x) stays accurate at both
 * ends: e^x's relative error becomes an absolute error in log1p that is small against x. */
DG_VMATH_INLINE vf softplus_lane(vf x)
{
    vf y = v_log1p(v_exp(x));
    return v_select(v_gt(x, v_set1(DG_VMATH_SOFTPLUS_THRESHOLD)), x, y);
}

/* max(x, 0) with NaN propagated (second operand of max is returned when one is NaN). */
DG_VMATH_INLINE vf relu_lane(vf x) { return v_max(v_set1(0.0f), x); }

DG_VMATH_INLINE vf exp_lane(vf x) { return v_exp(x); }
DG_VMATH_INLINE vf log_lane(vf x) { return v_log(x); }
DG_VMATH_INLINE vf sqrt_lane(vf x) { return v_sqrt(x); }
DG_VMATH_INLINE vf tanh_lane(vf x) { return v_tanh(x); }

/* grad where x > 0 else 0: a select, so grad = inf at x <= 0 gives 0, not NaN. */
DG_VMATH_INLINE vf relu_grad_lane(vf x, vf grad) { return v_keep(v_gt(x, v_set1(0.0f)), grad); }

/* grad * (y (1 - y)) */
DG_VMATH_INLINE vf sigmoid_grad_lane(vf y, vf grad)
{
    return v_mul(grad, v_mul(y, v_sub(v_set1(1.0f), y)));
}

/* grad * (1 - y^2), with 1 - y^2 as one fused operation: no cancellation as |y| -> 1. */
DG_VMATH_INLINE vf tanh_grad_lane(vf y, vf grad)
{
    return v_mul(grad, v_fnmadd(y, y, v_set1(1.0f)));
}

/* gelu'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi). x^2 / 2 is split exactly
 * (h + l, FMA) and e^-(h+l) = e^-h (1 - l), since e^-x^2/2 magnifies the rounding of x^2 by
 * x^2 / 2. x is clamped to [-20, 20], past which the result is exactly 0 or 1 in float. */
DG_VMATH_INLINE vf gelu_grad_lane(vf x, vf grad)
{
    const float inv_sqrt_2pi = 0.398942280f;
    vf xc = gelu_clamp(x);
    vf sq = v_mul(xc, xc);
    vf sq_err = v_fmadd(xc, xc, v_sub(v_set1(0.0f), sq)); /* xc^2 - sq, exactly */
    vf h = v_mul(sq, v_set1(-0.5f));
    vf l = v_mul(sq_err, v_set1(-0.5f));
    vf g = v_exp(h);
    g = v_fmadd(g, l, g);
    vf cdf = v_mul(twice_normal_cdf(xc), v_set1(0.5f));
    vf deriv = v_fmadd(v_mul(xc, v_set1(inv_sqrt_2pi)), g, cdf);
    return v_mul(grad, deriv);
}

DG_VMATH_INLINE vf softplus_grad_lane(vf x, vf grad) { return v_mul(grad, sigmoid_lane(x)); }

DG_VMATH_INLINE vf add_lane(vf a, vf b) { return v_add(a, b); }
DG_VMATH_INLINE vf sub_lane(vf a, vf b) { return v_sub(a, b); }
DG_VMATH_INLINE vf mul_lane(vf a, vf b) { return v_mul(a, b); }
DG_VMATH_INLINE vf div_lane(vf a, vf b) { return v_div(a, b); }

/* ---- the kernels in the table ------------------------------------------------------------ */

static void exp_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, exp_lane); }
static void log_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, log_lane); }
static void sqrt_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, sqrt_lane); }
static void tanh_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, tanh_lane); }
static void sigmoid_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, sigmoid_lane); }
static void gelu_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, gelu_lane); }
static void softplus_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, softplus_lane); }
static void relu_k(const float *x, float *out, int64_t n) { unary_loop(x, out, n, relu_lane); }

static void relu_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    binary_loop(x, grad, out, n, relu_grad_lane);
}
static void sigmoid_grad_k(const float *y, const float *grad, float *out, int64_t n)
{
    binary_loop(y, grad, out, n, sigmoid_grad_lane);
}
static void tanh_grad_k(const float *y, const float *grad, float *out, int64_t n)
{
    binary_loop(y, grad, out, n, tanh_grad_lane);
}
static void gelu_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    binary_loop(x, grad, out, n, gelu_grad_lane);
}
static void softplus_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    binary_loop(x, grad, out, n, softplus_grad_lane);
}
static void add_k(const float *a, const float *b, float *out, int64_t n) { binary_loop(a, b, out, n, add_lane); }
static void sub_k(const float *a, const float *b, float *out, int64_t n) { binary_loop(a, b, out, n, sub_lane); }
static void mul_k(const float *a, const float *b, float *out, int64_t n) { binary_loop(a, b, out, n, mul_lane); }
static void div_k(const float *a, const float *b, float *out, int64_t n) { binary_loop(a, b, out, n, div_lane); }

/* The table initialiser, identical for every ISA but for the name. */
#define DG_VMATH_TABLE_ENTRIES                                                                  \
    .exp = exp_k, .log = log_k, .sqrt = sqrt_k, .tanh = tanh_k, .sigmoid = sigmoid_k,          \
    .gelu = gelu_k, .softplus = softplus_k, .relu = relu_k, .relu_grad = relu_grad_k,           \
    .sigmoid_grad = sigmoid_grad_k, .tanh_grad = tanh_grad_k, .gelu_grad = gelu_grad_k,        \
    .softplus_grad = softplus_grad_k, .add = add_k, .sub = sub_k, .mul = mul_k, .div = div_k, \
    .dropout = dropout_k

#endif

/* ---- bare loops for bench/bench_vmath.c (vmath_bare.h) ----------------------------------- */

#ifdef DG_VMATH_BARE_H
/* The yardsticks call the libraries' functions (SLEEF's exp, not our inline one). */
DG_VMATH_INLINE vf exp_library_lane(vf x) { return v_exp_library(x); }
DG_VMATH_INLINE vf exp_log1p_lane(vf x) { return v_log1p(v_exp_library(x)); }
DG_VMATH_INLINE vf erfc_lane(vf x) { return v_erfc(x); }
DG_VMATH_INLINE vf erfc_exp_lane(vf a, vf b) { return v_add(v_erfc(a), v_exp_library(b)); }

DG_VMATH_INLINE void bare_unary(const float *x, float *out, int64_t n, unary_lane_fn f)
{
    for (int64_t i = 0; i + VF_WIDTH <= n; i += VF_WIDTH)
        v_storeu(out + i, f(v_loadu(x + i)));
}

DG_VMATH_INLINE void bare_binary(const float *a, const float *b, float *out, int64_t n,
                                 binary_lane_fn f)
{
    for (int64_t i = 0; i + VF_WIDTH <= n; i += VF_WIDTH)
        v_storeu(out + i, f(v_loadu(a + i), v_loadu(b + i)));
}

static void bare_exp(const float *x, float *out, int64_t n) { bare_unary(x, out, n, exp_library_lane); }
static void bare_log(const float *x, float *out, int64_t n) { bare_unary(x, out, n, log_lane); }
static void bare_sqrt(const float *x, float *out, int64_t n) { bare_unary(x, out, n, sqrt_lane); }
static void bare_tanh(const float *x, float *out, int64_t n) { bare_unary(x, out, n, tanh_lane); }
static void bare_erfc(const float *x, float *out, int64_t n) { bare_unary(x, out, n, erfc_lane); }
static void bare_exp_log1p(const float *x, float *out, int64_t n)
{
    bare_unary(x, out, n, exp_log1p_lane);
}
static void bare_erfc_exp(const float *a, const float *b, float *out, int64_t n)
{
    bare_binary(a, b, out, n, erfc_exp_lane);
}
static void bare_mul(const float *a, const float *b, float *out, int64_t n)
{
    bare_binary(a, b, out, n, mul_lane);
}

#define DG_VMATH_BARE_ENTRIES                                                                   \
    .exp = bare_exp, .log = bare_log, .sqrt = bare_sqrt, .tanh = bare_tanh, .erfc = bare_erfc, \
    .exp_log1p = bare_exp_log1p, .erfc_exp = bare_erfc_exp, .mul = bare_mul
#endif
