/*
 * Elementwise kernel throughput (src/ops/simd/vmath.h) on the path dg__isa() picks (set
 * DG_ISA=avx2|generic to measure another). For each activation, forward and backward, at 64K
 * floats (in cache) and 16M floats (memory), on 1 and 2 threads, split the way the ops split
 * arrays (one contiguous chunk per thread, `omp parallel for` over chunks):
 *   ours          the dispatched kernel
 *   bare          a loop over only the vector math call(s) the kernel needs (vmath_bare.h)
 *   scalar        a plain loop over glibc's scalar float functions
 * and ours/bare, ours/scalar. relu, add, mul at 16M are compared with memcpy in GB/s (bytes
 * read + written). Every figure is the median of 7 repetitions. Output: `name value unit`.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simd/vmath.h"
#include "simd/vmath_bare.h"

#include "bench_util.h"

enum { REPS = 7, SMALL = 1 << 16, LARGE = 1 << 24 };

/* ---- scalar libm loops (what a plain C implementation would do) ---------------------- */

static void s_exp(const float *x, float *o, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = expf(x[i]); }
static void s_log(const float *x, float *o, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = logf(x[i]); }
static void s_sqrt(const float *x, float *o, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = sqrtf(x[i]); }
static void s_tanh(const float *x, float *o, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = tanhf(x[i]); }
static void s_sigmoid(const float *x, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void s_gelu(const float *x, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}
static void s_softplus(const float *x, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
}
static void s_relu(const float *x, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void s_relu_grad(const float *x, const float *g, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = x[i] > 0.0f ? g[i] : 0.0f;
}
static void s_sigmoid_grad(const float *y, const float *g, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = g[i] * y[i] * (1.0f - y[i]);
}
static void s_tanh_grad(const float *y, const float *g, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = g[i] * (1.0f - y[i] * y[i]);
}
static void s_gelu_grad(const float *x, const float *g, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        o[i] = g[i] * (cdf + x[i] * 0.398942280f * expf(-0.5f * x[i] * x[i]));
    }
}
static void s_softplus_grad(const float *x, const float *g, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = g[i] / (1.0f + expf(-x[i]));
}
static void s_add(const float *a, const float *b, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] + b[i];
}
static void s_mul(const float *a, const float *b, float *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] * b[i];
}

/* ---- timing -------------------------------------------------------------------------- */

/* One call over n elements: unary when f1 is set, else binary. */
struct job {
    dg_vmath_unary_fn f1;
    dg_vmath_binary_fn f2;
    const float *a, *b;
    float *out;
};

/* Runs the job over n elements split into one contiguous chunk per thread (chunk starts
 * rounded to 16 floats, as the ops do), `inner` times, and returns seconds per pass. */
static double time_pass(const struct job *j, int64_t n, int threads, int inner)
{
    double t0 = dg_bench_seconds();
    for (int r = 0; r < inner; r++) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int c = 0; c < threads; c++) {
            int64_t per = ((n / threads) + 15) & ~(int64_t)15;
            int64_t lo = per * c, hi = lo + per < n ? lo + per : n;
            if (lo >= hi)
                continue;
            if (j->f1)
                j->f1(j->a + lo, j->out + lo, hi - lo);
            else
                j->f2(j->a + lo, j->b + lo, j->out + lo, hi - lo);
        }
    }
    return (dg_bench_seconds() - t0) / inner;
}

/* Median seconds per pass over REPS repetitions, each long enough (~20 ms) to time. */
static double median_pass(const struct job *j, int64_t n, int threads)
{
    int inner = 1;
    double once = time_pass(j, n, threads, 1); /* also warms caches and threads */
    if (once < 0.02)
        inner = (int)(0.02 / (once > 1e-7 ? once : 1e-7)) + 1;
    double t[REPS];
    for (int r = 0; r < REPS; r++)
        t[r] = time_pass(j, n, threads, inner);
    qsort(t, REPS, sizeof t[0], dg_bench_compare_double);
    return t[REPS / 2];
}

/* ---- the kernels measured ------------------------------------------------------------ */

struct entry {
    const char *name;
    dg_vmath_unary_fn ours1, scalar1;
    dg_vmath_binary_fn ours2, scalar2;
    const char *bare_name;
    dg_vmath_unary_fn bare1;
    dg_vmath_binary_fn bare2;
    float lo, hi; /* input range of the first operand */
};

