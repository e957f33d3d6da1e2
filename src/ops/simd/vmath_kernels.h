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
 *   v_ratio_f64(u, m, k, p, np, q, nq)      m (p(u) / q(u) + k u), in double, rounded once
 *                                            (p, q: coefficients, highest degree first)
 *   v_abs, v_gt(a, b), v_ge(a, b), v_select(m, if_true, if_false), v_keep(m, a) = m ? a : 0
 *   v_exp, v_log, v_log1p, v_tanh, v_sqrt    vector math (inline, SLEEF or libmvec)
 *   v_erfc                                   library erfc, for the bench's bare loops only
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

/* The normal tail Phi(-u), u = |x| in [0, 20], without erfc: Phi(-u) = e^(-u^2/2) S(u), where
 * S(u) = Phi(-u) e^(u^2/2) (the Mills ratio over sqrt(2 pi)) is smooth and slowly varying on
 * [0, inf) (0.5 at 0, about 0.4 / u far out), so one rational function of degree 4 / 5 fits
 * it to 1.2e-8 relative on [0, 20] (tools/fit_gelu_mills.py). P / Q is evaluated in double
 * (v_ratio_f64), together with the factor and term each caller needs, and rounded once: in
 * float, Horner's rule alone added 2 ulp. u^2 / 2 is split exactly (h + l, FMA) and
 * e^-(h+l) = e^-h (1 - l), since e^-u^2/2 magnifies the rounding of u^2 by u^2 / 2. So one
 * inline exp and one double division per lane and no opaque library call: libmvec's erfcf,
 * used before, ran gelu at 0.5 Gelem/s (a third of it spent spilling around the call); this
 * runs at 1.1. gauss_half(u) = e^(-u^2/2); mills(u, m, k) = m (S(u) + k u). */
DG_VMATH_INLINE vf gauss_half(vf u)
{
    vf sq = v_mul(u, u);
    vf sq_err = v_fmadd(u, u, v_sub(v_set1(0.0f), sq)); /* u^2 - sq, exactly */
    vf g = v_exp(v_mul(sq, v_set1(-0.5f)));
    return v_fmadd(g, v_mul(sq_err, v_set1(-0.5f)), g);
}

static const double mills_p[] = {0.004415124992963004, 0.04261940347753859, 0.18908130637797896,
                                 0.4461089879884048, 0.5000000050396503};
static const double mills_q[] = {0.011067011943397426, 0.10683511248083405, 0.4849152209779136,
                                 1.2266625424600925, 1.6901032110082774, 1.0};

/* m (S(u) + k u), rounded once */
DG_VMATH_INLINE vf mills(vf u, vf m, vf k)
{
    return v_ratio_f64(u, m, k, mills_p, 5, mills_q, 6);
}

DG_VMATH_INLINE vf gelu_clamp(vf x)
{
    return v_min(v_set1(DG_VMATH_GELU_CLAMP), v_max(v_set1(-DG_VMATH_GELU_CLAMP), x));
}

/* gelu(x) = x Phi(x). Phi uses x clamped to [-20, 20] (where it is already 0 or 1 in float).
 * For x < 0, gelu = (x S(|x|)) e^(-x^2/2), multiplied in that order so that the product
 * stays normal as long as the result does (Phi(-13) alone is subnormal, gelu(-13) is not);
 * for x >= 0, gelu = x (1 - S e^(-x^2/2)), with the unclamped x so that gelu(+inf) = inf.
 * gelu(-inf) = -20 * 0 = -0 rather than NaN, and NaN stays NaN. */
DG_VMATH_INLINE vf gelu_lane(vf x)
{
    vf xc = gelu_clamp(x);
    vf u = v_abs(xc);
    vmask neg = v_gt(v_set1(0.0f), xc);
    vf g = gauss_half(u);
    vf r = mills(u, v_select(neg, xc, v_set1(1.0f)), v_set1(0.0f)); /* x S or S */
    vf right = v_mul(x, v_fnmadd(g, r, v_set1(1.0f)));
    return v_select(neg, v_mul(r, g), right);
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

/* gelu'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi), with Phi(-|x|) = S e^(-x^2/2)
 * as in gelu_lane, so one exp serves both terms: for x < 0 the derivative is
 * e^(-x^2/2) (S + x / sqrt(2 pi)), for x >= 0 it is (1 - S e^(-x^2/2)) + x phi(x). x is
 * clamped to [-20, 20], past which the result is exactly 0 or 1 in float. */
DG_VMATH_INLINE vf gelu_grad_lane(vf x, vf grad)
{
    const float inv_sqrt_2pi = 0.398942280f;
    vf xc = gelu_clamp(x);
    vf u = v_abs(xc);
    vmask neg = v_gt(v_set1(0.0f), xc);
    vf g = gauss_half(u);
    /* S - u / sqrt(2 pi) = S + x / sqrt(2 pi) for x < 0, S for x >= 0 */
    vf r = mills(u, v_set1(1.0f), v_keep(neg, v_set1(-inv_sqrt_2pi)));
    vf right = v_fmadd(v_mul(xc, v_set1(inv_sqrt_2pi)), g, v_fnmadd(g, r, v_set1(1.0f)));
    return v_mul(grad, v_select(neg, v_mul(g, r), right));
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
