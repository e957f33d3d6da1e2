/*
 * Layout ops (src/ops/reshape.c, permute.c, broadcast.c, slice.c, concat.c) and stop_gradient:
 * - forward values by hand, and against naive index arithmetic for the permute kernels
 *   (tiled transpose, row copies, strided gather) on sizes that are not tile multiples;
 * - gradients with a non-uniform upstream, so that a misplaced element shows;
 * - plans whose batch changes: reshape's -1, broadcast_to's -1, slice's negative indices on
 *   axis 0 and concat's backward along axis 0 all follow the batch;
 * - int32 values move through every layout op unchanged;
 * - every constructor error path, with the op name and the shapes in the message.
 * The PyTorch comparisons and finite-difference checks are driven by tests/cases_layout.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "layout_attrs.h"
#include "op.h"
#include "test_util.h"

static void expect_values(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i])),
                      "%s[%lld]: %.9g, expected %.9g", what, (long long)i, got[i], want[i]);
}

static void expect_error(dg_graph *g, dg_status status, const char *text)
{
    ck_assert_int_eq(dg_graph_status(g), status);
    ck_assert_msg(strstr(dg_graph_error(g), text) != NULL, "'%s' not in '%s'", text,
                  dg_graph_error(g));
    dg_graph_clear_error(g);
}

static void iota(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)i;
}

/* out = build(x) and d sum(out * upstream) / dx, for one float input. upstream[i] = i + 1 so
 * every position is distinguishable. grad may be NULL. */
typedef dg_node *(*layout_builder)(dg_graph *g, dg_node *x);

static void eval_layout(layout_builder build, int ndim, const int64_t *shape,
                            const float *x, float *out, float *grad)
{
    dg_graph *g = dg_graph_new();
    dg_node *in = dg_input(g, "x", ndim, shape);
    dg_node *y = build(g, in);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    int64_t n_out = dg_node_numel(y);
    float *up = malloc((size_t)n_out * sizeof *up);
    for (int64_t i = 0; i < n_out; i++)
        up[i] = (float)(i + 1);
    dg_node *weights = dg_constant(g, dg_node_ndim(y), (int64_t[]){
        dg_node_dim(y, 0), dg_node_dim(y, 1), dg_node_dim(y, 2), dg_node_dim(y, 3),
        dg_node_dim(y, 4), dg_node_dim(y, 5), dg_node_dim(y, 6), dg_node_dim(y, 7)}, up);
    dg_node *outputs[2] = {y, NULL};
    if (grad != NULL)
        ck_assert_msg(dg_grad(g, dg_sum(g, dg_mul(g, y, weights), 0, NULL, false), 1, &in,
                              &outputs[1]) == DG_OK, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, grad ? 2 : 1, outputs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(p, in, x), DG_OK);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
    memcpy(out, dg_data(p, y), (size_t)n_out * sizeof *out);
    if (grad != NULL)
        memcpy(grad, dg_data(p, outputs[1]), (size_t)dg_node_numel(in) * sizeof *grad);
    dg_plan_free(p);
    free(up);
    dg_graph_free(g);
}

/* ---- reshape ----------------------------------------------------------------------------- */

static dg_node *reshape_3x2(dg_graph *g, dg_node *x)
{
    return dg_reshape(g, x, 2, (const int64_t[]){3, -1});
}

