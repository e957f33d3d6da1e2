/*
 * The built-in SGEMM (src/ops/gemm) against a naive double-accumulating reference, on every
 * ISA path this CPU supports.
 *
 * Tolerance: with one rounding per multiply-add, the float result differs from the exact one
 * by at most about (k + 2) * u * (|alpha| * sum_p |A[i][p]| |B[p][j]| + |beta * C[i][j]|),
 * u = 2^-24 (sum of k terms, then the alpha product and the beta FMA). The check allows
 * (k + 3) * FLT_EPSILON = 2 (k + 3) u times that scale, a factor-2 margin over the worst case
 * that typical errors (~sqrt(k) u) never approach, yet a wrong element, a missing or doubled
 * k term, or a stale beta is orders of magnitude above it.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "test_util.h"

/* One problem: dimensions, layout and scalars. */
struct shape {
    bool transpose_a, transpose_b;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    float alpha, beta;
};

/* Operands for one problem, allocated to the leading dimensions. C is filled with NaN when
 * beta == 0 (it must not be read) and with random values otherwise. */
struct operands {
    float *a, *b, *c, *c_initial;
    int64_t a_size, b_size, c_size;
};

static int64_t rand_range(dg_test_rng *rng, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(dg_test_rng_next(rng) % (uint64_t)(hi - lo + 1));
}

static struct shape make_shape(dg_test_rng *rng, int64_t m, int64_t n, int64_t k, int pad,
                               bool transpose_a, bool transpose_b, float alpha, float beta)
{
    struct shape s = {transpose_a, transpose_b, m, n, k, 0, 0, 0, alpha, beta};
    s.lda = (transpose_a ? m : k) + (pad ? rand_range(rng, 0, pad) : 0);
    s.ldb = (transpose_b ? k : n) + (pad ? rand_range(rng, 0, pad) : 0);
    s.ldc = n + (pad ? rand_range(rng, 0, pad) : 0);
    if (s.lda < 1)
        s.lda = 1;
    if (s.ldb < 1)
        s.ldb = 1;
    return s;
}

static void operands_alloc(const struct shape *s, dg_test_rng *rng, struct operands *op)
{
    op->a_size = (s->transpose_a ? s->k : s->m) * s->lda;
    op->b_size = (s->transpose_b ? s->n : s->k) * s->ldb;
    op->c_size = s->m * s->ldc;
    op->a = malloc(sizeof(float) * (size_t)(op->a_size + 1));
    op->b = malloc(sizeof(float) * (size_t)(op->b_size + 1));
    op->c = malloc(sizeof(float) * (size_t)(op->c_size + 1));
    op->c_initial = malloc(sizeof(float) * (size_t)(op->c_size + 1));
    ck_assert(op->a && op->b && op->c && op->c_initial);
    dg_test_fill_uniform(rng, op->a, op->a_size, -1.0f, 1.0f);
    dg_test_fill_uniform(rng, op->b, op->b_size, -1.0f, 1.0f);
    if (s->beta == 0.0f)
        for (int64_t i = 0; i < op->c_size; i++)
            op->c_initial[i] = NAN;
    else
        dg_test_fill_uniform(rng, op->c_initial, op->c_size, -1.0f, 1.0f);
    memcpy(op->c, op->c_initial, sizeof(float) * (size_t)op->c_size);
}

static void operands_free(struct operands *op)
{
    free(op->a);
    free(op->b);
    free(op->c);
    free(op->c_initial);
}

static float elem_a(const struct shape *s, const float *a, int64_t i, int64_t p)
{
    return s->transpose_a ? a[p * s->lda + i] : a[i * s->lda + p];
}

static float elem_b(const struct shape *s, const float *b, int64_t p, int64_t j)
{
    return s->transpose_b ? b[j * s->ldb + p] : b[p * s->ldb + j];
}

