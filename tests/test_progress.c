/* Progress output that never lies, and the SVG training curves (issue 9). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagrad.h"
#include "test_util.h"

enum { N = 40, FEATURES = 3 };

struct model {
    dg_graph *g;
    dg_model model;
    dg_optim *opt;
    float x[N * FEATURES];
    float y[N];
};

/* x [B,3] -> dense 1 -> mean squared error against y [B,1]; output = the prediction. */
static void make_model(struct model *m, float target_scale, bool binary)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 4);
    dg_test_fill_uniform(&r, m->x, N * FEATURES, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        float v = m->x[i * FEATURES] - 0.5f * m->x[i * FEATURES + 1];
        m->y[i] = binary ? (v > 0 ? 1.0f : 0.0f) : target_scale * v;
    }
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    m->g = dg_graph_new();
    dg_node *x = dg_input(m->g, "x", 2, (int64_t[]){8, FEATURES});
    dg_node *y = dg_input(m->g, "y", 2, (int64_t[]){8, 1});
    dg_node *out = dg_dense(m->g, x, 1, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_mean(m->g, dg_square(m->g, dg_sub(m->g, out, y)), 0, NULL, false);
    dg_node *params[2], *grads[2];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(m->g, loss, 2, params, grads, &n), DG_OK);
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 0.05;
    m->opt = dg_optim_new_sgd(n, params, grads, &cfg);
    m->model = (dg_model){.graph = m->g, .x = x, .y = y, .loss = loss, .output = out};
}

static void free_model(struct model *m)
{
    dg_optim_free(m->opt);
    dg_graph_free(m->g);
}

/* Mean absolute error, as a user metric. */
static double mae(const float *output, const void *targets, int64_t batch, int64_t per_example,
                  void *user)
{
    double sum = 0;
    for (int64_t i = 0; i < batch; i++)
        sum += fabs((double)output[i] - ((const float *)targets)[i]);
    return sum;
}

/* Runs dg_fit with output to a temporary file and returns what it printed (static buffer). */
static const char *fit_output(struct model *m, dg_fit_config cfg, dg_epoch_stats *history)
{
    static char text[8192];
    FILE *log = tmpfile();
    cfg.log = log;
    cfg.verbose = 1;
    dg_fit_data data = {.x = m->x, .y = m->y, .n = N};
    ck_assert_int_eq(dg_fit(&m->model, m->opt, &data, &data, &cfg, history), DG_OK);
    rewind(log);
    size_t len = fread(text, 1, sizeof text - 1, log);
    text[len] = '\0';
    fclose(log);
    return text;
}

START_TEST(regression_shows_no_accuracy_and_small_losses_in_full)
{
    struct model m;
    make_model(&m, 1e-4f, false); /* losses around 1e-9: "0.0000" with fixed decimals */
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 2;
    cfg.batch_size = 8;
    cfg.metric = mae;
    cfg.metric_name = "mae";
    dg_epoch_stats history[2];
    const char *text = fit_output(&m, cfg, history);
    ck_assert_ptr_null(strstr(text, " acc "));
    ck_assert_ptr_null(strstr(text, "val_acc"));
    ck_assert_ptr_nonnull(strstr(text, " mae "));
    ck_assert_ptr_nonnull(strstr(text, " val_mae "));
    ck_assert_ptr_null(strstr(text, "0.0000"));
    ck_assert(isnan(history[0].accuracy));
    ck_assert(!isnan(history[0].metric));
    /* The printed loss is the loss, to 4 significant digits. */
    const char *at = strstr(text, "epoch 1/2 loss ");
    ck_assert_ptr_nonnull(at);
    double printed = strtod(at + strlen("epoch 1/2 loss "), NULL);
    ck_assert_double_eq_tol(printed, history[0].loss, fabs(history[0].loss) * 1e-3);
    ck_assert_double_gt(history[0].loss, 0.0);
    /* A short epoch is timed in milliseconds; no schedule, no lr. */
    ck_assert_ptr_nonnull(strstr(text, "ms\n"));
    ck_assert_ptr_null(strstr(text, " lr "));
    free_model(&m);
}
END_TEST

START_TEST(binary_targets_get_accuracy_unless_switched_off)
{
    struct model m;
    make_model(&m, 1.0f, true);
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = 8;
    dg_epoch_stats history[1];
    const char *text = fit_output(&m, cfg, history);
    ck_assert_ptr_nonnull(strstr(text, " acc "));
    ck_assert(!isnan(history[0].accuracy));
    cfg.no_accuracy = true;
    cfg.metric = mae;
    cfg.metric_name = "mae";
    text = fit_output(&m, cfg, history);
    ck_assert_ptr_null(strstr(text, " acc "));
    ck_assert_ptr_nonnull(strstr(text, " mae "));
    ck_assert(isnan(history[0].accuracy));
    free_model(&m);
}
END_TEST

