/* Recurrent layers (src/nn/recurrent.c): outputs, final states and gradients against PyTorch
 * fixtures (tests/gen/gen_recurrent.py), finite-difference checks, error messages, truncated
 * BPTT state carrying, and a small memory task learned in a test-sized run. */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 5, F = 3, H = 4 };

static dg_node *fixture_const(dg_graph *g, const dg_fixture_tensor *t, int64_t offset,
                              int ndim, const int64_t *shape)
{
    return dg_constant(g, ndim, shape, (const float *)t->data + offset);
}

static void check_close(const char *what, const float *got, const dg_fixture_tensor *want,
                        int64_t offset, int64_t n)
{
    double err = dg_test_max_rel_err(got, (const float *)want->data + offset, n, 1e-2);
    ck_assert_msg(err < 2e-4, "%s: max relative error %g", what, err);
}

/* Builds the model of one fixture case, runs loss and gradients, compares everything. */
static void run_case(const char *prefix, dg_cell_kind cell, int layers, bool with_state)
{
    dg_fixture *fx = dg_fixture_load("recurrent.dgfx");
    ck_assert_ptr_nonnull(fx);
    char key[128];
#define NEED(...) (snprintf(key, sizeof key, __VA_ARGS__), dg_fixture_need(fx, key))
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){B, T, F});
    dg_node *h0[2] = {0}, *c0[2] = {0}, *hn[2] = {0}, *cn[2] = {0};
    bool lstm = cell == DG_CELL_LSTM;
    for (int l = 0; with_state && l < layers; l++) {
        snprintf(key, sizeof key, "h0_%d", l);
        h0[l] = dg_input(g, key, 2, (int64_t[]){B, H});
        if (lstm) {
            snprintf(key, sizeof key, "c0_%d", l);
            c0[l] = dg_input(g, key, 2, (int64_t[]){B, H});
        }
    }
    dg_node *y = dg_recurrent(g, cell, x, H, layers, with_state ? h0 : NULL,
                              with_state && lstm ? c0 : NULL, "rnn", NULL, hn, lstm ? cn : NULL);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_node_dim(y, 1), T);
    dg_node *loss = dg_sum(g, dg_mul(g, y, fixture_const(g, NEED("%s.wy", prefix), 0, 3,
                                                          (int64_t[]){B, T, H})), 0, NULL, false);
    for (int l = 0; l < layers; l++) {
        dg_node *wh = fixture_const(g, NEED("%s.wh", prefix), l * B * H, 2, (int64_t[]){B, H});
        loss = dg_add(g, loss, dg_sum(g, dg_mul(g, hn[l], wh), 0, NULL, false));
        if (lstm)
            loss = dg_add(g, loss, dg_sum(g, dg_mul(g, cn[l], fixture_const(
                              g, NEED("%s.wc%d", prefix, l), 0, 2, (int64_t[]){B, H})),
                                          0, NULL, false));
    }
    /* Parameters from the fixture (PyTorch's names after "rnn."). */
    dg_node *params[16];
    int n_params = dg_graph_params(g, 16, params);
    ck_assert_int_eq(n_params, 4 * layers);
    for (int i = 0; i < n_params; i++) {
        const char *pname = dg_node_name(params[i]) + strlen("rnn.");
        const dg_fixture_tensor *t = NEED("%s.%s", prefix, pname);
        ck_assert_int_eq(t->numel, dg_node_numel(params[i]));
        memcpy(dg_param_data(params[i]), t->data, (size_t)t->numel * sizeof(float));
    }
    dg_node *wrt[20], *grads[20];
    int n_wrt = 0;
    for (int i = 0; i < n_params; i++)
        wrt[n_wrt++] = params[i];
    wrt[n_wrt++] = x;
    for (int l = 0; with_state && l < layers; l++) {
        wrt[n_wrt++] = h0[l];
        if (lstm)
            wrt[n_wrt++] = c0[l];
    }
    ck_assert_int_eq(dg_grad(g, loss, n_wrt, wrt, grads), DG_OK);
    dg_node *outs[40];
    int n_outs = 0;
    outs[n_outs++] = y;
    for (int l = 0; l < layers; l++) {
        outs[n_outs++] = hn[l];
        if (lstm)
            outs[n_outs++] = cn[l];
    }
    for (int i = 0; i < n_wrt; i++)
        outs[n_outs++] = grads[i];
    dg_plan *plan = dg_compile(g, n_outs, outs);
    ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(plan, x, NEED("%s.x", prefix)->data), DG_OK);
    for (int l = 0; with_state && l < layers; l++) {
        ck_assert_int_eq(dg_feed(plan, h0[l], NEED("%s.h0_%d", prefix, l)->data), DG_OK);
        if (lstm)
            ck_assert_int_eq(dg_feed(plan, c0[l], NEED("%s.c0_%d", prefix, l)->data), DG_OK);
    }
    ck_assert_msg(dg_run(plan) == DG_OK, "%s", dg_graph_error(g));
    check_close("y", dg_data(plan, y), NEED("%s.y", prefix), 0, B * T * H);
    for (int l = 0; l < layers; l++) {
        check_close("h_n", dg_data(plan, hn[l]), NEED("%s.h_n%d", prefix, l), 0, B * H);
        if (lstm)
            check_close("c_n", dg_data(plan, cn[l]), NEED("%s.c_n%d", prefix, l), 0, B * H);
    }
    for (int i = 0; i < n_params; i++) {
        const char *pname = dg_node_name(params[i]) + strlen("rnn.");
        check_close(pname, dg_data(plan, grads[i]), NEED("%s.grad_%s", prefix, pname), 0,
                    dg_node_numel(params[i]));
    }
    check_close("grad_x", dg_data(plan, grads[n_params]), NEED("%s.grad_x", prefix), 0,
                B * T * F);
    for (int l = 0, k = n_params + 1; with_state && l < layers; l++) {
        check_close("grad_h0", dg_data(plan, grads[k++]), NEED("%s.grad_h0_%d", prefix, l), 0,
                    B * H);
        if (lstm)
            check_close("grad_c0", dg_data(plan, grads[k++]), NEED("%s.grad_c0_%d", prefix, l),
                        0, B * H);
    }
