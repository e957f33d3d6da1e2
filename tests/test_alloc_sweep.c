/*
 * Allocation failure at every allocation of a full workload (issue 9): build, grad, compile,
 * run, set_batch, optimizer, fit (with its plot), DOT (full and collapsed), IDX load, run
 * once through a counting allocator (dg_set_allocator) to learn its N allocations, then N more times with allocation k failing
 * (k = 1 .. N). Every run must end with no block held (no leak, counted here; ASan in CI
 * checks the rest) and either report an error status or produce exactly the reference
 * results: an allocation failure is never a silent success with wrong data.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagrad.h"
#include "test_util.h"

struct counting {
    long calls;   /* malloc and realloc calls so far */
    long fail_at; /* the call that returns NULL (1-based); 0: none */
    long live;    /* blocks held */
};

static struct counting counter;

static void *count_malloc(size_t size, void *user)
{
    struct counting *c = user;
    if (++c->calls == c->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        c->live++;
    return p;
}

static void *count_realloc(void *ptr, size_t size, void *user)
{
    struct counting *c = user;
    if (++c->calls == c->fail_at)
        return NULL;
    return realloc(ptr, size);
}

static void count_free(void *ptr, void *user)
{
    struct counting *c = user;
    c->live--;
    free(ptr);
}

enum { N = 10, FEATURES = 6, HIDDEN = 16, CLASSES = 3 };

/* Everything the workload computes; compared bitwise with the reference run. */
struct results {
    float loss_full, loss_small;
    float param_after_step[4];
    double fit_loss, fit_val_loss, eval_loss;
    int64_t idx_count;
    float idx_sum;
    int32_t idx_label_sum;
};

static float xs[N * FEATURES];
static int32_t ys[N];
static char images_path[256], labels_path[256];

static void write_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    fwrite(b, 1, 4, f);
}