START_TEST(schedule_shows_the_lr)
{
    struct model m;
    make_model(&m, 1.0f, false);
    dg_schedule halve = dg_schedule_step(5, 0.5);
    ck_assert_int_eq(dg_optim_set_schedule(m.opt, &halve), DG_OK);
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 2;
    cfg.batch_size = 8; /* 5 steps an epoch: the lr halves after each */
    dg_epoch_stats history[2];
    const char *text = fit_output(&m, cfg, history);
    ck_assert_ptr_nonnull(strstr(text, "epoch 1/2"));
    ck_assert_ptr_nonnull(strstr(text, " lr 0.025 "));
    ck_assert_ptr_nonnull(strstr(text, " lr 0.0125 "));
    ck_assert_double_eq_tol(history[1].lr, 0.0125, 1e-12);
    free_model(&m);
}
END_TEST

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

START_TEST(fit_writes_the_training_curves)
{
    struct model m;
    make_model(&m, 1.0f, true);
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/test_progress_curves.svg", dir ? dir : ".");
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 3;
    cfg.batch_size = 8;
    cfg.plot_path = path;
    fit_output(&m, cfg, NULL);
    const char *svg = read_file(path);
    ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    ck_assert_ptr_nonnull(strstr(svg, ">train loss<"));
    ck_assert_ptr_nonnull(strstr(svg, ">validation loss<"));
    ck_assert_ptr_nonnull(strstr(svg, ">validation accuracy<"));
    ck_assert_ptr_nonnull(strstr(svg, "</svg>"));
    /* Three epochs: three points on each of the four curves. */
    int circles = 0;
    for (const char *p = strstr(svg, "<circle"); p; p = strstr(p + 1, "<circle"))
        circles++;
    ck_assert_int_eq(circles, 12);

    /* A regression with a metric plots the metric instead of accuracy. */
    dg_epoch_stats h[2] = {
        {.epoch = 1, .loss = 2, .accuracy = NAN, .metric = 1.5, .val_loss = 2.5,
         .val_accuracy = NAN, .val_metric = 1.7},
        {.epoch = 2, .loss = 1, .accuracy = NAN, .metric = 0.9, .val_loss = NAN,
         .val_accuracy = NAN, .val_metric = 1.1},
    };
    ck_assert_int_eq(dg_plot_history(h, 2, "mae", path), DG_OK);
    svg = read_file(path);
    ck_assert_ptr_nonnull(strstr(svg, ">train mae<"));
    ck_assert_ptr_null(strstr(svg, "accuracy"));
    ck_assert_ptr_null(strstr(svg, "nan"));

    ck_assert_int_eq(dg_plot_history(NULL, 2, NULL, path), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_plot_history(h, 0, NULL, path), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_plot_history(h, 2, NULL, "/nonexistent-dir/x.svg"), DG_ERR_IO);
    cfg.plot_path = "/nonexistent-dir/curves.svg";
    cfg.verbose = 0;
    dg_fit_data data = {.x = m.x, .y = m.y, .n = N};
    ck_assert_int_eq(dg_fit(&m.model, m.opt, &data, NULL, &cfg, NULL), DG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(m.g), "/nonexistent-dir/curves.svg"));
    free_model(&m);
}
END_TEST


/* On a terminal (a pseudo-terminal here) the live bar shows the user metric too. */
START_TEST(live_bar_shows_the_metric)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        printf("no pseudo-terminal: live bar check skipped\n");
        return;
    }
    FILE *tty = fopen(ptsname(master), "w");
    ck_assert_ptr_nonnull(tty);
    ck_assert(isatty(fileno(tty)));
    struct model m;
    make_model(&m, 1.0f, false);
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = 8;
    cfg.metric = mae;
    cfg.metric_name = "mae";
    cfg.log = tty;
    dg_fit_data data = {.x = m.x, .y = m.y, .n = N};
    ck_assert_int_eq(dg_fit(&m.model, m.opt, &data, NULL, &cfg, NULL), DG_OK);
    fclose(tty);
    char text[4096];
    /* Read until the epoch's closing line (the only one ending in a newline) has arrived; a
     * pty hands data over asynchronously. The poll timeout only bounds a broken run. */
    size_t len = 0;
    text[0] = '\0';
    while (strchr(text, '\n') == NULL && len < sizeof text - 1) {
        struct pollfd ready = {.fd = master, .events = POLLIN};
        if (poll(&ready, 1, 10000) <= 0)
            break;
        ssize_t got = read(master, text + len, sizeof text - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        text[len] = '\0';
    }
    ck_assert_uint_gt(len, 0);
    /* The last redraw of the bar (at 40/40) carries loss and metric, no accuracy. */
    char *bar = strstr(text, "40/40 loss ");
    ck_assert_msg(bar != NULL, "no final bar in '%s'", text);
    char *end = strchr(bar, '\r'); /* the epoch's line follows: look at the bar alone */
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    ck_assert_ptr_nonnull(strstr(bar, " mae "));
    ck_assert_ptr_nonnull(strstr(bar, "ETA"));
    ck_assert_ptr_null(strstr(text, " acc "));
    close(master);
    free_model(&m);
}
END_TEST

static Suite *progress_suite(void)
{
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("progress");
    tcase_add_test(tc, regression_shows_no_accuracy_and_small_losses_in_full);
    tcase_add_test(tc, binary_targets_get_accuracy_unless_switched_off);
    tcase_add_test(tc, schedule_shows_the_lr);
    tcase_add_test(tc, fit_writes_the_training_curves);
    tcase_add_test(tc, live_bar_shows_the_metric);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(progress_suite());
}