START_TEST(test_reshape_values)
{
    float x[6], out[6], grad[6];
    iota(x, 6);
    eval_layout(reshape_3x2, 2, (const int64_t[]){2, 3}, x, out, grad);
    expect_values("reshape", out, x, 6);
    /* the gradient is upstream (1..6) reshaped back: the same order */
    expect_values("reshape grad", grad, (const float[]){1, 2, 3, 4, 5, 6}, 6);

    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 3, (const int64_t[]){2, 3, 4});
    dg_node *r = dg_reshape(g, a, 2, (const int64_t[]){-1, 6});
    ck_assert_int_eq(dg_node_dim(r, 0), 4);
    ck_assert_int_eq(dg_node_dim(r, 1), 6);
    dg_node *s = dg_reshape(g, dg_input(g, "s", 2, (const int64_t[]){1, 1}), 0, NULL);
    ck_assert_int_eq(dg_node_ndim(s), 0);
    dg_node *e = dg_reshape(g, s, 3, (const int64_t[]){1, -1, 1});
    ck_assert_int_eq(dg_node_dim(e, 1), 1);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_reshape_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){2, 3});
    ck_assert_ptr_null(dg_reshape(g, x, 2, (const int64_t[]){4, 2}));
    ck_assert_str_eq(dg_graph_error(g), "reshape: cannot reshape [2,3] (6 elements) to [4,2]");
    expect_error(g, DG_ERR_SHAPE, "[4,2]");
    ck_assert_ptr_null(dg_reshape(g, x, 2, (const int64_t[]){-1, 4}));
    expect_error(g, DG_ERR_SHAPE, "reshape: cannot reshape [2,3] (6 elements) to [-1,4]");
    ck_assert_ptr_null(dg_reshape(g, x, 3, (const int64_t[]){-1, 3, -1}));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: 2 entries of the new shape are -1");
    ck_assert_ptr_null(dg_reshape(g, x, 2, (const int64_t[]){0, 6}));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: dimension 0 of the new shape is 0");
    ck_assert_ptr_null(dg_reshape(g, x, 2, (const int64_t[]){-2, -3}));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: dimension 0 of the new shape is -2");
    ck_assert_ptr_null(dg_reshape(g, x, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 2, 3}));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: 9 dimensions");
    ck_assert_ptr_null(dg_reshape(g, x, -1, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: -1 dimensions");
    ck_assert_ptr_null(dg_reshape(g, x, 2, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: shape is NULL");
    ck_assert_ptr_null(dg_reshape(g, NULL, 1, (const int64_t[]){6}));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: input 1 is NULL");
    /* pending error: silent pass-through, even with bad arguments */
    ck_assert_ptr_null(dg_reshape(g, NULL, 1, (const int64_t[]){6}));
    ck_assert_ptr_null(dg_reshape(g, x, 2, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "reshape: input 1 is NULL");
    ck_assert_ptr_null(dg_reshape(NULL, x, 1, (const int64_t[]){6}));
    dg_graph *other = dg_graph_new();
    ck_assert_ptr_null(dg_reshape(other, x, 1, (const int64_t[]){6}));
    expect_error(other, DG_ERR_FOREIGN_NODE, "reshape: input 1");
    /* reshape_as: the element counts must agree */
    dg_node *like = dg_input(g, "like", 2, (const int64_t[]){4, 2});
    ck_assert_ptr_null(dg__make_node(g, DG_OP_reshape_as, 2, (dg_node *[]){x, like}, NULL));
    expect_error(g, DG_ERR_SHAPE, "reshape_as: cannot reshape [2,3] (6 elements) to [4,2]");
    dg_graph_free(other);
    dg_graph_free(g);
}
END_TEST

/* A [B,3,4] input reshaped to [-1,12] and its gradient follow the batch; a fixed target that
 * stops fitting is reported by set_batch, naming reshape. */
START_TEST(test_reshape_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (const int64_t[]){2, 3, 4});
    dg_node *r = dg_reshape(g, x, 2, (const int64_t[]){-1, 12});
    dg_node *sq = dg_mul(g, r, r);
    dg_node *gx = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, sq, 0, NULL, false), 1, &x, &gx), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){r, gx});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_plan_set_batch(p, 5), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, r, 0), 5);
    ck_assert_int_eq(dg_plan_ndim(p, gx), 3);
    ck_assert_int_eq(dg_plan_dim(p, gx, 0), 5);
    float xs[60], want[60];
    iota(xs, 60);
    for (int i = 0; i < 60; i++)
        want[i] = 2 * xs[i];
    dg_feed(p, x, xs);
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("reshape batch 5", dg_data(p, r), xs, 60);
    expect_values("grad batch 5", dg_data(p, gx), want, 60);
    dg_plan_free(p);

    dg_node *fixed = dg_reshape(g, x, 2, (const int64_t[]){4, 6});
    p = dg_compile(g, 1, &fixed);
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_ERR_SHAPE);
    expect_error(g, DG_ERR_SHAPE, "reshape: cannot reshape [3,3,4] (36 elements) to [4,6]");
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- permute ----------------------------------------------------------------------------- */

/* Naive permute: out[idx] = x[src] with src[perm[i]] = idx[i]. */
static void naive_permute(const float *x, int ndim, const int64_t *shape, const int *perm,
                          float *out)
{
    int64_t strides[8], out_shape[8], n = 1;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i];
    }
    for (int i = 0; i < ndim; i++) {
        out_shape[i] = shape[perm[i]];
        n *= out_shape[i];
    }
    for (int64_t o = 0; o < n; o++) {
        int64_t rem = o, src = 0;
        for (int i = ndim - 1; i >= 0; i--) {
            src += (rem % out_shape[i]) * strides[perm[i]];
            rem /= out_shape[i];
        }
        out[o] = x[src];
    }
}

static const struct {
    int ndim;
    int64_t shape[5];
    int perm[5];
} perms[] = {
    {2, {2, 3}, {1, 0}},
    {2, {70, 45}, {1, 0}},             /* tiled, partial tiles */
    {3, {3, 40, 50}, {0, 2, 1}},       /* tiled per matrix */
    {3, {2, 3, 4}, {2, 0, 1}},
    {3, {2, 3, 4}, {1, 0, 2}},         /* row copies */
    {4, {4, 5, 6, 7}, {3, 1, 0, 2}},   /* strided gather */
    {4, {2, 3, 1, 4}, {3, 1, 0, 2}},   /* size-1 axis */
    {4, {3, 1, 5, 1}, {3, 2, 1, 0}},   /* only two axes > 1: a transpose */
    {3, {4, 5, 6}, {0, 1, 2}},         /* identity */
    {5, {2, 3, 4, 5, 6}, {0, 1, 2, 4, 3}}, /* merged batch, last two swapped */
    {3, {3, 4, 5}, {1, 2, 0}},         /* merged (4,5) moved in front */
};

