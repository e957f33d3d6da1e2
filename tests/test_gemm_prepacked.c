/*
 * The GEMM with op(B) packed once (src/ops/gemm/gemm_prepacked.c), on the kernel of dg__isa()
 * (meson runs this suite again under DG_ISA=generic and DG_ISA=avx2):
 *  - bit for bit the result of dg__sgemm's packed path on shapes that path takes (more than
 *    DG__GEMM_SMALL_M rows and more than 64^3 multiply-adds), transposes, k over several KC
 *    blocks, n off the tile width, beta != 0;
 *  - the same bits for any split of the rows (down to one row, which dg__sgemm would send to
 *    its small-m kernels) and any thread count: what lets the fused LSTM split its batch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "test_util.h"

struct problem {
    bool transpose_a, transpose_b;
    int64_t m, n, k;
    float beta;
};

/* Runs the problem through the prepacked path in row blocks of `rows` on `threads` threads,
 * and through dg__sgemm_isa, and checks both give the same bits. */
static void check(const struct problem *pr, int64_t rows, int threads, uint64_t seed)
{
    const int64_t m = pr->m, n = pr->n, k = pr->k;
    const int64_t lda = pr->transpose_a ? m + 3 : k + 5, ldb = pr->transpose_b ? k + 2 : n + 1;
    const int64_t a_size = (pr->transpose_a ? k : m) * lda;
    const int64_t b_size = (pr->transpose_b ? n : k) * ldb;
    float *a = malloc((size_t)a_size * sizeof *a), *b = malloc((size_t)b_size * sizeof *b);
    float *want = malloc((size_t)(m * n) * sizeof *want);
    float *got = malloc((size_t)(m * n) * sizeof *got);
    float *packed = aligned_alloc(64, (size_t)((dg__gemm_packed_b_floats(k, n) + 15) / 16 * 64));
    float *scratch = aligned_alloc(64, (size_t)dg__gemm_packed_a_floats(m, k, threads) * 4);
    ck_assert(a && b && want && got && packed && scratch);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    dg_test_fill_uniform(&rng, a, a_size, -1, 1);
    dg_test_fill_uniform(&rng, b, b_size, -1, 1);
    dg_test_fill_uniform(&rng, want, m * n, -1, 1);
    memcpy(got, want, (size_t)(m * n) * sizeof *got);
    if (pr->beta == 0.0f)
        for (int64_t i = 0; i < m * n; i++)
            got[i] = NAN; /* write-only */

    dg__sgemm_isa(dg__isa(), pr->transpose_a, pr->transpose_b, m, n, k, 0.75f, a, lda, b, ldb,
                  pr->beta, want, n, 1);
    struct dg__gemm_packed_b pb;
    dg__gemm_pack_b_once(pr->transpose_b, k, n, b, ldb, packed, &pb);
    for (int64_t i0 = 0; i0 < m; i0 += rows) {
        int64_t count = m - i0 < rows ? m - i0 : rows;
        const float *a_rows = a + i0 * (pr->transpose_a ? 1 : lda);
        dg__sgemm_packed_b(pr->transpose_a, count, 0.75f, a_rows, lda, &pb, pr->beta,
                           got + i0 * n, n, scratch, threads);
    }
    for (int64_t i = 0; i < m * n; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                      "m=%lld n=%lld k=%lld ta=%d tb=%d rows=%lld threads=%d: element %lld: "
                      "%.9g vs %.9g", (long long)m, (long long)n, (long long)k,
                      pr->transpose_a, pr->transpose_b, (long long)rows, threads, (long long)i,
                      got[i], want[i]);
    free(a);
    free(b);
    free(want);
    free(got);
    free(packed);
    free(scratch);
}

START_TEST(test_prepacked_equals_packed_path)
{
    const struct problem problems[] = {
        {false, true, 32, 1024, 256, 0.0f},  /* the LSTM forward step: h W_hh^T */
        {false, false, 32, 256, 1024, 0.0f}, /* the LSTM backward step: d W_hh (4 KC blocks) */
        {true, false, 37, 70, 300, 0.5f},
        {true, true, 14, 33, 600, 1.0f},
        {false, false, 100, 17, 200, -2.0f},
    };
    for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
        for (int threads = 1; threads <= 3; threads++)
            check(&problems[i], problems[i].m, threads, 11 + i);
}
END_TEST

START_TEST(test_prepacked_any_row_split)
{
    const struct problem pr = {false, true, 32, 200, 96, 0.0f};
    const int64_t splits[] = {1, 2, 5, 8, 16, 31};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
        check(&pr, splits[i], 1 + (int)(i % 3), 40 + i);
}
END_TEST

START_TEST(test_prepacked_degenerate)
{
    /* k == 0: C = beta * C; alpha == 0 likewise */
    float b[4] = {1, 2, 3, 4}, c[2] = {5, 6}, scratch[1024], packed[1024];
    struct dg__gemm_packed_b pb;
    dg__gemm_pack_b_once(false, 0, 2, b, 2, packed, &pb);
    dg__sgemm_packed_b(false, 1, 1.0f, b, 1, &pb, 2.0f, c, 2, scratch, 1);
    ck_assert_float_eq_tol(c[0], 10.0f, 1e-6f);
    ck_assert_float_eq_tol(c[1], 12.0f, 1e-6f);
    dg__gemm_pack_b_once(false, 2, 2, b, 2, packed, &pb);
    dg__sgemm_packed_b(false, 1, 0.0f, b, 2, &pb, 0.0f, c, 2, scratch, 1);
    ck_assert_float_eq_tol(c[0], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(c[1], 0.0f, 1e-6f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm_prepacked");
    TCase *tc = tcase_create("prepacked");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_prepacked_equals_packed_path);
    tcase_add_test(tc, test_prepacked_any_row_split);
    tcase_add_test(tc, test_prepacked_degenerate);
    suite_add_tcase(s, tc);
    return dg_test_run(s);
}