#undef NEED
    dg_plan_free(plan);
    dg_graph_free(g);
    dg_fixture_free(fx);
}

START_TEST(test_lstm_torch) { run_case("lstm2", DG_CELL_LSTM, 2, true); run_case("lstm1z", DG_CELL_LSTM, 1, false); }
END_TEST
START_TEST(test_gru_torch) { run_case("gru2", DG_CELL_GRU, 2, true); run_case("gru1z", DG_CELL_GRU, 1, false); }
END_TEST
START_TEST(test_rnn_torch) { run_case("rnn2", DG_CELL_RNN_TANH, 2, true); run_case("rnn1z", DG_CELL_RNN_TANH, 1, false); }
END_TEST


/* PyTorch's own nn.LSTM state_dict (keys "weight_ih_l0", ...) loads by name into the layer
 * called "rnn" (add_prefix "rnn."), untransposed, and gives PyTorch's outputs. */
START_TEST(test_lstm_loads_torch_state_dict)
{
    dg_fixture *fx = dg_fixture_load("recurrent.dgfx");
    ck_assert_ptr_nonnull(fx);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){B, T, F});
    dg_node *h0[2], *c0[2];
    for (int l = 0; l < 2; l++) {
        char name[16];
        snprintf(name, sizeof name, "h0_%d", l);
        h0[l] = dg_input(g, name, 2, (int64_t[]){B, H});
        snprintf(name, sizeof name, "c0_%d", l);
        c0[l] = dg_input(g, name, 2, (int64_t[]){B, H});
    }
    dg_node *y = dg_recurrent(g, DG_CELL_LSTM, x, H, 2, h0, c0, "rnn", NULL, NULL, NULL);
    char path[512];
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.add_prefix = "rnn.";
    ck_assert_msg(dg_load_checkpoint(g, dg_test_fixture_path("torch_lstm2_state_dict.safetensors",
                                                             path, sizeof path), &lo) == DG_OK,
                  "%s", dg_graph_error(g));
    dg_plan *plan = dg_compile(g, 1, &y);
    dg_feed(plan, x, dg_fixture_need(fx, "lstm2.x")->data);
    for (int l = 0; l < 2; l++) {
        char key[32];
        snprintf(key, sizeof key, "lstm2.h0_%d", l);
        dg_feed(plan, h0[l], dg_fixture_need(fx, key)->data);
        snprintf(key, sizeof key, "lstm2.c0_%d", l);
        dg_feed(plan, c0[l], dg_fixture_need(fx, key)->data);
    }
    ck_assert_int_eq(dg_run(plan), DG_OK);
    check_close("y", dg_data(plan, y), dg_fixture_need(fx, "lstm2.y"), 0, B * T * H);
    dg_plan_free(plan);
    dg_graph_free(g);
    dg_fixture_free(fx);
}
END_TEST