START_TEST(test_permute_against_naive)
{
    int ndim = perms[_i].ndim;
    const int64_t *shape = perms[_i].shape;
    const int *perm = perms[_i].perm;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *x = malloc((size_t)n * sizeof *x), *want = malloc((size_t)n * sizeof *want);
    iota(x, n);
    naive_permute(x, ndim, shape, perm, want);
    for (int threads = 1; threads <= 4; threads += 3) {
        dg_graph *g = dg_graph_new();
        dg_graph_set_threads(g, threads);
        dg_node *in = dg_input(g, "x", ndim, shape);
        dg_node *y = dg_permute(g, in, ndim, perm);
        ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
        for (int i = 0; i < ndim; i++)
            ck_assert_int_eq(dg_node_dim(y, i), shape[perm[i]]);
        /* and back: the gradient rule's inverse permutation */
        dg_node *gx = NULL;
        ck_assert_int_eq(dg_grad(g, dg_sum(g, dg_mul(g, y, y), 0, NULL, false), 1, &in, &gx),
                         DG_OK);
        dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gx});
        dg_feed(p, in, x);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_msg(memcmp(dg_data(p, y), want, (size_t)n * sizeof *want) == 0,
                      "permute case %d differs from the naive one", _i);
        const float *gd = dg_data(p, gx);
        for (int64_t i = 0; i < n; i++)
            ck_assert_float_eq_tol(gd[i], 2 * x[i], 1e-3f);
        dg_plan_free(p);
        dg_graph_free(g);
    }
    free(x);
    free(want);
}
END_TEST

static dg_node *transpose(dg_graph *g, dg_node *x) { return dg_transpose(g, x); }

START_TEST(test_transpose_values)
{
    float x[6], out[6], grad[6];
    iota(x, 6);
    eval_layout(transpose, 2, (const int64_t[]){2, 3}, x, out, grad);
    expect_values("transpose", out, (const float[]){0, 3, 1, 4, 2, 5}, 6);
    /* upstream 1..6 in the [3,2] output, transposed back to [2,3] */
    expect_values("transpose grad", grad, (const float[]){1, 3, 5, 2, 4, 6}, 6);
}
END_TEST

