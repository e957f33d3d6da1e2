/*
 * matmul (src/ops/matmul.c):
 * - forward and gradient values by hand for the four transpose combinations (gradients in
 *   each operand's stored layout) and for a broadcast batch;
 * - every forward path (single product, one tall product for a shared right operand, strided
 *   batches with a stride-0 operand, general batch broadcasting) against a naive
 *   double-precision reference, transposes included, gradients included;
 * - every error path: inner dimensions (with the transpose flags named), batch axes that do
 *   not broadcast, rank < 2, int32, NULL, a node of another graph;
 * - plans whose batch changes (dg_plan_set_batch) and bitwise-identical results for 1 and 4
 *   threads.
 * The PyTorch comparisons and finite-difference checks are driven by tests/cases_matmul.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void expect_values(const char *what, const float *got, const float *want, int64_t n,
                          float tol)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol * fmaxf(1.0f, fabsf(want[i])),
                      "%s[%lld]: %.9g, expected %.9g", what, (long long)i, got[i], want[i]);
}

/* ---- a naive reference ------------------------------------------------------------------- */

struct mshape {
    int ndim;
    int64_t dim[6];
};

static int64_t numel(const struct mshape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dim[i];
    return n;
}

/* out = op(A) op(B) with numpy batch broadcasting, in double; writes out's shape. */
static void reference_matmul(const struct mshape *sa, const float *a, bool ta,
                             const struct mshape *sb, const float *b, bool tb,
                             struct mshape *so, double *out)
{
    int na = sa->ndim, nb = sb->ndim;
    int64_t m = ta ? sa->dim[na - 1] : sa->dim[na - 2];
    int64_t k = ta ? sa->dim[na - 2] : sa->dim[na - 1];
    int64_t n = tb ? sb->dim[nb - 2] : sb->dim[nb - 1];
    int bd = (na > nb ? na : nb) - 2;
    so->ndim = bd + 2;
    for (int i = 0; i < bd; i++) {
        int ia = i - (bd - (na - 2)), ib = i - (bd - (nb - 2));
        int64_t da = ia >= 0 ? sa->dim[ia] : 1, db = ib >= 0 ? sb->dim[ib] : 1;
        so->dim[i] = da > db ? da : db;
    }
    so->dim[bd] = m;
    so->dim[bd + 1] = n;
    int64_t batches = 1;
    for (int i = 0; i < bd; i++)
        batches *= so->dim[i];
    for (int64_t t = 0; t < batches; t++) {
        /* offsets of batch t in a and b */
        int64_t rem = t, off_a = 0, off_b = 0, stride_a = m * k, stride_b = k * n;
        for (int i = bd - 1; i >= 0; i--) {
            int64_t c = rem % so->dim[i];
            rem /= so->dim[i];
            int ia = i - (bd - (na - 2)), ib = i - (bd - (nb - 2));
            if (ia >= 0) {
                off_a += (sa->dim[ia] == 1 ? 0 : c) * stride_a;
                stride_a *= sa->dim[ia];
            }
            if (ib >= 0) {
                off_b += (sb->dim[ib] == 1 ? 0 : c) * stride_b;
                stride_b *= sb->dim[ib];
            }
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double sum = 0;
                for (int64_t p = 0; p < k; p++) {
                    double x = ta ? a[off_a + p * m + i] : a[off_a + i * k + p];
                    double y = tb ? b[off_b + j * k + p] : b[off_b + p * n + j];
                    sum += x * y;
                }
                out[t * m * n + i * n + j] = sum;
            }
    }
}

/* ---- running a product ---------------------------------------------------------------------- */

struct product {
    float *out, *grad_a, *grad_b; /* malloc'd; gradients of sum(out * upstream) */
    struct mshape out_shape;
};

/* Runs matmul_ex on (a, b); with `upstream` (out-sized) also the gradients of
 * sum(out * upstream). */
