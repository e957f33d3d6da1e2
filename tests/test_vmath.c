/*
 * Vectorised elementwise kernels (src/ops/simd/vmath.h), on every ISA path this CPU runs:
 * - accuracy: max error in ulps against double-precision libm over ~1.3M points per function
 *   (a linear sweep of the interesting range plus log-spaced magnitudes), within the bound
 *   documented in docs/kernels.md;
 * - special values: infinities, NaN, saturation, log(0), sigmoid/softplus/gelu far out;
 * - tails: for n = 0..40 (and an unaligned start) every element equals, bit for bit, what
 *   the same element gives inside a long array, memory past n is untouched, and in-place
 *   calls agree. That is what makes results independent of how threads chunk an array.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "simd/dropout_hash.h"
#include "dg_config.h"
#include "simd/norm_rows.h"
#include "simd/vmath.h"
#include "test_util.h"

/* ---- references (double precision, from the float inputs) --------------------------- */

static double ref_exp(double x) { return exp(x); }
static double ref_log(double x) { return log(x); }
static double ref_sqrt(double x) { return sqrt(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static double ref_gelu(double x) { return x < -20 ? -0.0 : 0.5 * x * erfc(-x * M_SQRT1_2); }
static double ref_softplus(double x) { return x > 20 ? x : log1p(exp(x)); }
static double ref_relu(double x) { return x > 0 ? x : 0.0; }

static double ref_relu_grad(double x, double g) { return x > 0 ? g : 0.0; }
static double ref_sigmoid_grad(double y, double g) { return g * y * (1.0 - y); }
static double ref_tanh_grad(double y, double g) { return g * (1.0 - y * y); }
static double ref_gelu_grad(double x, double g)
{
    return g * (0.5 * erfc(-x * M_SQRT1_2) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI));
}
static double ref_softplus_grad(double x, double g) { return g * ref_sigmoid(x); }
static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }

/* |got - ref| in units of the float ulp at max(|ref|, floor); 0 when both are the same
 * infinity or both NaN, 1e9 for a NaN/infinity mismatch. Subnormal results count in units
 * of the smallest subnormal, 2^-149. A floor > 0 is for functions with a zero crossing
 * inside the range (gelu' at x = -0.75), where relative error is meaningless. */
static double ulp_error(float got, double ref, double floor)
{
    if (isnan(ref) || isnan(got))
        return (isnan(ref) && isnan(got)) ? 0.0 : 1e9;
    if (isinf((float)ref) && got == (float)ref)
        return 0.0;
    if (isinf(got))
        return 1e9;
    double scale = fmax(fabs(ref), floor);
    if (scale > FLT_MAX)
        scale = FLT_MAX;
    double ulp = scale < FLT_MIN ? ldexp(1.0, -149) : ldexp(1.0, ilogb(scale) - 23);
    return fabs((double)got - ref) / ulp;
}

/* ---- the function table, one row per kernel --------------------------------------- */

struct range {
    float lo, hi;
};

struct unary_row {
    const char *name;
    size_t offset; /* of the dg_vmath_unary_fn in struct dg_vmath */
    double (*ref)(double);
    struct range x;
    double floor;
    double bound[DG_ISA_COUNT]; /* max ulp, as documented in docs/kernels.md */
};

struct binary_row {
    const char *name;
    size_t offset;
    double (*ref)(double, double);
    struct range a, b;
    double floor;
    double bound[DG_ISA_COUNT];
};

#define UNARY(f) #f, offsetof(struct dg_vmath, f), ref_##f
#define BINARY(f) #f, offsetof(struct dg_vmath, f), ref_##f