START_TEST(test_permute_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (const int64_t[]){2, 3, 4});
    ck_assert_ptr_null(dg_permute(g, x, 3, (const int[]){0, 0, 1}));
    ck_assert_str_eq(dg_graph_error(g), "permute: [0,0,1] is not a permutation of 3 axes");
    expect_error(g, DG_ERR_INVALID_ARG, "permute");
    ck_assert_ptr_null(dg_permute(g, x, 3, (const int[]){0, 1, 3}));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: [0,1,3] is not a permutation of 3 axes");
    ck_assert_ptr_null(dg_permute(g, x, 3, (const int[]){-1, 0, 1}));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: [-1,0,1] is not a permutation of 3 axes");
    ck_assert_ptr_null(dg_permute(g, x, 2, (const int[]){1, 0}));
    expect_error(g, DG_ERR_SHAPE, "permute: [1,0] is not a permutation of the 3 axes of "
                 "[2,3,4]");
    ck_assert_ptr_null(dg_permute(g, x, 3, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: perm is NULL");
    ck_assert_ptr_null(dg_permute(g, x, 9, (const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8}));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: 9 axes");
    ck_assert_ptr_null(dg_permute(g, NULL, 3, (const int[]){0, 1, 2}));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: input 1 is NULL");
    ck_assert_ptr_null(dg_transpose(g, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "permute: input 1 is NULL");
    dg_node *v = dg_input(g, "v", 1, (const int64_t[]){3});
    ck_assert_ptr_null(dg_transpose(g, v));
    expect_error(g, DG_ERR_SHAPE, "transpose: input [3] needs at least 2 dimensions");
    dg_graph *other = dg_graph_new();
    ck_assert_ptr_null(dg_transpose(other, x));
    expect_error(other, DG_ERR_FOREIGN_NODE, "permute: input 1");
    ck_assert_ptr_null(dg_permute(NULL, x, 3, (const int[]){0, 1, 2}));
    dg_graph_free(other);
    dg_graph_free(g);
}
END_TEST

/* ---- broadcast_to -------------------------------------------------------------------------- */

static dg_node *bcast_col(dg_graph *g, dg_node *x)
{
    return dg_broadcast_to(g, x, 3, (const int64_t[]){2, 3, 2});
}

START_TEST(test_broadcast_values)
{
    float out[12], grad[3];
    eval_layout(bcast_col, 2, (const int64_t[]){3, 1}, (const float[]){1, 2, 3}, out, grad);
    expect_values("broadcast", out, (const float[]){1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}, 12);
    /* upstream 1..12: x[i] collects positions 2i, 2i+1, 6+2i, 7+2i (1-based values) */
    expect_values("broadcast grad", grad, (const float[]){1 + 2 + 7 + 8, 3 + 4 + 9 + 10,
                                                          5 + 6 + 11 + 12}, 3);

    dg_graph *g = dg_graph_new();
    dg_node *s = dg_broadcast_to(g, dg_scalar(g, 2.0f), 2, (const int64_t[]){2, 2});
    dg_node *k = dg_broadcast_to(g, dg_input(g, "k", 2, (const int64_t[]){3, 1}), 2,
                                 (const int64_t[]){-1, 4});
    ck_assert_int_eq(dg_node_dim(k, 0), 3);
    ck_assert_int_eq(dg_node_dim(k, 1), 4);
    dg_plan *p = dg_compile(g, 1, &s);
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("scalar", dg_data(p, s), (const float[]){2, 2, 2, 2}, 4);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_broadcast_errors_and_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){3, 2});
    ck_assert_ptr_null(dg_broadcast_to(g, x, 2, (const int64_t[]){3, 4}));
    ck_assert_str_eq(dg_graph_error(g), "broadcast_to: cannot broadcast [3,2] to [3,4]");
    expect_error(g, DG_ERR_SHAPE, "broadcast_to");
    ck_assert_ptr_null(dg_broadcast_to(g, x, 1, (const int64_t[]){2}));
    expect_error(g, DG_ERR_SHAPE, "broadcast_to: cannot broadcast [3,2] to [2]");
    ck_assert_ptr_null(dg_broadcast_to(g, x, 3, (const int64_t[]){-1, 3, 2}));
    expect_error(g, DG_ERR_SHAPE, "broadcast_to: cannot broadcast [3,2] to [-1,3,2]");
    ck_assert_ptr_null(dg_broadcast_to(g, x, 2, (const int64_t[]){3, 0}));
    expect_error(g, DG_ERR_INVALID_ARG, "broadcast_to: dimension 1 of the target shape is 0");
    ck_assert_ptr_null(dg_broadcast_to(g, x, 2, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "broadcast_to: shape is NULL");
    ck_assert_ptr_null(dg_broadcast_to(g, x, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 3, 2}));
    expect_error(g, DG_ERR_INVALID_ARG, "broadcast_to: 9 dimensions");
    ck_assert_ptr_null(dg_broadcast_to(g, NULL, 2, (const int64_t[]){3, 2}));
    expect_error(g, DG_ERR_INVALID_ARG, "broadcast_to: input 1 is NULL");

    /* [B,1] -> [-1,4] follows the batch, and so does its gradient (sum over the stretched
     * axis); a fixed [2,4] target is reported by set_batch */
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){2, 1});
    dg_node *y = dg_broadcast_to(g, b, 2, (const int64_t[]){-1, 4});
    dg_node *fixed = dg_broadcast_to(g, b, 2, (const int64_t[]){2, 4});
    dg_node *gb = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, dg_mul(g, y, y), 0, NULL, false), 1, &b, &gb),
                     DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gb});
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_OK);
    dg_feed(p, b, (const float[]){1, 2, 3});
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("bcast batch 3", dg_data(p, y),
                  (const float[]){1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 12);
    expect_values("bcast grad batch 3", dg_data(p, gb), (const float[]){8, 16, 24}, 3);
    dg_plan_free(p);
    p = dg_compile(g, 1, &fixed);
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_ERR_SHAPE);
    expect_error(g, DG_ERR_SHAPE, "broadcast_to: cannot broadcast [3,1] to [2,4]");
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- slice and pad_slice --------------------------------------------------------------- */

static dg_node *slice_cols(dg_graph *g, dg_node *x) { return dg_slice(g, x, 1, 1, 3); }
static dg_node *slice_neg(dg_graph *g, dg_node *x) { return dg_slice(g, x, -1, -2, -1); }
static dg_node *slice_rows(dg_graph *g, dg_node *x) { return dg_slice(g, x, 0, -2, 3); }