/* Checks c (computed from a, b and c_initial) against the double reference within the
 * tolerance above; also checks that the padding between rows of C was left untouched. */
static void check_result(const struct shape *s, const float *a, const float *b,
                         const float *c_initial, const float *c, const char *what)
{
    const double tol = (double)(s->k + 3) * FLT_EPSILON;
    for (int64_t i = 0; i < s->m; i++) {
        for (int64_t j = 0; j < s->n; j++) {
            double sum = 0.0, scale = 0.0;
            for (int64_t p = 0; p < s->k; p++) {
                double prod = (double)elem_a(s, a, i, p) * (double)elem_b(s, b, p, j);
                sum += prod;
                scale += fabs(prod);
            }
            double want = (double)s->alpha * sum;
            scale *= fabs((double)s->alpha);
            if (s->beta != 0.0f) {
                double c0 = (double)s->beta * (double)c_initial[i * s->ldc + j];
                want += c0;
                scale += fabs(c0);
            }
            double got = (double)c[i * s->ldc + j];
            double err = fabs(got - want);
            if (!(err <= tol * scale + 1e-30))
                ck_abort_msg("%s: %s%s m=%lld n=%lld k=%lld lda=%lld ldb=%lld ldc=%lld "
                             "alpha=%g beta=%g: C[%lld][%lld] = %.9g, want %.9g (err %.3g, "
                             "allowed %.3g)",
                             what, s->transpose_a ? "T" : "N", s->transpose_b ? "T" : "N",
                             (long long)s->m, (long long)s->n, (long long)s->k,
                             (long long)s->lda, (long long)s->ldb, (long long)s->ldc,
                             (double)s->alpha, (double)s->beta, (long long)i, (long long)j,
                             got, want, err, tol * scale);
        }
        for (int64_t j = s->n; j < s->ldc && i * s->ldc + j < s->m * s->ldc; j++) {
            float before = c_initial[i * s->ldc + j], after = c[i * s->ldc + j];
            ck_assert_msg(memcmp(&before, &after, sizeof before) == 0,
                          "%s: padding of C row %lld column %lld was written", what,
                          (long long)i, (long long)j);
        }
    }
}

/* Runs one shape through one ISA path and checks it. */
static void run_checked(enum dg_isa isa, const struct shape *s, dg_test_rng *rng, int threads)
{
    struct operands op;
    operands_alloc(s, rng, &op);
    dg__sgemm_isa(isa, s->transpose_a, s->transpose_b, s->m, s->n, s->k, s->alpha, op.a,
                  s->lda, op.b, s->ldb, s->beta, op.c, s->ldc, threads);
    check_result(s, op.a, op.b, op.c_initial, op.c, dg__isa_name(isa));
    operands_free(&op);
}

static const float alphas[] = {1.0f, -1.5f, 0.25f};
static const float betas[] = {0.0f, 1.0f, -0.5f};

/* Random odd sizes 1..67 (mostly the small direct path), every transpose combination, padded
 * leading dimensions, alpha/beta variety, 1 and 2 threads. */
START_TEST(test_small_random)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 1234);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int trial = 0; trial < 160; trial++) {
            int64_t m = rand_range(&rng, 1, 67), n = rand_range(&rng, 1, 67);
            int64_t k = rand_range(&rng, 1, 67);
            struct shape s = make_shape(&rng, m, n, k, trial % 3 ? 5 : 0, trial & 1,
                                        (trial >> 1) & 1, alphas[trial % 3],
                                        betas[(trial / 3) % 3]);
            run_checked((enum dg_isa)isa, &s, &rng, 1 + trial % 2);
        }
    }
}
END_TEST

/* Sizes that take the packed path with edge tiles in m and n, k across a KC boundary, and an
 * n across an NC boundary. */