/* Finite differences through two stacked layers of each kind, initial states included. */
START_TEST(test_recurrent_gradcheck)
{
    const dg_cell_kind kinds[3] = {DG_CELL_RNN_TANH, DG_CELL_LSTM, DG_CELL_GRU};
    for (int k = 0; k < 3; k++) {
        dg_graph *g = dg_graph_new();
        dg_rng rng;
        dg_rng_seed(&rng, 7 + (uint64_t)k);
        dg_node *x = dg_input(g, "x", 3, (int64_t[]){2, 3, 3});
        dg_node *h0 = dg_input(g, "h0", 2, (int64_t[]){2, 3});
        dg_node *c0 = kinds[k] == DG_CELL_LSTM ? dg_input(g, "c0", 2, (int64_t[]){2, 3}) : NULL;
        dg_node *hs[2] = {h0, NULL}, *cs[2] = {c0, NULL}, *hn[2], *cn[2];
        dg_node *y = dg_recurrent(g, kinds[k], x, 3, 2, hs, c0 ? cs : NULL, "r", &rng, hn,
                                  c0 ? cn : NULL);
        dg_test_rng trng;
        dg_test_rng_seed(&trng, 99);
        float w[18], xv[18], hv[6], cv[6];
        dg_test_fill_uniform(&trng, w, 18, -1, 1);
        dg_test_fill_uniform(&trng, xv, 18, -1, 1);
        dg_test_fill_uniform(&trng, hv, 6, -1, 1);
        dg_test_fill_uniform(&trng, cv, 6, -1, 1);
        dg_node *loss = dg_add(g, dg_sum(g, dg_mul(g, y, dg_constant(g, 3, (int64_t[]){2, 3, 3}, w)),
                                         0, NULL, false),
                               dg_sum(g, dg_square(g, hn[0]), 0, NULL, false));
        if (c0)
            loss = dg_add(g, loss, dg_sum(g, cn[1], 0, NULL, false));
        ck_assert_msg(loss != NULL, "%s", dg_graph_error(g));
        dg_node *wrt[12];
        int n = dg_graph_params(g, 8, wrt);
        wrt[n++] = x;
        wrt[n++] = h0;
        if (c0)
            wrt[n++] = c0;
        dg_node *feeds[3] = {x, h0, c0};
        const void *data[3] = {xv, hv, cv};
        dg_gradcheck_report rep;
        ck_assert_int_eq(dg_gradcheck(g, loss, n, wrt, c0 ? 3 : 2, feeds, data, NULL, &rep),
                         DG_OK);
        ck_assert_msg(rep.passed, "cell %d: %s", k, rep.summary);
        dg_graph_free(g);
    }
}
END_TEST

