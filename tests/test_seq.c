/*
 * Sequence ops beyond the op table (tests/cases_seq.c covers forward and gradients against
 * PyTorch): embedding's run-time index check and the thread-count determinism of its
 * scatter-add gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

/* A lookup of [n] indices in a [v, d] table, with the table's gradient as a second output. */
struct emb_graph {
    dg_graph *g;
    dg_node *table, *indices, *out, *grad;
    dg_plan *plan;
};

static void emb_build(struct emb_graph *e, int64_t v, int64_t d, int64_t n, int threads)
{
    e->g = dg_graph_new();
    dg_graph_set_threads(e->g, threads);
    e->table = dg_param(e->g, "table", 2, (int64_t[]){v, d});
    e->indices = dg_input_typed(e->g, "idx", DG_I32, 1, (int64_t[]){n});
    e->out = dg_embedding(e->g, e->table, e->indices);
    ck_assert_ptr_nonnull(e->out);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, dg_param_data(e->table), v * d, -1, 1);
    /* loss = sum(tanh(out)^2): a different upstream gradient for every element */
    dg_node *loss = dg_sum(e->g, dg_square(e->g, dg_tanh(e->g, e->out)), 0, NULL, false);
    ck_assert_int_eq(dg_grad(e->g, loss, 1, &e->table, &e->grad), DG_OK);
    e->plan = dg_compile(e->g, 2, (dg_node *[]){e->out, e->grad});
    ck_assert_ptr_nonnull(e->plan);
}

static void emb_free(struct emb_graph *e)
{
    dg_plan_free(e->plan);
    dg_graph_free(e->g);
}

START_TEST(embedding_index_out_of_range_is_a_run_error)
{
    struct emb_graph e;
    emb_build(&e, 10, 4, 6, 1);
    int32_t good[6] = {0, 9, 3, 3, 1, 2};
    ck_assert_int_eq(dg_feed(e.plan, e.indices, good), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_OK);
    int32_t bad[6] = {0, 9, 3, 12, 1, -1};
    ck_assert_int_eq(dg_feed(e.plan, e.indices, bad), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_ERR_INVALID_ARG);
    const char *msg = dg_graph_error(e.g);
    ck_assert_msg(strstr(msg, "embedding: index 12 at position 3 is outside [0, 10)") != NULL,
                  "message: %s", msg);
    ck_assert_msg(strstr(msg, "(embedding)") != NULL, "the node is named: %s", msg);
    /* Fixed data runs again. */
    dg_graph_clear_error(e.g);
    ck_assert_int_eq(dg_feed(e.plan, e.indices, good), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_OK);
    ck_assert_float_eq_tol(dg_data(e.plan, e.out)[4], dg_param_data(e.table)[36], 1e-7f);
    emb_free(&e);
}
END_TEST

/* The gradient step alone (the forward pruned away) also checks its indices. */
START_TEST(embedding_grad_checks_indices)
{
    dg_graph *g = dg_graph_new();
    dg_node *table = dg_param(g, "table", 2, (int64_t[]){3, 2});
    dg_node *idx = dg_input_typed(g, "idx", DG_I32, 1, (int64_t[]){2});
    dg_node *loss = dg_sum(g, dg_embedding(g, table, idx), 0, NULL, false), *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &table, &grad), DG_OK);
    dg_plan *p = dg_compile(g, 1, &grad);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_feed(p, idx, (int32_t[]){1, 3}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_ERR_INVALID_ARG);
    ck_assert_msg(strstr(dg_graph_error(g), "index 3 at position 1 is outside [0, 3)") != NULL,
                  "message: %s", dg_graph_error(g));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(embedding_shape_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *table = dg_param(g, "table", 2, (int64_t[]){3, 2});
    dg_node *fidx = dg_input(g, "f", 1, (int64_t[]){2});
    ck_assert_ptr_null(dg_embedding(g, table, fidx));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "embedding: indices must be int32"));
    dg_graph_clear_error(g);
    dg_node *idx = dg_input_typed(g, "i", DG_I32, 1, (int64_t[]){2});
    dg_node *flat = dg_param(g, "flat", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_embedding(g, flat, idx));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "embedding: table must be float32 [V,D]"));
    dg_graph_free(g);
}
END_TEST