START_TEST(test_slice_values)
{
    float x[12], out[12], grad[12];
    iota(x, 12); /* [3,4] */
    eval_layout(slice_cols, 2, (const int64_t[]){3, 4}, x, out, grad);
    expect_values("slice cols", out, (const float[]){1, 2, 5, 6, 9, 10}, 6);
    expect_values("slice cols grad", grad, (const float[]){0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0},
                  12);
    eval_layout(slice_neg, 2, (const int64_t[]){3, 4}, x, out, grad);
    expect_values("slice -2:-1", out, (const float[]){2, 6, 10}, 3);
    expect_values("slice -2:-1 grad", grad,
                  (const float[]){0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0}, 12);
    eval_layout(slice_rows, 2, (const int64_t[]){3, 4}, x, out, grad);
    expect_values("slice rows", out, (const float[]){4, 5, 6, 7, 8, 9, 10, 11}, 8);
    expect_values("slice rows grad", grad,
                  (const float[]){0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, 12);
}
END_TEST

START_TEST(test_slice_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){3, 4});
    ck_assert_ptr_null(dg_slice(g, x, 1, 2, 5));
    ck_assert_str_eq(dg_graph_error(g), "slice: range [2,5) is out of range or empty along "
                                        "axis 1 of [3,4]");
    expect_error(g, DG_ERR_SHAPE, "slice");
    ck_assert_ptr_null(dg_slice(g, x, 1, 2, 2));
    expect_error(g, DG_ERR_SHAPE, "slice: range [2,2) is out of range or empty along axis 1");
    ck_assert_ptr_null(dg_slice(g, x, 0, -1, -2));
    expect_error(g, DG_ERR_SHAPE, "slice: range [-1,-2) is out of range or empty along axis 0 "
                 "of [3,4]");
    ck_assert_ptr_null(dg_slice(g, x, -1, -5, 2));
    expect_error(g, DG_ERR_SHAPE, "along axis 1 of [3,4]");
    ck_assert_ptr_null(dg_slice(g, x, 2, 0, 1));
    expect_error(g, DG_ERR_INVALID_ARG, "slice: axis 2 is out of range for [3,4]");
    ck_assert_ptr_null(dg_slice(g, x, -3, 0, 1));
    expect_error(g, DG_ERR_INVALID_ARG, "slice: axis -3 is out of range for [3,4]");
    ck_assert_ptr_null(dg_slice(g, NULL, 0, 0, 1));
    expect_error(g, DG_ERR_INVALID_ARG, "slice: input 1 is NULL");
    dg_graph *other = dg_graph_new();
    ck_assert_ptr_null(dg_slice(other, x, 0, 0, 1));
    expect_error(other, DG_ERR_FOREIGN_NODE, "slice: input 1");
    dg_graph_free(other);
    /* pad_slice: grad must be the slice's shape */
    dg_node *u = dg_input(g, "u", 2, (const int64_t[]){3, 3});
    struct dg_slice_attrs attrs = {.axis = 1, .start = 1, .end = 3};
    ck_assert_ptr_null(dg__make_node(g, DG_OP_pad_slice, 2, (dg_node *[]){u, x}, &attrs));
    expect_error(g, DG_ERR_SHAPE, "pad_slice: [3,3] is not the [1,3) slice along axis 1 of "
                 "[3,4]");
    dg_graph_free(g);
}
END_TEST

/* slice(x, 0, -2, -1) is the second-to-last row whatever the batch; its gradient too. A
 * positive range that stops fitting is reported by set_batch. */
START_TEST(test_slice_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){3, 2});
    dg_node *y = dg_slice(g, x, 0, -2, -1);
    dg_node *gx = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, dg_mul(g, y, y), 0, NULL, false), 1, &x, &gx),
                     DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gx});
    ck_assert_int_eq(dg_plan_set_batch(p, 5), DG_OK);
    float xs[10];
    iota(xs, 10);
    dg_feed(p, x, xs);
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("row -2 of 5", dg_data(p, y), (const float[]){6, 7}, 2);
    expect_values("grad of row -2 of 5", dg_data(p, gx),
                  (const float[]){0, 0, 0, 0, 0, 0, 12, 14, 0, 0}, 10);
    dg_plan_free(p);

    dg_node *fixed = dg_slice(g, x, 0, 1, 3);
    p = dg_compile(g, 1, &fixed);
    ck_assert_int_eq(dg_plan_set_batch(p, 2), DG_ERR_SHAPE);
    expect_error(g, DG_ERR_SHAPE, "slice: range [1,3) is out of range or empty along axis 0 of "
                 "[2,2]");
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- concat ---------------------------------------------------------------------------- */

