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
 *   DG_VMATH_HAVE_LOOKUP32 1, with:          (AVX-512; 0 on AVX2, which has instead:)
 *     vi, v_index32(v)                       integer lanes; bits 20..24 of v's bits (for
 *                                            v in [2, 32): exponent and top 3 mantissa bits)
 *     v_lookup32(table, i)                   table[i] per lane, table: 32 floats
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
 * [0, inf) (0.5 at 0, about 0.4 / u far out). S is a polynomial of degree 5 in t = u - mid on
 * each of 32 intervals, picked by the exponent and top three mantissa bits of u + 2 (widths
 * 1/4 on [0, 2), 1/2 on [2, 6), 1 on [6, 14), 2 beyond), with its constant term split in
 * two floats (high + low) so that the result is rounded about once: 0.59 ulp at most over
 * [0, 16] (tools/fit_gelu_mills.py fits and checks the tables). The coefficients come from
 * two-register permutes (v_lookup32, AVX-512). All float: the rational fit evaluated in
 * double that this replaced (still AVX2's, below) spent half of gelu's time converting and
 * evaluating 8-lane halves (0.98 -> 0.70 ns an element on Zen 4, 1 thread). u^2 / 2 is split exactly
 * (h + l, FMA) and e^-(h+l) = e^-h (1 - l), since e^-u^2/2 magnifies the rounding of u^2 by
 * u^2 / 2. gauss_half(u) = e^(-u^2/2); mills(u, m, k) = m (S(u) + k u). */
DG_VMATH_INLINE vf gauss_half(vf u)
{
    vf sq = v_mul(u, u);
    vf sq_err = v_fmadd(u, u, v_sub(v_set1(0.0f), sq)); /* u^2 - sq, exactly */
    vf g = v_exp(v_mul(sq, v_set1(-0.5f)));
    return v_fmadd(g, v_mul(sq_err, v_set1(-0.5f)), g);
}

#if DG_VMATH_HAVE_LOOKUP32
/* Rows: the interval's mid point, the constant term (high, low), then c1..c5. */
enum { MILLS_MID, MILLS_HI, MILLS_LO, MILLS_C1, MILLS_ROWS = MILLS_C1 + 5 };
static const float mills_table[MILLS_ROWS][32] __attribute__((aligned(64))) = {
    {/* mid */
     1.250000000e-01f, 3.750000000e-01f, 6.250000000e-01f, 8.750000000e-01f,
     1.125000000e+00f, 1.375000000e+00f, 1.625000000e+00f, 1.875000000e+00f,
     2.250000000e+00f, 2.750000000e+00f, 3.250000000e+00f, 3.750000000e+00f,
     4.250000000e+00f, 4.750000000e+00f, 5.250000000e+00f, 5.750000000e+00f,
     6.500000000e+00f, 7.500000000e+00f, 8.500000000e+00f, 9.500000000e+00f,
     1.050000000e+01f, 1.150000000e+01f, 1.250000000e+01f, 1.350000000e+01f,
     1.500000000e+01f, 1.700000000e+01f, 1.900000000e+01f, 2.100000000e+01f,
     2.300000000e+01f, 2.500000000e+01f, 2.700000000e+01f, 2.900000000e+01f,},
    {/* c0 (high part) */
     4.537932277e-01f, 3.796044290e-01f, 3.233561814e-01f, 2.797705829e-01f,
     2.453313917e-01f, 2.176398188e-01f, 1.950231045e-01f, 1.762908846e-01f,
     1.536519378e-01f, 1.307247281e-01f, 1.134520620e-01f, 1.000392064e-01f,
     8.935932070e-02f, 8.067540079e-02f, 7.348822802e-02f, 6.744923443e-02f,
     6.001567468e-02f, 5.229309574e-02f, 4.631004483e-02f, 4.154329002e-02f,
     3.765885904e-02f, 3.443405777e-02f, 3.171492741e-02f, 2.939173207e-02f,
     2.647948824e-02f, 2.338682115e-02f, 2.093927562e-02f, 1.895446330e-02f,
     1.731271110e-02f, 1.593228057e-02f, 1.475545485e-02f, 1.374033093e-02f,},
    {/* c0 (low part) */
     -4.728108571e-09f, -6.459153212e-10f, -1.239229519e-08f, -1.248389925e-08f,
     -2.667301713e-09f, 4.923081498e-09f, 5.404377834e-09f, 6.763667848e-09f,
     3.030869444e-10f, 6.312793843e-09f, 2.693048007e-10f, 3.265523407e-09f,
     -2.040968505e-09f, -1.599302357e-09f, 2.842036606e-09f, -3.067226029e-09f,
     8.900153392e-10f, 1.475002342e-09f, -1.701216057e-09f, -1.496280211e-09f,
     -3.144288718e-10f, 8.244691596e-10f, -1.831853114e-09f, -4.352797289e-10f,
     8.255089390e-10f, -8.380718342e-10f, -2.918291650e-11f, 2.579707004e-10f,
     7.733713669e-10f, -7.274621877e-11f, -3.550878203e-10f, -3.687027766e-11f,},
    {/* c1 */
     -3.422181308e-01f, -2.565906048e-01f, -1.968446672e-01f, -1.541430354e-01f,
     -1.229444668e-01f, -9.968752414e-02f, -8.202973008e-02f, -6.839685887e-02f,
     -5.322542042e-02f, -3.944925964e-02f, -3.022307903e-02f, -2.379524335e-02f,
     -1.916517690e-02f, -1.573413424e-02f, -1.312906854e-02f, -1.110920031e-02f,
     -8.840390481e-03f, -6.744051818e-03f, -5.306913983e-03f, -4.281039815e-03f,
     -3.524263855e-03f, -2.950606635e-03f, -2.505710814e-03f, -2.153903479e-03f,
     -1.749945455e-03f, -1.366335549e-03f, -1.096044434e-03f, -8.985457825e-04f,
     -7.499072817e-04f, -6.352679920e-04f, -5.450092140e-04f, -4.726843908e-04f,},
    {/* c2 */
     2.055069357e-01f, 1.416909099e-01f, 1.001638025e-01f, 7.244752347e-02f,
     5.350932479e-02f, 4.028467461e-02f, 3.086236119e-02f, 2.402336523e-02f,
     1.694716141e-02f, 1.111953985e-02f, 7.613485213e-03f, 5.403500050e-03f,
     3.953648265e-03f, 2.969124354e-03f, 2.280307235e-03f, 1.785663189e-03f,
     1.276551629e-03f, 8.563466836e-04f, 6.006330368e-04f, 4.367044603e-04f,
     3.270433517e-04f, 2.510408522e-04f, 1.967701683e-04f, 1.570176973e-04f,
     1.151527322e-04f, 7.955740875e-05f, 5.721597336e-05f, 4.250122220e-05f,
     3.242210005e-05f, 2.529005906e-05f, 2.010322351e-05f, 1.624178367e-05f,},
    {/* c3 */
     -1.055090576e-01f, -6.782178581e-02f, -4.474889860e-02f, -3.024957702e-02f,
     -2.091565728e-02f, -1.476506516e-02f, -1.062542573e-02f, -7.784379181e-03f,
     -5.031288601e-03f, -2.956846030e-03f, -1.826336724e-03f, -1.177389990e-03f,
     -7.873404538e-04f, -5.435920320e-04f, -3.858060227e-04f, -2.805323456e-04f,
     -1.809005189e-04f, -1.071355437e-04f, -6.717174983e-05f, -4.410851398e-05f,
     -3.010007094e-05f, -2.121023135e-05f, -1.535971933e-05f, -1.138651442e-05f,
     -7.545438166e-06f, -4.617043032e-06f, -2.978625844e-06f, -2.005792112e-06f,
     -1.399185066e-06f, -1.005284844e-06f, -7.404362350e-07f, -5.574224815e-07f,},
    {/* c4 */
     4.825801030e-02f, 2.916146629e-02f, 1.810372621e-02f, 1.152600255e-02f,
     7.513150107e-03f, 5.006683525e-03f, 3.405613592e-03f, 2.361218678e-03f,
     1.415638835e-03f, 7.510751602e-04f, 4.213082429e-04f, 2.480457479e-04f,
     1.523174578e-04f, 9.703748219e-05f, 6.385161396e-05f, 4.322797395e-05f,
     2.535478416e-05f, 1.328556664e-05f, 7.457845641e-06f, 4.429240562e-06f,
     2.756515414e-06f, 1.784539563e-06f, 1.194679726e-06f, 8.232530604e-07f,
     4.954951009e-07f, 2.683934781e-07f, 1.552940745e-07f, 9.477326302e-08f,
     6.043804746e-08f, 3.998628983e-08f, 2.729705173e-08f, 1.914314218e-08f,},
    {/* c5 */
     -1.998015679e-02f, -1.126847416e-02f, -6.635352504e-03f, -4.084144253e-03f,
     -2.491105814e-03f, -1.593803870e-03f, -1.053106622e-03f, -6.717214710e-04f,
     -3.746251459e-04f, -1.800327445e-04f, -9.327874432e-05f, -4.975006959e-05f,
     -2.886544826e-05f, -1.677011278e-05f, -1.036588583e-05f, -6.614282483e-06f,
     -3.459409072e-06f, -1.607865102e-06f, -8.063167911e-07f, -4.454109899e-07f,
     -2.496998093e-07f, -1.496444639e-07f, -9.345014718e-08f, -6.186961343e-08f,
     -3.227463807e-08f, -1.544860062e-08f, -8.169212862e-09f, -4.512318075e-09f,
     -2.591138415e-09f, -1.537672878e-09f, -1.068363176e-09f, -6.578287359e-10f,},
};

/* m (S(u) + k u) = m hi + m (y + k u), y = the rest of the polynomial plus the low part:
 * the small term carries the roundings, the large one m hi is exact up to the last add. */
DG_VMATH_INLINE vf mills(vf u, vf m, vf k)
{
    vi i = v_index32(v_add(u, v_set1(2.0f)));
    vf t = v_sub(u, v_lookup32(mills_table[MILLS_MID], i));
    vf y = v_lookup32(mills_table[MILLS_C1 + 4], i);
    for (int c = MILLS_C1 + 3; c >= MILLS_C1; c--)
        y = v_fmadd(y, t, v_lookup32(mills_table[c], i));
    y = v_fmadd(y, t, v_lookup32(mills_table[MILLS_LO], i));
    y = v_fmadd(k, u, y);
    return v_fmadd(m, v_lookup32(mills_table[MILLS_HI], i), v_mul(m, y));
}
#else
/* Without a cheap 32-entry lookup (AVX2: a gather made gelu 2.7x slower on Zen 4), S is one
 * rational function of degree 4 / 5 on [0, 20] (1.2e-8 relative), evaluated in double
 * together with m and k and rounded once (v_ratio_f64): within a few tenths of an ulp of the
 * table's results, not bitwise equal to them. */
static const double mills_p[] = {0.004415124992963004, 0.04261940347753859, 0.18908130637797896,
                                 0.4461089879884048, 0.5000000050396503};
static const double mills_q[] = {0.011067011943397426, 0.10683511248083405, 0.4849152209779136,
                                 1.2266625424600925, 1.6901032110082774, 1.0};

DG_VMATH_INLINE vf mills(vf u, vf m, vf k)
{
    return v_ratio_f64(u, m, k, mills_p, 5, mills_q, 6);
}
#endif

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