START_TEST(test_recurrent_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *x2 = dg_input(g, "x2", 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(dg_lstm(g, x2, 4, NULL, NULL, "l", NULL, NULL, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "lstm 'l'"));
    dg_graph_clear_error(g);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){2, 3, 5});
    dg_node *bad = dg_input(g, "h", 2, (int64_t[]){2, 7});
    ck_assert_ptr_null(dg_gru(g, x, 4, bad, "gru", NULL, NULL));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "h0 of layer 0"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_recurrent(g, DG_CELL_GRU, x, 4, 1, NULL, (dg_node *[]){bad}, "g2",
                                    NULL, NULL, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_rnn(g, x, 0, NULL, "r0", NULL, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    /* A second call with the same name shares the parameters; another hidden size clashes. */
    ck_assert_ptr_nonnull(dg_rnn(g, x, 4, NULL, "shared", NULL, NULL));
    int before = dg_graph_params(g, 0, NULL);
    ck_assert_ptr_nonnull(dg_rnn(g, x, 4, NULL, "shared", NULL, NULL));
    ck_assert_int_eq(dg_graph_params(g, 0, NULL), before);
    ck_assert_ptr_null(dg_rnn(g, x, 5, NULL, "shared", NULL, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    dg_graph_free(g);
}
END_TEST

/* Carrying the final state of one chunk into the next gives the outputs of the whole
 * sequence (truncated BPTT's forward half), and the one-step graph shares the weights. */
START_TEST(test_lstm_carried_state)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 3);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){1, 6, 2});
    dg_node *y = dg_lstm(g, x, 5, NULL, NULL, "lstm", &rng, NULL, NULL);
    dg_node *xs = dg_input(g, "xs", 3, (int64_t[]){1, 3, 2});
    dg_node *h0 = dg_input(g, "h0", 2, (int64_t[]){1, 5});
    dg_node *c0 = dg_input(g, "c0", 2, (int64_t[]){1, 5});
    dg_node *hn, *cn;
    dg_node *ys = dg_lstm(g, xs, 5, h0, c0, "lstm", NULL, &hn, &cn);
    ck_assert_msg(ys != NULL, "%s", dg_graph_error(g));
    float xv[12];
    dg_test_rng trng;
    dg_test_rng_seed(&trng, 5);
    dg_test_fill_uniform(&trng, xv, 12, -2, 2);
    dg_plan *full = dg_compile(g, 1, &y);
    dg_feed(full, x, xv);
    ck_assert_int_eq(dg_run(full), DG_OK);
    dg_plan *chunk = dg_compile(g, 3, (dg_node *[]){ys, hn, cn});
    float h[5] = {0}, c[5] = {0}, got[30];
    for (int part = 0; part < 2; part++) {
        dg_feed(chunk, xs, xv + part * 6);
        dg_feed(chunk, h0, h);
        dg_feed(chunk, c0, c);
        ck_assert_int_eq(dg_run(chunk), DG_OK);
        memcpy(got + part * 15, dg_data(chunk, ys), 15 * sizeof(float));
        memcpy(h, dg_data(chunk, hn), sizeof h);
        memcpy(c, dg_data(chunk, cn), sizeof c);
    }
    /* Not bitwise: the input projections are GEMMs of 3 and 6 rows, which take different
     * kernel paths (products rounded in another order); a few ulps through 6 steps. */
    ck_assert_double_le(dg_test_max_rel_err(got, dg_data(full, y), 30, 1e-3), 1e-4);
    dg_plan_free(full);
    dg_plan_free(chunk);
    dg_graph_free(g);
}
END_TEST

/* Delayed recall: the target at step t is the input symbol of step t - 2 (steps 0 and 1 are
 * ignored with label -1). Needs memory: a model without recurrence stays near chance
 * (1/V = 25%). A 1-layer model of 16 units trained 300 Adam steps must pass 90%. */