/* A 5-image 2x3 IDX pair in the temporary directory. */
static void write_idx_files(void)
{
    snprintf(images_path, sizeof images_path, "%s/dg_sweep_images_%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    snprintf(labels_path, sizeof labels_path, "%s/dg_sweep_labels_%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    FILE *f = fopen(images_path, "wb");
    ck_assert_ptr_nonnull(f);
    write_be32(f, 0x803);
    write_be32(f, 5);
    write_be32(f, 2);
    write_be32(f, 3);
    for (int i = 0; i < 30; i++)
        fputc(i * 7 % 256, f);
    fclose(f);
    f = fopen(labels_path, "wb");
    ck_assert_ptr_nonnull(f);
    write_be32(f, 0x801);
    write_be32(f, 5);
    for (int i = 0; i < 5; i++)
        fputc(i % 3, f);
    fclose(f);
}

/* The workload; returns the first error (DG_OK when all went well). Frees everything. */
static dg_status workload(struct results *r)
{
    memset(r, 0, sizeof *r);
    dg_status st = DG_OK;
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return DG_ERR_NOMEM;
    dg_plan *plan = NULL, *small = NULL;
    dg_optim *opt = NULL;
    dg_dataset data = {0};
    FILE *devnull = NULL;

    dg_graph_set_threads(g, 1);
    dg_rng rng;
    dg_rng_seed(&rng, 5);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){N, FEATURES});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){N});
    dg_node *h = dg_dense(g, x, HIDDEN, DG_ACT_RELU, "hidden", &rng);
    h = dg_dropout(g, h, dg_dropout_key(g), 0.25f);
    dg_node *logits = dg_name(dg_dense(g, h, CLASSES, DG_ACT_NONE, "out", &rng), "logits");
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[4], *grads[4];
    int n_params = 0;
    if ((st = dg_grad_params(g, loss, 4, params, grads, &n_params)) != DG_OK)
        goto done;
    dg_node *outs[6] = {loss, logits, grads[0], grads[1], grads[2], grads[3]};
    if ((plan = dg_compile(g, 6, outs)) == NULL) {
        st = dg_graph_status(g);
        goto done;
    }
    if ((st = dg_feed(plan, x, xs)) != DG_OK || (st = dg_feed(plan, y, ys)) != DG_OK ||
        (st = dg_dropout_feed_key(plan, 1, 0, true)) != DG_OK || (st = dg_run(plan)) != DG_OK)
        goto done;
    r->loss_full = dg_data(plan, loss)[0];
    if ((st = dg_plan_set_batch(plan, 4)) != DG_OK || (st = dg_feed(plan, x, xs)) != DG_OK ||
        (st = dg_feed(plan, y, ys)) != DG_OK || (st = dg_run(plan)) != DG_OK)
        goto done;
    r->loss_small = dg_data(plan, loss)[0];

    dg_adam_config adam = DG_ADAM_DEFAULTS;
    opt = dg_optim_new_adam(n_params, params, grads, &adam);
    if ((st = dg_optim_status(opt)) != DG_OK || (st = dg_optim_set_threads(opt, 1)) != DG_OK ||
        (st = dg_optim_step(opt, plan)) != DG_OK)
        goto done;
    for (int i = 0; i < 4; i++)
        r->param_after_step[i] = dg_param_data(params[i])[0];

    /* A second plan, forward only, next to the first. */
    if ((small = dg_compile(g, 1, &logits)) == NULL) {
        st = dg_graph_status(g);
        goto done;
    }

    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_data train = {.x = xs, .y = ys, .n = N};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.verbose = 0;
    cfg.batch_size = 4;
    cfg.epochs = 2;
    cfg.plot_path = "/dev/null"; /* the plot's history is allocated too */
    /* Augmentation (rows seen as 1 x FEATURES images) must allocate nothing per batch. */
    cfg.augment = (dg_augment){.enable = true, .channels = 1, .height = 1, .width = FEATURES,
                               .crop_padding = 1, .flip_probability = 0.5};
    dg_epoch_stats history[2], eval;
    if ((st = dg_fit(&model, opt, &train, &train, &cfg, history)) != DG_OK ||
        (st = dg_evaluate(&model, &train, &cfg, &eval)) != DG_OK)
        goto done;
    r->fit_loss = history[1].loss;
    r->fit_val_loss = history[1].val_loss;
    r->eval_loss = eval.loss;

    devnull = fopen("/dev/null", "w");
    dg_dot_options collapsed = DG_DOT_DEFAULTS;
    collapsed.collapse_backward = true;
    if ((st = dg_graph_dump_dot(g, devnull)) != DG_OK ||
        (st = dg_graph_dump_dot_ex(g, devnull, &collapsed)) != DG_OK)
        goto done;

    if ((st = dg_idx_load(images_path, labels_path, 1.0f / 255.0f, &data)) != DG_OK)
        goto done;
    r->idx_count = data.count;
    for (int64_t i = 0; i < data.count * data.rows * data.cols; i++)
        r->idx_sum += data.images[i];
    for (int64_t i = 0; i < data.count; i++)
        r->idx_label_sum += data.labels[i];
done:
    if (devnull)
        fclose(devnull);
    dg_dataset_free(&data);
    dg_optim_free(opt);
    dg_plan_free(small);
    dg_plan_free(plan);
    dg_graph_free(g);
    return st;
}