START_TEST(test_packed_edges)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 99);
    static const int64_t sizes[][3] = {
        {67, 67, 67}, {13, 1100, 21}, {1, 97, 3001}, {97, 1, 3001}, {25, 33, 600},
        {49, 17, 513}, {130, 31, 257}, {5, 300, 200},
    };
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            for (int t = 0; t < 4; t++) {
                struct shape s = make_shape(&rng, sizes[i][0], sizes[i][1], sizes[i][2], 3,
                                            t & 1, t >> 1, alphas[(i + t) % 3],
                                            betas[(i + (size_t)t) % 3]);
                run_checked((enum dg_isa)isa, &s, &rng, 1 + t % 2);
            }
        }
    }
}
END_TEST

/* 130 x 257 x 300 in all four transpose combinations, beta != 0 and beta == 0. */
START_TEST(test_large_transposes)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int t = 0; t < 4; t++) {
            struct shape s = make_shape(&rng, 130, 257, 300, 7, t & 1, t >> 1, -1.5f,
                                        t % 2 ? 0.0f : 0.75f);
            run_checked((enum dg_isa)isa, &s, &rng, 2);
        }
    }
}
END_TEST

/* m = 1..4 (the small-m direct and dot kernels, taken whatever n and k): n across every
 * column-block boundary of the kernels (16, 32, 64, 128 and 256 columns, and the masked
 * tails between), k from 1 to 1000, every transpose combination, padded leading
 * dimensions, beta 0 with a NaN-filled C, 1 and 2 threads. */
START_TEST(test_small_m)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 4321);
    static const int64_t ns[] = {1,  2,  7,  8,  9,   15,  16,  17,  31,  32,  33,  47,  48, 63,
                                 64, 65, 96, 100, 127, 128, 129, 143, 200, 255, 256, 257, 300};
    static const int64_t ks[] = {1, 2, 3, 15, 16, 17, 31, 33, 100, 255, 256, 257, 784, 1000};
    const int n_ns = (int)(sizeof ns / sizeof ns[0]), n_ks = (int)(sizeof ks / sizeof ks[0]);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int64_t m = 1; m <= 4; m++) {
            for (int t = 0; t < 4; t++) {
                for (int in = 0; in < n_ns; in++) {
                    /* A different k for each n, cycling through the list. */
                    int64_t k = ks[(in * 5 + (int)m * 3 + t) % n_ks];
                    int variant = in + t + (int)m;
                    struct shape s = make_shape(&rng, m, ns[in], k, variant % 2 ? 3 : 0, t & 1,
                                                t >> 1, alphas[variant % 3],
                                                betas[(variant / 3) % 3]);
                    run_checked((enum dg_isa)isa, &s, &rng, 1 + variant % 2);
                }
            }
        }
    }
}
END_TEST

/* Small m, products big enough to be split across threads (along n): checked against the
 * reference with 2 threads. */
START_TEST(test_small_m_large)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 808);
    static const int64_t sizes[][3] = {{1, 1500, 800}, {2, 1100, 1000}, {3, 700, 1300},
                                       {4, 2000, 600}};
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            for (int t = 0; t < 4; t++) {
                struct shape s = make_shape(&rng, sizes[i][0], sizes[i][1], sizes[i][2], 3,
                                            t & 1, t >> 1, alphas[(i + (size_t)t) % 3],
                                            betas[(i + (size_t)t + 1) % 3]);
                run_checked((enum dg_isa)isa, &s, &rng, 2);
            }
        }
    }
}
END_TEST

/* Runs one product of `m` rows on columns [first, first + n) of shared operands whose
 * op(B) has `n_total` columns (C row stride n_total), on a fresh C copied from c_initial. */
static void run_columns(enum dg_isa isa, bool transpose_a, bool transpose_b, int64_t m,
                        int64_t first, int64_t n, int64_t k, int64_t n_total, const float *a,
                        const float *b, float beta, const float *c_initial, float *c)
{
    const int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n_total;
    const float *b_first = transpose_b ? b + first * ldb : b + first;
    memcpy(c, c_initial, sizeof(float) * (size_t)(m * n_total));
    dg__sgemm_isa(isa, transpose_a, transpose_b, m, n, k, 0.75f, a, lda, b_first, ldb, beta,
                  c + first, n_total, 1);
}

