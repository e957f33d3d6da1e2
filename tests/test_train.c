/* The training loop: partial batches, metrics, validation, progress lines, CSV, errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagrad.h"
#include "test_util.h"

enum { N = 103, FEATURES = 4, CLASSES = 3 };

struct fixture {
    dg_graph *g;
    dg_model model;
    dg_optim *opt;
    float x[N * FEATURES];
    int32_t y[N];
};

/* A linear softmax classifier on a separable task: class = argmax of three fixed scores. */
static void setup_model(struct fixture *f)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 11);
    dg_test_fill_uniform(&r, f->x, N * FEATURES, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        const float *row = f->x + i * FEATURES;
        float s[CLASSES] = {row[0] + row[1], row[2] - row[0], row[3] - row[1]};
        f->y[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    f->g = dg_graph_new();
    dg_node *x = dg_input(f->g, "x", 2, (int64_t[]){16, FEATURES});
    dg_node *y = dg_input_typed(f->g, "y", DG_I32, 1, (int64_t[]){16});
    dg_node *logits = dg_dense(f->g, x, CLASSES, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(f->g, logits, y);
    dg_node *params[2], *grads[2];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(f->g, loss, 2, params, grads, &n), DG_OK);
    dg_adam_config cfg = DG_ADAM_DEFAULTS;
    cfg.lr = 0.05;
    f->opt = dg_optim_new_adam(n, params, grads, &cfg);
    f->model = (dg_model){.graph = f->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static void teardown_model(struct fixture *f)
{
    dg_optim_free(f->opt);
    dg_graph_free(f->g);
}

/* A metric that counts examples: its epoch mean is exactly 1 when every example is seen
 * exactly once, the last partial batch included. */
static double count_examples(const float *output, const void *targets, int64_t batch,
                             int64_t per_example, void *user)
{
    *(int64_t *)user += batch;
    ck_assert_int_eq(per_example, CLASSES);
    return (double)batch;
}

START_TEST(every_example_once_per_epoch)
{
    static struct fixture f;
    setup_model(&f);
    int64_t seen = 0;
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 3;
    cfg.batch_size = 16; /* 103 = 6 * 16 + 7: a partial last batch */
    cfg.verbose = 0;
    cfg.metric = count_examples;
    cfg.metric_user = &seen;
    cfg.metric_name = "count";
    dg_fit_data train = {.x = f.x, .y = f.y, .n = N};
    dg_epoch_stats history[3];
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &train, &train, &cfg, history), DG_OK);
    ck_assert_int_eq(seen, 3 * N + 3 * N); /* training and validation passes */
    ck_assert_int_eq(dg_optim_step_count(f.opt), 3 * 7);
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(history[e].epoch, e + 1);
        ck_assert_double_eq_tol(history[e].metric, 1.0, 1e-12);
        ck_assert(!isnan(history[e].val_loss));
        ck_assert_double_ge(history[e].accuracy, 0.0);
        ck_assert_double_le(history[e].accuracy, 1.0);
        ck_assert_double_gt(history[e].samples_per_s, 0.0);
    }
    ck_assert_double_lt(history[2].val_loss, history[0].val_loss);
    /* Evaluation reproduces the last validation figures (same parameters, eval mode). */
    dg_epoch_stats eval;
    ck_assert_int_eq(dg_evaluate(&f.model, &train, &cfg, &eval), DG_OK);
    ck_assert_double_eq_tol(eval.loss, history[2].val_loss, 1e-6);
    teardown_model(&f);
}
END_TEST