START_TEST(every_allocation_failure_is_reported)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 3);
    dg_test_fill_uniform(&r, xs, N * FEATURES, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        ys[i] = i % CLASSES;
    write_idx_files();

    const dg_allocator allocator = {count_malloc, count_realloc, count_free, &counter};
    ck_assert_int_eq(dg_set_allocator(&allocator), DG_OK);
    struct results reference, got;
    counter = (struct counting){0};
    ck_assert_int_eq(workload(&reference), DG_OK);
    ck_assert_int_eq(counter.live, 0);
    const long total = counter.calls;
    ck_assert_int_gt(total, 100); /* the workload allocates: the hook is in use */
    printf("workload: %ld allocations\n", total);

    long reported = 0;
    for (long k = 1; k <= total; k++) {
        counter = (struct counting){.fail_at = k};
        dg_status st = workload(&got);
        ck_assert_msg(counter.live == 0, "allocation %ld failing: %ld blocks leaked", k,
                      counter.live);
        if (st != DG_OK) {
            ck_assert_msg(st == DG_ERR_NOMEM, "allocation %ld failing gave %s, not out of "
                          "memory", k, dg_status_str(st));
            reported++;
        } else {
            /* A failure the library recovered from must not change any result. */
            ck_assert_msg(memcmp(&got, &reference, sizeof got) == 0,
                          "allocation %ld failing: silent success with other results", k);
        }
    }
    printf("%ld of %ld injected failures reported as DG_ERR_NOMEM, the rest recovered\n",
           reported, total);
    ck_assert_int_gt(reported, 0);
    /* A live object keeps the allocator; freeing everything releases it. */
    dg_graph *held = dg_graph_new();
    ck_assert_int_eq(dg_set_allocator(NULL), DG_ERR_STATE);
    dg_graph_free(held);
    ck_assert_int_eq(dg_set_allocator(NULL), DG_OK);
    ck_assert_int_eq(dg_set_allocator(&(dg_allocator){NULL, NULL, NULL, NULL}),
                     DG_ERR_INVALID_ARG);
    unlink(images_path);
    unlink(labels_path);
}
END_TEST

/* Blocks keep their data across realloc when the user allocator moves them to another
 * alignment (8 mod 16, then 0 mod 16, ...), and every block is 64-byte aligned. Layout of a
 * user block: [size_t size] ... [offset byte] | block handed out. */
static void *shifty_block(size_t size, unsigned char offset)
{
    unsigned char *base = malloc(size + 32);
    if (base == NULL)
        return NULL;
    memcpy(base, &size, sizeof size);
    base[offset - 1] = offset;
    return base + offset;
}

static unsigned char *shifty_base(void *ptr)
{
    unsigned char *p = ptr;
    return p - p[-1];
}

static void *shifty_malloc(size_t size, void *user)
{
    (void)user;
    return shifty_block(size, 24);
}

static void *shifty_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    unsigned char *base = shifty_base(ptr);
    size_t old_size;
    memcpy(&old_size, base, sizeof old_size);
    unsigned char *fresh = shifty_block(size, ((unsigned char *)ptr)[-1] == 24 ? 16 : 24);
    if (fresh == NULL)
        return NULL;
    memcpy(fresh, ptr, old_size < size ? old_size : size);
    free(base);
    return fresh;
}

static void shifty_free(void *ptr, void *user)
{
    (void)user;
    free(shifty_base(ptr));
}

START_TEST(realloc_keeps_data_across_alignments)
{
    const dg_allocator shifty = {shifty_malloc, shifty_realloc, shifty_free, NULL};
    ck_assert_int_eq(dg_set_allocator(&shifty), DG_OK);
    /* Growing the graph reallocates its node array many times. */
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *y = x;
    for (int i = 0; i < 300; i++)
        y = dg_add_scalar(g, y, 1.0f);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(dg_graph_node_count(g), 301);
    ck_assert_uint_eq((uintptr_t)dg_graph_node(g, 150) % 64, 0);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_feed(p, x, (float[]){1, 2, 3}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_eq_tol(dg_data(p, y)[2], 303.0f, 1e-3f);
    dg_plan_free(p);
    dg_graph_free(g);
    ck_assert_int_eq(dg_set_allocator(NULL), DG_OK);
}
END_TEST

static Suite *sweep_suite(void)
{
    Suite *s = suite_create("alloc_sweep");
    TCase *tc = tcase_create("sweep");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, every_allocation_failure_is_reported);
    tcase_add_test(tc, realloc_keeps_data_across_alignments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(sweep_suite());
}
