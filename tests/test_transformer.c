/* Transformer pieces (src/nn/transformer.c): the pre-norm block with positional embeddings
 * against PyTorch (causal and not, evaluation mode), gradients, the one-step decode with a
 * key/value cache against the full causal forward, dropout on/off, errors. */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

enum { B = 2, T = 5, C = 8, HEADS = 2, MAXLEN = 7 };

static dg_transformer_config config(bool causal)
{
    dg_transformer_config cfg = DG_TRANSFORMER_DEFAULTS;
    cfg.n_heads = HEADS;
    cfg.causal = causal;
    return cfg;
}

/* Copies every parameter of g from the fixture's "param.<name>". */
static void load_params(dg_graph *g, const dg_fixture *fx)
{
    dg_node *params[32];
    int n = dg_graph_params(g, 32, params);
    ck_assert_int_eq(n, 13);
    for (int i = 0; i < n; i++) {
        char key[160];
        snprintf(key, sizeof key, "param.%s", dg_node_name(params[i]));
        const dg_fixture_tensor *t = dg_fixture_need(fx, key);
        ck_assert_int_eq(t->numel, dg_node_numel(params[i]));
        memcpy(dg_param_data(params[i]), t->data, (size_t)t->numel * sizeof(float));
    }
}

static void block_vs_torch(bool causal, bool fused)
{
    const char *tag = causal ? "causal" : "full";
    char key[160];
    dg_fixture *fx = dg_fixture_load("transformer.dgfx");
    ck_assert_ptr_nonnull(fx);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){B, T, C});
    dg_transformer_config cfg = config(causal);
    cfg.fused_attention = fused;
    dg_node *xp = dg_positional_embedding(g, x, MAXLEN, "pos", NULL);
    dg_node *y = dg_transformer_block(g, xp, &cfg, NULL, "blk", NULL);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    load_params(g, fx);
    snprintf(key, sizeof key, "%s.w", tag);
    dg_node *w = dg_constant(g, 3, (int64_t[]){B, T, C}, dg_fixture_need(fx, key)->data);
    dg_node *loss = dg_sum(g, dg_mul(g, y, w), 0, NULL, false);
    dg_node *wrt[16], *grads[16];
    int n = dg_graph_params(g, 15, wrt);
    wrt[n++] = x;
    ck_assert_int_eq(dg_grad(g, loss, n, wrt, grads), DG_OK);
    dg_node *outs[17] = {y};
    memcpy(outs + 1, grads, (size_t)n * sizeof *grads);
    dg_plan *plan = dg_compile(g, n + 1, outs);
    ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));
    snprintf(key, sizeof key, "%s.x", tag);
    dg_feed(plan, x, dg_fixture_need(fx, key)->data);
    ck_assert_msg(dg_run(plan) == DG_OK, "%s", dg_graph_error(g));
    snprintf(key, sizeof key, "%s.y", tag);
    double err = dg_test_max_rel_err(dg_data(plan, y), dg_fixture_need(fx, key)->data,
                                     B * T * C, 1e-2);
    ck_assert_msg(err < 1e-4, "%s y: %g", tag, err);
    for (int i = 0; i < n; i++) {
        const char *name = i + 1 < n ? dg_node_name(wrt[i]) : "x";
        snprintf(key, sizeof key, "%s.grad_%s", tag, name);
        err = dg_test_max_rel_err(dg_data(plan, grads[i]), dg_fixture_need(fx, key)->data,
                                  dg_node_numel(wrt[i]), 1e-2);
        ck_assert_msg(err < 1e-3, "%s grad %s: %g", tag, name, err);
    }
    dg_plan_free(plan);
    dg_graph_free(g);
    dg_fixture_free(fx);
}

START_TEST(test_block_torch_causal) { block_vs_torch(true, false); }
END_TEST
START_TEST(test_block_torch_full) { block_vs_torch(false, false); }
END_TEST
START_TEST(test_block_torch_fused_attention)
{
    block_vs_torch(true, true);
    block_vs_torch(false, true);
}
END_TEST