static void run_product(const struct mshape *sa, const float *a, bool ta,
                        const struct mshape *sb, const float *b, bool tb,
                        const float *upstream, int threads, struct product *r)
{
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_nonnull(g);
    dg_graph_set_threads(g, threads);
    dg_node *x = dg_input(g, "a", sa->ndim, sa->dim);
    dg_node *y = dg_input(g, "b", sb->ndim, sb->dim);
    dg_node *out = dg_matmul_ex(g, x, y, ta, tb);
    ck_assert_msg(out != NULL, "%s", dg_graph_error(g));
    r->out_shape.ndim = dg_node_ndim(out);
    for (int i = 0; i < r->out_shape.ndim; i++)
        r->out_shape.dim[i] = dg_node_dim(out, i);
    dg_node *outputs[3] = {out, NULL, NULL};
    int n_outputs = 1;
    dg_node *up = NULL;
    if (upstream != NULL) {
        up = dg_input(g, "upstream", r->out_shape.ndim, r->out_shape.dim);
        dg_node *loss = dg_sum(g, dg_mul(g, out, up), 0, NULL, false);
        ck_assert_msg(dg_grad(g, loss, 2, (dg_node *[]){x, y}, outputs + 1) == DG_OK, "%s",
                      dg_graph_error(g));
        n_outputs = 3;
    }
    dg_plan *p = dg_compile(g, n_outputs, outputs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    dg_feed(p, x, a);
    dg_feed(p, y, b);
    if (up != NULL)
        dg_feed(p, up, upstream);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
    int64_t n_out = numel(&r->out_shape);
    r->out = malloc((size_t)n_out * sizeof(float));
    memcpy(r->out, dg_data(p, out), (size_t)n_out * sizeof(float));
    r->grad_a = r->grad_b = NULL;
    if (upstream != NULL) {
        r->grad_a = malloc((size_t)numel(sa) * sizeof(float));
        r->grad_b = malloc((size_t)numel(sb) * sizeof(float));
        memcpy(r->grad_a, dg_data(p, outputs[1]), (size_t)numel(sa) * sizeof(float));
        memcpy(r->grad_b, dg_data(p, outputs[2]), (size_t)numel(sb) * sizeof(float));
    }
    dg_plan_free(p);
    dg_graph_free(g);
}

static void product_free(struct product *r)
{
    free(r->out);
    free(r->grad_a);
    free(r->grad_b);
}

/* ---- hand values ------------------------------------------------------------------------------ */

/* A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]]: AB = [[58,64],[139,154]]; with
 * loss = sum(AB): dA[i][k] = sum_j B[k][j] = (15, 19, 23) per row, dB[k][j] = sum_i A[i][k]
 * = (5, 7, 9) per column. Each combination stores the transposed operands transposed. */
START_TEST(test_hand_values_all_transposes)
{
    const float a[6] = {1, 2, 3, 4, 5, 6}, a_t[6] = {1, 4, 2, 5, 3, 6};
    const float b[6] = {7, 8, 9, 10, 11, 12}, b_t[6] = {7, 9, 11, 8, 10, 12};
    const float da[6] = {15, 19, 23, 15, 19, 23}, da_t[6] = {15, 15, 19, 19, 23, 23};
    const float db[6] = {5, 5, 7, 7, 9, 9}, db_t[6] = {5, 7, 9, 5, 7, 9};
    const float ones[4] = {1, 1, 1, 1}, want[4] = {58, 64, 139, 154};
    for (int combo = 0; combo < 4; combo++) {
        bool ta = combo & 1, tb = combo & 2;
        struct mshape sa = {2, {ta ? 3 : 2, ta ? 2 : 3}}, sb = {2, {tb ? 2 : 3, tb ? 3 : 2}};
        struct product r;
        run_product(&sa, ta ? a_t : a, ta, &sb, tb ? b_t : b, tb, ones, 1, &r);
        ck_assert_int_eq(r.out_shape.ndim, 2);
        ck_assert_int_eq(r.out_shape.dim[0], 2);
        ck_assert_int_eq(r.out_shape.dim[1], 2);
        expect_values("out", r.out, want, 4, 1e-6f);
        expect_values("dA", r.grad_a, ta ? da_t : da, 6, 1e-6f);
        expect_values("dB", r.grad_b, tb ? db_t : db, 6, 1e-6f);
        product_free(&r);
    }
}
END_TEST

/* A [2,2,2] = (I, 2I) times a shared B [2,2]: out = (B, 2B); dB = (I + 2I)^T ones = 3 ones;
 * dA[b] = ones B^T = row sums of B in every row. */
START_TEST(test_hand_values_broadcast_batch)
{
    const float a[8] = {1, 0, 0, 1, 2, 0, 0, 2}, b[4] = {1, 2, 3, 4};
    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct mshape sa = {3, {2, 2, 2}}, sb = {2, {2, 2}};
    struct product r;
    run_product(&sa, a, false, &sb, b, false, ones, 1, &r);
    ck_assert_int_eq(r.out_shape.ndim, 3);
    expect_values("out", r.out, (const float[]){1, 2, 3, 4, 2, 4, 6, 8}, 8, 1e-6f);
    expect_values("dA", r.grad_a, (const float[]){3, 7, 3, 7, 3, 7, 3, 7}, 8, 1e-6f);
    expect_values("dB", r.grad_b, (const float[]){3, 3, 3, 3}, 4, 1e-6f);
    product_free(&r);

    /* the shared operand on the left, with a size-1 batch axis: [1,2,2] x [2,2,2] */
    struct mshape s1 = {3, {1, 2, 2}}, s2 = {3, {2, 2, 2}};
    run_product(&s1, b, false, &s2, a, false, ones, 1, &r);
    expect_values("out", r.out, (const float[]){1, 2, 3, 4, 2, 4, 6, 8}, 8, 1e-6f);
    /* dB(left) = ones (I + 2I)^T = 3 ones; dA(right)[t] = B^T ones = column sums of B */
    expect_values("d left", r.grad_a, (const float[]){3, 3, 3, 3}, 4, 1e-6f);
    expect_values("d right", r.grad_b, (const float[]){4, 4, 6, 6, 4, 4, 6, 6}, 8, 1e-6f);
    product_free(&r);
}
END_TEST

/* ---- every path against the reference ------------------------------------------------------ */

static const struct {
    struct mshape a, b;
    bool ta, tb;
} shapes[] = {
    {{2, {5, 7}}, {2, {7, 3}}, false, false},                   /* one product */
    {{2, {7, 5}}, {2, {3, 7}}, true, true},
    {{3, {4, 5, 7}}, {2, {7, 3}}, false, false},                /* one tall product */
    {{3, {4, 5, 7}}, {2, {3, 7}}, false, true},
    {{3, {4, 7, 5}}, {2, {7, 3}}, true, false},                 /* stride-0 right operand */
    {{2, {5, 7}}, {3, {4, 7, 3}}, false, false},                /* stride-0 left operand */
    {{3, {4, 5, 7}}, {3, {4, 7, 3}}, false, false},             /* strided batches */
    {{3, {4, 7, 5}}, {3, {4, 3, 7}}, true, true},
    {{4, {2, 1, 5, 7}}, {3, {3, 7, 3}}, false, false},          /* general broadcasting */
    {{4, {2, 1, 7, 5}}, {4, {1, 3, 3, 7}}, true, true},
    {{4, {1, 3, 5, 7}}, {4, {2, 1, 7, 3}}, false, false},
    {{5, {2, 1, 2, 5, 7}}, {4, {3, 1, 3, 7}}, false, true},
    {{2, {1, 9}}, {2, {9, 1}}, false, false},                   /* a dot product */
    {{2, {33, 65}}, {2, {65, 70}}, false, false},               /* beyond the direct kernel */
    {{3, {3, 33, 65}}, {2, {70, 65}}, false, true},
};

START_TEST(test_against_reference)
{
    const struct mshape *sa = &shapes[_i].a, *sb = &shapes[_i].b;
    bool ta = shapes[_i].ta, tb = shapes[_i].tb;
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 100 + (uint64_t)_i);
    float *a = malloc((size_t)numel(sa) * sizeof *a), *b = malloc((size_t)numel(sb) * sizeof *b);
    dg_test_fill_uniform(&rng, a, numel(sa), -1, 1);
    dg_test_fill_uniform(&rng, b, numel(sb), -1, 1);
    struct mshape so;
    double *want = malloc(4096 * 16 * sizeof *want);
    reference_matmul(sa, a, ta, sb, b, tb, &so, want);
    int64_t n_out = numel(&so);
    float *upstream = malloc((size_t)n_out * sizeof *upstream);
    dg_test_fill_uniform(&rng, upstream, n_out, -1, 1);
    struct product r;
    run_product(sa, a, ta, sb, b, tb, upstream, 1, &r);
    ck_assert_int_eq(r.out_shape.ndim, so.ndim);
    for (int i = 0; i < so.ndim; i++)
        ck_assert_int_eq(r.out_shape.dim[i], so.dim[i]);
    int64_t k = ta ? sa->dim[sa->ndim - 2] : sa->dim[sa->ndim - 1];
    for (int64_t i = 0; i < n_out; i++)
        ck_assert_msg(fabs(r.out[i] - want[i]) <= 4 * k * 1.2e-7, "case %d out[%lld]: %g vs %g",
                      _i, (long long)i, r.out[i], want[i]);

    /* Gradients by finite reasoning: d/dA of sum(out * U) is linear, so compare with the
     * change of the reference loss along each unit vector of a small number of elements. */
    for (int which = 0; which < 2; which++) {
        const struct mshape *s = which ? sb : sa;
        float *x = which ? b : a;
        const float *grad = which ? r.grad_b : r.grad_a;
        for (int64_t e = 0; e < numel(s); e += 1 + numel(s) / 17) {
            float saved = x[e];
            x[e] = saved + 1.0f;
            double *plus = malloc(4096 * 16 * sizeof *plus);
            reference_matmul(sa, a, ta, sb, b, tb, &so, plus);
            x[e] = saved;
            double d = 0; /* exact: the loss is linear in x[e] */
            for (int64_t i = 0; i < n_out; i++)
                d += (plus[i] - want[i]) * upstream[i];
            free(plus);
            ck_assert_msg(fabs(grad[e] - d) <= 1e-4 * fmax(1.0, fabs(d)),
                          "case %d d%c[%lld]: %g vs %g", _i, which ? 'B' : 'A', (long long)e,
                          grad[e], d);
        }
    }
    product_free(&r);
    free(upstream);
    free(want);
    free(a);
    free(b);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

static dg_graph *graph_with(dg_node **a, int na, const int64_t *sa, dg_node **b, int nb,
                            const int64_t *sb)
{
    dg_graph *g = dg_graph_new();
    *a = dg_input(g, "a", na, sa);
    *b = dg_input(g, "b", nb, sb);
    return g;
}

static void expect_error(dg_graph *g, dg_status status, const char *text)
{
    ck_assert_int_eq(dg_graph_status(g), status);
    ck_assert_msg(strstr(dg_graph_error(g), text) != NULL, "'%s' not in '%s'", text,
                  dg_graph_error(g));
}

START_TEST(test_error_inner_dimensions)
{
    dg_node *a, *b;
    dg_graph *g = graph_with(&a, 2, (const int64_t[]){128, 784}, &b, 2,
                             (const int64_t[]){256, 128});
    ck_assert_ptr_null(dg_matmul(g, a, b));
    expect_error(g, DG_ERR_SHAPE, "matmul: inner dimensions differ: [128,784] x [256,128]");
    ck_assert_str_eq(dg_graph_error(g), "matmul: inner dimensions differ: [128,784] x [256,128]");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul_ex(g, a, b, true, false));
    expect_error(g, DG_ERR_SHAPE, "[128,784] x [256,128] (transpose_a)");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul_ex(g, b, a, false, true));
    expect_error(g, DG_ERR_SHAPE, "[256,128] x [128,784] (transpose_b)");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul_ex(g, a, a, true, true));
    expect_error(g, DG_ERR_SHAPE, "[128,784] x [128,784] (transpose_a, transpose_b)");
    dg_graph_clear_error(g);
    /* the flags that make it fit */
    ck_assert_ptr_nonnull(dg_matmul_ex(g, b, a, false, false));
    ck_assert_ptr_nonnull(dg_matmul_ex(g, a, b, true, true));
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_batch_and_rank)
{
    dg_node *a, *b;
    dg_graph *g = graph_with(&a, 3, (const int64_t[]){2, 3, 4}, &b, 3,
                             (const int64_t[]){3, 4, 5});
    ck_assert_ptr_null(dg_matmul(g, a, b));
    expect_error(g, DG_ERR_SHAPE, "matmul: batch dimensions of [2,3,4] and [3,4,5] do not "
                 "broadcast");
    dg_graph_free(g);

    g = graph_with(&a, 1, (const int64_t[]){4}, &b, 2, (const int64_t[]){4, 5});
    ck_assert_ptr_null(dg_matmul(g, a, b));
    expect_error(g, DG_ERR_SHAPE, "matmul: operands need at least 2 dimensions: [4] x [4,5]");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul(g, b, a));
    expect_error(g, DG_ERR_SHAPE, "[4,5] x [4]");
    dg_graph_clear_error(g);
    dg_node *s = dg_scalar(g, 2.0f);
    ck_assert_ptr_null(dg_matmul(g, s, s));
    expect_error(g, DG_ERR_SHAPE, "[] x []");
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_int32_null_foreign)
{
    dg_graph *g = dg_graph_new(), *other = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){3, 3});
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 2, (const int64_t[]){3, 3});
    ck_assert_ptr_null(dg_matmul(g, a, labels));
    expect_error(g, DG_ERR_DTYPE, "matmul: operands must be float32");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul(g, labels, a));
    expect_error(g, DG_ERR_DTYPE, "int32 [3,3]");
    dg_graph_clear_error(g);

    ck_assert_ptr_null(dg_matmul(g, a, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "matmul: input 2 is NULL");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul_ex(g, NULL, a, true, false));
    expect_error(g, DG_ERR_INVALID_ARG, "matmul: input 1 is NULL");
    /* pending error: pass through silently */
    ck_assert_ptr_null(dg_matmul(g, dg_matmul(g, NULL, a), a));
    expect_error(g, DG_ERR_INVALID_ARG, "matmul: input 1 is NULL");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_matmul(NULL, a, a));

    dg_node *b = dg_input(other, "b", 2, (const int64_t[]){3, 3});
    ck_assert_ptr_null(dg_matmul(g, a, b));
    expect_error(g, DG_ERR_FOREIGN_NODE, "matmul: input 2");
    ck_assert_int_eq(dg_graph_status(other), DG_OK);
    dg_graph_free(g);
    dg_graph_free(other);
}
END_TEST

