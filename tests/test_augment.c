/* Image augmentation in dg_fit: crop and flip on a hand-made image, determinism, training
 * batches only (never validation or dg_evaluate), a resumed run continues the stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

enum { C = 2, H = 3, W = 4, ROW = C * H * W, N = 13 };

static void hand_made(float *image)
{
    for (int i = 0; i < ROW; i++)
        image[i] = (float)(i + 1);
}

/* out[c][y][x] = in[c][y + dy][x + dx], 0 outside, then mirrored when flip. */
static void reference(const float *in, float *out, int dy, int dx, bool flip)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
                bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                out[(c * H + y) * W + x] = inside ? in[(c * H + sy) * W + sx] : 0.0f;
            }
}

static bool same(const float *a, const float *b, int n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

START_TEST(flip_on_hand_made_image)
{
    float in[ROW], image[ROW], want[ROW];
    hand_made(in);
    dg_augment aug = {.enable = true, .channels = C, .height = H, .width = W,
                      .flip_probability = 1.0};
    memcpy(image, in, sizeof image);
    ck_assert_int_eq(dg_augment_image(&aug, 5, 1, 0, image), DG_OK);
    reference(in, want, 0, 0, true);
    ck_assert(same(image, want, ROW));
    ck_assert_float_eq_tol(image[0], 4.0f, 1e-6f); /* row 0 of channel 0 is 4 3 2 1 */
    ck_assert_float_eq_tol(image[H * W + W - 1], 13.0f, 1e-6f);
    /* Probability 0.5: both outcomes occur, each one exactly a mirror or the original. */
    aug.flip_probability = 0.5;
    int flipped = 0;
    for (int e = 0; e < 200; e++) {
        memcpy(image, in, sizeof image);
        ck_assert_int_eq(dg_augment_image(&aug, 5, 1, e, image), DG_OK);
        bool is_flip = same(image, want, ROW);
        ck_assert(is_flip || same(image, in, ROW));
        flipped += is_flip;
    }
    ck_assert_int_gt(flipped, 60);
    ck_assert_int_lt(flipped, 140);
}
END_TEST

START_TEST(crop_on_hand_made_image)
{
    float in[ROW], image[ROW], want[ROW];
    hand_made(in);
    for (int pad = 1; pad <= 2; pad++) {
        dg_augment aug = {.enable = true, .channels = C, .height = H, .width = W,
                          .crop_padding = pad, .flip_probability = 0.5};
        bool seen[5][5][2] = {{{false}}};
        for (int e = 0; e < 400; e++) {
            memcpy(image, in, sizeof image);
            ck_assert_int_eq(dg_augment_image(&aug, 9, 3, e, image), DG_OK);
            int matches = 0;
            for (int dy = -pad; dy <= pad; dy++)
                for (int dx = -pad; dx <= pad; dx++)
                    for (int flip = 0; flip < 2; flip++) {
                        reference(in, want, dy, dx, flip);
                        if (same(image, want, ROW)) {
                            seen[dy + pad][dx + pad][flip] = true;
                            matches++;
                        }
                    }
            ck_assert_int_ge(matches, 1); /* exactly a shifted (and maybe mirrored) image */
        }
        for (int dy = 0; dy <= 2 * pad; dy++)
            for (int dx = 0; dx <= 2 * pad; dx++)
                for (int flip = 0; flip < 2; flip++)
                    ck_assert_msg(seen[dy][dx][flip], "pad %d: shift (%d,%d) flip %d never drawn",
                                  pad, dy - pad, dx - pad, flip);
    }
}
END_TEST

START_TEST(deterministic_and_keyed)
{
    float in[ROW], a[ROW], b[ROW];
    hand_made(in);
    dg_augment aug = {.enable = true, .channels = C, .height = H, .width = W,
                      .crop_padding = 1, .flip_probability = 0.5};
    int differ_example = 0, differ_epoch = 0, differ_seed = 0;
    for (int e = 0; e < 50; e++) {
        memcpy(a, in, sizeof a);
        memcpy(b, in, sizeof b);
        dg_augment_image(&aug, 7, 2, e, a);
        dg_augment_image(&aug, 7, 2, e, b);
        ck_assert(same(a, b, ROW));
        memcpy(b, in, sizeof b);
        dg_augment_image(&aug, 7, 2, e + 1, b);
        differ_example += !same(a, b, ROW);
        memcpy(b, in, sizeof b);
        dg_augment_image(&aug, 7, 3, e, b);
        differ_epoch += !same(a, b, ROW);
        memcpy(b, in, sizeof b);
        dg_augment_image(&aug, 8, 2, e, b);
        differ_seed += !same(a, b, ROW);
    }
    ck_assert_int_gt(differ_example, 25);
    ck_assert_int_gt(differ_epoch, 25);
    ck_assert_int_gt(differ_seed, 25);
    /* Bad settings are refused, never applied. */
    dg_augment bad = aug;
    bad.flip_probability = 1.5;
    ck_assert_int_eq(dg_augment_image(&bad, 1, 1, 0, a), DG_ERR_INVALID_ARG);
    bad = aug;
    bad.crop_padding = -1;
    ck_assert_int_eq(dg_augment_image(&bad, 1, 1, 0, a), DG_ERR_INVALID_ARG);
    bad = aug;
    bad.height = 0;
    ck_assert_int_eq(dg_augment_image(&bad, 1, 1, 0, a), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_augment_image(NULL, 1, 1, 0, a), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_augment_image(&aug, 1, 1, 0, NULL), DG_ERR_INVALID_ARG);
}
END_TEST

/* A model whose output is its input times a parameter of ones that SGD with lr 0 never
 * changes: the metric then sees exactly the batch dg_fit fed. */
struct model {
    dg_graph *g;
    dg_model m;
    dg_optim *opt;
    float x[N * ROW], y[N * ROW];
};

struct record {
    int calls;
    float seen[8][N * ROW]; /* the outputs of each whole-data batch, in call order */
};

static double record_batch(const float *output, const void *targets, int64_t batch,
                           int64_t per_example, void *user)
{
    struct record *r = user;
    ck_assert_int_eq(batch, N);
    ck_assert_int_eq(per_example, ROW);
    ck_assert_int_lt(r->calls, 8);
    memcpy(r->seen[r->calls++], output, sizeof r->seen[0]);
    return 0;
}

static void make_model(struct model *md, double lr)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 3);
    dg_test_fill_uniform(&r, md->x, N * ROW, 0.1f, 1.0f); /* no zeros: a shift shows */
    dg_test_fill_uniform(&r, md->y, N * ROW, 0.0f, 1.0f);
    md->g = dg_graph_new();
    dg_node *x = dg_input(md->g, "x", 2, (int64_t[]){N, ROW});
    dg_node *y = dg_input(md->g, "y", 2, (int64_t[]){N, ROW});
    dg_node *w = dg_param(md->g, "w", 2, (int64_t[]){1, ROW});
    for (int i = 0; i < ROW; i++)
        dg_param_data(w)[i] = 1.0f;
    dg_node *out = dg_mul(md->g, x, w);
    dg_node *loss = dg_mse_loss(md->g, out, y);
    dg_node *params[1], *grads[1];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(md->g, loss, 1, params, grads, &n), DG_OK);
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    sgd.lr = lr;
    md->opt = dg_optim_new_sgd(n, params, grads, &sgd);
    ck_assert_ptr_nonnull(md->opt);
    md->m = (dg_model){.graph = md->g, .x = x, .y = y, .loss = loss, .output = out};
}