/*                                          range            floor  generic avx2 avx512 */
static const struct unary_row unary_rows[] = {
    {UNARY(exp), {-104.0f, 89.0f}, 0.0, {1.0, 1.0, 1.0}},
    {UNARY(log), {0.0f, 1e30f}, 0.0, {1.0, 1.0, 1.0}},
    {UNARY(sqrt), {0.0f, 1e30f}, 0.0, {0.5, 0.5, 0.5}},
    {UNARY(tanh), {-12.0f, 12.0f}, 0.0, {0.6, 3.0, 3.0}},
    {UNARY(sigmoid), {-104.0f, 30.0f}, 0.0, {0.6, 2.5, 2.5}},
    {UNARY(gelu), {-13.0f, 12.0f}, 0.0, {0.6, 3.5, 3.5}},
    {UNARY(softplus), {-104.0f, 40.0f}, 0.0, {0.6, 2.5, 2.5}},
    {UNARY(relu), {-10.0f, 10.0f}, 0.0, {0.0, 0.0, 0.0}},
};

static const struct binary_row binary_rows[] = {
    {BINARY(relu_grad), {-10.0f, 10.0f}, {-2.0f, 2.0f}, 0.0, {0.0, 0.0, 0.0}},
    {BINARY(sigmoid_grad), {0.0f, 1.0f}, {-2.0f, 2.0f}, 0.0, {0.6, 2.0, 2.0}},
    {BINARY(tanh_grad), {-1.0f, 1.0f}, {-2.0f, 2.0f}, 0.0, {0.6, 1.5, 1.5}},
    {BINARY(gelu_grad), {-13.0f, 12.0f}, {-2.0f, 2.0f}, 0.25, {0.6, 3.5, 3.5}},
    {BINARY(softplus_grad), {-104.0f, 40.0f}, {-2.0f, 2.0f}, 0.0, {0.6, 3.5, 3.5}},
    {BINARY(add), {-1e3f, 1e3f}, {-1e3f, 1e3f}, 0.0, {0.5, 0.5, 0.5}},
    {BINARY(sub), {-1e3f, 1e3f}, {-1e3f, 1e3f}, 0.0, {0.5, 0.5, 0.5}},
    {BINARY(mul), {-1e3f, 1e3f}, {-1e3f, 1e3f}, 0.0, {0.5, 0.5, 0.5}},
    {BINARY(div), {-1e3f, 1e3f}, {-1e3f, 1e3f}, 0.0, {0.5, 0.5, 0.5}},
};

#define N_UNARY ((int)(sizeof unary_rows / sizeof unary_rows[0]))
#define N_BINARY ((int)(sizeof binary_rows / sizeof binary_rows[0]))

static dg_vmath_unary_fn unary_fn(const struct dg_vmath *vm, size_t offset)
{
    dg_vmath_unary_fn f;
    memcpy(&f, (const char *)vm + offset, sizeof f);
    return f;
}

static dg_vmath_binary_fn binary_fn(const struct dg_vmath *vm, size_t offset)
{
    dg_vmath_binary_fn f;
    memcpy(&f, (const char *)vm + offset, sizeof f);
    return f;
}

/* ---- sweep points ------------------------------------------------------------------ */

enum { N_LINEAR = 1 << 20, N_LOG = 1 << 18, N_SWEEP = N_LINEAR + N_LOG };

/* A linear grid over [lo, hi], then magnitudes 2^u (u uniform) of both signs clipped to the
 * range, which probes the small arguments a linear grid never reaches. */
static void fill_sweep(float *x, struct range r, uint64_t seed)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    for (int i = 0; i < N_LINEAR; i++)
        x[i] = (float)(r.lo + ((double)r.hi - r.lo) * i / (N_LINEAR - 1));
    double top = log2(fmax(fabs(r.lo), fabs(r.hi)));
    for (int i = N_LINEAR; i < N_SWEEP; i++) {
        double mag = exp2(dg_test_uniform(&rng, -60.0f, (float)top));
        double v = (dg_test_rng_next(&rng) & 1) ? -mag : mag;
        x[i] = (float)fmin(fmax(v, r.lo), r.hi);
    }
}

static enum dg_isa isa_of(int i) { return (enum dg_isa)i; }

