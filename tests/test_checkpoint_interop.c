/* Exchanging weights with PyTorch through safetensors files made by
 * tests/gen/gen_checkpoint_interop.py (which reads and writes the format by hand):
 *   - a torch MLP's state_dict (torch layout [out, in], names "mlp.fc1.weight", ...) loads into
 *     dagrad's dense layers with strip_prefix "mlp." and transpose_2d, and reproduces torch's
 *     outputs, in F32 and in F16 / BF16 / F64;
 *   - dagrad's MLP saved with transpose_2d and prefix "mlp." is the committed file byte for
 *     byte, which torch loaded strictly and ran: its outputs match dagrad's. */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

enum { BATCH = 4, IN = 5, HIDDEN = 8, OUT = 3 };

struct mlp {
    dg_graph *g;
    dg_node *x, *y;
    dg_plan *plan;
};

/* y = fc2(tanh(fc1(x))), as the script's torch MLP; weights from rng (or zero when NULL). */
static void build_mlp(struct mlp *m, dg_rng *rng)
{
    m->plan = NULL;
    m->g = dg_graph_new();
    m->x = dg_input(m->g, "x", 2, (int64_t[]){BATCH, IN});
    dg_node *h = dg_dense(m->g, m->x, HIDDEN, DG_ACT_TANH, "fc1", rng);
    m->y = dg_dense(m->g, h, OUT, DG_ACT_NONE, "fc2", rng);
    if (rng != NULL) { /* non-zero biases, so that a bias mix-up shows */
        dg_init_uniform(dg_graph_find(m->g, "fc1.bias"), rng, -0.5f, 0.5f);
        dg_init_uniform(dg_graph_find(m->g, "fc2.bias"), rng, -0.5f, 0.5f);
    }
    ck_assert_int_eq(dg_graph_status(m->g), DG_OK);
}

static const float *run_mlp(struct mlp *m, const float *x)
{
    m->plan = dg_compile(m->g, 1, &m->y);
    ck_assert_ptr_nonnull(m->plan);
    ck_assert_int_eq(dg_feed(m->plan, m->x, x), DG_OK);
    ck_assert_int_eq(dg_run(m->plan), DG_OK);
    return dg_data(m->plan, m->y);
}

static void free_mlp(struct mlp *m)
{
    dg_plan_free(m->plan);
    dg_graph_free(m->g);
}

/* Tensor `name` of fixture file `file` as float32 (numel values), malloc'ed. */
static float *fixture_tensor(const char *file, const char *name, int64_t numel)
{
    char path[1024];
    dg_checkpoint *ck = dg_checkpoint_open(dg_test_fixture_path(file, path, sizeof path));
    ck_assert_msg(dg_checkpoint_status(ck) == DG_OK, "%s", dg_checkpoint_error(ck));
    float *out = malloc((size_t)numel * sizeof *out);
    int index = dg_checkpoint_find(ck, name);
    ck_assert_int_ge(index, 0);
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, index, out, numel), DG_OK);
    dg_checkpoint_free(ck);
    return out;
}

static void check_outputs(const float *got, const float *want)
{
    for (int i = 0; i < BATCH * OUT; i++)
        ck_assert_float_eq_tol(got[i], want[i], 1e-5f);
}

static void loads_torch_file(const char *file, const char *expected)
{
    struct mlp m;
    build_mlp(&m, NULL);
    char path[1024];
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.strip_prefix = "mlp.";
    lo.transpose_2d = true;
    int loaded = 0;
    lo.n_loaded = &loaded;
    ck_assert_msg(dg_load_checkpoint(m.g, dg_test_fixture_path(file, path, sizeof path),
                                     &lo) == DG_OK,
                  "%s", dg_graph_error(m.g));
    ck_assert_int_eq(loaded, 4);
    float *x = fixture_tensor("interop_io.safetensors", "x", BATCH * IN);
    float *y = fixture_tensor("interop_io.safetensors", expected, BATCH * OUT);
    check_outputs(run_mlp(&m, x), y);
    free(x);
    free(y);
    free_mlp(&m);
}

START_TEST(loads_pytorch_f32_state_dict)
{
    loads_torch_file("torch_mlp.safetensors", "y");
}
END_TEST

START_TEST(loads_pytorch_f16_bf16_f64)
{
    loads_torch_file("torch_mlp_mixed.safetensors", "y_mixed");
}
END_TEST

START_TEST(without_transpose_the_layouts_clash)
{
    struct mlp m;
    build_mlp(&m, NULL);
    char path[1024];
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.strip_prefix = "mlp.";
    dg_test_fixture_path("torch_mlp.safetensors", path, sizeof path);
    ck_assert_int_eq(dg_load_checkpoint(m.g, path, &lo), DG_ERR_SHAPE);
    char msg[1200];
    snprintf(msg, sizeof msg, "load: %s: tensor 'mlp.fc1.weight': shape [8,5] in the file, "
             "parameter 'fc1.weight' [5,8]", path);
    ck_assert_str_eq(dg_graph_error(m.g), msg);
    free_mlp(&m);
}
END_TEST

START_TEST(pytorch_reads_ours)
{
    struct mlp m;
    dg_rng rng;
    dg_rng_seed(&rng, 123);
    build_mlp(&m, &rng);
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    char written[1024], committed[1024];
    snprintf(written, sizeof written, "%s/dagrad_mlp.safetensors", dir ? dir : "/tmp");
    dg_save_options so = DG_SAVE_DEFAULTS;
    so.prefix = "mlp.";
    so.transpose_2d = true;
    ck_assert_int_eq(dg_save_checkpoint(m.g, written, &so), DG_OK);

    /* The committed file is what we write now, byte for byte. */
    dg_test_fixture_path("dagrad_mlp.safetensors", committed, sizeof committed);
    FILE *a = fopen(written, "rb"), *b = fopen(committed, "rb");
    ck_assert_msg(b != NULL, "missing %s: run /usr/bin/python3 tests/gen/"
                  "gen_checkpoint_interop.py --from-c %s", committed, written);
    static unsigned char bytes_a[1 << 16], bytes_b[1 << 16];
    size_t na = fread(bytes_a, 1, sizeof bytes_a, a), nb = fread(bytes_b, 1, sizeof bytes_b, b);
    fclose(a);
    fclose(b);
    ck_assert_msg(na == nb && memcmp(bytes_a, bytes_b, na) == 0,
                  "%s differs from %s: if the writer changed on purpose, regenerate with "
                  "/usr/bin/python3 tests/gen/gen_checkpoint_interop.py --from-c %s", written,
                  committed, written);

    /* torch's outputs with these weights equal ours. */
    float *x = fixture_tensor("interop_io.safetensors", "x", BATCH * IN);
    float *y = fixture_tensor("dagrad_mlp_torch_out.safetensors", "y", BATCH * OUT);
    check_outputs(run_mlp(&m, x), y);
    free(x);
    free(y);
    free_mlp(&m);
}
END_TEST

static Suite *interop_suite(void)
{
    Suite *s = suite_create("checkpoint_interop");
    TCase *tc = tcase_create("pytorch");
    tcase_add_test(tc, loads_pytorch_f32_state_dict);
    tcase_add_test(tc, loads_pytorch_f16_bf16_f64);
    tcase_add_test(tc, without_transpose_the_layouts_clash);
    tcase_add_test(tc, pytorch_reads_ours);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(interop_suite()); }