static void free_model(struct model *md)
{
    dg_optim_free(md->opt);
    dg_graph_free(md->g);
}

static dg_fit_config augmenting(struct record *rec)
{
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = N;
    cfg.shuffle = false;
    cfg.verbose = 0;
    cfg.seed = 21;
    cfg.no_accuracy = true;
    cfg.metric = record_batch;
    cfg.metric_user = rec;
    cfg.augment = (dg_augment){.enable = true, .channels = C, .height = H, .width = W,
                               .crop_padding = 1, .flip_probability = 0.5};
    return cfg;
}

START_TEST(training_batches_only)
{
    static struct model md;
    static struct record rec;
    make_model(&md, 0.0);
    memset(&rec, 0, sizeof rec);
    dg_fit_config cfg = augmenting(&rec);
    cfg.epochs = 2;
    dg_fit_data data = {.x = md.x, .y = md.y, .n = N};
    ck_assert_int_eq(dg_fit(&md.m, md.opt, &data, &data, &cfg, NULL), DG_OK);
    ck_assert_int_eq(rec.calls, 4); /* train, validate, train, validate */
    for (int epoch = 1; epoch <= 2; epoch++) {
        float want[N * ROW];
        memcpy(want, md.x, sizeof want);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(dg_augment_image(&cfg.augment, cfg.seed, epoch, i,
                                              want + i * ROW), DG_OK);
        ck_assert(!same(want, md.x, N * ROW));
        ck_assert(same(rec.seen[2 * (epoch - 1)], want, N * ROW));     /* training */
        ck_assert(same(rec.seen[2 * (epoch - 1) + 1], md.x, N * ROW)); /* validation */
    }
    /* dg_evaluate with the same config sees the data as given. */
    ck_assert_int_eq(dg_evaluate(&md.m, &data, &cfg, NULL), DG_OK);
    ck_assert_int_eq(rec.calls, 5);
    ck_assert(same(rec.seen[4], md.x, N * ROW));
    free_model(&md);
}
END_TEST