START_TEST(test_unary_accuracy)
{
    const struct unary_row *row = &unary_rows[_i];
    float *x = malloc(sizeof(float) * N_SWEEP);
    float *y = malloc(sizeof(float) * N_SWEEP);
    double *ref = malloc(sizeof(double) * N_SWEEP);
    ck_assert(x && y && ref);
    fill_sweep(x, row->x, 1000 + (uint64_t)_i);
    for (int i = 0; i < N_SWEEP; i++)
        ref[i] = row->ref(x[i]);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        unary_fn(dg__vmath_isa(isa_of(isa)), row->offset)(x, y, N_SWEEP);
        double worst = 0.0;
        float worst_x = 0.0f;
        for (int i = 0; i < N_SWEEP; i++) {
            double e = ulp_error(y[i], ref[i], row->floor);
            if (e > worst) {
                worst = e;
                worst_x = x[i];
            }
        }
        printf("vmath %-8s %-14s max %.3f ulp (bound %.1f) at x = %.9g\n",
               dg__isa_name(isa_of(isa)), row->name, worst, row->bound[isa], worst_x);
        ck_assert_msg(worst <= row->bound[isa], "%s/%s: %.3f ulp at x = %.9g > bound %.1f",
                      dg__isa_name(isa_of(isa)), row->name, worst, worst_x, row->bound[isa]);
    }
    free(x);
    free(y);
    free(ref);
}
END_TEST

START_TEST(test_binary_accuracy)
{
    const struct binary_row *row = &binary_rows[_i];
    float *a = malloc(sizeof(float) * N_SWEEP);
    float *b = malloc(sizeof(float) * N_SWEEP);
    float *y = malloc(sizeof(float) * N_SWEEP);
    double *ref = malloc(sizeof(double) * N_SWEEP);
    ck_assert(a && b && y && ref);
    fill_sweep(a, row->a, 2000 + (uint64_t)_i);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3000 + (uint64_t)_i);
    dg_test_fill_uniform(&rng, b, N_SWEEP, row->b.lo, row->b.hi);
    for (int i = 0; i < N_SWEEP; i++)
        ref[i] = row->ref(a[i], b[i]);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        binary_fn(dg__vmath_isa(isa_of(isa)), row->offset)(a, b, y, N_SWEEP);
        double worst = 0.0;
        int at = 0;
        for (int i = 0; i < N_SWEEP; i++) {
            /* the floor scales with |grad|: the derivative factor is what is being measured */
            double e = ulp_error(y[i], ref[i], row->floor * fabs(b[i]));
            if (e > worst) {
                worst = e;
                at = i;
            }
        }
        printf("vmath %-8s %-14s max %.3f ulp (bound %.1f) at (%.9g, %.9g)\n",
               dg__isa_name(isa_of(isa)), row->name, worst, row->bound[isa], a[at], b[at]);
        ck_assert_msg(worst <= row->bound[isa], "%s/%s: %.3f ulp at (%.9g, %.9g) > bound %.1f",
                      dg__isa_name(isa_of(isa)), row->name, worst, a[at], b[at], row->bound[isa]);
    }
    free(a);
    free(b);
    free(y);
    free(ref);
}
END_TEST

/* ---- special values ----------------------------------------------------------------- */

struct special {
    size_t offset;
    float x, grad; /* grad only for backward kernels */
    float want;    /* NAN: want NaN */
    float tol;     /* absolute */
};

#define U(f) offsetof(struct dg_vmath, f)

