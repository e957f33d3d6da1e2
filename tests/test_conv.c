/*
 * Images beyond the op case table (which checks every conv and pool op against PyTorch and by
 * finite differences, tests/cases_conv.c, tests/cases_pool.c):
 *  - the im2col + GEMM kernels against the direct loops, and bitwise equal for 1, 2 and 3
 *    threads and for a workspace planned for fewer threads than the kernel is given (forward, backward-data, backward-weight; groups, stride, dilation, padding,
 *    1x1, a batch smaller than the thread count);
 *  - errors: a kernel larger than the padded input, channels not divisible by groups, stride
 *    0, a bad bias, bad pooling parameters, and a plan whose new input shape no longer fits:
 *    a status and a message naming the op and the shapes, never an abort;
 *  - max pooling's decisions: ties go to the first maximum, NaN propagates, padding is -inf;
 *  - second order through conv2d, conv_transpose2d, both poolings, both normalisations,
 *    nearest upsampling and reflect padding (dg_gradcheck of a loss
 *    built from first gradients);
 *  - gradients after dg_plan_set_batch, and across thread counts, bitwise;
 *  - a small convolutional autoencoder (conv down, conv_transpose2d up) that learns;
 *  - batch norm: running statistics (momentum, unbiased variance) and evaluation with them,
 *    from one plan whose mode is fed with the run key;
 *  - the layer helpers (names, torch's default bounds, seeding) and a tiny CNN with batch norm
 *    that learns a synthetic task (bars: horizontal or vertical) through dg_fit.
 */
#include "conv.h"
#include "pool.h"
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Kernels ----------------------------------------------------------------------------- */

static float *random_buffer(dg_test_rng *rng, int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    dg_test_fill_uniform(rng, p, n, -1.0f, 1.0f);
    return p;
}

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static void check_kernels(struct dg__conv_geom g)
{
    g.out_h = conv_out(g.in_h, g.k_h, g.stride_h, g.pad_h, g.dil_h);
    g.out_w = conv_out(g.in_w, g.k_w, g.stride_w, g.pad_w, g.dil_w);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, (uint64_t)(g.in_c * 131 + g.k_h * 7 + g.groups));
    int64_t nx = g.batch * g.in_c * g.in_h * g.in_w, ny = g.batch * g.out_c * g.out_h * g.out_w;
    int64_t nw = g.out_c * (g.in_c / g.groups) * g.k_h * g.k_w;
    float *x = random_buffer(&rng, nx), *w = random_buffer(&rng, nw);
    float *dy = random_buffer(&rng, ny), *bias = random_buffer(&rng, g.out_c);
    float *ref_y = malloc((size_t)ny * 4), *ref_dx = malloc((size_t)nx * 4);
    float *ref_dw = malloc((size_t)nw * 4);
    float *y[4], *dx[4], *dw[4];
    dg__conv_forward_direct(&g, x, w, bias, ref_y);
    dg__conv_backward_data_direct(&g, dy, w, NULL, ref_dx);
    dg__conv_backward_weight_direct(&g, x, dy, ref_dw);
    /* 1, 2 and 3 threads with the workspace each needs; then 3 threads with a workspace
     * planned for 1 (the kernel runs on fewer threads) */
    for (int t = 0; t < 4; t++) {
        int threads = t < 3 ? t + 1 : 3, planned = t < 3 ? t + 1 : 1;
        size_t floats = 0;
        for (int k = DG__CONV_FORWARD; k <= DG__CONV_WEIGHT; k++) {
            size_t f = dg__conv_workspace_floats(&g, (enum dg__conv_kernel)k, planned);
            floats = f > floats ? f : floats;
        }
        float *workspace = malloc((floats + 1) * sizeof *workspace);
        ck_assert_ptr_nonnull(workspace);
        struct dg_exec_ctx ctx = {.n_threads = threads, .workspace = workspace,
                                  .workspace_bytes = floats * sizeof *workspace};
        y[t] = malloc((size_t)ny * 4);
        dx[t] = malloc((size_t)nx * 4);
        dw[t] = malloc((size_t)nw * 4);
        dg__conv_forward(&g, x, w, bias, y[t], &ctx);
        dg__conv_backward_data(&g, dy, w, NULL, dx[t], &ctx);
        dg__conv_backward_weight(&g, x, dy, dw[t], &ctx);
        free(workspace);
        ck_assert_double_le(dg_test_max_rel_err(y[t], ref_y, ny, 1.0), 1e-5);
        ck_assert_double_le(dg_test_max_rel_err(dx[t], ref_dx, nx, 1.0), 1e-5);
        ck_assert_double_le(dg_test_max_rel_err(dw[t], ref_dw, nw, 1.0), 1e-5);
        if (t > 0) {
            ck_assert_msg(memcmp(y[t], y[0], (size_t)ny * 4) == 0, "forward differs, run %d", t);
            ck_assert_msg(memcmp(dx[t], dx[0], (size_t)nx * 4) == 0, "backward-data differs, "
                          "run %d", t);
            ck_assert_msg(memcmp(dw[t], dw[0], (size_t)nw * 4) == 0, "backward-weight differs, "
                          "run %d", t);
        }
    }
    for (int t = 0; t < 4; t++) {
        free(y[t]);
        free(dx[t]);
        free(dw[t]);
    }
    free(x); free(w); free(dy); free(bias); free(ref_y); free(ref_dx); free(ref_dw);
}