/* Many repeats of few rows, large enough to split between threads: the table's gradient has
 * the same bits at 1, 2, 3 and 4 threads. */
START_TEST(embedding_grad_same_bits_any_threads)
{
    const int64_t v = 97, d = 96, n = 4096;
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    for (int64_t i = 0; i < n; i++)
        idx[i] = (int32_t)(dg_test_rng_next(&rng) % 13 * 7 % v);
    float *first = malloc((size_t)(v * d) * sizeof *first);
    for (int threads = 1; threads <= 4; threads++) {
        struct emb_graph e;
        emb_build(&e, v, d, n, threads);
        ck_assert_int_eq(dg_plan_threads(e.plan), threads);
        ck_assert_int_eq(dg_feed(e.plan, e.indices, idx), DG_OK);
        ck_assert_int_eq(dg_run(e.plan), DG_OK);
        const float *grad = dg_data(e.plan, e.grad);
        if (threads == 1)
            memcpy(first, grad, (size_t)(v * d) * sizeof *first);
        else
            ck_assert_msg(memcmp(first, grad, (size_t)(v * d) * sizeof *first) == 0,
                          "embedding gradient differs at %d threads", threads);
        emb_free(&e);
    }
    /* and it is not trivially zero */
    double total = 0;
    for (int64_t i = 0; i < v * d; i++)
        total += first[i] * first[i];
    ck_assert_double_gt(total, 1.0);
    free(first);
    free(idx);
}
END_TEST

/* Runs a one-input graph x [n] -> out and returns dg_data (float) or dg_data_i32 of out. */
static dg_plan *run_unary(dg_graph *g, dg_node *x, dg_node *out, const float *data)
{
    ck_assert_msg(out != NULL, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, 1, &out);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    return p;
}

/* The documented special values: argmax/argmin with NaN and ties, cast saturation and NaN,
 * logsumexp of a -inf slice, clamp's argument check, where's shape error. */
START_TEST(selection_special_values)
{
    const float nan = __builtin_nanf(""), inf = __builtin_inff();
    float data[8] = {1.0f, 3.0f, nan, 3.0f, -2.0f, -2.0f, 5.0f, 0.0f};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 4});
    dg_plan *p = run_unary(g, x, dg_argmax(g, x, 1), data);
    const int32_t *am = dg_data_i32(p, dg_graph_node(g, dg_graph_node_count(g) - 1));
    ck_assert_int_eq(am[0], 2); /* the NaN */
    ck_assert_int_eq(am[1], 2); /* 5 */
    dg_plan_free(p);
    p = run_unary(g, x, dg_argmin(g, x, -1), data);
    am = dg_data_i32(p, dg_graph_node(g, dg_graph_node_count(g) - 1));
    ck_assert_int_eq(am[0], 2); /* the NaN wins for argmin too */
    ck_assert_int_eq(am[1], 0); /* the first of the tied -2 */
    dg_plan_free(p);

    float big[8] = {3e9f, -3e9f, nan, -2.7f, 2.7f, inf, -inf, 16777217.0f};
    p = run_unary(g, x, dg_cast(g, x, DG_I32), big);
    const int32_t *c = dg_data_i32(p, dg_graph_node(g, dg_graph_node_count(g) - 1));
    ck_assert_int_eq(c[0], INT32_MAX);
    ck_assert_int_eq(c[1], INT32_MIN);
    ck_assert_int_eq(c[2], 0);
    ck_assert_int_eq(c[3], -2);
    ck_assert_int_eq(c[4], 2);
    ck_assert_int_eq(c[5], INT32_MAX);
    ck_assert_int_eq(c[6], INT32_MIN);
    dg_plan_free(p);
    ck_assert_ptr_eq(dg_cast(g, x, DG_F32), x);

    float rows[8] = {-inf, -inf, -inf, -inf, 1.0f, inf, 0.0f, 2.0f};
    dg_node *lse = dg_logsumexp(g, x, 1, false);
    p = run_unary(g, x, lse, rows);
    const float *l = dg_data(p, lse);
    ck_assert(l[0] == -inf);
    ck_assert(l[1] == inf);
    dg_plan_free(p);

    ck_assert_ptr_null(dg_clamp(g, x, 1.0f, -1.0f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    dg_node *y = dg_input(g, "y", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_where(g, x, x, y));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "where: shapes [2,4] (cond), [2,4] (a) and "
                                 "[3] (b) do not broadcast"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_argmax(g, x, 2));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_free(g);
}
END_TEST