static const struct special unary_specials[] = {
    {U(exp), -INFINITY, 0, 0.0f, 0}, {U(exp), INFINITY, 0, INFINITY, 0},
    {U(exp), NAN, 0, NAN, 0}, {U(exp), 0.0f, 0, 1.0f, 0}, {U(exp), 100.0f, 0, INFINITY, 0},
    {U(exp), -110.0f, 0, 0.0f, 0},
    {U(log), 0.0f, 0, -INFINITY, 0}, {U(log), -0.0f, 0, -INFINITY, 0},
    {U(log), -1.0f, 0, NAN, 0}, {U(log), -INFINITY, 0, NAN, 0}, {U(log), INFINITY, 0, INFINITY, 0},
    {U(log), 1.0f, 0, 0.0f, 0}, {U(log), NAN, 0, NAN, 0},
    {U(sqrt), -1.0f, 0, NAN, 0}, {U(sqrt), 0.0f, 0, 0.0f, 0}, {U(sqrt), INFINITY, 0, INFINITY, 0},
    {U(tanh), INFINITY, 0, 1.0f, 0}, {U(tanh), -INFINITY, 0, -1.0f, 0},
    {U(tanh), 20.0f, 0, 1.0f, 0}, {U(tanh), -90.0f, 0, -1.0f, 0}, {U(tanh), NAN, 0, NAN, 0},
    {U(sigmoid), -100.0f, 0, 3.7200759e-44f, 1e-45f}, {U(sigmoid), 100.0f, 0, 1.0f, 0},
    {U(sigmoid), -1000.0f, 0, 0.0f, 0}, {U(sigmoid), 1000.0f, 0, 1.0f, 0},
    {U(sigmoid), -INFINITY, 0, 0.0f, 0}, {U(sigmoid), INFINITY, 0, 1.0f, 0},
    {U(sigmoid), NAN, 0, NAN, 0}, {U(sigmoid), 0.0f, 0, 0.5f, 0},
    {U(gelu), -INFINITY, 0, 0.0f, 0}, {U(gelu), INFINITY, 0, INFINITY, 0},
    {U(gelu), -100.0f, 0, 0.0f, 0}, {U(gelu), 100.0f, 0, 100.0f, 0}, {U(gelu), NAN, 0, NAN, 0},
    {U(gelu), 0.0f, 0, 0.0f, 0}, {U(gelu), 1.0f, 0, 0.841344746f, 1e-7f},
    {U(gelu), -5.0f, 0, -1.43325786e-6f, 1e-12f},
    {U(softplus), 100.0f, 0, 100.0f, 0}, {U(softplus), 21.0f, 0, 21.0f, 0},
    {U(softplus), -100.0f, 0, 3.7200759e-44f, 1e-45f}, {U(softplus), -INFINITY, 0, 0.0f, 0},
    {U(softplus), INFINITY, 0, INFINITY, 0}, {U(softplus), NAN, 0, NAN, 0},
    {U(softplus), 0.0f, 0, 0.693147181f, 1e-7f},
    {U(relu), NAN, 0, NAN, 0}, {U(relu), -1.0f, 0, 0.0f, 0}, {U(relu), INFINITY, 0, INFINITY, 0},
    {U(relu), -INFINITY, 0, 0.0f, 0}, {U(relu), 2.5f, 0, 2.5f, 0},
};

static const struct special binary_specials[] = {
    {U(relu_grad), 0.0f, 3.0f, 0.0f, 0}, {U(relu_grad), -1.0f, INFINITY, 0.0f, 0},
    {U(relu_grad), 1e-30f, 3.0f, 3.0f, 0},
    {U(sigmoid_grad), 0.0f, 1.0f, 0.0f, 0}, {U(sigmoid_grad), 1.0f, 1.0f, 0.0f, 0},
    {U(sigmoid_grad), 0.5f, 2.0f, 0.5f, 0},
    {U(tanh_grad), 1.0f, 5.0f, 0.0f, 0}, {U(tanh_grad), -1.0f, 5.0f, 0.0f, 0},
    {U(tanh_grad), 0.0f, 5.0f, 5.0f, 0},
    {U(gelu_grad), INFINITY, 2.0f, 2.0f, 0}, {U(gelu_grad), -INFINITY, 2.0f, 0.0f, 0},
    {U(gelu_grad), 100.0f, 2.0f, 2.0f, 0}, {U(gelu_grad), -100.0f, 2.0f, 0.0f, 0},
    {U(gelu_grad), NAN, 1.0f, NAN, 0}, {U(gelu_grad), 0.0f, 1.0f, 0.5f, 0},
    {U(softplus_grad), 100.0f, 3.0f, 3.0f, 0}, {U(softplus_grad), -100.0f, 3.0f, 0.0f, 1e-40f},
    {U(softplus_grad), INFINITY, 3.0f, 3.0f, 0}, {U(softplus_grad), -INFINITY, 3.0f, 0.0f, 0},
    {U(softplus_grad), 0.0f, 3.0f, 1.5f, 0},
    {U(div), 1.0f, 0.0f, INFINITY, 0}, {U(div), 0.0f, 0.0f, NAN, 0},
};