START_TEST(progress_lines_and_csv)
{
    static struct fixture f;
    setup_model(&f);
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    char csv[1024];
    /* per process: the suite also runs as train-generic and train-avx2, in parallel */
    snprintf(csv, sizeof csv, "%s/test_train_history_%ld.csv", dir ? dir : ".", (long)getpid());
    FILE *log = tmpfile();
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 2;
    cfg.batch_size = 10;
    cfg.log = log;
    cfg.csv_path = csv;
    dg_fit_data train = {.x = f.x, .y = f.y, .n = N};
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &train, NULL, &cfg, NULL), DG_OK);
    /* Not a terminal: one plain line per epoch. */
    char text[4096] = "";
    rewind(log);
    size_t len = fread(text, 1, sizeof text - 1, log);
    text[len] = '\0';
    fclose(log);
    ck_assert_ptr_nonnull(strstr(text, "epoch 1/2 loss "));
    ck_assert_ptr_nonnull(strstr(text, "epoch 2/2 loss "));
    ck_assert_ptr_nonnull(strstr(text, "samples/s"));
    ck_assert_ptr_null(strstr(text, "\r"));
    FILE *f_csv = fopen(csv, "r");
    ck_assert_ptr_nonnull(f_csv);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, f_csv))
        lines++;
    fclose(f_csv);
    remove(csv);
    ck_assert_int_eq(lines, 3); /* header + 2 epochs */
    teardown_model(&f);
}
END_TEST

START_TEST(fit_errors)
{
    static struct fixture f;
    setup_model(&f);
    dg_fit_data train = {.x = f.x, .y = f.y, .n = N};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.verbose = 0;
    ck_assert_int_eq(dg_fit(NULL, f.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_fit(&f.model, f.opt, NULL, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "fit: data is NULL or empty"));
    dg_graph_clear_error(f.g);
    ck_assert_int_eq(dg_evaluate(&f.model, NULL, NULL, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "evaluate: data is NULL or empty"));
    dg_graph_clear_error(f.g);
    dg_model broken = f.model;
    broken.loss = NULL;
    ck_assert_int_eq(dg_fit(&broken, f.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "fit: model.loss is NULL"));
    dg_graph_clear_error(f.g);
    dg_fit_data empty = {.x = f.x, .y = f.y, .n = 0};
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &empty, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(f.g);
    cfg.batch_size = 0;
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "batch"));
    dg_graph_clear_error(f.g);
    cfg.batch_size = 8;
    ck_assert_int_eq(dg_fit(&f.model, NULL, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "optimizer"));
    dg_graph_clear_error(f.g);
    cfg.csv_path = "/nonexistent-dir/history.csv";
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &train, NULL, &cfg, NULL), DG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(f.g), "/nonexistent-dir/history.csv"));
    dg_graph_clear_error(f.g);
    cfg.csv_path = NULL;
    cfg.batch_size = (int64_t)1 << 62; /* clamped to the data: one batch of all 103 */
    ck_assert_int_eq(dg_fit(&f.model, f.opt, &train, NULL, &cfg, NULL), DG_OK);
    cfg.batch_size = 8;
    broken = f.model;
    broken.x = broken.loss;
    ck_assert_int_eq(dg_fit(&broken, f.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(f.g);
    teardown_model(&f);
}
END_TEST


/* Sequence labels [B, T] against scores [B, T, V]: token accuracy over the tokens whose label
 * is in range, perplexity = exp(loss) as the metric. The output is the input itself, so the
 * argmaxes are known: 2 of the 3 judged tokens are right. */
START_TEST(token_accuracy_and_perplexity)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){4, 2, 3});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 2, (int64_t[]){4, 2});
    dg_node *out = dg_add_scalar(g, x, 0.0f);
    dg_node *loss = dg_softmax_cross_entropy(g, dg_reshape(g, x, 2, (int64_t[]){-1, 3}),
                                             dg_reshape(g, y, 1, (int64_t[]){-1}));
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = out};
    const float xv[12] = {1, 0, 0, 0, 2, 0, 0, 0, 3, 5, 0, 0};
    const int32_t yv[4] = {0, 2, 2, -1};
    dg_fit_data data = {.x = xv, .y = yv, .n = 2};
    dg_epoch_stats st;
    ck_assert_int_eq(dg_evaluate(&model, &data, NULL, &st), DG_OK);
    ck_assert_double_eq_tol(st.accuracy, 2.0 / 3.0, 1e-12);
    double want_loss = (log(2 + exp(1.0)) - 1 + log(2 + exp(2.0)) + log(2 + exp(3.0)) - 3) / 3;
    ck_assert_double_eq_tol(st.loss, want_loss, 1e-5);
    ck_assert_double_eq_tol(st.metric, exp(st.loss), 1e-9);
    /* A user metric takes the metric's place; no_accuracy hides accuracy. */
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.no_accuracy = true;
    ck_assert_int_eq(dg_evaluate(&model, &data, &cfg, &st), DG_OK);
    ck_assert(isnan(st.accuracy));
    ck_assert_double_eq_tol(st.metric, exp(st.loss), 1e-9);
    dg_graph_free(g);

    /* Labels [B] against scores [B, T, V]: no accuracy and no perplexity (both would be
     * wrong numbers). */
    g = dg_graph_new();
    x = dg_input(g, "x", 3, (int64_t[]){4, 2, 3});
    y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){4});
    out = dg_add_scalar(g, x, 0.0f);
    loss = dg_softmax_cross_entropy(g, dg_reshape(g, x, 2, (int64_t[]){-1, 6}), y);
    model = (dg_model){.graph = g, .x = x, .y = y, .loss = loss, .output = out};
    ck_assert_msg(dg_evaluate(&model, &data, NULL, &st) == DG_OK, "%s", dg_graph_error(g));
    ck_assert(isnan(st.accuracy));
    ck_assert(isnan(st.metric));
    dg_graph_free(g);
}
END_TEST