static double delayed_recall(dg_cell_kind cell)
{
    enum { V = 4, TT = 8, BB = 32, HID = 16, DELAY = 2, STEPS = 300 };
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 11);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){BB, TT, V});
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 2, (int64_t[]){BB, TT});
    dg_node *seq = dg_recurrent(g, cell, x, HID, 1, NULL, NULL, "rec", &rng, NULL, NULL);
    dg_node *logits = dg_dense(g, dg_reshape(g, seq, 2, (int64_t[]){-1, HID}), V, DG_ACT_NONE,
                               "head", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits,
                                             dg_reshape(g, labels, 1, (int64_t[]){-1}));
    dg_node *params[8], *grads[8];
    int n;
    ck_assert_msg(dg_grad_params(g, loss, 8, params, grads, &n) == DG_OK, "%s",
                  dg_graph_error(g));
    dg_adam_config ac = DG_ADAM_DEFAULTS;
    ac.lr = 0.02;
    dg_optim *opt = dg_optim_new_adam(n, params, grads, &ac);
    dg_node *outs[10] = {loss, logits};
    memcpy(outs + 2, grads, (size_t)n * sizeof *grads);
    dg_plan *plan = dg_compile(g, n + 2, outs);
    ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));
    static float xv[BB * TT * V];
    int32_t sym[BB * TT], lab[BB * TT];
    dg_rng data;
    dg_rng_seed(&data, 1234);
    int64_t correct = 0, counted = 0;
    for (int step = 0; step < STEPS + 1; step++) {
        memset(xv, 0, sizeof xv);
        for (int i = 0; i < BB * TT; i++) {
            sym[i] = (int32_t)dg_rng_below(&data, V);
            xv[i * V + sym[i]] = 1.0f;
        }
        for (int b = 0; b < BB; b++)
            for (int t = 0; t < TT; t++)
                lab[b * TT + t] = t < DELAY ? -1 : sym[b * TT + t - DELAY];
        dg_feed(plan, x, xv);
        dg_feed(plan, labels, lab);
        ck_assert_int_eq(dg_run(plan), DG_OK);
        if (step == STEPS) { /* a fresh batch, measured before any update on it */
            const float *out = dg_data(plan, logits);
            for (int i = 0; i < BB * TT; i++) {
                if (lab[i] < 0)
                    continue;
                int best = 0;
                for (int k = 1; k < V; k++)
                    if (out[i * V + k] > out[i * V + best])
                        best = k;
                correct += best == lab[i];
                counted++;
            }
        } else {
            ck_assert_int_eq(dg_optim_step(opt, plan), DG_OK);
        }
    }
    dg_optim_free(opt);
    dg_plan_free(plan);
    dg_graph_free(g);
    return (double)correct / (double)counted;
}

START_TEST(test_delayed_recall_learned)
{
    double acc_lstm = delayed_recall(DG_CELL_LSTM);
    double acc_gru = delayed_recall(DG_CELL_GRU);
    ck_assert_msg(acc_lstm > 0.9, "LSTM delayed-recall accuracy %.3f", acc_lstm);
    ck_assert_msg(acc_gru > 0.9, "GRU delayed-recall accuracy %.3f", acc_gru);
}
END_TEST

/* The fused LSTM and GRU give the same bits at 1, 2 and 3 threads, forward and gradients, at
 * sizes where their per-step GEMMs and gate rows are split across threads (B = 32, H = 128:
 * at 2 threads blocks of batch rows, at 3 the GRU's blocks are too small and each step is
 * split instead), with initial states whose gradients are wanted (the state rows of
 * lstm_seq_grad and gru_seq_grad). */