static void check_special(const char *isa, const char *kind, int index, float got,
                          const struct special *s)
{
    if (isnan(s->want)) {
        ck_assert_msg(isnan(got), "%s %s special #%d: x = %g gave %g, want NaN", isa, kind,
                      index, (double)s->x, (double)got);
    } else if (isinf(s->want)) {
        ck_assert_msg(got == s->want, "%s %s special #%d: x = %g gave %g, want %g", isa, kind,
                      index, (double)s->x, (double)got, (double)s->want);
    } else {
        ck_assert_msg(fabsf(got - s->want) <= s->tol, "%s %s special #%d: x = %g gave %.9g, want %.9g",
                      isa, kind, index, (double)s->x, (double)got, (double)s->want);
    }
}

START_TEST(test_special_values)
{
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        const struct dg_vmath *vm = dg__vmath_isa(isa_of(isa));
        const char *name = dg__isa_name(isa_of(isa));
        ck_assert_str_eq(vm->isa_name, name);
        for (int i = 0; i < (int)(sizeof unary_specials / sizeof unary_specials[0]); i++) {
            const struct special *s = &unary_specials[i];
            /* alone (the masked tail) and as lane 5 of a full vector */
            float in[17], out[17];
            for (int k = 0; k < 17; k++)
                in[k] = 0.25f * (float)k;
            in[5] = s->x;
            float one;
            unary_fn(vm, s->offset)(&s->x, &one, 1);
            unary_fn(vm, s->offset)(in, out, 17);
            check_special(name, "unary", i, one, s);
            check_special(name, "unary", i, out[5], s);
        }
        for (int i = 0; i < (int)(sizeof binary_specials / sizeof binary_specials[0]); i++) {
            const struct special *s = &binary_specials[i];
            float one;
            binary_fn(vm, s->offset)(&s->x, &s->grad, &one, 1);
            check_special(name, "binary", i, one, s);
        }
    }
}
END_TEST

/* ---- tails --------------------------------------------------------------------------- */

enum { TAIL_MAX = 40, TAIL_LONG = 256, TAIL_OFFSET = 3 };

/* Data for the tail tests: ordinary values with special ones mixed in. */
static void fill_tail_data(float *x, int n, uint64_t seed)
{
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -30.0f,
                                     25.0f, -100.0f, 1.0f};
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++)
        x[i] = (i % 7 == 3) ? specials[(i / 7) % 10] : dg_test_uniform(&rng, -8.0f, 8.0f);
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