/* ---- attention ------------------------------------------------------------------------- */

struct att_graph {
    dg_graph *g;
    dg_node *q, *k, *v, *key, *out, *grads[3];
    dg_plan *plan;
};

/* q, k, v [2,3,t,dh] inputs filled from a fixed seed; composed: matmul + (masked) softmax +
 * matmul instead of the fused op. The loss is sum(out * w) for a fixed w. */
static void att_build(struct att_graph *a, int64_t t, int64_t dh, bool causal, bool composed,
                      float p, int threads)
{
    const int64_t shape[4] = {2, 3, t, dh};
    a->g = dg_graph_new();
    dg_graph_set_threads(a->g, threads);
    a->q = dg_input(a->g, "q", 4, shape);
    a->k = dg_input(a->g, "k", 4, shape);
    a->v = dg_input(a->g, "v", 4, shape);
    a->key = p > 0 ? dg_dropout_key(a->g) : NULL;
    if (composed) {
        dg_node *scores = dg_scale(a->g, dg_matmul_ex(a->g, a->q, a->k, false, true),
                                   1.0f / sqrtf((float)dh));
        dg_node *weights = causal ? dg_masked_softmax(a->g, scores, dg_causal_mask(a->g, t), -1)
                                  : dg_softmax(a->g, scores, -1);
        a->out = dg_matmul(a->g, weights, a->v);
    } else {
        a->out = dg_attention(a->g, a->q, a->k, a->v, a->key, causal, p);
    }
    ck_assert_msg(a->out != NULL, "%s", dg_graph_error(a->g));
    int64_t n = 2 * 3 * t * dh;
    float *w = malloc((size_t)n * sizeof *w);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, w, n, -1, 1);
    dg_node *loss = dg_sum(a->g, dg_mul(a->g, a->out, dg_constant(a->g, 4, shape, w)), 0, NULL,
                           false);
    free(w);
    ck_assert_int_eq(dg_grad(a->g, loss, 3, (dg_node *[]){a->q, a->k, a->v}, a->grads), DG_OK);
    dg_node *outs[4] = {a->out, a->grads[0], a->grads[1], a->grads[2]};
    a->plan = dg_compile(a->g, 4, outs);
    ck_assert_ptr_nonnull(a->plan);
    float *data = malloc((size_t)n * sizeof *data);
    dg_node *ins[3] = {a->q, a->k, a->v};
    for (int i = 0; i < 3; i++) {
        dg_test_fill_uniform(&rng, data, n, -2, 2);
        ck_assert_int_eq(dg_feed(a->plan, ins[i], data), DG_OK);
    }
    free(data);
}

static void att_free(struct att_graph *a)
{
    dg_plan_free(a->plan);
    dg_graph_free(a->g);
}

/* The fused op equals the composed one (matmul, softmax, matmul) in value and gradients,
 * causal and not: T = 150 through the whole-head kernels (several bands, ragged edges of the
 * 16 x 16 transposes and of the GEMM tiles), T = 300 through the streaming ones (several tiles
 * of keys), and the whole-head kernels at the head widths of the GPTs: Dh = 32 at T = 128
 * (every tile and transpose block full) and Dh = 64 at T = 72. */