/* Determinism across column positions: for m = 1..4, a column of C has the same bits whether
 * it falls in a full vector or a masked tail, and whatever column the product starts at. On
 * identical data, columns [0, n) of an n-column product are compared with the same columns of
 * a 256-column one, and columns [first, first + width) of a product over just those columns
 * with the same columns of the 256-column one. */
START_TEST(test_small_m_column_bits)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 31337);
    enum { N_TOTAL = 256 };
    static const int64_t narrow[] = {1, 5, 17, 33, 48, 70, 130, 200};
    static const int64_t offsets[][2] = {{5, 40}, {16, 33}, {100, 29}, {129, 127}};
    static const int64_t ks[] = {1, 37, 300};
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int64_t m = 1; m <= 4; m++) {
            for (int t = 0; t < 4; t++) {
                for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
                    const int64_t k = ks[ik];
                    const float beta = (t + (int)ik) % 2 ? 0.0f : -0.5f;
                    float *a = malloc(sizeof(float) * (size_t)(m * k));
                    float *b = malloc(sizeof(float) * (size_t)(k * N_TOTAL));
                    float *c0 = malloc(sizeof(float) * (size_t)(m * N_TOTAL));
                    float *wide = malloc(sizeof(float) * (size_t)(m * N_TOTAL));
                    float *part = malloc(sizeof(float) * (size_t)(m * N_TOTAL));
                    ck_assert(a && b && c0 && wide && part);
                    dg_test_fill_uniform(&rng, a, m * k, -1.0f, 1.0f);
                    dg_test_fill_uniform(&rng, b, k * N_TOTAL, -1.0f, 1.0f);
                    for (int64_t i = 0; i < m * N_TOTAL; i++)
                        c0[i] = beta == 0.0f ? NAN : dg_test_uniform(&rng, -1.0f, 1.0f);
                    run_columns((enum dg_isa)isa, t & 1, t >> 1, m, 0, N_TOTAL, k, N_TOTAL, a,
                                b, beta, c0, wide);
                    for (size_t w = 0; w < sizeof narrow / sizeof narrow[0]; w++) {
                        run_columns((enum dg_isa)isa, t & 1, t >> 1, m, 0, narrow[w], k,
                                    N_TOTAL, a, b, beta, c0, part);
                        for (int64_t i = 0; i < m; i++)
                            ck_assert_msg(memcmp(part + i * N_TOTAL, wide + i * N_TOTAL,
                                                 sizeof(float) * (size_t)narrow[w]) == 0,
                                          "%s m=%lld t=%d k=%lld: n=%lld differs from n=%d",
                                          dg__isa_name((enum dg_isa)isa), (long long)m, t,
                                          (long long)k, (long long)narrow[w], N_TOTAL);
                    }
                    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
                        const int64_t first = offsets[o][0], width = offsets[o][1];
                        run_columns((enum dg_isa)isa, t & 1, t >> 1, m, first, width, k,
                                    N_TOTAL, a, b, beta, c0, part);
                        for (int64_t i = 0; i < m; i++)
                            ck_assert_msg(memcmp(part + i * N_TOTAL + first,
                                                 wide + i * N_TOTAL + first,
                                                 sizeof(float) * (size_t)width) == 0,
                                          "%s m=%lld t=%d k=%lld: columns [%lld, %lld) alone "
                                          "differ",
                                          dg__isa_name((enum dg_isa)isa), (long long)m, t,
                                          (long long)k, (long long)first,
                                          (long long)(first + width));
                    }
                    free(a);
                    free(b);
                    free(c0);
                    free(wide);
                    free(part);
                }
            }
        }
    }
}
END_TEST