/* Two epochs in one call train exactly like one epoch and a resumed second one. */
START_TEST(resume_continues_the_stream)
{
    static struct model whole, split;
    static struct record rec;
    make_model(&whole, 0.05);
    make_model(&split, 0.05);
    dg_fit_data data_whole = {.x = whole.x, .y = whole.y, .n = N};
    dg_fit_data data_split = {.x = split.x, .y = split.y, .n = N};
    memset(&rec, 0, sizeof rec);
    dg_fit_config cfg = augmenting(&rec);
    cfg.metric = NULL;
    cfg.batch_size = 4;
    cfg.shuffle = true;
    cfg.epochs = 2;
    ck_assert_int_eq(dg_fit(&whole.m, whole.opt, &data_whole, NULL, &cfg, NULL), DG_OK);
    dg_fit_state state = {0};
    cfg.state = &state;
    cfg.epochs = 1;
    ck_assert_int_eq(dg_fit(&split.m, split.opt, &data_split, NULL, &cfg, NULL), DG_OK);
    ck_assert_int_eq(dg_fit(&split.m, split.opt, &data_split, NULL, &cfg, NULL), DG_OK);
    ck_assert_int_eq(state.epoch, 2);
    float *a = dg_param_data(dg_optim_param_node(whole.opt, 0));
    float *b = dg_param_data(dg_optim_param_node(split.opt, 0));
    ck_assert(same(a, b, ROW));
    /* Without augmentation the parameters differ: augmentation did change training. */
    static struct model plain;
    make_model(&plain, 0.05);
    dg_fit_data data_plain = {.x = plain.x, .y = plain.y, .n = N};
    cfg.state = NULL;
    cfg.epochs = 2;
    cfg.augment.enable = false;
    ck_assert_int_eq(dg_fit(&plain.m, plain.opt, &data_plain, NULL, &cfg, NULL), DG_OK);
    ck_assert(!same(a, dg_param_data(dg_optim_param_node(plain.opt, 0)), ROW));
    free_model(&whole);
    free_model(&split);
    free_model(&plain);
}
END_TEST

/* A one-rank dg_fit_parallel: the "averaged" gradients are the plan's own, so the parallel
 * path of dg_fit must train exactly as one process, augmentation included. */
struct one_rank {
    dg_optim *opt;
    const float *grads[4];
};

static dg_status one_attach(void *user, dg_plan *plan, dg_optim *opt)
{
    (void)plan;
    ((struct one_rank *)user)->opt = opt;
    return DG_OK;
}

static dg_status one_begin(void *user, dg_plan *plan, int64_t batch)
{
    (void)user, (void)plan, (void)batch;
    return DG_OK;
}

static dg_status one_end(void *user, dg_plan *plan, dg_status local,
                         const float *const **grads)
{
    struct one_rank *r = user;
    if (local != DG_OK)
        return local;
    for (int i = 0; i < dg_optim_param_count(r->opt); i++)
        r->grads[i] = dg_data(plan, dg_optim_grad_node(r->opt, i));
    *grads = r->grads;
    return DG_OK;
}

static dg_status one_sum(void *user, double *values, int n)
{
    (void)user, (void)values, (void)n;
    return DG_OK;
}

static dg_status one_agree(void *user, dg_status local)
{
    (void)user;
    return local;
}

static void one_detach(void *user, dg_plan *plan)
{
    (void)user, (void)plan;
}