START_TEST(kernels_match_direct_loops)
{
    /* large enough to run on several threads (>= 2^18 multiply-adds) */
    check_kernels((struct dg__conv_geom){.batch = 10, .in_c = 4, .in_h = 12, .in_w = 12,
                                         .out_c = 8, .k_h = 3, .k_w = 3, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
    check_kernels((struct dg__conv_geom){.batch = 7, .in_c = 6, .in_h = 15, .in_w = 11,
                                         .out_c = 9, .k_h = 3, .k_w = 2, .groups = 3,
                                         .stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 0,
                                         .dil_h = 2, .dil_w = 1});
    /* depthwise, pointwise, one image (the GEMM takes the threads) */
    check_kernels((struct dg__conv_geom){.batch = 5, .in_c = 8, .in_h = 20, .in_w = 20,
                                         .out_c = 8, .k_h = 3, .k_w = 3, .groups = 8,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
    check_kernels((struct dg__conv_geom){.batch = 6, .in_c = 16, .in_h = 16, .in_w = 16,
                                         .out_c = 24, .k_h = 1, .k_w = 1, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0,
                                         .dil_h = 1, .dil_w = 1});
    check_kernels((struct dg__conv_geom){.batch = 1, .in_c = 8, .in_h = 28, .in_w = 28,
                                         .out_c = 16, .k_h = 5, .k_w = 5, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 2,
                                         .dil_h = 1, .dil_w = 1});
    /* stride 1 with as many output as input columns: im2col/col2im move whole shifted
     * planes (src/ops/conv_kernels.c); dilated, with fewer output rows than input rows, and
     * with more padding rows than the kernel reaches */
    check_kernels((struct dg__conv_geom){.batch = 4, .in_c = 3, .in_h = 9, .in_w = 13,
                                         .out_c = 5, .k_h = 3, .k_w = 3, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 2,
                                         .dil_h = 2, .dil_w = 2});
    check_kernels((struct dg__conv_geom){.batch = 3, .in_c = 2, .in_h = 7, .in_w = 6,
                                         .out_c = 4, .k_h = 5, .k_w = 3, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
    check_kernels((struct dg__conv_geom){.batch = 3, .in_c = 2, .in_h = 4, .in_w = 5,
                                         .out_c = 3, .k_h = 3, .k_w = 3, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 3, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
    /* the transposed forward product (Co/G <= 64, P >= 2 Co/G, Kg >= 32) with groups, and
     * pixel and channel counts that are not multiples of the 4x4 transpose blocks */
    check_kernels((struct dg__conv_geom){.batch = 5, .in_c = 8, .in_h = 9, .in_w = 7,
                                         .out_c = 6, .k_h = 3, .k_w = 3, .groups = 2,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
    check_kernels((struct dg__conv_geom){.batch = 3, .in_c = 4, .in_h = 10, .in_w = 10,
                                         .out_c = 40, .k_h = 3, .k_w = 3, .groups = 1,
                                         .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                         .dil_h = 1, .dil_w = 1});
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------ */

static void expect_error(dg_graph *g, dg_node *node, dg_status status, const char *const *parts)
{
    ck_assert_ptr_null(node);
    ck_assert_int_eq(dg_graph_status(g), status);
    const char *msg = dg_graph_error(g);
    for (int i = 0; parts[i] != NULL; i++)
        ck_assert_msg(strstr(msg, parts[i]) != NULL, "message '%s' lacks '%s'", msg, parts[i]);
    dg_graph_clear_error(g);
}

START_TEST(errors_name_the_op_and_shapes)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){1, 3, 3, 3});
    dg_node *w5 = dg_param(g, "w5", 4, (int64_t[]){2, 3, 5, 5});
    expect_error(g, dg_conv2d(g, x, w5, NULL, NULL), DG_ERR_SHAPE,
                 (const char *[]){"conv2d", "5x5", "[1,3,3,3]", NULL});
    dg_conv2d_params pad = DG_CONV2D_DEFAULTS;
    pad.padding[0] = pad.padding[1] = 1; /* now it fits */
    ck_assert_ptr_nonnull(dg_conv2d(g, x, w5, NULL, &pad));

    dg_node *w_groups = dg_param(g, "wg", 4, (int64_t[]){4, 1, 3, 3});
    dg_conv2d_params groups = DG_CONV2D_DEFAULTS;
    groups.groups = 2; /* 3 input channels, 2 groups */
    expect_error(g, dg_conv2d(g, x, w_groups, NULL, &groups), DG_ERR_SHAPE,
                 (const char *[]){"conv2d", "groups", "[1,3,3,3]", NULL});

    dg_node *w3 = dg_param(g, "w3", 4, (int64_t[]){2, 3, 3, 3});
    dg_conv2d_params stride0 = DG_CONV2D_DEFAULTS;
    stride0.stride[1] = 0;
    expect_error(g, dg_conv2d(g, x, w3, NULL, &stride0), DG_ERR_INVALID_ARG,
                 (const char *[]){"conv2d", "stride", NULL});
    dg_node *bad_bias = dg_param(g, "b", 1, (int64_t[]){3});
    expect_error(g, dg_conv2d(g, x, w3, bad_bias, NULL), DG_ERR_SHAPE,
                 (const char *[]){"conv2d", "bias", "[3]", NULL});
    dg_conv2d_params same = DG_CONV2D_DEFAULTS;
    same.same = true;
    same.stride[0] = 2;
    expect_error(g, dg_conv2d(g, x, w3, NULL, &same), DG_ERR_INVALID_ARG,
                 (const char *[]){"conv2d", "same", NULL});
    dg_node *x2 = dg_input(g, "x2", 3, (int64_t[]){3, 3, 3});
    expect_error(g, dg_conv2d(g, x2, w3, NULL, NULL), DG_ERR_SHAPE,
                 (const char *[]){"conv2d", "[3,3,3]", NULL});

    dg_conv2d_params outpad = DG_CONV2D_DEFAULTS;
    outpad.output_padding[0] = 1; /* not below stride 1 or dilation 1 */
    dg_node *wt = dg_param(g, "wt", 4, (int64_t[]){3, 2, 3, 3});
    expect_error(g, dg_conv_transpose2d(g, x, wt, NULL, &outpad), DG_ERR_INVALID_ARG,
                 (const char *[]){"conv_transpose2d", "output_padding", NULL});
    dg_node *wt_bad = dg_param(g, "wt_bad", 4, (int64_t[]){2, 2, 3, 3});
    expect_error(g, dg_conv_transpose2d(g, x, wt_bad, NULL, NULL), DG_ERR_SHAPE,
                 (const char *[]){"conv_transpose2d", "[1,3,3,3]", "[2,2,3,3]", NULL});

    dg_pool2d_params big = {.kernel = {4, 4}};
    expect_error(g, dg_max_pool2d(g, x, &big), DG_ERR_SHAPE,
                 (const char *[]){"max_pool2d", "4x4", "[1,3,3,3]", NULL});
    dg_pool2d_params wide_pad = {.kernel = {2, 2}, .padding = {2, 0}};
    expect_error(g, dg_avg_pool2d(g, x, &wide_pad), DG_ERR_INVALID_ARG,
                 (const char *[]){"avg_pool2d", "padding", "[1,3,3,3]", NULL});
    dg_pool2d_params stride0_pool = {.kernel = {2, 2}, .stride = {0, 1}};
    expect_error(g, dg_max_pool2d(g, x, &stride0_pool), DG_ERR_INVALID_ARG,
                 (const char *[]){"max_pool2d", "stride", NULL});
    expect_error(g, dg_adaptive_avg_pool2d(g, x, 0, 2), DG_ERR_INVALID_ARG,
                 (const char *[]){"adaptive_avg_pool2d", "[1,3,3,3]", NULL});
    expect_error(g, dg_max_pool2d(g, x, NULL), DG_ERR_INVALID_ARG,
                 (const char *[]){"max_pool2d", NULL});
    expect_error(g, dg_group_norm(g, x, 2, NULL, NULL, 1e-5f), DG_ERR_SHAPE,
                 (const char *[]){"group_norm", "groups", "[1,3,3,3]", NULL});
    dg_node *gamma4 = dg_param(g, "gamma4", 1, (int64_t[]){4});
    expect_error(g, dg_layer_norm(g, x, gamma4, gamma4, 1, 1e-5f), DG_ERR_SHAPE,
                 (const char *[]){"layer_norm", "[4]", "[1,3,3,3]", NULL});
    expect_error(g, dg_layer_norm(g, x, gamma4, NULL, 1, 1e-5f), DG_ERR_INVALID_ARG,
                 (const char *[]){"layer_norm", "gamma", NULL});
    expect_error(g, dg_pad2d(g, x, 3, 0, 0, 0, DG_PAD_REFLECT, 0.0f), DG_ERR_SHAPE,
                 (const char *[]){"pad2d", "reflect", "[1,3,3,3]", NULL});
    expect_error(g, dg_pad2d(g, x, -1, 0, 0, 0, DG_PAD_CONSTANT, 0.0f), DG_ERR_INVALID_ARG,
                 (const char *[]){"pad2d", "negative", NULL});
    expect_error(g, dg_upsample_nearest2d(g, x, 0, 2), DG_ERR_INVALID_ARG,
                 (const char *[]){"upsample_nearest2d", "[1,3,3,3]", NULL});

    /* A plan whose new input shape no longer fits the kernel: an error, not an abort. */
    dg_node *y = dg_conv2d(g, x, w3, NULL, NULL);
    ck_assert_ptr_nonnull(y);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_ne(dg_plan_set_input_shape(p, x, 4, (int64_t[]){1, 3, 2, 2}), DG_OK);
    ck_assert_msg(strstr(dg_graph_error(g), "conv2d") != NULL, "%s", dg_graph_error(g));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- Max pooling decisions ---------------------------------------------------------------- */

START_TEST(max_pool_ties_nan_and_padding)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){1, 1, 2, 4});
    dg_pool2d_params p2 = {.kernel = {2, 2}};
    dg_node *y = dg_max_pool2d(g, x, &p2);
    dg_node *gx = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, y, 0, NULL, false), 1, &x, &gx), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gx});
    ck_assert_ptr_nonnull(p);
    /* window 1: four equal values (the first gets the gradient); window 2: a NaN */
    const float ties[8] = {1, 1, 0, NAN, 1, 1, 5, 2};
    ck_assert_int_eq(dg_feed(p, x, ties), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *out = dg_data(p, y), *grad = dg_data(p, gx);
    ck_assert_float_eq_tol(out[0], 1.0f, 1e-6f);
    ck_assert(isnan(out[1]));
    const float want_grad[8] = {1, 0, 0, 1, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(grad[i], want_grad[i], 1e-6f);
    dg_plan_free(p);

    /* padding is -inf: an all-negative input never pools to 0 */
    dg_node *neg = dg_input(g, "neg", 4, (int64_t[]){1, 1, 2, 2});
    dg_pool2d_params padded = {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}};
    dg_node *z = dg_max_pool2d(g, neg, &padded);
    p = dg_compile(g, 1, &z);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_feed(p, neg, (const float[]){-4, -3, -2, -1}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(dg_data(p, z)[i], -1.0f, 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The tiled 2x2 stride-2 path of max pooling against the rule written out (first maximum in
 * row-major window order, a NaN taking over), on values full of ties, signed zeros, -inf and
 * NaN, for the forward, the gradient and the gather op, bit for bit; odd sizes leave a row and
 * a column that no window covers; 1 and 2 threads. */
static void check_max_2x2(const int64_t *shape, int threads)
{
    const int64_t n = shape[0] * shape[1], H = shape[2], W = shape[3], Ho = H / 2, Wo = W / 2;
    const int64_t x_numel = n * H * W, y_numel = n * Ho * Wo;
    const float pool_values[] = {-INFINITY, -1.0f, -0.0f, 0.0f, 1.0f, 2.0f, NAN};
    float *x = malloc((size_t)x_numel * sizeof *x), *gx = malloc((size_t)x_numel * sizeof *gx);
    float *dy = malloc((size_t)y_numel * sizeof *dy);
    float *want_y = malloc((size_t)y_numel * sizeof *want_y);
    float *want_dx = calloc((size_t)x_numel, sizeof *want_dx);
    float *want_gather = malloc((size_t)y_numel * sizeof *want_gather);
    dg_rng rng;
    dg_rng_seed(&rng, 11);
    for (int64_t i = 0; i < x_numel; i++) {
        /* mostly ties between a few values; a NaN in about one window in ten */
        uint32_t r = dg_rng_below(&rng, 40);
        x[i] = pool_values[r < 1 ? 6 : 1 + r % 5];
        if (r == 39)
            x[i] = -INFINITY;
        gx[i] = dg_rng_uniform(&rng) - 0.5f;
    }
    for (int64_t i = 0; i < y_numel; i++)
        dy[i] = dg_rng_uniform(&rng) - 0.5f;
    for (int64_t pl = 0; pl < n; pl++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                int64_t at = pl * H * W + 2 * oh * W + 2 * ow, best = at;
                float m = -INFINITY;
                for (int e = 0; e < 4; e++) {
                    int64_t i = at + (e >> 1) * W + (e & 1);
                    if (x[i] > m || isnan(x[i])) {
                        m = x[i];
                        best = i;
                    }
                }
                int64_t o = (pl * Ho + oh) * Wo + ow;
                want_y[o] = m;
                want_dx[best] += dy[o];
                want_gather[o] = gx[best];
            }
    dg_graph *g = dg_graph_new();
    dg_node *xn = dg_input(g, "x", 4, shape);
    dg_node *dyn = dg_input(g, "dy", 4, (int64_t[]){shape[0], shape[1], Ho, Wo});
    dg_node *gn = dg_input(g, "g", 4, shape);
    dg_pool2d_params p2 = {.kernel = {2, 2}};
    struct dg__pool_attrs a = {.kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1}};
    dg_node *outs[3] = {
        dg_max_pool2d(g, xn, &p2),
        dg__make_node(g, DG_OP_max_pool2d_grad, 2, (dg_node *[]){xn, dyn}, &a),
        dg__make_node(g, DG_OP_max_pool2d_gather, 2, (dg_node *[]){xn, gn}, &a),
    };
    dg_plan *p = dg_compile(g, 3, outs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    dg_plan_set_threads(p, threads);
    ck_assert_int_eq(dg_feed(p, xn, x), DG_OK);
    ck_assert_int_eq(dg_feed(p, dyn, dy), DG_OK);
    ck_assert_int_eq(dg_feed(p, gn, gx), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_mem_eq(dg_data(p, outs[0]), want_y, (size_t)y_numel * sizeof *want_y);
    ck_assert_mem_eq(dg_data(p, outs[1]), want_dx, (size_t)x_numel * sizeof *want_dx);
    ck_assert_mem_eq(dg_data(p, outs[2]), want_gather, (size_t)y_numel * sizeof *want_gather);
    dg_plan_free(p);
    dg_graph_free(g);
    free(x);
    free(gx);
    free(dy);
    free(want_y);
    free(want_dx);
    free(want_gather);
}

START_TEST(max_pool_2x2_matches_the_rule)
{
    for (int threads = 1; threads <= 2; threads++) {
        check_max_2x2((int64_t[]){2, 3, 7, 37}, threads);
        check_max_2x2((int64_t[]){1, 2, 6, 64}, threads);
    }
}
END_TEST

/* ---- Second order --------------------------------------------------------------------------- */

/* loss2 = sum(dL/dx * c1) + sum(dL/dw * c2) for L = sum(f(x, w)^2 * k), checked by
 * dg_gradcheck against central differences of the compiled first gradients. */
static void check_second_order(dg_node *(*f)(dg_graph *, dg_node *, dg_node *),
                               const int64_t *x_shape, const int64_t *w_shape)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, x_shape);
    dg_node *w = dg_param(g, "w", 4, w_shape);
    dg_rng rng;
    dg_rng_seed(&rng, 5);
    ck_assert_int_eq(dg_init_uniform(w, &rng, -1.0f, 1.0f), DG_OK);
    dg_node *y = f(g, x, w);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    dg_node *loss = dg_sum(g, dg_square(g, y), 0, NULL, false);
    dg_node *grads[2] = {NULL, NULL};
    ck_assert_msg(dg_grad(g, loss, 2, (dg_node *[]){x, w}, grads) == DG_OK, "%s",
                  dg_graph_error(g));
    int64_t nx = 1, nw = 1;
    for (int i = 0; i < 4; i++) {
        nx *= x_shape[i];
        nw *= w_shape[i];
    }
    float *c1 = malloc((size_t)nx * 4), *c2 = malloc((size_t)nw * 4), *xd = malloc((size_t)nx * 4);
    dg_test_rng trng;
    dg_test_rng_seed(&trng, 9);
    dg_test_fill_uniform(&trng, c1, nx, -1.0f, 1.0f);
    dg_test_fill_uniform(&trng, c2, nw, -1.0f, 1.0f);
    /* distinct, well-separated inputs: no argmax flips inside the stencil */
    for (int64_t i = 0; i < nx; i++)
        xd[i] = -2.0f + 4.0f * (float)((i * 37) % nx) / (float)nx;
    dg_node *k1 = dg_constant(g, 4, x_shape, c1), *k2 = dg_constant(g, 4, w_shape, c2);
    dg_node *loss2 = dg_add(g, dg_sum(g, dg_mul(g, grads[0], k1), 0, NULL, false),
                            dg_sum(g, dg_mul(g, grads[1], k2), 0, NULL, false));
    dg_gradcheck_report report;
    ck_assert_msg(dg_gradcheck(g, loss2, 2, (dg_node *[]){x, w}, 1, &x,
                               (const void *const[]){xd}, NULL, &report) == DG_OK,
                  "%s", dg_graph_error(g));
    ck_assert_msg(report.passed, "second order: %lld of %lld elements fail: %s",
                  (long long)report.n_failed, (long long)report.n_checked, report.summary);
    free(c1); free(c2); free(xd);
    dg_graph_free(g);
}

static dg_node *conv_strided(dg_graph *g, dg_node *x, dg_node *w)
{
    dg_conv2d_params p = DG_CONV2D_DEFAULTS;
    p.stride[0] = 2;
    p.padding[1] = 1;
    p.groups = 2;
    return dg_conv2d(g, x, w, NULL, &p);
}

static dg_node *convt_outpad(dg_graph *g, dg_node *x, dg_node *w)
{
    dg_conv2d_params p = DG_CONV2D_DEFAULTS;
    p.stride[0] = p.stride[1] = 2;
    p.padding[0] = 1;
    p.output_padding[0] = p.output_padding[1] = 1;
    return dg_conv_transpose2d(g, x, w, NULL, &p);
}

static dg_node *conv_then_max_pool(dg_graph *g, dg_node *x, dg_node *w)
{
    dg_conv2d_params same = DG_CONV2D_DEFAULTS;
    same.same = true;
    dg_pool2d_params p = {.kernel = {2, 2}};
    return dg_max_pool2d(g, dg_conv2d(g, x, w, NULL, &same), &p);
}

static dg_node *conv_then_avg_pools(dg_graph *g, dg_node *x, dg_node *w)
{
    dg_pool2d_params p = {.kernel = {2, 2}, .stride = {1, 1}, .count_include_pad = true};
    dg_node *h = dg_avg_pool2d(g, dg_conv2d(g, x, w, NULL, NULL), &p);
    return dg_adaptive_avg_pool2d(g, h, 2, 1);
}

/* y * ramp: sum(normalised^2) alone is a constant (the row length), whose gradients are
 * rounding noise; weighting the positions makes the loss depend on the inputs. */
static dg_node *weighted(dg_graph *g, dg_node *y)
{
    int64_t shape[4], n = dg_node_numel(y);
    for (int i = 0; i < 4; i++)
        shape[i] = dg_node_dim(y, i);
    float *ramp = malloc((size_t)n * sizeof *ramp);
    for (int64_t i = 0; i < n; i++)
        ramp[i] = 0.5f + (float)((i * 7) % 11) / 11.0f;
    dg_node *k = dg_constant(g, 4, shape, ramp);
    free(ramp);
    return dg_mul(g, y, k);
}

static dg_node *conv_then_group_norm(dg_graph *g, dg_node *x, dg_node *w)
{
    return weighted(g, dg_group_norm(g, dg_conv2d(g, x, w, NULL, NULL), 2, NULL, NULL, 1e-5f));
}

static dg_node *conv_then_layer_norm(dg_graph *g, dg_node *x, dg_node *w)
{
    return weighted(g, dg_layer_norm(g, dg_conv2d(g, x, w, NULL, NULL), NULL, NULL, 2, 1e-5f));
}

static dg_node *conv_upsample_pad(dg_graph *g, dg_node *x, dg_node *w)
{
    dg_node *up = dg_upsample_nearest2d(g, dg_conv2d(g, x, w, NULL, NULL), 2, 1);
    return dg_pad2d(g, up, 1, 2, 2, 1, DG_PAD_REFLECT, 0.0f);
}

START_TEST(second_order)
{
    check_second_order(conv_strided, (int64_t[]){2, 4, 5, 4}, (int64_t[]){4, 2, 3, 2});
    check_second_order(convt_outpad, (int64_t[]){1, 2, 3, 3}, (int64_t[]){2, 3, 3, 2});
    check_second_order(conv_then_max_pool, (int64_t[]){1, 2, 4, 4}, (int64_t[]){3, 2, 3, 3});
    check_second_order(conv_then_avg_pools, (int64_t[]){2, 2, 5, 4}, (int64_t[]){2, 2, 2, 2});
    check_second_order(conv_then_group_norm, (int64_t[]){2, 2, 4, 4}, (int64_t[]){4, 2, 2, 2});
    check_second_order(conv_then_layer_norm, (int64_t[]){2, 2, 4, 4}, (int64_t[]){3, 2, 2, 2});
    check_second_order(conv_upsample_pad, (int64_t[]){1, 2, 4, 5}, (int64_t[]){2, 2, 2, 2});
}
END_TEST

/* ---- Plans: a new batch, thread counts -------------------------------------------------- */

struct small_cnn {
    dg_graph *g;
    dg_node *x, *loss, *grads[5], *gx;
};

static struct small_cnn small_cnn(int64_t batch)
{
    struct small_cnn m;
    m.g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 3);
    m.x = dg_input(m.g, "x", 4, (int64_t[]){batch, 2, 10, 10});
    dg_conv2d_params same = DG_CONV2D_DEFAULTS;
    same.same = true;
    dg_node *h = dg_conv2d_layer(m.g, m.x, 8, 3, 3, &same, true, DG_ACT_RELU, "c1", &rng);
    h = dg_max_pool2d_layer(m.g, h, 2);
    h = dg_conv2d_layer(m.g, h, 6, 3, 3, NULL, true, DG_ACT_RELU, "c2", &rng);
    h = dg_dense(m.g, dg_flatten(m.g, h), 3, DG_ACT_NONE, "fc", &rng);
    m.loss = dg_sum(m.g, dg_square(m.g, h), 0, NULL, false);
    dg_node *wrt[5] = {m.x, dg_graph_find(m.g, "c1.weight"), dg_graph_find(m.g, "c1.bias"),
                       dg_graph_find(m.g, "c2.weight"), dg_graph_find(m.g, "fc.weight")};
    ck_assert_msg(dg_grad(m.g, m.loss, 5, wrt, m.grads) == DG_OK, "%s", dg_graph_error(m.g));
    m.gx = m.grads[0];
    return m;
}

static dg_plan *run_cnn(struct small_cnn *m, int64_t batch, const float *x, int threads)
{
    dg_plan *p = dg_compile(m->g, 5, m->grads);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(m->g));
    ck_assert_int_eq(dg_plan_set_threads(p, threads), DG_OK);
    ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
    ck_assert_int_eq(dg_feed(p, m->x, x), DG_OK);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(m->g));
    return p;
}

START_TEST(set_batch_and_threads)
{
    enum { BIG = 24, PER = 2 * 10 * 10 };
    float *x = malloc(BIG * PER * sizeof *x);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, x, BIG * PER, -1.0f, 1.0f);
    struct small_cnn m = small_cnn(2);
    /* the same graph at batch 2 and (after dg_plan_set_batch) 24: per-example input
     * gradients agree, and the weight gradient sums over the batch */
    dg_plan *small = run_cnn(&m, 2, x, 1);
    dg_plan *big1 = run_cnn(&m, BIG, x, 1);
    ck_assert_int_eq(dg_plan_dim(big1, m.gx, 0), BIG);
    ck_assert_double_le(dg_test_max_rel_err(dg_data(big1, m.gx), dg_data(small, m.gx), 2 * PER,
                                            1.0), 1e-6);
    /* bitwise equal for 1, 2 and 3 threads */
    for (int threads = 2; threads <= 3; threads++) {
        dg_plan *big = run_cnn(&m, BIG, x, threads);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(memcmp(dg_data(big, m.grads[i]), dg_data(big1, m.grads[i]),
                                 (size_t)dg_plan_numel(big, m.grads[i]) * 4) == 0,
                          "gradient %d differs with %d threads", i, threads);
        dg_plan_free(big);
    }
    dg_plan_free(small);
    dg_plan_free(big1);
    dg_graph_free(m.g);
    free(x);
}
END_TEST

/* ---- Layers ----------------------------------------------------------------------------------- */

START_TEST(conv_layer_parameters)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){2, 4, 6, 6});
    dg_conv2d_params depthwise = DG_CONV2D_DEFAULTS;
    depthwise.groups = 4;
    dg_node *y = dg_conv2d_layer(g, x, 8, 3, 2, &depthwise, true, DG_ACT_NONE, "c", &rng);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(dg_node_dim(y, 1), 8);
    ck_assert_int_eq(dg_node_dim(y, 2), 4);
    ck_assert_int_eq(dg_node_dim(y, 3), 5);
    dg_node *w = dg_graph_find(g, "c.weight"), *b = dg_graph_find(g, "c.bias");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(dg_node_dim(w, 0), 8);
    ck_assert_int_eq(dg_node_dim(w, 1), 1);
    /* torch.nn.Conv2d's default bound 1/sqrt(fan_in), fan_in = 1 * 3 * 2 */
    float bound = 1.0f / sqrtf(6.0f), max_abs = 0.0f;
    for (int64_t i = 0; i < dg_node_numel(w); i++)
        max_abs = fmaxf(max_abs, fabsf(dg_param_data(w)[i]));
    for (int64_t i = 0; i < dg_node_numel(b); i++)
        max_abs = fmaxf(max_abs, fabsf(dg_param_data(b)[i]));
    ck_assert_float_le(max_abs, bound);
    ck_assert_float_ge(max_abs, 0.5f * bound);
    /* the same seed draws the same parameters; no rng leaves them zero; no bias, no param */
    dg_graph *g2 = dg_graph_new();
    dg_rng_seed(&rng, 1);
    dg_node *x2 = dg_input(g2, "x", 4, (int64_t[]){2, 4, 6, 6});
    dg_conv2d_layer(g2, x2, 8, 3, 2, &depthwise, true, DG_ACT_NONE, "c", &rng);
    ck_assert_int_eq(memcmp(dg_param_data(dg_graph_find(g2, "c.weight")), dg_param_data(w),
                            (size_t)dg_node_numel(w) * 4), 0);
    dg_conv2d_layer(g2, x2, 2, 1, 1, NULL, false, DG_ACT_RELU, "d", NULL);
    ck_assert_float_eq_tol(dg_param_data(dg_graph_find(g2, "d.weight"))[0], 0.0f, 1e-6f);
    ck_assert_ptr_null(dg__find_name(g2, "d.bias"));
    ck_assert_int_eq(dg_graph_status(g2), DG_OK);
    /* errors name the layer */
    ck_assert_ptr_null(dg_conv2d_layer(g2, x2, 8, 3, 3, &(dg_conv2d_params){.stride = {1, 1},
                                       .dilation = {1, 1}, .groups = 3}, true, DG_ACT_NONE,
                                       "bad", &rng));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g2), "'bad'"));
    dg_graph_free(g2);
    /* flatten and global pooling follow the shapes */
    dg_node *flat = dg_flatten(g, y);
    ck_assert_int_eq(dg_node_ndim(flat), 2);
    ck_assert_int_eq(dg_node_dim(flat, 1), 8 * 4 * 5);
    dg_node *gap = dg_global_avg_pool2d(g, y);
    ck_assert_int_eq(dg_node_ndim(gap), 2);
    ck_assert_int_eq(dg_node_dim(gap, 1), 8);
    dg_graph_free(g);
}
END_TEST