/* k == 0 gives C = beta*C (zeros when beta == 0, NaNs in C ignored); alpha == 0 the same. */
/* Determinism across the packed path's right-edge tiles: a column has the same bits whether
 * its tile is full or an edge tile with few columns (kernels may run a narrower tile there,
 * e.g. AVX-512's one-vector tile for <= 16 columns). Columns [0, n) of an n-column product are
 * compared with the same columns of a 64-column one on identical data, over every ISA, both
 * layouts of B, and beta 0 / non-zero; 128 x n x 100 takes the packed path. */
START_TEST(test_packed_edge_column_bits)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 4242);
    enum { M = 128, K = 100, N_TOTAL = 64 };
    static const int64_t ns[] = {33, 40, 48, 49, 63};
    float *a = malloc(sizeof(float) * M * K);
    float *b = malloc(sizeof(float) * K * N_TOTAL);
    float *c0 = malloc(sizeof(float) * M * N_TOTAL);
    float *wide = malloc(sizeof(float) * M * N_TOTAL);
    float *part = malloc(sizeof(float) * M * N_TOTAL);
    ck_assert(a && b && c0 && wide && part);
    dg_test_fill_uniform(&rng, a, M * K, -1.0f, 1.0f);
    dg_test_fill_uniform(&rng, b, K * N_TOTAL, -1.0f, 1.0f);
    dg_test_fill_uniform(&rng, c0, M * N_TOTAL, -1.0f, 1.0f);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int t = 0; t < 4; t++) {
            const bool transpose_b = t & 1;
            const float beta = t >> 1 ? -0.5f : 0.0f;
            /* B is K x N_TOTAL row-major, or its transpose N_TOTAL x K: the first n columns
             * of op(B) are the same data either way. */
            const int64_t ldb = transpose_b ? K : N_TOTAL;
            memcpy(wide, c0, sizeof(float) * M * N_TOTAL);
            dg__sgemm_isa((enum dg_isa)isa, false, transpose_b, M, N_TOTAL, K, 1.25f, a, K, b,
                          ldb, beta, wide, N_TOTAL, 1);
            for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
                memcpy(part, c0, sizeof(float) * M * N_TOTAL);
                dg__sgemm_isa((enum dg_isa)isa, false, transpose_b, M, ns[in], K, 1.25f, a, K,
                              b, ldb, beta, part, N_TOTAL, 1);
                for (int64_t i = 0; i < M; i++) {
                    ck_assert_msg(memcmp(part + i * N_TOTAL, wide + i * N_TOTAL,
                                         sizeof(float) * (size_t)ns[in]) == 0,
                                  "isa %d, transpose_b %d, beta %g, n %lld: row %lld differs",
                                  isa, (int)transpose_b, (double)beta, (long long)ns[in],
                                  (long long)i);
                    ck_assert(memcmp(part + i * N_TOTAL + ns[in], c0 + i * N_TOTAL + ns[in],
                                     sizeof(float) * (size_t)(N_TOTAL - ns[in])) == 0);
                }
            }
        }
    }
    free(a);
    free(b);
    free(c0);
    free(wide);
    free(part);
}
END_TEST

/* The same across bottom-edge tiles and row blocking: a row has the same bits whether its
 * tile is full or an edge tile of a few rows (AVX-512 runs 8- and 4-row tiles there), and
 * however the rows are cut into packed blocks (which follows m). Rows [0, m) of an m-row
 * product are compared with the same rows of a 160-row one on identical data, over every ISA,
 * both layouts of A, and beta 0 / non-zero; m x 48 x 300 takes the packed path. */