START_TEST(attention_equals_composed)
{
    static const int64_t sizes[][2] = {{150, 16}, {300, 16}, {128, 32}, {72, 64}};
    for (int run = 0; run < 8; run++) {
        int causal = run & 1;
        int64_t t = sizes[run / 2][0], dh = sizes[run / 2][1];
        struct att_graph fused, composed;
        att_build(&fused, t, dh, causal, false, 0.0f, 2);
        att_build(&composed, t, dh, causal, true, 0.0f, 2);
        ck_assert_int_eq(dg_run(fused.plan), DG_OK);
        ck_assert_int_eq(dg_run(composed.plan), DG_OK);
        dg_node *a[4] = {fused.out, fused.grads[0], fused.grads[1], fused.grads[2]};
        dg_node *b[4] = {composed.out, composed.grads[0], composed.grads[1], composed.grads[2]};
        for (int i = 0; i < 4; i++) {
            double err = dg_test_max_rel_err(dg_data(fused.plan, a[i]),
                                             dg_data(composed.plan, b[i]),
                                             dg_plan_numel(fused.plan, a[i]), 1.0);
            ck_assert_msg(err < 2e-5, "T %d Dh %d causal %d, %s: fused differs from composed "
                          "by %g", (int)t, (int)dh, causal, i == 0 ? "out" : "a gradient", err);
        }
        att_free(&fused);
        att_free(&composed);
    }
}
END_TEST

/* dg_attention_packed equals dg_attention on the heads split out of qkv and merged back, in
 * value and in the gradient of qkv, with dropout in training (the same mask), causal; and it
 * is the same at 1 and 2 threads. */