/* ---- plans ------------------------------------------------------------------------------------ */

/* y = x [B,3,4] · W [4,2] (the tall-product path) with dW, and the batched gram = x · x^T,
 * at batch 2, then 5, then 1. */
START_TEST(test_plan_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (const int64_t[]){2, 3, 4});
    dg_node *w = dg_param(g, "w", 2, (const int64_t[]){4, 2});
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, dg_param_data(w), 8, -1, 1);
    dg_node *y = dg_matmul(g, x, w);                         /* [B,3,2] */
    dg_node *gram = dg_matmul_ex(g, x, x, false, true);      /* [B,3,3] */
    dg_node *gw = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, y, 0, NULL, false), 1, &w, &gw), DG_OK);
    dg_plan *p = dg_compile(g, 3, (dg_node *[]){y, gram, gw});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    const int64_t batches[3] = {2, 5, 1};
    for (int t = 0; t < 3; t++) {
        int64_t batch = batches[t];
        ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
        ck_assert_int_eq(dg_plan_dim(p, y, 0), batch);
        ck_assert_int_eq(dg_plan_dim(p, gram, 0), batch);
        float xs[5 * 12];
        dg_test_fill_uniform(&rng, xs, batch * 12, -1, 1);
        ck_assert_int_eq(dg_feed(p, x, xs), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        const float *wd = dg_param_data(w), *yd = dg_data(p, y), *gd = dg_data(p, gram);
        const float *gwd = dg_data(p, gw);
        double dw[8] = {0};
        for (int64_t bi = 0; bi < batch; bi++) {
            const float *xb = xs + bi * 12;
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 2; j++) {
                    double s = 0;
                    for (int k = 0; k < 4; k++)
                        s += (double)xb[i * 4 + k] * wd[k * 2 + j];
                    ck_assert_double_le(fabs(yd[bi * 6 + i * 2 + j] - s), 1e-5);
                }
                for (int j = 0; j < 3; j++) {
                    double s = 0;
                    for (int k = 0; k < 4; k++)
                        s += (double)xb[i * 4 + k] * xb[j * 4 + k];
                    ck_assert_double_le(fabs(gd[bi * 9 + i * 3 + j] - s), 1e-5);
                }
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 2; j++)
                        dw[k * 2 + j] += xb[i * 4 + k]; /* d sum(y) / dW[k][j] */
            }
        }
        for (int e = 0; e < 8; e++)
            ck_assert_double_le(fabs(gwd[e] - dw[e]), 1e-5);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A batch that stops broadcasting is reported by set_batch, naming matmul. */