START_TEST(test_packed_edge_row_bits)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 4343);
    enum { M_TOTAL = 160, K = 300, N = 48 };
    static const int64_t ms[] = {20, 41, 44, 45, 48, 52, 57, 100, 124, 128, 131, 150};
    float *a = malloc(sizeof(float) * M_TOTAL * K);
    float *b = malloc(sizeof(float) * K * N);
    float *c0 = malloc(sizeof(float) * M_TOTAL * N);
    float *wide = malloc(sizeof(float) * M_TOTAL * N);
    float *part = malloc(sizeof(float) * M_TOTAL * N);
    ck_assert(a && b && c0 && wide && part);
    dg_test_fill_uniform(&rng, a, M_TOTAL * K, -1.0f, 1.0f);
    dg_test_fill_uniform(&rng, b, K * N, -1.0f, 1.0f);
    dg_test_fill_uniform(&rng, c0, M_TOTAL * N, -1.0f, 1.0f);
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (int t = 0; t < 4; t++) {
            const bool transpose_a = t & 1;
            const float beta = t >> 1 ? -0.5f : 0.0f;
            /* A is M_TOTAL x K row-major, or its transpose K x M_TOTAL: the first m rows of
             * op(A) are the same data either way. */
            const int64_t lda = transpose_a ? M_TOTAL : K;
            memcpy(wide, c0, sizeof(float) * M_TOTAL * N);
            dg__sgemm_isa((enum dg_isa)isa, transpose_a, false, M_TOTAL, N, K, 1.25f, a, lda,
                          b, N, beta, wide, N, 1);
            for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++) {
                memcpy(part, c0, sizeof(float) * M_TOTAL * N);
                dg__sgemm_isa((enum dg_isa)isa, transpose_a, false, ms[im], N, K, 1.25f, a,
                              lda, b, N, beta, part, N, 1);
                ck_assert_msg(memcmp(part, wide, sizeof(float) * (size_t)(ms[im] * N)) == 0,
                              "isa %d, transpose_a %d, beta %g, m %lld: rows differ", isa,
                              (int)transpose_a, (double)beta, (long long)ms[im]);
                ck_assert(memcmp(part + ms[im] * N, c0 + ms[im] * N,
                                 sizeof(float) * (size_t)((M_TOTAL - ms[im]) * N)) == 0);
            }
        }
    }
    free(a);
    free(b);
    free(c0);
    free(wide);
    free(part);
}
END_TEST

START_TEST(test_degenerate)
{
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        float c[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
        float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};
        dg__sgemm_isa((enum dg_isa)isa, false, false, 2, 3, 0, 1.0f, a, 1, b, 3, 0.0f, c, 3, 1);
        for (int i = 0; i < 6; i++)
            ck_assert_float_eq_tol(c[i], 0.0f, 1e-6f);
        float d[6] = {1, 2, 3, 4, 5, 6};
        dg__sgemm_isa((enum dg_isa)isa, false, false, 2, 3, 2, 0.0f, a, 2, b, 3, 2.0f, d, 3, 2);
        for (int i = 0; i < 6; i++)
            ck_assert_float_eq_tol(d[i], 2.0f * (float)(i + 1), 1e-6f);
        /* m or n == 0: nothing is touched. */
        dg__sgemm_isa((enum dg_isa)isa, false, false, 0, 3, 2, 1.0f, a, 2, b, 3, 0.0f, d, 3, 1);
        dg__sgemm_isa((enum dg_isa)isa, true, true, 2, 0, 2, 1.0f, a, 2, b, 3, 0.0f, d, 3, 1);
        ck_assert_float_eq_tol(d[0], 2.0f, 1e-6f);
        /* 1 x 1 x 1 */
        float one = NAN;
        dg__sgemm_isa((enum dg_isa)isa, true, false, 1, 1, 1, 2.0f, a + 2, 1, b + 3, 1, 0.0f,
                      &one, 1, 1);
        ck_assert_float_eq_tol(one, 24.0f, 1e-6f);
    }
}
END_TEST

/* Results are bitwise identical for 1, 2, 3 and 4 threads on every path, for shapes that are
 * split across threads (edges included) and for the MLP shapes. */