START_TEST(parallel_path_augments_like_one_process)
{
    static struct model single, ranked;
    static struct record rec;
    make_model(&single, 0.05);
    make_model(&ranked, 0.05);
    dg_fit_config cfg = augmenting(&rec);
    cfg.metric = NULL;
    cfg.batch_size = 4;
    cfg.shuffle = true;
    cfg.epochs = 2;
    dg_fit_data data_single = {.x = single.x, .y = single.y, .n = N};
    ck_assert_int_eq(dg_fit(&single.m, single.opt, &data_single, NULL, &cfg, NULL), DG_OK);
    struct one_rank user = {0};
    dg_fit_parallel par = {.rank = 0, .size = 1, .user = &user, .attach = one_attach,
                           .step_begin = one_begin, .step_end = one_end, .sum = one_sum,
                           .agree = one_agree, .detach = one_detach};
    cfg.parallel = &par;
    dg_fit_data data_ranked = {.x = ranked.x, .y = ranked.y, .n = N};
    ck_assert_int_eq(dg_fit(&ranked.m, ranked.opt, &data_ranked, NULL, &cfg, NULL), DG_OK);
    ck_assert(same(dg_param_data(dg_optim_param_node(single.opt, 0)),
                   dg_param_data(dg_optim_param_node(ranked.opt, 0)), ROW));
    /* and the augmentation mattered on that path too */
    static struct model plain;
    make_model(&plain, 0.05);
    dg_fit_data data_plain = {.x = plain.x, .y = plain.y, .n = N};
    cfg.augment.enable = false;
    ck_assert_int_eq(dg_fit(&plain.m, plain.opt, &data_plain, NULL, &cfg, NULL), DG_OK);
    ck_assert(!same(dg_param_data(dg_optim_param_node(single.opt, 0)),
                    dg_param_data(dg_optim_param_node(plain.opt, 0)), ROW));
    free_model(&single);
    free_model(&ranked);
    free_model(&plain);
}
END_TEST

START_TEST(fit_refuses_bad_settings)
{
    static struct model md;
    static struct record rec;
    make_model(&md, 0.0);
    dg_fit_data data = {.x = md.x, .y = md.y, .n = N};
    dg_fit_config cfg = augmenting(&rec);
    cfg.metric = NULL;
    cfg.augment.width = W + 1; /* 2 * 3 * 5 != 24 */
    ck_assert_int_eq(dg_fit(&md.m, md.opt, &data, NULL, &cfg, NULL), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(md.g), "augment"));
    dg_graph_clear_error(md.g);
    cfg.augment.width = W;
    cfg.augment.flip_probability = -0.5;
    ck_assert_int_eq(dg_fit(&md.m, md.opt, &data, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(md.g);
    ck_assert_int_eq(dg_optim_step_count(md.opt), 0);
    free_model(&md);
}
END_TEST

/* Augmentation moves pixels: token ids (an int32 input) are refused before any step. */
START_TEST(fit_refuses_int32_inputs)
{
    static struct record rec;
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input_typed(g, "tokens", DG_I32, 2, (int64_t[]){N, C * H * W});
    dg_node *y = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){N});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){C * H * W, 2});
    dg_node *out = dg_matmul(g, dg_cast(g, x, DG_F32), w);
    dg_node *loss = dg_softmax_cross_entropy(g, out, y);
    dg_node *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad), DG_OK);
    dg_optim *opt = dg_optim_new_sgd(1, &w, &grad, &DG_SGD_DEFAULTS);
    static int32_t tokens[N * C * H * W], labels[N];
    dg_model m = {.graph = g, .x = x, .y = y, .loss = loss, .output = out};
    dg_fit_data data = {.x = tokens, .y = labels, .n = N};
    dg_fit_config cfg = augmenting(&rec);
    cfg.metric = NULL;
    ck_assert_int_eq(dg_fit(&m, opt, &data, NULL, &cfg, NULL), DG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "augmentation needs float32 inputs"));
    ck_assert_int_eq(dg_optim_step_count(opt), 0);
    dg_optim_free(opt);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("augment");
    tcase_add_test(tc, flip_on_hand_made_image);
    tcase_add_test(tc, crop_on_hand_made_image);
    tcase_add_test(tc, deterministic_and_keyed);
    tcase_add_test(tc, training_batches_only);
    tcase_add_test(tc, resume_continues_the_stream);
    tcase_add_test(tc, parallel_path_augments_like_one_process);
    tcase_add_test(tc, fit_refuses_bad_settings);
    tcase_add_test(tc, fit_refuses_int32_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