START_TEST(test_tails_bitwise)
{
    float a[TAIL_LONG], b[TAIL_LONG], bulk[TAIL_LONG], out[TAIL_LONG], inplace[TAIL_LONG];
    fill_tail_data(a, TAIL_LONG, 11);
    fill_tail_data(b, TAIL_LONG, 12);
    const float sentinel = -12345.0f;
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        const struct dg_vmath *vm = dg__vmath_isa(isa_of(isa));
        const char *name = dg__isa_name(isa_of(isa));
        for (int r = 0; r < N_UNARY + N_BINARY; r++) {
            int unary = r < N_UNARY;
            const char *fname = unary ? unary_rows[r].name : binary_rows[r - N_UNARY].name;
            size_t offset = unary ? unary_rows[r].offset : binary_rows[r - N_UNARY].offset;
            if (unary)
                unary_fn(vm, offset)(a, bulk, TAIL_LONG);
            else
                binary_fn(vm, offset)(a, b, bulk, TAIL_LONG);
            for (int n = 0; n <= TAIL_MAX; n++) {
                for (int start = 0; start <= TAIL_OFFSET; start += TAIL_OFFSET) {
                    for (int i = 0; i < TAIL_LONG; i++)
                        out[i] = sentinel;
                    memcpy(inplace, a, sizeof inplace);
                    if (unary) {
                        unary_fn(vm, offset)(a + start, out + start, n);
                        unary_fn(vm, offset)(inplace + start, inplace + start, n);
                    } else {
                        binary_fn(vm, offset)(a + start, b + start, out + start, n);
                        binary_fn(vm, offset)(inplace + start, b + start, inplace + start, n);
                    }
                    for (int i = 0; i < TAIL_LONG; i++) {
                        int inside = i >= start && i < start + n;
                        float want = inside ? bulk[i] : sentinel;
                        ck_assert_msg(same_bits(out[i], want),
                                      "%s/%s n=%d start=%d: element %d is %.9g, bulk gives %.9g",
                                      name, fname, n, start, i, (double)out[i], (double)want);
                        if (inside)
                            ck_assert_msg(same_bits(inplace[i], bulk[i]),
                                          "%s/%s in place n=%d: element %d differs", name,
                                          fname, n, i);
                    }
                }
            }
        }
    }
}
END_TEST

START_TEST(test_dispatch)
{
    const struct dg_vmath *vm = dg__vmath();
    ck_assert_ptr_nonnull(vm);
    ck_assert_str_eq(vm->isa_name, dg__isa_name(dg__isa()));
    /* a request above the CPU falls back to what it runs */
    ck_assert_str_eq(dg__vmath_isa(DG_ISA_AVX512)->isa_name, dg__isa_name(dg__isa_supported()));
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        const struct dg_vmath *t = dg__vmath_isa(isa_of(isa));
        for (int r = 0; r < N_UNARY; r++)
            ck_assert_ptr_nonnull(unary_fn(t, unary_rows[r].offset));
        for (int r = 0; r < N_BINARY; r++)
            ck_assert_ptr_nonnull(binary_fn(t, binary_rows[r].offset));
    }
}
END_TEST

/* The dropout kernel of every path draws exactly the mask of the scalar hash, at any start
 * and length (vector body and tail alike), scaling x or writing the factor itself. */
START_TEST(test_dropout_mask_bitwise)
{
    enum { N = 300 };
    float x[N], want[N], got[N];
    fill_tail_data(x, N, 21);
    const uint64_t base = 0x1234567890abcdefull;
    const uint32_t threshold = (uint32_t)(0.3 * 16777216.0);
    const float scale = 1.0f / 0.7f;
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        const struct dg_vmath *vm = dg__vmath_isa(isa_of(isa));
        ck_assert_ptr_nonnull(vm->dropout);
        for (int start = 0; start < 40; start += 13)
            for (int n = 0; n <= N - start; n += (n < 40 ? 1 : 97)) {
                int kept = 0;
                for (int with_x = 0; with_x <= 1; with_x++) {
                    const float *in = with_x ? x + start : NULL;
                    dg__dropout_scalar(base, 1000 + start, threshold, scale, in, want, n);
                    vm->dropout(base, 1000 + start, threshold, scale, in, got, n);
                    for (int i = 0; i < n; i++) {
                        ck_assert_msg(same_bits(got[i], want[i]), "%s dropout start %d n %d: "
                                      "element %d is %g, the scalar hash gives %g",
                                      dg__isa_name(isa_of(isa)), start, n, i, (double)got[i],
                                      (double)want[i]);
                        kept += !with_x && got[i] != 0.0f;
                    }
                }
                if (n == N - start) /* about 70% kept */
                    ck_assert_msg(kept > n / 2 && kept < n * 9 / 10, "kept %d of %d", kept, n);
            }
    }
}
END_TEST