START_TEST(test_concat_values)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 2});
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){2, 1});
    dg_node *c = dg_input(g, "c", 2, (const int64_t[]){2, 3});
    dg_node *cols = dg_concat(g, 3, (dg_node *[]){a, b, c}, -1);
    dg_node *rows = dg_concat(g, 2, (dg_node *[]){a, a}, 0);
    ck_assert_msg(cols && rows, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_node_dim(cols, 1), 6);
    ck_assert_int_eq(dg_node_dim(rows, 0), 4);
    /* gradient of sum(cols * w), w = 1..12: each input gets its columns of w */
    float w[12];
    for (int i = 0; i < 12; i++)
        w[i] = (float)(i + 1);
    dg_node *wn = dg_constant(g, 2, (const int64_t[]){2, 6}, w);
    dg_node *grads[3];
    ck_assert_int_eq(dg_grad(g, dg_sum(g, dg_mul(g, cols, wn), 0, NULL, false), 3,
                             (dg_node *[]){a, b, c}, grads), DG_OK);
    dg_plan *p = dg_compile(g, 5, (dg_node *[]){cols, rows, grads[0], grads[1], grads[2]});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    dg_feed(p, a, (const float[]){1, 2, 3, 4});
    dg_feed(p, b, (const float[]){5, 6});
    dg_feed(p, c, (const float[]){7, 8, 9, 10, 11, 12});
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("concat cols", dg_data(p, cols),
                  (const float[]){1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12}, 12);
    expect_values("concat rows", dg_data(p, rows), (const float[]){1, 2, 3, 4, 1, 2, 3, 4}, 8);
    expect_values("d a", dg_data(p, grads[0]), (const float[]){1, 2, 7, 8}, 4);
    expect_values("d b", dg_data(p, grads[1]), (const float[]){3, 9}, 2);
    expect_values("d c", dg_data(p, grads[2]), (const float[]){4, 5, 6, 10, 11, 12}, 6);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* concat along the batch axis: the backward's offsets come from the shapes at run time. */
START_TEST(test_concat_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){2, 2});
    dg_node *y = dg_input(g, "y", 2, (const int64_t[]){2, 2});
    dg_node *w = dg_param(g, "w", 2, (const int64_t[]){1, 2});
    float *wd = dg_param_data(w);
    wd[0] = 1, wd[1] = 10;
    dg_node *cat = dg_concat(g, 3, (dg_node *[]){x, w, y}, 0); /* [2B+1, 2] */
    dg_node *sq = dg_mul(g, cat, cat);
    dg_node *grads[3];
    ck_assert_int_eq(dg_grad(g, dg_sum(g, sq, 0, NULL, false), 3, (dg_node *[]){x, w, y},
                             grads), DG_OK);
    dg_plan *p = dg_compile(g, 4, (dg_node *[]){cat, grads[0], grads[1], grads[2]});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    for (int64_t batch = 1; batch <= 4; batch += 3) {
        ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
        ck_assert_int_eq(dg_plan_dim(p, cat, 0), 2 * batch + 1);
        float xs[8], ys[8], want_cat[18], want_x[8], want_y[8];
        for (int i = 0; i < 2 * batch; i++) {
            xs[i] = (float)(i + 1);
            ys[i] = (float)(-i - 1);
            want_x[i] = 2 * xs[i];
            want_y[i] = 2 * ys[i];
        }
        memcpy(want_cat, xs, (size_t)(2 * batch) * sizeof(float));
        want_cat[2 * batch] = 1, want_cat[2 * batch + 1] = 10;
        memcpy(want_cat + 2 * batch + 2, ys, (size_t)(2 * batch) * sizeof(float));
        dg_feed(p, x, xs);
        dg_feed(p, y, ys);
        ck_assert_int_eq(dg_run(p), DG_OK);
        expect_values("cat", dg_data(p, cat), want_cat, 4 * batch + 2);
        expect_values("dx", dg_data(p, grads[0]), want_x, 2 * batch);
        expect_values("dw", dg_data(p, grads[1]), (const float[]){2, 20}, 2);
        expect_values("dy", dg_data(p, grads[2]), want_y, 2 * batch);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_concat_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 3});
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){3, 3});
    dg_node *c = dg_input(g, "c", 1, (const int64_t[]){4});
    dg_node *d = dg_input(g, "d", 2, (const int64_t[]){2, 5});
    ck_assert_ptr_null(dg_concat(g, 4, (dg_node *[]){a, b, d, c}, 1));
    ck_assert_str_eq(dg_graph_error(g), "concat: inputs must match [2,3] except along axis 1; "
                                        "mismatching: input 2 [3,3] input 4 [4]");
    expect_error(g, DG_ERR_SHAPE, "concat");
    ck_assert_ptr_null(dg_concat(g, 2, (dg_node *[]){a, a}, 2));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: axis 2 is out of range for [2,3]");
    ck_assert_ptr_null(dg_concat(g, 0, (dg_node *[]){a}, 0));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: 0 inputs (at least 1 needed)");
    dg_node *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = a;
    ck_assert_ptr_nonnull(dg_concat(g, 17, many, 0)); /* no cap on inputs (there was one) */
    ck_assert_ptr_null(dg_concat(g, -1, many, 0));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: -1 inputs (at least 1 needed)");
    ck_assert_ptr_null(dg_concat(g, 2, NULL, 0));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: the input array is NULL");
    ck_assert_ptr_null(dg_concat(g, 2, (dg_node *[]){a, NULL}, 0));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: input 2 is NULL");
    ck_assert_ptr_null(dg_concat(g, 2, (dg_node *[]){NULL, a}, 0));
    expect_error(g, DG_ERR_INVALID_ARG, "concat: input 1 is NULL");
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 2, (const int64_t[]){2, 3});
    ck_assert_ptr_null(dg_concat(g, 2, (dg_node *[]){a, labels}, 0));
    expect_error(g, DG_ERR_DTYPE, "concat: input 2 is int32 but input 1 is float32");
    dg_graph *other = dg_graph_new();
    dg_node *o = dg_input(other, "o", 2, (const int64_t[]){2, 3});
    ck_assert_ptr_null(dg_concat(g, 2, (dg_node *[]){a, o}, 0));
    expect_error(g, DG_ERR_FOREIGN_NODE, "concat: input 2");
    dg_graph_free(other);

    /* 16 inputs concatenate and differentiate (their gradient's last piece has 17 inputs,
     * which was once over the cap) */
    dg_node *all = dg_concat(g, 16, many, 0);
    ck_assert_int_eq(dg_node_dim(all, 0), 32);
    dg_node *grad = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, all, 0, NULL, false), 1, &a, &grad), DG_OK);
    dg_plan *p16 = dg_compile(g, 1, &grad);
    dg_feed(p16, a, (const float[]){1, 2, 3, 4, 5, 6});
    ck_assert_int_eq(dg_run(p16), DG_OK);
    expect_values("16 pieces", dg_data(p16, grad), (const float[]){16, 16, 16, 16, 16, 16}, 6);
    dg_plan_free(p16);
    dg_node *fifteen = dg_concat(g, 15, many, 1);
    ck_assert_int_eq(dg_grad(g, dg_sum(g, fifteen, 0, NULL, false), 1, &a, &grad), DG_OK);
    dg_plan *p = dg_compile(g, 1, &grad);
    dg_feed(p, a, (const float[]){1, 2, 3, 4, 5, 6});
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("15 pieces", dg_data(p, grad), (const float[]){15, 15, 15, 15, 15, 15}, 6);
    dg_plan_free(p);

    /* the backward pieces check their shapes */
    struct dg_axis_attrs attrs = {.axis = 0};
    ck_assert_ptr_null(dg__make_node(g, DG_OP_concat_slice, 3, (dg_node *[]){a, a, b},
                                     &attrs));
    expect_error(g, DG_ERR_SHAPE, "concat_slice: [3,3] does not fit at offset 2 along axis 0 "
                 "of [2,3]");
    ck_assert_ptr_null(dg__make_node(g, DG_OP_concat_pad, 3, (dg_node *[]){b, a, a}, &attrs));
    expect_error(g, DG_ERR_SHAPE, "concat_pad: [3,3] does not fit at offset 2 along axis 0 of "
                 "[2,3]");
    ck_assert_ptr_null(dg__make_node(g, DG_OP_concat_slice, 1, (dg_node *[]){a}, &attrs));
    expect_error(g, DG_ERR_INVALID_ARG, "concat_slice: 1 inputs");
    dg_graph_free(g);
}
END_TEST

