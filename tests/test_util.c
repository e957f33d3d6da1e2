#include "test_util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

int dg_test_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void dg_test_rng_seed(dg_test_rng *rng, uint64_t seed) { rng->state = seed; }

uint64_t dg_test_rng_next(dg_test_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float dg_test_uniform(dg_test_rng *rng, float lo, float hi)
{
    double u = (double)(dg_test_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

void dg_test_fill_uniform(dg_test_rng *rng, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = dg_test_uniform(rng, lo, hi);
}

const char *dg_test_fixture_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("DG_TEST_FIXTURES");
    snprintf(buf, len, "%s/%s", dir ? dir : "tests/fixtures", name);
    return buf;
}

double dg_test_max_rel_err(const float *a, const float *b, int64_t n, double floor)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs((double)b[i]);
        if (scale < floor)
            scale = floor;
        double err = fabs((double)a[i] - (double)b[i]) / scale;
        if (isnan(err) || err > worst)
            worst = isnan(err) ? INFINITY : err;
    }
    return worst;
}

#include <string.h>

static bool read_exact(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

dg_fixture *dg_fixture_load(const char *name)
{
    char path[1024];
    dg_test_fixture_path(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fixture %s: cannot open\n", path);
        return NULL;
    }
    char magic[6];
    dg_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || !read_exact(f, magic, 6) || memcmp(magic, "DGFX1\n", 6) != 0) {
        fprintf(stderr, "fixture %s: bad magic\n", path);
        goto fail;
    }
    for (;;) {
        uint32_t name_len;
        if (fread(&name_len, 4, 1, f) != 1)
            break; /* clean end of file */
        dg_fixture_tensor t = {0};
        uint32_t dtype, ndim;
        if (name_len >= sizeof t.name || !read_exact(f, t.name, name_len) ||
            !read_exact(f, &dtype, 4) || !read_exact(f, &ndim, 4) || ndim > 8 || dtype > 1)
            goto corrupt;
        t.dtype = (int)dtype;
        t.ndim = (int)ndim;
        t.numel = 1;
        if (ndim > 0 && !read_exact(f, t.dim, 8 * ndim))
            goto corrupt;
        for (uint32_t i = 0; i < ndim; i++) {
            if (t.dim[i] < 0 || t.dim[i] > (1 << 28))
                goto corrupt;
            t.numel *= t.dim[i];
        }
        t.data = malloc((size_t)(t.numel ? t.numel : 1) * 4);
        if (t.data == NULL || !read_exact(f, t.data, (size_t)t.numel * 4)) {
            free(t.data);
            goto corrupt;
        }
        dg_fixture_tensor *grown = realloc(fx->tensors, (size_t)(fx->count + 1) * sizeof *grown);
        if (grown == NULL) {
            free(t.data);
            goto fail;
        }
        fx->tensors = grown;
        fx->tensors[fx->count++] = t;
    }
    fclose(f);
    return fx;
corrupt:
    fprintf(stderr, "fixture %s: corrupt record\n", path);
fail:
    fclose(f);
    dg_fixture_free(fx);
    return NULL;
}

void dg_fixture_free(dg_fixture *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < f->count; i++)
        free(f->tensors[i].data);
    free(f->tensors);
    free(f);
}

const dg_fixture_tensor *dg_fixture_get(const dg_fixture *f, const char *name)
{
    for (int i = 0; f != NULL && i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const dg_fixture_tensor *dg_fixture_need(const dg_fixture *f, const char *name)
{
    const dg_fixture_tensor *t = dg_fixture_get(f, name);
    ck_assert_msg(t != NULL, "fixture tensor '%s' missing", name);
    return t;
}