/* ---- Batch norm: train/eval is a property of the run ---------------------------------- */

START_TEST(batch_norm_running_statistics)
{
    enum { B = 4, C = 2, S = 3 * 3 };
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){B, C, 3, 3});
    dg_node *rm = NULL, *rv = NULL;
    dg_node *y = dg_batch_norm_layer(g, x, 0.1f, 1e-5f, "bn", &rm, &rv);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    static float batches[2][B * C * S];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 13);
    dg_test_fill_uniform(&rng, batches[0], B * C * S, -1.0f, 3.0f);
    dg_test_fill_uniform(&rng, batches[1], B * C * S, -2.0f, 1.0f);
    double want_mean[C] = {0.0, 0.0}, want_var[C] = {1.0, 1.0};
    for (int step = 0; step < 2; step++) {
        ck_assert_int_eq(dg_dropout_feed_key(p, 1, step, true), DG_OK);
        ck_assert_int_eq(dg_feed(p, x, batches[step]), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        for (int c = 0; c < C; c++) {
            double sum = 0, sq = 0;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < S; i++)
                    sum += batches[step][(b * C + c) * S + i];
            double mean = sum / (B * S);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < S; i++) {
                    double d = batches[step][(b * C + c) * S + i] - mean;
                    sq += d * d;
                }
            /* training output: normalised with the batch's biased variance */
            double out0 = (batches[step][c * S] - mean) / sqrt(sq / (B * S) + 1e-5);
            ck_assert_double_eq_tol(dg_data(p, y)[c * S], out0, 1e-5);
            want_mean[c] = 0.9 * want_mean[c] + 0.1 * mean;
            want_var[c] = 0.9 * want_var[c] + 0.1 * sq / (B * S - 1); /* unbiased */
        }
    }
    for (int c = 0; c < C; c++) {
        ck_assert_double_eq_tol(dg_data(p, rm)[c], want_mean[c], 1e-6);
        ck_assert_double_eq_tol(dg_data(p, rv)[c], want_var[c], 1e-6);
    }
    /* the same plan in evaluation: running statistics used, not changed */
    ck_assert_int_eq(dg_dropout_feed_key(p, 1, 2, false), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int c = 0; c < C; c++) {
        double out0 = (batches[1][c * S] - want_mean[c]) / sqrt(want_var[c] + 1e-5);
        ck_assert_double_eq_tol(dg_data(p, y)[c * S], out0, 1e-5);
        ck_assert_double_eq_tol(dg_data(p, rm)[c], want_mean[c], 1e-6);
    }
    /* errors */
    dg_node *bad = dg_batch_norm(g, x, NULL, NULL, x, x, dg_dropout_key(g), 0.1f, 1e-5f);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "constants"));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- A tiny CNN learns bars ----------------------------------------------------------------- */