/* ---- stop_gradient, int32 values, threads ------------------------------------------- */

START_TEST(test_stop_gradient)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (const int64_t[]){3});
    dg_node *s = dg_stop_gradient(g, x);
    /* d sum(x * stop(x)) / dx = stop(x) = x, not 2x */
    dg_node *gx = NULL, *gs = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, dg_mul(g, x, s), 0, NULL, false), 1, &x, &gx), DG_OK);
    ck_assert_int_eq(dg_grad(g, dg_sum(g, s, 0, NULL, false), 1, &x, &gs), DG_OK);
    dg_plan *p = dg_compile(g, 3, (dg_node *[]){s, gx, gs});
    dg_feed(p, x, (const float[]){1, -2, 3});
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("stop", dg_data(p, s), (const float[]){1, -2, 3}, 3);
    expect_values("d x*stop(x)", dg_data(p, gx), (const float[]){1, -2, 3}, 3);
    expect_values("d stop(x)", dg_data(p, gs), (const float[]){0, 0, 0}, 3);
    dg_plan_free(p);
    ck_assert_ptr_null(dg_stop_gradient(g, NULL));
    expect_error(g, DG_ERR_INVALID_ARG, "stop_gradient: input 1 is NULL");
    dg_graph *other = dg_graph_new();
    ck_assert_ptr_null(dg_stop_gradient(other, x));
    expect_error(other, DG_ERR_FOREIGN_NODE, "stop_gradient: input 1");
    dg_graph_free(other);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_int32_values)
{
    dg_graph *g = dg_graph_new();
    dg_node *l = dg_input_typed(g, "l", DG_I32, 2, (const int64_t[]){2, 3});
    dg_node *outs[6] = {
        dg_reshape(g, l, 1, (const int64_t[]){6}),
        dg_transpose(g, l),
        dg_slice(g, l, 1, 1, 3),
        dg_concat(g, 2, (dg_node *[]){l, l}, 0),
        dg_broadcast_to(g, dg_reshape(g, l, 3, (const int64_t[]){2, 1, 3}), 3,
                        (const int64_t[]){2, 2, 3}),
        dg_stop_gradient(g, l),
    };
    ck_assert_msg(dg_graph_status(g) == DG_OK, "%s", dg_graph_error(g));
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(dg_node_dtype(outs[i]), DG_I32);
    dg_plan *p = dg_compile(g, 6, outs);
    const int32_t in[6] = {-1, 2000000001, 3, 4, 5, -6};
    dg_feed(p, l, in);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const int32_t transposed[6] = {-1, 4, 2000000001, 5, 3, -6};
    const int32_t sliced[4] = {2000000001, 3, 5, -6};
    const int32_t bcast[12] = {-1, 2000000001, 3, -1, 2000000001, 3, 4, 5, -6, 4, 5, -6};
    ck_assert(memcmp(dg_data_i32(p, outs[0]), in, sizeof in) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[1]), transposed, sizeof transposed) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[2]), sliced, sizeof sliced) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[3]), in, sizeof in) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[3]) + 6, in, sizeof in) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[4]), bcast, sizeof bcast) == 0);
    ck_assert(memcmp(dg_data_i32(p, outs[5]), in, sizeof in) == 0);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Large tensors (split across threads) give the same bytes on 1 and 4 threads. */