START_TEST(attention_packed_equals_split_heads)
{
    const int64_t b = 2, t = 40, c = 24, heads = 3;
    float *results[2][2];
    for (int packed = 0; packed <= 1; packed++) {
        dg_graph *g = dg_graph_new();
        dg_graph_set_threads(g, packed ? 2 : 1);
        dg_node *qkv = dg_input(g, "qkv", 3, (int64_t[]){b, t, 3 * c});
        dg_node *key = dg_dropout_key(g), *out;
        if (packed) {
            /* as many nodes as the slices, reshapes and permutes of the other graph: the
             * attention's dropout salt (the node count) is then the same */
            for (int i = 0; i < 9; i++)
                dg_constant(g, 1, (int64_t[]){1}, (float[]){0});
            out = dg_attention_packed(g, qkv, (int)heads, key, true, 0.25f);
        } else {
            dg_node *part[3];
            for (int i = 0; i < 3; i++) {
                dg_node *s = dg_slice(g, qkv, 2, i * c, (i + 1) * c);
                dg_node *r = dg_reshape(g, s, 4, (int64_t[]){b, t, heads, c / heads});
                part[i] = dg_permute(g, r, 4, (int[]){0, 2, 1, 3});
            }
            dg_node *att = dg_attention(g, part[0], part[1], part[2], key, true, 0.25f);
            out = dg_reshape(g, dg_permute(g, att, 4, (int[]){0, 2, 1, 3}), 3,
                             (int64_t[]){b, t, c});
        }
        ck_assert_msg(out != NULL, "%s", dg_graph_error(g));
        int64_t n = b * t * c;
        float *w = malloc((size_t)n * sizeof *w), *x = malloc((size_t)(3 * n) * sizeof *x);
        dg_test_rng rng;
        dg_test_rng_seed(&rng, 3);
        dg_test_fill_uniform(&rng, w, n, -1, 1);
        dg_test_fill_uniform(&rng, x, 3 * n, -2, 2);
        dg_node *loss = dg_sum(g, dg_mul(g, out, dg_constant(g, 3, (int64_t[]){b, t, c}, w)),
                               0, NULL, false);
        dg_node *grad;
        ck_assert_int_eq(dg_grad(g, loss, 1, &qkv, &grad), DG_OK);
        dg_plan *p = dg_compile(g, 2, (dg_node *[]){out, grad});
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(dg_feed(p, qkv, x), DG_OK);
        ck_assert_int_eq(dg_dropout_feed_key(p, 9, 4, true), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        results[packed][0] = malloc((size_t)n * sizeof(float));
        results[packed][1] = malloc((size_t)(3 * n) * sizeof(float));
        memcpy(results[packed][0], dg_data(p, out), (size_t)n * sizeof(float));
        memcpy(results[packed][1], dg_data(p, grad), (size_t)(3 * n) * sizeof(float));
        free(w);
        free(x);
        dg_plan_free(p);
        dg_graph_free(g);
    }
    double e0 = dg_test_max_rel_err(results[1][0], results[0][0], 2 * 40 * 24, 1.0);
    double e1 = dg_test_max_rel_err(results[1][1], results[0][1], 3 * 2 * 40 * 24, 1.0);
    ck_assert_msg(e0 < 1e-6 && e1 < 1e-6, "packed differs from split heads: out %g, d qkv %g",
                  e0, e1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            free(results[i][j]);
}
END_TEST

/* With dropout in training: the same bits at 1 and 3 threads, run after run; evaluation mode
 * gives exactly the dropout-free op; training differs from it. */
START_TEST(attention_dropout_threads_and_modes)
{
    const int64_t t = 80, dh = 8;
    struct att_graph one, three, plain;
    att_build(&one, t, dh, true, false, 0.3f, 1);
    att_build(&three, t, dh, true, false, 0.3f, 3);
    att_build(&plain, t, dh, true, false, 0.0f, 1);
    ck_assert_int_eq(dg_dropout_feed_key(one.plan, 42, 5, true), DG_OK);
    ck_assert_int_eq(dg_dropout_feed_key(three.plan, 42, 5, true), DG_OK);
    ck_assert_int_eq(dg_run(one.plan), DG_OK);
    ck_assert_int_eq(dg_run(three.plan), DG_OK);
    ck_assert_int_eq(dg_run(three.plan), DG_OK);
    ck_assert_int_eq(dg_run(plain.plan), DG_OK);
    dg_node *a[4] = {one.out, one.grads[0], one.grads[1], one.grads[2]};
    dg_node *b[4] = {three.out, three.grads[0], three.grads[1], three.grads[2]};
    int64_t n = dg_plan_numel(one.plan, one.out);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(memcmp(dg_data(one.plan, a[i]), dg_data(three.plan, b[i]),
                             (size_t)n * sizeof(float)) == 0,
                      "output %d differs between 1 and 3 threads", i);
    ck_assert_msg(memcmp(dg_data(one.plan, one.out), dg_data(plain.plan, plain.out),
                         (size_t)n * sizeof(float)) != 0, "dropout in training changed nothing");
    ck_assert_int_eq(dg_dropout_feed_key(one.plan, 42, 5, false), DG_OK);
    ck_assert_int_eq(dg_run(one.plan), DG_OK);
    ck_assert_msg(memcmp(dg_data(one.plan, one.out), dg_data(plain.plan, plain.out),
                         (size_t)n * sizeof(float)) == 0, "evaluation mode is not dropout-free");
    att_free(&one);
    att_free(&three);
    att_free(&plain);
}
END_TEST

/* Finite differences agree with the fused gradients with the dropout mask on (the mask is a
 * fixed function of the key, so the function is smooth in q, k, v). */
START_TEST(attention_dropout_gradcheck)
{
    dg_graph *g = dg_graph_new();
    const int64_t shape[3] = {2, 5, 4};
    dg_node *q = dg_param(g, "q", 3, shape), *k = dg_param(g, "k", 3, shape);
    dg_node *v = dg_param(g, "v", 3, shape);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 5);
    dg_node *ps[3] = {q, k, v};
    for (int i = 0; i < 3; i++)
        dg_test_fill_uniform(&rng, dg_param_data(ps[i]), 40, -1.5f, 1.5f);
    dg_node *key = dg_input_static(g, "key", DG_I32, 1, (int64_t[]){3});
    float w[40];
    dg_test_fill_uniform(&rng, w, 40, -1, 1);
    dg_node *out = dg_attention(g, q, k, v, key, true, 0.4f);
    dg_node *loss = dg_sum(g, dg_mul(g, out, dg_constant(g, 3, shape, w)), 0, NULL, false);
    int32_t key_data[3] = {3, 9, 1};
    dg_gradcheck_report report;
    dg_gradcheck_options opts = dg_gradcheck_defaults();
    ck_assert_int_eq(dg_gradcheck(g, loss, 3, ps, 1, &key, (const void *const[]){key_data},
                                  &opts, &report), DG_OK);
    ck_assert_msg(report.passed, "%s", report.summary);
    ck_assert_int_gt(report.n_checked, 100);
    dg_graph_free(g);
}
END_TEST

/* The op follows a batch change: the same per-head values for the first batch entries, and
 * the gradients' shapes follow. */
START_TEST(attention_follows_set_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){2, 2, 5, 4});
    dg_node *out = dg_attention(g, x, dg_tanh(g, x), x, NULL, true, 0.0f), *grad;
    dg_node *loss = dg_sum(g, dg_square(g, out), 0, NULL, false);
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &grad), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){out, grad});
    float data[3 * 2 * 5 * 4];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 1);
    dg_test_fill_uniform(&rng, data, 120, -1, 1);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    float first[80], first_grad[80];
    memcpy(first, dg_data(p, out), sizeof first);
    memcpy(first_grad, dg_data(p, grad), sizeof first_grad);
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_OK);
    ck_assert_int_eq(dg_plan_numel(p, grad), 120);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert(memcmp(first, dg_data(p, out), sizeof first) == 0);
    ck_assert(memcmp(first_grad, dg_data(p, grad), sizeof first_grad) == 0);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(attention_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *q = dg_input(g, "q", 3, (int64_t[]){2, 4, 8});
    dg_node *k = dg_input(g, "k", 3, (int64_t[]){2, 5, 6});
    ck_assert_ptr_null(dg_attention(g, q, k, k, NULL, false, 0.0f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "attention: q [2,4,8], k [2,5,6] and v "
                                 "[2,5,6] do not fit"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_attention(g, q, q, q, NULL, false, 0.1f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "needs the dropout key"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_attention(g, q, q, q, dg_dropout_key(g), false, 1.0f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    /* packed: heads must divide the last axis into 3 x heads parts */
    ck_assert_ptr_null(dg_attention_packed(g, q, 0, NULL, true, 0.0f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "attention_packed: 0 heads"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_attention_packed(g, q, 2, NULL, true, 0.0f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "attention: packed qkv must be float32 "
                                 "[B,T,3C] with C divisible by 2 heads, got [2,4,8]"));
    dg_graph_clear_error(g);
    /* first order works; a second dg_grad through the fused gradient fails, naming it */
    dg_node *loss = dg_sum(g, dg_attention(g, q, q, q, NULL, true, 0.0f), 0, NULL, false);
    dg_node *grad, *grad2;
    ck_assert_int_eq(dg_grad(g, loss, 1, &q, &grad), DG_OK);
    dg_node *loss2 = dg_sum(g, dg_square(g, grad), 0, NULL, false);
    ck_assert_int_eq(dg_grad(g, loss2, 1, &q, &grad2), DG_ERR_NOT_DIFFERENTIABLE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "attention_grad"));
    dg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("seq");
    TCase *tc = tcase_create("embedding");
    tcase_add_test(tc, embedding_index_out_of_range_is_a_run_error);
    tcase_add_test(tc, embedding_grad_checks_indices);
    tcase_add_test(tc, embedding_shape_errors);
    tcase_add_test(tc, embedding_grad_same_bits_any_threads);
    suite_add_tcase(suite, tc);
    TCase *sel = tcase_create("selection");
    tcase_add_test(sel, selection_special_values);
    suite_add_tcase(suite, sel);
    TCase *att = tcase_create("attention");
    tcase_add_test(att, attention_equals_composed);
    tcase_add_test(att, attention_dropout_threads_and_modes);
    tcase_add_test(att, attention_packed_equals_split_heads);
    tcase_add_test(att, attention_dropout_gradcheck);
    tcase_add_test(att, attention_follows_set_batch);
    tcase_add_test(att, attention_errors);
    suite_add_tcase(suite, att);
    return dg_test_run(suite);
}