/* Decoding one position at a time with the cache gives the full causal forward's rows. */
START_TEST(test_block_step_matches_full)
{
    enum { S = 6 }; /* cache slots: more than T - 1, so some stay empty (masked) */
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 21);
    dg_transformer_config cfg = config(true);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){1, T, C});
    dg_node *y = dg_transformer_block(g, dg_positional_embedding(g, x, MAXLEN, "pos", &rng),
                                      &cfg, NULL, "blk", &rng);
    dg_node *x1 = dg_input(g, "x1", 3, (int64_t[]){1, 1, C});
    dg_node *kc = dg_input(g, "kc", 4, (int64_t[]){1, HEADS, S, C / HEADS});
    dg_node *vc = dg_input(g, "vc", 4, (int64_t[]){1, HEADS, S, C / HEADS});
    dg_node *mask = dg_input(g, "mask", 4, (int64_t[]){1, 1, 1, S + 1});
    dg_node *kn, *vn;
    dg_node *y1 = dg_transformer_block_step(g, x1, kc, vc, mask, &cfg, "blk", &kn, &vn);
    ck_assert_msg(y1 != NULL, "%s", dg_graph_error(g));
    float xv[T * C];
    dg_test_rng trng;
    dg_test_rng_seed(&trng, 3);
    dg_test_fill_uniform(&trng, xv, T * C, -1, 1);
    dg_plan *full = dg_compile(g, 1, &y);
    dg_feed(full, x, xv);
    ck_assert_int_eq(dg_run(full), DG_OK);
    dg_plan *step = dg_compile(g, 3, (dg_node *[]){y1, kn, vn});
    const float *pos = dg_param_data(dg_graph_find(g, "pos.weight"));
    enum { D = C / HEADS };
    float kcache[HEADS * S * D] = {0}, vcache[HEADS * S * D] = {0}, m[S + 1];
    for (int t = 0; t < T; t++) {
        float in[C];
        for (int c = 0; c < C; c++) /* the step graph takes the embedded input */
            in[c] = xv[t * C + c] + pos[t * C + c];
        for (int s = 0; s <= S; s++)
            m[s] = (s < t || s == S) ? 0.0f : -1e9f;
        dg_feed(step, x1, in);
        dg_feed(step, kc, kcache);
        dg_feed(step, vc, vcache);
        dg_feed(step, mask, m);
        ck_assert_int_eq(dg_run(step), DG_OK);
        double err = dg_test_max_rel_err(dg_data(step, y1), dg_data(full, y) + t * C, C, 1e-3);
        ck_assert_msg(err < 1e-5, "position %d: %g", t, err);
        for (int h = 0; h < HEADS; h++) {
            memcpy(kcache + (h * S + t) * D, dg_data(step, kn) + h * D, D * sizeof(float));
            memcpy(vcache + (h * S + t) * D, dg_data(step, vn) + h * D, D * sizeof(float));
        }
    }
    dg_plan_free(full);
    dg_plan_free(step);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_block_gradcheck_and_dropout)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 4);
    dg_transformer_config cfg = config(true);
    cfg.dropout = 0.5f;
    dg_node *key = dg_dropout_key(g);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){1, 3, 4});
    dg_node *y = dg_transformer_block(g, x, &cfg, key, "b", &rng);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    float xv[12];
    dg_test_rng trng;
    dg_test_rng_seed(&trng, 8);
    dg_test_fill_uniform(&trng, xv, 12, -1, 1);
    /* Evaluation mode is deterministic and differs from a training-mode run. */
    dg_plan *plan = dg_compile(g, 1, &y);
    float eval[12], train[12];
    dg_feed(plan, x, xv);
    dg_dropout_feed_key(plan, 1, 0, false);
    ck_assert_int_eq(dg_run(plan), DG_OK);
    memcpy(eval, dg_data(plan, y), sizeof eval);
    dg_dropout_feed_key(plan, 1, 0, true);
    ck_assert_int_eq(dg_run(plan), DG_OK);
    memcpy(train, dg_data(plan, y), sizeof train);
    ck_assert_double_gt(dg_test_max_rel_err(train, eval, 12, 1e-3), 1e-3);
    dg_plan_free(plan);
    dg_graph_free(g);

    /* Finite differences through a block without dropout (inputs and every parameter). */
    g = dg_graph_new();
    cfg.dropout = 0;
    x = dg_input(g, "x", 3, (int64_t[]){1, 3, 4});
    y = dg_transformer_block(g, x, &cfg, NULL, "b", &rng);
    dg_node *w = dg_constant(g, 3, (int64_t[]){1, 3, 4}, xv);
    dg_node *loss = dg_sum(g, dg_mul(g, y, w), 0, NULL, false);
    dg_node *wrt[16];
    int n = dg_graph_params(g, 15, wrt);
    wrt[n++] = x;
    dg_gradcheck_report rep;
    ck_assert_int_eq(dg_gradcheck(g, loss, n, wrt, 1, &x, (const void *const[]){xv}, NULL, &rep),
                     DG_OK);
    ck_assert_msg(rep.passed, "%s", rep.summary);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_transformer_errors)
{
    dg_graph *g = dg_graph_new();
    dg_transformer_config cfg = config(true);
    cfg.n_heads = 3;
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){1, 3, 4});
    ck_assert_ptr_null(dg_transformer_block(g, x, &cfg, NULL, "b", NULL));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "divisible by 3 heads"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_positional_embedding(g, x, 2, "pos", NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_layer_norm_layer(g, x, 0.0f, "ln"));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_free(g);
}
END_TEST

static Suite *transformer_suite(void)
{
    Suite *s = suite_create("transformer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_block_torch_causal);
    tcase_add_test(tc, test_block_torch_full);
    tcase_add_test(tc, test_block_torch_fused_attention);
    tcase_add_test(tc, test_block_step_matches_full);
    tcase_add_test(tc, test_block_gradcheck_and_dropout);
    tcase_add_test(tc, test_transformer_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(transformer_suite()); }