START_TEST(test_threads_bitwise_identical)
{
    enum { B = 3, R = 130, C = 170 };
    float *x = malloc(B * R * C * sizeof *x), *first[6];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    dg_test_fill_uniform(&rng, x, B * R * C, -1, 1);
    for (int threads = 1; threads <= 4; threads += 3) {
        dg_graph *g = dg_graph_new();
        dg_graph_set_threads(g, threads);
        dg_node *in = dg_input(g, "x", 3, (const int64_t[]){B, R, C});
        dg_node *outs[6] = {
            dg_reshape(g, in, 2, (const int64_t[]){-1, C}),
            dg_transpose(g, in),
            dg_permute(g, in, 3, (const int[]){2, 0, 1}),
            dg_slice(g, in, 1, 5, 120),
            dg_concat(g, 2, (dg_node *[]){in, in}, 2),
            dg_broadcast_to(g, dg_slice(g, in, 0, 0, 1), 3, (const int64_t[]){4, R, C}),
        };
        dg_plan *p = dg_compile(g, 6, outs);
        ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
        dg_feed(p, in, x);
        ck_assert_int_eq(dg_run(p), DG_OK);
        for (int i = 0; i < 6; i++) {
            size_t bytes = (size_t)dg_node_numel(outs[i]) * sizeof(float);
            if (threads == 1) {
                first[i] = malloc(bytes);
                memcpy(first[i], dg_data(p, outs[i]), bytes);
            } else {
                ck_assert_msg(memcmp(first[i], dg_data(p, outs[i]), bytes) == 0,
                              "output %d differs between 1 and 4 threads", i);
                free(first[i]);
            }
        }
        /* the reshape is a plain copy of x */
        ck_assert(memcmp(dg_data(p, outs[0]), x, B * R * C * sizeof *x) == 0);
        dg_plan_free(p);
        dg_graph_free(g);
    }
    free(x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_layout");
    TCase *reshape = tcase_create("reshape");
    tcase_add_test(reshape, test_reshape_values);
    tcase_add_test(reshape, test_reshape_errors);
    tcase_add_test(reshape, test_reshape_changed_batch);
    suite_add_tcase(s, reshape);
    TCase *permute = tcase_create("permute");
    tcase_add_loop_test(permute, test_permute_against_naive, 0,
                        (int)(sizeof perms / sizeof perms[0]));
    tcase_add_test(permute, test_transpose_values);
    tcase_add_test(permute, test_permute_errors);
    suite_add_tcase(s, permute);
    TCase *broadcast = tcase_create("broadcast_to");
    tcase_add_test(broadcast, test_broadcast_values);
    tcase_add_test(broadcast, test_broadcast_errors_and_batch);
    suite_add_tcase(s, broadcast);
    TCase *slice = tcase_create("slice");
    tcase_add_test(slice, test_slice_values);
    tcase_add_test(slice, test_slice_errors);
    tcase_add_test(slice, test_slice_changed_batch);
    suite_add_tcase(s, slice);
    TCase *concat = tcase_create("concat");
    tcase_add_test(concat, test_concat_values);
    tcase_add_test(concat, test_concat_changed_batch);
    tcase_add_test(concat, test_concat_errors);
    suite_add_tcase(s, concat);
    TCase *misc = tcase_create("misc");
    tcase_add_test(misc, test_stop_gradient);
    tcase_add_test(misc, test_int32_values);
    tcase_add_test(misc, test_threads_bitwise_identical);
    suite_add_tcase(s, misc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