/* Layer norm's row kernels (simd/norm_rows.h): the AVX-512 path gives the portable path's
 * bits (statistics, dx, the forward row, gamma's row sum), for row lengths around every lane and block boundary, with and
 * without gamma, on offset rows too. */
START_TEST(test_norm_rows_paths_agree)
{
#if DG_X86_64
    if (dg__isa_supported() < DG_ISA_AVX512)
        return;
    const int64_t lengths[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 128, 129, 200, 1023, 1024,
                               1025, 2100};
    enum { MAX_N = 2100 };
    float *x = malloc(sizeof(float) * MAX_N), *g = malloc(sizeof(float) * MAX_N);
    float *gamma = malloc(sizeof(float) * MAX_N);
    float *dx_generic = malloc(sizeof(float) * MAX_N), *dx_avx = malloc(sizeof(float) * MAX_N);
    ck_assert(x && g && gamma && dx_generic && dx_avx);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 77);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li];
        for (int variant = 0; variant < 2; variant++) {
            const float offset = variant ? 90.0f : 0.0f;
            dg_test_fill_uniform(&rng, x, n, offset - 2.0f, offset + 3.0f);
            dg_test_fill_uniform(&rng, g, n, -1.0f, 1.0f);
            dg_test_fill_uniform(&rng, gamma, n, 0.5f, 1.5f);
            double m1, r1, m2, r2;
            dg__norm_rows_generic.stats(x, n, 1e-5f, &m1, &r1);
            dg__norm_rows_avx512.stats(x, n, 1e-5f, &m2, &r2);
            ck_assert_msg(memcmp(&m1, &m2, sizeof m1) == 0 && memcmp(&r1, &r2, sizeof r1) == 0,
                          "n = %lld: stats differ (%.17g %.17g vs %.17g %.17g)", (long long)n,
                          m1, r1, m2, r2);
            const float *gm = variant ? NULL : gamma;
            dg__norm_rows_generic.dx_row(x, g, gm, n, 1e-5f, dx_generic);
            dg__norm_rows_avx512.dx_row(x, g, gm, n, 1e-5f, dx_avx);
            ck_assert_msg(memcmp(dx_generic, dx_avx, sizeof(float) * (size_t)n) == 0,
                          "n = %lld, gamma %s: dx differs", (long long)n, gm ? "yes" : "no");
            dg__norm_rows_generic.forward_row(x, gm, gm != NULL ? g : NULL, n, 1e-5f, dx_generic);
            dg__norm_rows_avx512.forward_row(x, gm, gm != NULL ? g : NULL, n, 1e-5f, dx_avx);
            ck_assert_msg(memcmp(dx_generic, dx_avx, sizeof(float) * (size_t)n) == 0,
                          "n = %lld, gamma %s: forward differs", (long long)n, gm ? "yes" : "no");
            memcpy(dx_avx, dx_generic, sizeof(float) * (size_t)n); /* the same accumulator */
            dg__norm_rows_generic.gamma_row(x, g, n, 1e-5f, dx_generic);
            dg__norm_rows_avx512.gamma_row(x, g, n, 1e-5f, dx_avx);
            ck_assert_msg(memcmp(dx_generic, dx_avx, sizeof(float) * (size_t)n) == 0,
                          "n = %lld: gamma's row sum differs", (long long)n);
        }
    }
    free(x);
    free(g);
    free(gamma);
    free(dx_generic);
    free(dx_avx);
#endif
}
END_TEST

static Suite *vmath_suite(void)
{
    Suite *s = suite_create("vmath");
    TCase *tc = tcase_create("vmath");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_tails_bitwise);
    tcase_add_test(tc, test_dropout_mask_bitwise);
    tcase_add_test(tc, test_norm_rows_paths_agree);
    tcase_add_loop_test(tc, test_unary_accuracy, 0, N_UNARY);
    tcase_add_loop_test(tc, test_binary_accuracy, 0, N_BINARY);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(vmath_suite()); }