static void threads_bitwise(dg_cell_kind cell)
{
    enum { NB = 32, NT = 5, NF = 8, NH = 128 };
    const bool lstm = cell == DG_CELL_LSTM;
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 11);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){NB, NT, NF});
    dg_node *h0 = dg_input(g, "h0", 2, (int64_t[]){NB, NH});
    dg_node *c0 = lstm ? dg_input(g, "c0", 2, (int64_t[]){NB, NH}) : NULL;
    dg_node *hn[2], *cn[2];
    dg_node *y = dg_recurrent(g, cell, x, NH, 2, (dg_node *[]){h0, NULL},
                              lstm ? (dg_node *[]){c0, NULL} : NULL, "rnn", &rng, hn,
                              lstm ? cn : NULL);
    dg_node *last = lstm ? dg_mul(g, hn[1], cn[1]) : dg_square(g, hn[1]);
    dg_node *loss = dg_add(g, dg_sum(g, dg_square(g, y), 0, NULL, false),
                           dg_sum(g, last, 0, NULL, false));
    ck_assert_msg(loss != NULL, "%s", dg_graph_error(g));
    dg_node *wrt[11], *outs[12];
    int n = dg_graph_params(g, 8, wrt);
    wrt[n++] = x;
    wrt[n++] = h0;
    if (lstm)
        wrt[n++] = c0;
    ck_assert_int_eq(dg_grad(g, loss, n, wrt, outs), DG_OK);
    outs[n] = y;
    dg_test_rng trng;
    dg_test_rng_seed(&trng, 12);
    static float xv[NB * NT * NF], hv[NB * NH], cv[NB * NH];
    dg_test_fill_uniform(&trng, xv, NB * NT * NF, -1, 1);
    dg_test_fill_uniform(&trng, hv, NB * NH, -1, 1);
    dg_test_fill_uniform(&trng, cv, NB * NH, -1, 1);
    float *first[12] = {0};
    for (int threads = 1; threads <= 3; threads++) {
        dg_plan *plan = dg_compile(g, n + 1, outs);
        ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));
        ck_assert_int_eq(dg_plan_set_threads(plan, threads), DG_OK);
        dg_feed(plan, x, xv);
        dg_feed(plan, h0, hv);
        if (lstm)
            dg_feed(plan, c0, cv);
        ck_assert_msg(dg_run(plan) == DG_OK, "%s", dg_graph_error(g));
        for (int i = 0; i <= n; i++) {
            size_t bytes = (size_t)dg_plan_numel(plan, outs[i]) * sizeof(float);
            if (threads == 1) {
                first[i] = malloc(bytes);
                memcpy(first[i], dg_data(plan, outs[i]), bytes);
            } else {
                ck_assert_msg(memcmp(first[i], dg_data(plan, outs[i]), bytes) == 0,
                              "output %d differs at %d threads", i, threads);
            }
        }
        dg_plan_free(plan);
    }
    for (int i = 0; i <= n; i++)
        free(first[i]);
    dg_graph_free(g);
}

START_TEST(test_lstm_threads_bitwise) { threads_bitwise(DG_CELL_LSTM); }
END_TEST

START_TEST(test_gru_threads_bitwise) { threads_bitwise(DG_CELL_GRU); }
END_TEST

/* Over an embedding lookup from a table with fewer rows than the lookup (a character
 * vocabulary), the layers project the table and look the projection up (recurrent.c's
 * project, the input bias folded in): outputs and every gradient match the same layers over
 * the looked-up rows fed as a plain input (sharing the parameters by name), the table's
 * gradient the per-entry sum of the plain input's. */