START_TEST(test_thread_determinism)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 2024);
    static const int64_t sizes[][3] = {
        {130, 257, 300}, {128, 784, 256}, {128, 10, 128}, {784, 256, 128}, {37, 1500, 70},
        {320, 400, 260}, /* large enough for several rectangles per thread */
        {1, 2000, 700},  {3, 1500, 900}, /* small m, split along n */
    };
    for (int isa = DG_ISA_GENERIC; isa <= (int)dg__isa_supported(); isa++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            for (int t = 0; t < 4; t++) {
                struct shape s = make_shape(&rng, sizes[i][0], sizes[i][1], sizes[i][2], 2,
                                            t & 1, t >> 1, 0.5f, t % 2 ? 0.0f : 1.0f);
                struct operands op;
                operands_alloc(&s, &rng, &op);
                float *first = malloc(sizeof(float) * (size_t)op.c_size);
                ck_assert(first != NULL);
                for (int threads = 1; threads <= 4; threads++) {
                    memcpy(op.c, op.c_initial, sizeof(float) * (size_t)op.c_size);
                    dg__sgemm_isa((enum dg_isa)isa, s.transpose_a, s.transpose_b, s.m, s.n,
                                  s.k, s.alpha, op.a, s.lda, op.b, s.ldb, s.beta, op.c, s.ldc,
                                  threads);
                    if (threads == 1) {
                        memcpy(first, op.c, sizeof(float) * (size_t)op.c_size);
                        continue;
                    }
                    /* NaN padding compares equal bytewise too: memcmp, not ==. */
                    ck_assert_msg(memcmp(first, op.c, sizeof(float) * (size_t)op.c_size) == 0,
                                  "%s %lldx%lldx%lld t=%d: %d threads differ from 1",
                                  dg__isa_name((enum dg_isa)isa), (long long)s.m,
                                  (long long)s.n, (long long)s.k, t, threads);
                }
                free(first);
                operands_free(&op);
            }
        }
    }
}
END_TEST

/* dg__sgemm takes the dg__isa() path: bitwise equal to asking for it by name. */
START_TEST(test_dispatch)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 5);
    struct shape s = make_shape(&rng, 70, 90, 110, 0, false, true, 1.0f, 0.0f);
    struct operands op;
    operands_alloc(&s, &rng, &op);
    float *other = malloc(sizeof(float) * (size_t)op.c_size);
    ck_assert(other != NULL);
    dg__sgemm(false, true, s.m, s.n, s.k, 1.0f, op.a, s.lda, op.b, s.ldb, 0.0f, op.c, s.ldc, 2);
    dg__sgemm_isa(dg__isa(), false, true, s.m, s.n, s.k, 1.0f, op.a, s.lda, op.b, s.ldb, 0.0f,
                  other, s.ldc, 1);
    ck_assert(memcmp(other, op.c, sizeof(float) * (size_t)op.c_size) == 0);
    free(other);
    operands_free(&op);
}
END_TEST

/* dg__sgemm itself on products large enough for the optional CBLAS route (-Dblas=enabled,
 * 256^3 multiply-adds and up): every transpose combination, beta != 0, checked against the
 * reference. Without CBLAS this is the built-in path again. */
START_TEST(test_default_route_large)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 17);
    for (int t = 0; t < 4; t++) {
        struct shape s = make_shape(&rng, 260, 270, 250, 3, t & 1, t & 2, 0.5f, -1.0f);
        struct operands op;
        operands_alloc(&s, &rng, &op);
        dg__sgemm(s.transpose_a, s.transpose_b, s.m, s.n, s.k, s.alpha, op.a, s.lda, op.b,
                  s.ldb, s.beta, op.c, s.ldc, 2);
        check_result(&s, op.a, op.b, op.c_initial, op.c, "dg__sgemm");
        operands_free(&op);
    }
}
END_TEST