static void fill(float *x, int64_t n, float lo, float hi, unsigned seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

static void run_entry(const struct entry *e, float *a, float *b, float *out, const char *isa)
{
    static const int64_t sizes[2] = {SMALL, LARGE};
    static const char *const size_names[2] = {"64K", "16M"};
    fill(a, LARGE, e->lo, e->hi, 1);
    for (int s = 0; s < 2; s++) {
        for (int threads = 1; threads <= 2; threads++) {
            int64_t n = sizes[s];
            struct job ours = {e->ours1, e->ours2, a, b, out};
            struct job scalar = {e->scalar1, e->scalar2, a, b, out};
            struct job bare = {e->bare1, e->bare2, a, b, out};
            double g_ours = (double)n / median_pass(&ours, n, threads) / 1e9;
            double g_scalar = (double)n / median_pass(&scalar, n, threads) / 1e9;
            char prefix[96];
            snprintf(prefix, sizeof prefix, "vmath.%s.%s.%s.t%d", isa, e->name, size_names[s], threads);
            printf("%s.ours %.3f Gelem/s\n", prefix, g_ours);
            if (e->bare1 || e->bare2) {
                double g_bare = (double)n / median_pass(&bare, n, threads) / 1e9;
                printf("%s.bare_%s %.3f Gelem/s\n", prefix, e->bare_name, g_bare);
                printf("%s.ours_over_bare %.2f x\n", prefix, g_ours / g_bare);
            }
            printf("%s.scalar %.3f Gelem/s\n", prefix, g_scalar);
            printf("%s.ours_over_scalar %.2f x\n", prefix, g_ours / g_scalar);
            fflush(stdout);
        }
    }
}

/* relu, add and mul on 16M floats against memcpy, in GB/s of bytes read + written. */
static void run_bandwidth(const struct dg_vmath *vm, float *a, float *b, float *out, const char *isa)
{
    fill(a, LARGE, -1.0f, 1.0f, 1);
    for (int threads = 1; threads <= 2; threads++) {
        double t_copy[REPS];
        for (int r = 0; r < REPS; r++) {
            double t0 = dg_bench_seconds();
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int c = 0; c < threads; c++) {
                int64_t per = LARGE / threads;
                memcpy(out + per * c, a + per * c, sizeof(float) * (size_t)per);
            }
            t_copy[r] = dg_bench_seconds() - t0;
        }
        qsort(t_copy, REPS, sizeof t_copy[0], dg_bench_compare_double);
        double copy = 8.0 * LARGE / t_copy[REPS / 2] / 1e9;
        printf("vmath.memcpy.16M.t%d %.2f GB/s\n", threads, copy);
        struct {
            const char *name;
            struct job j;
            double bytes;
        } k[3] = {
            {"relu", {vm->relu, NULL, a, b, out}, 8.0},
            {"add", {NULL, vm->add, a, b, out}, 12.0},
            {"mul", {NULL, vm->mul, a, b, out}, 12.0},
        };
        for (int i = 0; i < 3; i++) {
            double gbs = k[i].bytes * LARGE / median_pass(&k[i].j, LARGE, threads) / 1e9;
            printf("vmath.%s.%s.16M.t%d %.2f GB/s\n", isa, k[i].name, threads, gbs);
            printf("vmath.%s.%s.16M.t%d.over_copy %.2f x\n", isa, k[i].name, threads, gbs / copy);
        }
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL; /* optional: one kernel name */
    enum dg_isa isa = dg__isa();
    const struct dg_vmath *vm = dg__vmath();
    const struct dg_vmath_bare *bare = dg__vmath_bare(isa);
    static const struct dg_vmath_bare none;
    if (bare == NULL)
        bare = &none;
    float *a = malloc(sizeof(float) * LARGE);
    float *b = malloc(sizeof(float) * LARGE);
    float *out = malloc(sizeof(float) * LARGE);
    if (!a || !b || !out) {
        fprintf(stderr, "bench_vmath: out of memory\n");
        return 1;
    }
    fill(b, LARGE, -2.0f, 2.0f, 2); /* the gradient operand */
    memset(out, 0, sizeof(float) * LARGE);

    const struct entry entries[] = {
        {"exp", vm->exp, s_exp, NULL, NULL, "exp", bare->exp, NULL, -20.0f, 20.0f},
        {"log", vm->log, s_log, NULL, NULL, "log", bare->log, NULL, 1e-3f, 100.0f},
        {"sqrt", vm->sqrt, s_sqrt, NULL, NULL, "sqrt", bare->sqrt, NULL, 0.0f, 100.0f},
        {"tanh", vm->tanh, s_tanh, NULL, NULL, "tanh", bare->tanh, NULL, -8.0f, 8.0f},
        {"sigmoid", vm->sigmoid, s_sigmoid, NULL, NULL, "exp", bare->exp, NULL, -8.0f, 8.0f},
        {"gelu", vm->gelu, s_gelu, NULL, NULL, "erfc", bare->erfc, NULL, -8.0f, 8.0f},
        {"softplus", vm->softplus, s_softplus, NULL, NULL, "exp_log1p", bare->exp_log1p, NULL, -8.0f, 8.0f},
        {"relu", vm->relu, s_relu, NULL, NULL, "", NULL, NULL, -8.0f, 8.0f},
        {"relu_grad", NULL, NULL, vm->relu_grad, s_relu_grad, "mul", NULL, bare->mul, -8.0f, 8.0f},
        {"sigmoid_grad", NULL, NULL, vm->sigmoid_grad, s_sigmoid_grad, "mul", NULL, bare->mul, 0.0f, 1.0f},
        {"tanh_grad", NULL, NULL, vm->tanh_grad, s_tanh_grad, "mul", NULL, bare->mul, -1.0f, 1.0f},
        {"gelu_grad", NULL, NULL, vm->gelu_grad, s_gelu_grad, "erfc_exp", NULL, bare->erfc_exp, -8.0f, 8.0f},
        {"softplus_grad", NULL, NULL, vm->softplus_grad, s_softplus_grad, "exp", bare->exp, NULL, -8.0f, 8.0f},
        {"add", NULL, NULL, vm->add, s_add, "mul", NULL, bare->mul, -8.0f, 8.0f},
        {"mul", NULL, NULL, vm->mul, s_mul, "mul", NULL, bare->mul, -8.0f, 8.0f},
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        if (only && strcmp(only, entries[i].name) != 0)
            continue;
        /* a bare unary loop for a backward kernel runs over the first operand alone */
        struct entry e = entries[i];
        if (e.ours2 && e.bare1) {
            e.bare2 = NULL;
        }
        run_entry(&e, a, b, out, vm->isa_name);
    }
    if (!only || strcmp(only, "bandwidth") == 0)
        run_bandwidth(vm, a, b, out, vm->isa_name);
    free(a);
    free(b);
    free(out);
    return 0;
}