START_TEST(test_embedding_projection)
{
    enum { NB = 4, NT = 5, NV = 3, NF = 3, NH = 4 };
    const dg_cell_kind kinds[3] = {DG_CELL_RNN_TANH, DG_CELL_LSTM, DG_CELL_GRU};
    for (int k = 0; k < 3; k++) {
        dg_graph *g = dg_graph_new();
        dg_rng rng;
        dg_rng_seed(&rng, 21 + (uint64_t)k);
        dg_node *table = dg_input(g, "table", 2, (int64_t[]){NV, NF});
        dg_node *idx = dg_input_typed(g, "idx", DG_I32, 2, (int64_t[]){NB, NT});
        dg_node *plain = dg_input(g, "plain", 3, (int64_t[]){NB, NT, NF});
        dg_node *y[2] = {
            dg_recurrent(g, kinds[k], dg_embedding(g, table, idx), NH, 2, NULL, NULL, "r",
                         &rng, NULL, NULL),
            NULL,
        };
        int lookups = 0;
        for (int i = 0; i < dg_graph_node_count(g); i++)
            lookups += strcmp(dg_node_op_name(dg_graph_node(g, i)), "embedding") == 0;
        ck_assert_int_eq(lookups, 2); /* the table's and the projected table's */
        y[1] = dg_recurrent(g, kinds[k], plain, NH, 2, NULL, NULL, "r", NULL, NULL, NULL);
        dg_test_rng trng;
        dg_test_rng_seed(&trng, 5);
        float w[NB * NT * NH], tv[NV * NF], pv[NB * NT * NF];
        int32_t iv[NB * NT];
        dg_test_fill_uniform(&trng, w, NB * NT * NH, -1, 1);
        dg_test_fill_uniform(&trng, tv, NV * NF, -1, 1);
        for (int i = 0; i < NB * NT; i++) {
            iv[i] = (i * 7 + 1) % NV;
            memcpy(pv + i * NF, tv + iv[i] * NF, sizeof(float) * NF);
        }
        dg_node *wc = dg_constant(g, 3, (int64_t[]){NB, NT, NH}, w);
        dg_node *params[8], *outs[2][10];
        const int n = dg_graph_params(g, 8, params);
        ck_assert_int_eq(n, 8);
        for (int s = 0; s < 2; s++) {
            dg_node *wrt[9];
            memcpy(wrt, params, sizeof params);
            wrt[n] = s == 0 ? table : plain;
            dg_node *loss = dg_sum(g, dg_mul(g, y[s], wc), 0, NULL, false);
            ck_assert_int_eq(dg_grad(g, loss, n + 1, wrt, outs[s]), DG_OK);
            outs[s][n + 1] = y[s];
        }
        dg_plan *plan = dg_compile(g, 2 * (n + 2), outs[0]);
        ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));
        dg_feed(plan, table, tv);
        dg_feed(plan, idx, iv);
        dg_feed(plan, plain, pv);
        ck_assert_msg(dg_run(plan) == DG_OK, "%s", dg_graph_error(g));
        for (int i = 0; i <= n + 1; i++) {
            if (i == n)
                continue;
            const float *a = dg_data(plan, outs[0][i]), *b = dg_data(plan, outs[1][i]);
            for (int64_t e = 0; e < dg_plan_numel(plan, outs[0][i]); e++)
                ck_assert_msg(fabsf(a[e] - b[e]) <= 1e-5f * (1 + fabsf(b[e])),
                              "cell %d output %d element %lld: %g vs %g", k, i, (long long)e,
                              a[e], b[e]);
        }
        float d_table[NV * NF] = {0};
        const float *d_plain = dg_data(plan, outs[1][n]), *got = dg_data(plan, outs[0][n]);
        for (int i = 0; i < NB * NT; i++)
            for (int f = 0; f < NF; f++)
                d_table[iv[i] * NF + f] += d_plain[i * NF + f];
        for (int e = 0; e < NV * NF; e++)
            ck_assert_msg(fabsf(got[e] - d_table[e]) <= 1e-5f * (1 + fabsf(d_table[e])),
                          "cell %d d table %d: %g vs %g", k, e, got[e], d_table[e]);
        dg_plan_free(plan);
        dg_graph_free(g);
    }
}
END_TEST

static Suite *recurrent_suite(void)
{
    Suite *s = suite_create("recurrent");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_lstm_torch);
    tcase_add_test(tc, test_gru_torch);
    tcase_add_test(tc, test_rnn_torch);
    tcase_add_test(tc, test_lstm_loads_torch_state_dict);
    tcase_add_test(tc, test_recurrent_gradcheck);
    tcase_add_test(tc, test_recurrent_errors);
    tcase_add_test(tc, test_lstm_carried_state);
    tcase_add_test(tc, test_delayed_recall_learned);
    tcase_add_test(tc, test_lstm_threads_bitwise);
    tcase_add_test(tc, test_gru_threads_bitwise);
    tcase_add_test(tc, test_embedding_projection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(recurrent_suite()); }