/* Batched with every stride variant: A broadcast (stride 0), B broadcast, neither; problems
 * small enough to be spread over the batch and large enough to be split; 1 and 2 threads give
 * identical bits, and each problem matches the reference. */
START_TEST(test_batched)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    static const int64_t sizes[][3] = {{9, 13, 7}, {120, 140, 60}};
    for (size_t size = 0; size < 2; size++) {
        for (int variant = 0; variant < 3; variant++) {
            const int64_t batch = 5;
            int t = (int)size * 3 + variant;
            struct shape s = make_shape(&rng, sizes[size][0], sizes[size][1], sizes[size][2], 2,
                                        t & 1, (t >> 1) & 1, 0.75f, variant == 1 ? 0.0f : 0.5f);
            struct operands op;
            operands_alloc(&s, &rng, &op);
            /* Room for `batch` copies; a broadcast operand uses only the first. */
            int64_t stride_a = variant == 0 ? 0 : op.a_size;
            int64_t stride_b = variant == 1 ? 0 : op.b_size;
            int64_t stride_c = op.c_size;
            float *a = malloc(sizeof(float) * (size_t)(op.a_size * batch));
            float *b = malloc(sizeof(float) * (size_t)(op.b_size * batch));
            float *c0 = malloc(sizeof(float) * (size_t)(op.c_size * batch));
            float *c1 = malloc(sizeof(float) * (size_t)(op.c_size * batch));
            float *c2 = malloc(sizeof(float) * (size_t)(op.c_size * batch));
            ck_assert(a && b && c0 && c1 && c2);
            dg_test_fill_uniform(&rng, a, op.a_size * batch, -1.0f, 1.0f);
            dg_test_fill_uniform(&rng, b, op.b_size * batch, -1.0f, 1.0f);
            for (int64_t i = 0; i < op.c_size * batch; i++)
                c0[i] = s.beta == 0.0f ? NAN : dg_test_uniform(&rng, -1.0f, 1.0f);
            memcpy(c1, c0, sizeof(float) * (size_t)(op.c_size * batch));
            memcpy(c2, c0, sizeof(float) * (size_t)(op.c_size * batch));
            dg__sgemm_batched(s.transpose_a, s.transpose_b, s.m, s.n, s.k, s.alpha, a, s.lda,
                              stride_a, b, s.ldb, stride_b, s.beta, c1, s.ldc, stride_c, batch,
                              1);
            dg__sgemm_batched(s.transpose_a, s.transpose_b, s.m, s.n, s.k, s.alpha, a, s.lda,
                              stride_a, b, s.ldb, stride_b, s.beta, c2, s.ldc, stride_c, batch,
                              2);
            ck_assert(memcmp(c1, c2, sizeof(float) * (size_t)(op.c_size * batch)) == 0);
            for (int64_t i = 0; i < batch; i++)
                check_result(&s, a + i * stride_a, b + i * stride_b, c0 + i * stride_c,
                             c2 + i * stride_c, "batched");
            free(a);
            free(b);
            free(c0);
            free(c1);
            free(c2);
            operands_free(&op);
        }
    }
}
END_TEST

static Suite *gemm_suite(void)
{
    Suite *suite = suite_create("gemm");
    TCase *tc = tcase_create("sgemm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_small_random);
    tcase_add_test(tc, test_packed_edges);
    tcase_add_test(tc, test_large_transposes);
    tcase_add_test(tc, test_small_m);
    tcase_add_test(tc, test_small_m_large);
    tcase_add_test(tc, test_small_m_column_bits);
    tcase_add_test(tc, test_packed_edge_column_bits);
    tcase_add_test(tc, test_packed_edge_row_bits);
    tcase_add_test(tc, test_degenerate);
    tcase_add_test(tc, test_thread_determinism);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, test_batched);
    tcase_add_test(tc, test_default_route_large);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    printf("gemm: paths generic..%s\n", dg__isa_name(dg__isa_supported()));
    return dg_test_run(gemm_suite());
}