/* dg_fit on a next-symbol task with int32 token inputs would need an embedding; one-hot float
 * inputs [B, T, V] serve here. The next symbol is (symbol + 1) mod V: a dense layer over the
 * last axis learns it, token accuracy reaches 1, and progress shows "ppl". */
START_TEST(fit_sequence_model_shows_token_metrics)
{
    enum { NS = 64, TS = 6, VS = 5 };
    static float xv[NS * TS * VS];
    static int32_t yv[NS * TS];
    dg_rng data;
    dg_rng_seed(&data, 8);
    for (int i = 0; i < NS * TS; i++) {
        int sym = (int)dg_rng_below(&data, VS);
        xv[i * VS + sym] = 1.0f;
        yv[i] = (sym + 1) % VS;
    }
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 4);
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){16, TS, VS});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 2, (int64_t[]){16, TS});
    dg_node *logits = dg_dense(g, x, VS, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, dg_reshape(g, logits, 2, (int64_t[]){-1, VS}),
                                             dg_reshape(g, y, 1, (int64_t[]){-1}));
    dg_node *params[2], *grads[2];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 2, params, grads, &n), DG_OK);
    dg_adam_config ac = DG_ADAM_DEFAULTS;
    ac.lr = 0.1;
    dg_optim *opt = dg_optim_new_adam(n, params, grads, &ac);
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_data train = {.x = xv, .y = yv, .n = NS};
    char *text = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&text, &len);
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 15;
    cfg.batch_size = 16;
    cfg.log = log;
    dg_epoch_stats hist[15];
    ck_assert_msg(dg_fit(&model, opt, &train, &train, &cfg, hist) == DG_OK, "%s",
                  dg_graph_error(g));
    fclose(log);
    ck_assert_double_ge(hist[14].val_accuracy, 0.99);
    ck_assert_double_lt(hist[14].val_accuracy, 1.0 + 1e-12);
    ck_assert_double_eq_tol(hist[14].val_metric, exp(hist[14].val_loss), 1e-9);
    ck_assert_double_lt(hist[14].val_metric, hist[0].val_metric);
    ck_assert_ptr_nonnull(strstr(text, " ppl "));
    ck_assert_ptr_nonnull(strstr(text, " val_ppl "));
    free(text);
    dg_optim_free(opt);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_add_test(tc, every_example_once_per_epoch);
    tcase_add_test(tc, progress_lines_and_csv);
    tcase_add_test(tc, fit_errors);
    tcase_add_test(tc, token_accuracy_and_perplexity);
    tcase_add_test(tc, fit_sequence_model_shows_token_metrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