enum { SIDE = 8, N_TRAIN = 512 };

/* Class 0: a horizontal bar on a random row; class 1: a vertical bar; plus uniform noise. */
static void make_bars(uint64_t seed, float *x, int32_t *y, int n)
{
    dg_rng rng;
    dg_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        float *img = x + i * SIDE * SIDE;
        for (int p = 0; p < SIDE * SIDE; p++)
            img[p] = 0.3f * dg_rng_uniform(&rng);
        int cls = (int)dg_rng_below(&rng, 2), at = (int)dg_rng_below(&rng, SIDE);
        for (int t = 0; t < SIDE; t++)
            img[cls == 0 ? at * SIDE + t : t * SIDE + at] += 1.0f;
        y[i] = cls;
    }
}

START_TEST(tiny_cnn_learns_bars)
{
    static float x_train[N_TRAIN * SIDE * SIDE];
    static int32_t y_train[N_TRAIN];
    make_bars(21, x_train, y_train, N_TRAIN);
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){32, 1, SIDE, SIDE});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){32});
    dg_conv2d_params same = DG_CONV2D_DEFAULTS;
    same.same = true;
    dg_node *h = dg_conv2d_layer(g, x, 4, 3, 3, &same, false, DG_ACT_NONE, "conv", &rng);
    h = dg_relu(g, dg_batch_norm_layer(g, h, 0.1f, 1e-5f, "bn", NULL, NULL));
    h = dg_max_pool2d_layer(g, h, 2);
    dg_node *logits = dg_dense(g, dg_flatten(g, h), 2, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[8], *grads[8];
    int n = 0;
    ck_assert_msg(dg_grad_params(g, loss, 8, params, grads, &n) == DG_OK, "%s",
                  dg_graph_error(g));
    ck_assert_int_eq(n, 5); /* conv weight, bn weight and bias, fc weight and bias */
    dg_adam_config adam_cfg = DG_ADAM_DEFAULTS;
    adam_cfg.lr = 1e-2;
    dg_optim *adam = dg_optim_new_adam(n, params, grads, &adam_cfg);
    ck_assert_int_eq(dg_optim_status(adam), DG_OK);
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 6;
    cfg.batch_size = 32;
    cfg.verbose = 0;
    cfg.seed = 4;
    dg_fit_data train = {.x = x_train, .y = y_train, .n = N_TRAIN};
    dg_epoch_stats history[6];
    ck_assert_msg(dg_fit(&model, adam, &train, NULL, &cfg, history) == DG_OK, "%s",
                  dg_graph_error(g));
    ck_assert_double_lt(history[5].loss, history[0].loss);
    static float x_test[256 * SIDE * SIDE];
    static int32_t y_test[256];
    make_bars(99, x_test, y_test, 256);
    dg_fit_data test = {.x = x_test, .y = y_test, .n = 256};
    dg_epoch_stats final;
    ck_assert_int_eq(dg_evaluate(&model, &test, NULL, &final), DG_OK);
    ck_assert_double_ge(final.accuracy, 0.95);
    dg_optim_free(adam);
    dg_graph_free(g);
}
END_TEST