START_TEST(test_plan_batch_mismatch)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 3, (const int64_t[]){2, 3, 4});
    dg_node *b = dg_constant(g, 3, (const int64_t[]){2, 4, 1},
                             (const float[]){1, 2, 3, 4, 5, 6, 7, 8});
    dg_node *y = dg_matmul(g, a, b);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_ERR_SHAPE);
    ck_assert_msg(strstr(dg_graph_error(g), "matmul: batch dimensions of [3,3,4] and [2,4,1]") !=
                  NULL, "%s", dg_graph_error(g));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_batch(p, 1), DG_OK); /* 1 broadcasts against 2 */
    ck_assert_int_eq(dg_plan_dim(p, y, 0), 2);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_threads_bitwise_identical)
{
    const struct mshape sa = {3, {6, 70, 90}}, sb = {2, {90, 80}}, sc = {4, {2, 1, 70, 90}};
    const struct mshape sd = {3, {3, 80, 90}};
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 5);
    float *a = malloc(6 * 70 * 90 * sizeof *a), *b = malloc(3 * 90 * 80 * sizeof *b);
    dg_test_fill_uniform(&rng, a, 6 * 70 * 90, -1, 1);
    dg_test_fill_uniform(&rng, b, 3 * 90 * 80, -1, 1);
    struct product one, four;
    run_product(&sa, a, false, &sb, b, false, NULL, 1, &one);
    run_product(&sa, a, false, &sb, b, false, NULL, 4, &four);
    ck_assert(memcmp(one.out, four.out, 6 * 70 * 80 * sizeof(float)) == 0);
    product_free(&one);
    product_free(&four);
    run_product(&sc, a, false, &sd, b, true, NULL, 1, &one);
    run_product(&sc, a, false, &sd, b, true, NULL, 4, &four);
    ck_assert(memcmp(one.out, four.out, 6 * 70 * 80 * sizeof(float)) == 0);
    product_free(&one);
    product_free(&four);
    free(a);
    free(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_matmul");
    TCase *values = tcase_create("values");
    tcase_add_test(values, test_hand_values_all_transposes);
    tcase_add_test(values, test_hand_values_broadcast_batch);
    tcase_add_loop_test(values, test_against_reference, 0, N_OF(shapes));
    suite_add_tcase(s, values);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_error_inner_dimensions);
    tcase_add_test(errors, test_error_batch_and_rank);
    tcase_add_test(errors, test_error_int32_null_foreign);
    suite_add_tcase(s, errors);
    TCase *plans = tcase_create("plans");
    tcase_add_test(plans, test_plan_changed_batch);
    tcase_add_test(plans, test_plan_batch_mismatch);
    tcase_add_test(plans, test_threads_bitwise_identical);
    suite_add_tcase(s, plans);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
