/* Helpers shared by the Check suites. */
#ifndef DG_TEST_UTIL_H
#define DG_TEST_UTIL_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>

/* Runs one suite and returns the exit code (CK_FORK=no runs it unforked, for valgrind). */
int dg_test_run(Suite *suite);

/* A small deterministic generator for test data (splitmix64). */
typedef struct { uint64_t state; } dg_test_rng;
void dg_test_rng_seed(dg_test_rng *rng, uint64_t seed);
uint64_t dg_test_rng_next(dg_test_rng *rng);
/* Uniform in [lo, hi). */
float dg_test_uniform(dg_test_rng *rng, float lo, float hi);
void dg_test_fill_uniform(dg_test_rng *rng, float *x, int64_t n, float lo, float hi);

/* Path of a file in tests/fixtures (from DG_TEST_FIXTURES, else "tests/fixtures"). */
const char *dg_test_fixture_path(const char *name, char *buf, size_t len);

/* Largest |a-b| / max(|b|, floor) over n values. */
double dg_test_max_rel_err(const float *a, const float *b, int64_t n, double floor);


/* ---- Fixtures: tensors written by the scripts in tests/gen/ (PyTorch), read here ---------------------
 * File format (little-endian), one file per fixture set:
 *   "DGFX1\n", then records until EOF:
 *     uint32 name_len, name bytes (no NUL), uint32 dtype (0 f32, 1 i32), uint32 ndim,
 *     int64 dim[ndim], data[numel] (4 bytes each).
 * tests/gen/fixture_io.py writes it.
 */
typedef struct {
    char name[128];
    int dtype;
    int ndim;
    int64_t dim[8];
    int64_t numel;
    void *data; /* float* or int32_t* */
} dg_fixture_tensor;

typedef struct {
    int count;
    dg_fixture_tensor *tensors;
} dg_fixture;

/* Loads tests/fixtures/<name>; NULL (and a message on stderr) when missing or corrupt. */
dg_fixture *dg_fixture_load(const char *name);
void dg_fixture_free(dg_fixture *f);
/* The tensor called `name`, or NULL. */
const dg_fixture_tensor *dg_fixture_get(const dg_fixture *f, const char *name);
/* Same, but fails the current Check test when absent. */
const dg_fixture_tensor *dg_fixture_need(const dg_fixture *f, const char *name);

#endif