/* A small convolutional autoencoder (strided conv down, conv_transpose2d up) reconstructs
 * the bars: the MSE falls to well below the loss of predicting the mean image. */
START_TEST(conv_autoencoder_learns)
{
    static float x_train[N_TRAIN * SIDE * SIDE];
    static int32_t labels[N_TRAIN];
    make_bars(5, x_train, labels, N_TRAIN);
    dg_rng rng;
    dg_rng_seed(&rng, 8);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){32, 1, SIDE, SIDE});
    dg_node *target = dg_input(g, "target", 4, (int64_t[]){32, 1, SIDE, SIDE});
    dg_conv2d_params down = DG_CONV2D_DEFAULTS;
    down.stride[0] = down.stride[1] = 2;
    down.padding[0] = down.padding[1] = 1;
    dg_node *code = dg_conv2d_layer(g, x, 8, 3, 3, &down, true, DG_ACT_RELU, "enc", &rng);
    dg_node *w = dg_param(g, "dec.weight", 4, (int64_t[]){8, 1, 3, 3});
    dg_node *b = dg_param(g, "dec.bias", 1, (int64_t[]){1});
    ck_assert_int_eq(dg_init_uniform(w, &rng, -0.3f, 0.3f), DG_OK);
    dg_conv2d_params up = down;
    up.output_padding[0] = up.output_padding[1] = 1; /* 4x4 -> 8x8 */
    dg_node *recon = dg_conv_transpose2d(g, code, w, b, &up);
    ck_assert_msg(recon != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_node_dim(recon, 2), SIDE);
    dg_node *loss = dg_mse_loss(g, recon, target);
    dg_node *params[8], *grads[8];
    int n = 0;
    ck_assert_msg(dg_grad_params(g, loss, 8, params, grads, &n) == DG_OK, "%s",
                  dg_graph_error(g));
    dg_adam_config cfg_adam = DG_ADAM_DEFAULTS;
    cfg_adam.lr = 1e-2;
    dg_optim *adam = dg_optim_new_adam(n, params, grads, &cfg_adam);
    dg_node *outs[9] = {loss};
    for (int i = 0; i < n; i++)
        outs[1 + i] = grads[i];
    dg_plan *p = dg_compile(g, 1 + n, outs);
    ck_assert_ptr_nonnull(p);
    double first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        const float *batch = x_train + (step % (N_TRAIN / 32)) * 32 * SIDE * SIDE;
        ck_assert_int_eq(dg_feed(p, x, batch), DG_OK);
        ck_assert_int_eq(dg_feed(p, target, batch), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        ck_assert_int_eq(dg_optim_step(adam, p), DG_OK);
        if (step == 0)
            first = dg_data(p, loss)[0];
        last = dg_data(p, loss)[0];
    }
    /* the bars' pixel variance around the mean image is about 0.11; the reconstruction must
     * do far better than the mean and than where it started */
    ck_assert_double_lt(last, 0.25 * first);
    ck_assert_double_lt(last, 0.03);
    dg_plan_free(p);
    dg_optim_free(adam);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kernels_match_direct_loops);
    tcase_add_test(tc, errors_name_the_op_and_shapes);
    tcase_add_test(tc, max_pool_ties_nan_and_padding);
    tcase_add_test(tc, max_pool_2x2_matches_the_rule);
    tcase_add_test(tc, second_order);
    tcase_add_test(tc, set_batch_and_threads);
    tcase_add_test(tc, conv_layer_parameters);
    tcase_add_test(tc, batch_norm_running_statistics);
    tcase_add_test(tc, tiny_cnn_learns_bars);
    tcase_add_test(tc, conv_autoencoder_learns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
