/* dg_rng (xoshiro256** seeded by splitmix64) and the parameter initialisers. */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Known answers -----------------------------------------------------------------------
 * Every expected value below was produced once by an independent pure-Python implementation
 * of the documented algorithms (xoshiro256** 1.0, splitmix64 seeding, top-24/53-bit floats,
 * Marsaglia polar without caching, Lemire's bounded integers, Fisher–Yates from the back,
 * the split hash), written from the algorithm descriptions and not from src/nn/rng.c; its
 * source is at the end of this file. The jump result was computed without the jump
 * polynomial: as T^(2^128) applied to the state, T being the 256x256 GF(2) matrix of one
 * generator step, raised by 128 squarings. As a cross-check of the seeding, splitmix64's first
 * output from 0 is the widely published 0xe220a8397b1dcdaf. */

START_TEST(test_seed_state)
{
    dg_rng rng;
    dg_rng_seed(&rng, 0);
    ck_assert_uint_eq(rng.s[0], 0xe220a8397b1dcdafull);
    ck_assert_uint_eq(rng.s[1], 0x6e789e6aa1b965f4ull);
    ck_assert_uint_eq(rng.s[2], 0x06c45d188009454full);
    ck_assert_uint_eq(rng.s[3], 0xf88bb8a8724c81ecull);
    dg_rng_seed(&rng, 42);
    ck_assert_uint_eq(rng.s[0], 0xbdd732262feb6e95ull);
    ck_assert_uint_eq(rng.s[1], 0x28efe333b266f103ull);
    ck_assert_uint_eq(rng.s[2], 0x47526757130f9f52ull);
    ck_assert_uint_eq(rng.s[3], 0x581ce1ff0e4ae394ull);
    dg_rng_seed(&rng, 0xdeadbeef);
    ck_assert_uint_eq(rng.s[0], 0x4adfb90f68c9eb9bull);
    ck_assert_uint_eq(rng.s[3], 0x7466ce737be16790ull);
    dg_rng_seed(NULL, 1); /* no-op, no crash */
}
END_TEST

START_TEST(test_u64_known_answer)
{
    static const uint64_t expected42[6] = {
        0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull,
        0xecb8ad4703b360a1ull, 0xfde6dc7fe2ec5e64ull, 0xc50da53101795238ull,
    };
    static const uint64_t expected0[3] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                          0x1a5f849d4933e6e0ull};
    dg_rng rng;
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(dg_rng_u64(&rng), expected42[i]);
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 1000; i++)
        dg_rng_u64(&rng);
    ck_assert_uint_eq(dg_rng_u64(&rng), 0x0f5028c28f5771b2ull); /* the 1001st output */
    dg_rng_seed(&rng, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(dg_rng_u64(&rng), expected0[i]);
}
END_TEST

START_TEST(test_distributions_known_answer)
{
    /* Uniform floats are multiples of 2^-24, so these are exact; the tolerance is only a
     * formality. The normals go through log(), hence a relative 1e-12. */
    static const float uniform[4] = {0.08386296033859253f, 0.37898021936416626f,
                                     0.6800433993339539f, 0.9246929287910461f};
    static const double normal[5] = {-0.7262191382447857, 0.2216227015035933,
                                     0.46417731016247366, 1.476249461018415,
                                     1.0078198992420604};
    dg_rng rng;
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(dg_rng_uniform(&rng), uniform[i], 1e-9f);
    dg_rng_seed(&rng, 42);
    ck_assert_double_eq_tol(dg_rng_uniform_double(&rng), 0.08386297105988216, 1e-17);
    ck_assert_double_eq_tol(dg_rng_uniform_double(&rng), 0.3789802506626686, 1e-17);
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq_tol(dg_rng_normal(&rng), normal[i], 1e-12 * fabs(normal[i]));
}
END_TEST

START_TEST(test_below_known_answer)
{
    static const uint64_t below10[10] = {0, 3, 6, 9, 9, 7, 7, 8, 7, 5};
    /* n = 2^63 + 1 rejects almost half of all draws, so this exercises the retry loop. */
    static const uint64_t below_huge[4] = {0x7ef36e3ff1762f32ull, 0x6286d29880bca91cull,
                                           0x5c10aa42ad32eed9ull, 0x6174b739374bb23full};
    dg_rng rng;
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(dg_rng_below(&rng, 10), below10[i]);
    dg_rng_seed(&rng, 42);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(dg_rng_below(&rng, (1ull << 63) + 1), below_huge[i]);
}
END_TEST

START_TEST(test_permutation_split_jump_known_answer)
{
    static const int64_t perm10[10] = {9, 1, 4, 2, 8, 7, 6, 5, 3, 0};
    int64_t idx[10];
    dg_rng rng;
    dg_rng_seed(&rng, 42);
    dg_rng_permutation(&rng, idx, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(idx[i], perm10[i]);

    dg_rng_seed(&rng, 42);
    dg_rng child = dg_rng_split(&rng, 7);
    ck_assert_uint_eq(child.s[0], 0x4ee5a03a8b37f52dull);
    ck_assert_uint_eq(child.s[1], 0xba176a97119519afull);
    ck_assert_uint_eq(child.s[2], 0x146a6b11d68d0eadull);
    ck_assert_uint_eq(child.s[3], 0xca8fbb5c22031d20ull);
    ck_assert_uint_eq(dg_rng_u64(&child), 0x0ede470b9ac1e459ull);

    dg_rng_seed(&rng, 42);
    dg_rng_jump(&rng);
    ck_assert_uint_eq(rng.s[0], 0x81746704fde896b5ull);
    ck_assert_uint_eq(rng.s[1], 0x645e944932dae0aeull);
    ck_assert_uint_eq(rng.s[2], 0xf4776829231c282cull);
    ck_assert_uint_eq(rng.s[3], 0x2393f9798732dba1ull);
}
END_TEST

/* ---- Properties ------------------------------------------------------------------------- */

START_TEST(test_uniform_range)
{
    dg_rng rng;
    dg_rng_seed(&rng, 123);
    double sum = 0.0;
    float lowest = 1.0f, highest = 0.0f;
    const int n = 1000000;
    int outside = 0; /* counted, then asserted once: each Check assertion costs a syscall */
    for (int i = 0; i < n; i++) {
        float u = dg_rng_uniform(&rng);
        outside += !(u >= 0.0f && u < 1.0f);
        lowest = u < lowest ? u : lowest;
        highest = u > highest ? u : highest;
        sum += u;
        double d = dg_rng_uniform_double(&rng);
        outside += !(d >= 0.0 && d < 1.0);
    }
    ck_assert_int_eq(outside, 0);
    ck_assert_double_eq_tol(sum / n, 0.5, 0.002); /* sigma of the mean: 0.00029 */
    ck_assert_float_eq_tol(lowest, 0.0f, 1e-4f);
    ck_assert_float_eq_tol(highest, 1.0f, 1e-4f);
}
END_TEST

START_TEST(test_normal_moments)
{
    dg_rng rng;
    dg_rng_seed(&rng, 2024);
    const int n = 100000;
    double sum = 0.0, sum_sq = 0.0, sum_4 = 0.0;
    for (int i = 0; i < n; i++) {
        double z = dg_rng_normal(&rng);
        sum += z;
        sum_sq += z * z;
        sum_4 += z * z * z * z;
    }
    double mean = sum / n, var = sum_sq / n - mean * mean;
    /* Sampling sigmas: mean 0.0032, variance 0.0045, fourth moment 0.077 (it is 3). */
    ck_assert_double_eq_tol(mean, 0.0, 0.016);
    ck_assert_double_eq_tol(var, 1.0, 0.025);
    ck_assert_double_eq_tol(sum_4 / n, 3.0, 0.4);
    ck_assert(isfinite(sum_4));
}
END_TEST

START_TEST(test_below_range_and_balance)
{
    dg_rng rng;
    dg_rng_seed(&rng, 5);
    ck_assert_uint_eq(dg_rng_below(&rng, 0), 0);
    dg_rng copy = rng;
    dg_rng_below(&rng, 0); /* does not advance */
    ck_assert_uint_eq(dg_rng_u64(&rng), dg_rng_u64(&copy));
    uint64_t nonzero = 0;
    for (int i = 0; i < 1000; i++)
        nonzero |= dg_rng_below(&rng, 1);
    ck_assert_uint_eq(nonzero, 0);

    enum { BINS = 7, DRAWS = 70000 };
    int count[BINS] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = dg_rng_below(&rng, BINS);
        if (v >= BINS)
            ck_abort_msg("below(%d) gave %llu", BINS, (unsigned long long)v);
        count[v]++;
    }
    double chi2 = 0.0, expected = (double)DRAWS / BINS;
    for (int b = 0; b < BINS; b++)
        chi2 += (count[b] - expected) * (count[b] - expected) / expected;
    ck_assert_double_lt(chi2, 22.5); /* chi-square, 6 degrees of freedom: p = 0.001 */
}
END_TEST

START_TEST(test_shuffle_is_permutation)
{
    enum { N = 1000 };
    int64_t *idx = malloc(N * sizeof *idx);
    char *seen = calloc(N, 1);
    ck_assert_ptr_nonnull(idx);
    ck_assert_ptr_nonnull(seen);
    dg_rng rng;
    dg_rng_seed(&rng, 99);
    for (int64_t i = 0; i < N; i++)
        idx[i] = i;
    dg_rng_shuffle_indices(&rng, idx, N);
    int fixed_points = 0;
    for (int64_t i = 0; i < N; i++) {
        ck_assert(idx[i] >= 0 && idx[i] < N);
        ck_assert_int_eq(seen[idx[i]], 0);
        seen[idx[i]] = 1;
        fixed_points += idx[i] == i;
    }
    ck_assert_int_lt(fixed_points, 10); /* expected 1 for a random permutation */

    /* dg_rng_permutation ignores what the array held. */
    dg_rng a, b;
    dg_rng_seed(&a, 7);
    dg_rng_seed(&b, 7);
    int64_t first[16], second[16];
    for (int i = 0; i < 16; i++)
        second[i] = -5;
    dg_rng_permutation(&a, first, 16);
    dg_rng_permutation(&b, second, 16);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(first[i], second[i]);

    /* Trivial sizes and NULL do nothing (and do not advance the state). */
    dg_rng before = rng;
    int64_t one = 42;
    dg_rng_shuffle_indices(&rng, &one, 1);
    dg_rng_shuffle_indices(&rng, NULL, 10);
    dg_rng_shuffle_indices(&rng, idx, 0);
    ck_assert_int_eq(one, 42);
    ck_assert_int_eq(memcmp(&before, &rng, sizeof rng), 0);
    free(idx);
    free(seen);
}
END_TEST

START_TEST(test_determinism)
{
    dg_rng a, b;
    dg_rng_seed(&a, 31337);
    dg_rng_seed(&b, 31337);
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_eq(dg_rng_u64(&a), dg_rng_u64(&b));
        /* Bitwise: same seed, same bits. */
        double za = dg_rng_normal(&a), zb = dg_rng_normal(&b);
        ck_assert_int_eq(memcmp(&za, &zb, sizeof za), 0);
    }
    /* A copy replays: the whole state is s[] (no cached normal). */
    dg_rng copy = a;
    double x = dg_rng_normal(&a), y = dg_rng_normal(&copy);
    ck_assert_int_eq(memcmp(&x, &y, sizeof x), 0);
    /* Different seeds differ at once. */
    dg_rng_seed(&a, 1);
    dg_rng_seed(&b, 2);
    ck_assert_uint_ne(dg_rng_u64(&a), dg_rng_u64(&b));
}
END_TEST

START_TEST(test_split_streams)
{
    dg_rng parent;
    dg_rng_seed(&parent, 1);
    dg_rng saved = parent;
    dg_rng s0 = dg_rng_split(&parent, 0);
    dg_rng s1 = dg_rng_split(&parent, 1);
    dg_rng s0_again = dg_rng_split(&parent, 0);
    ck_assert_int_eq(memcmp(&parent, &saved, sizeof parent), 0); /* parent not advanced */
    ck_assert_int_eq(memcmp(&s0, &s0_again, sizeof s0), 0);      /* reproducible */

    /* Streams differ from each other and from the parent in (almost) every output. */
    int same01 = 0, same0p = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x0 = dg_rng_u64(&s0), x1 = dg_rng_u64(&s1), xp = dg_rng_u64(&parent);
        same01 += x0 == x1;
        same0p += x0 == xp;
    }
    ck_assert_int_eq(same01, 0);
    ck_assert_int_eq(same0p, 0);

    /* A split depends on the parent's state, not only on the id. */
    dg_rng other;
    dg_rng_seed(&other, 2);
    dg_rng t0 = dg_rng_split(&other, 0);
    s0 = dg_rng_split(&saved, 0);
    ck_assert_uint_ne(dg_rng_u64(&t0), dg_rng_u64(&s0));

    /* Per-epoch shuffles from one base: different epochs, different orders. */
    int64_t e0[32], e1[32];
    dg_rng epoch0 = dg_rng_split(&saved, 0), epoch1 = dg_rng_split(&saved, 1);
    dg_rng_permutation(&epoch0, e0, 32);
    dg_rng_permutation(&epoch1, e1, 32);
    ck_assert_int_ne(memcmp(e0, e1, sizeof e0), 0);

    /* Jumped streams differ from the original. */
    dg_rng jumped = saved;
    dg_rng_jump(&jumped);
    ck_assert_int_ne(memcmp(&jumped, &saved, sizeof saved), 0);
    ck_assert_uint_ne(dg_rng_u64(&jumped), dg_rng_u64(&saved));
}
END_TEST

/* ---- Initialisers ----------------------------------------------------------------------- */

struct stats {
    double mean, std, lowest, highest;
};

static struct stats stats_of(const float *x, int64_t n)
{
    struct stats st = {0.0, 0.0, INFINITY, -INFINITY};
    double sum = 0.0, sum_sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += x[i];
        sum_sq += (double)x[i] * x[i];
        st.lowest = x[i] < st.lowest ? x[i] : st.lowest;
        st.highest = x[i] > st.highest ? x[i] : st.highest;
    }
    st.mean = sum / (double)n;
    st.std = sqrt(sum_sq / (double)n - st.mean * st.mean);
    return st;
}

/* A [rows, cols] parameter in a fresh graph. */
static dg_node *make_param(dg_graph **g, const char *name, int64_t rows, int64_t cols)
{
    *g = dg_graph_new();
    ck_assert_ptr_nonnull(*g);
    int64_t shape[2] = {rows, cols};
    dg_node *p = dg_param(*g, name, 2, shape);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Checks a U(-bound, bound) sample: inside, reaching near both ends, std = bound / sqrt(3). */
static void check_symmetric_uniform(const float *x, int64_t n, double bound)
{
    struct stats st = stats_of(x, n);
    ck_assert_double_ge(st.lowest, -bound);
    ck_assert_double_lt(st.highest, bound);
    ck_assert_double_lt(st.lowest, -0.99 * bound);
    ck_assert_double_gt(st.highest, 0.99 * bound);
    ck_assert_double_eq_tol(st.mean, 0.0, 0.02 * bound);
    ck_assert_double_eq_tol(st.std, bound / sqrt(3.0), 0.01 * bound);
}

static void check_normal(const float *x, int64_t n, double mean, double std)
{
    struct stats st = stats_of(x, n);
    ck_assert_double_eq_tol(st.mean, mean, 0.02 * std);
    ck_assert_double_eq_tol(st.std, std, 0.02 * std);
}

START_TEST(test_init_uniform_normal_constant)
{
    dg_graph *g;
    dg_node *w = make_param(&g, "w", 256, 512); /* 131072 values */
    float *data = dg_param_data(w);
    int64_t n = dg_node_numel(w);
    dg_rng rng;
    dg_rng_seed(&rng, 1);

    ck_assert_int_eq(dg_init_uniform(w, &rng, -0.5f, 2.5f), DG_OK);
    struct stats st = stats_of(data, n);
    ck_assert_double_ge(st.lowest, -0.5);
    ck_assert_double_lt(st.highest, 2.5);
    ck_assert_double_eq_tol(st.mean, 1.0, 0.02);
    ck_assert_double_eq_tol(st.std, 3.0 / sqrt(12.0), 0.01);

    /* Huge bounds: rounding to float must still stay below hi. */
    ck_assert_int_eq(dg_init_uniform(w, &rng, -1e30f, 3e38f), DG_OK);
    st = stats_of(data, n);
    ck_assert_double_lt(st.highest, 3e38);

    ck_assert_int_eq(dg_init_uniform(w, &rng, 0.25f, 0.25f), DG_OK);
    st = stats_of(data, n);
    ck_assert_double_eq_tol(st.lowest, 0.25, 1e-7);
    ck_assert_double_eq_tol(st.highest, 0.25, 1e-7);

    ck_assert_int_eq(dg_init_normal(w, &rng, 3.0f, 0.5f), DG_OK);
    check_normal(data, n, 3.0, 0.5);

    ck_assert_int_eq(dg_init_constant(w, -1.5f), DG_OK);
    st = stats_of(data, n);
    ck_assert_double_eq_tol(st.lowest, -1.5, 1e-7);
    ck_assert_double_eq_tol(st.highest, -1.5, 1e-7);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_init_fans_and_gain)
{
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_nonnull(g);
    int64_t shape4[4] = {3, 5, 7, 2}, shape2[2] = {784, 128}, shape1[1] = {10};
    dg_node *conv = dg_param(g, "conv", 4, shape4);
    dg_node *dense = dg_param(g, "dense", 2, shape2);
    dg_node *bias = dg_param(g, "bias", 1, shape1);
    int64_t fan_in = -1, fan_out = -1;
    ck_assert_int_eq(dg_init_fans(dense, &fan_in, &fan_out), DG_OK);
    ck_assert_int_eq(fan_in, 784); /* [in, out] layout: axis 0 is fan_in */
    ck_assert_int_eq(fan_out, 128);
    ck_assert_int_eq(dg_init_fans(conv, &fan_in, &fan_out), DG_OK);
    ck_assert_int_eq(fan_in, 3 * 14);
    ck_assert_int_eq(fan_out, 5 * 14);
    ck_assert_int_eq(dg_init_fans(bias, &fan_in, &fan_out), DG_ERR_SHAPE);
    ck_assert_int_eq(dg_init_fans(NULL, &fan_in, &fan_out), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_init_fans(dense, NULL, &fan_out), DG_ERR_INVALID_ARG);

    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_LINEAR, 0.0f), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_SIGMOID, 0.0f), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_TANH, 0.0f), 5.0f / 3.0f, 1e-6f);
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_RELU, 0.0f), 1.41421356f, 1e-6f);
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_LEAKY_RELU, 0.0f), 1.41421356f, 1e-6f);
    /* torch.nn.init.calculate_gain('leaky_relu', 0.2) = sqrt(2 / 1.04) = 1.3867505 */
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_LEAKY_RELU, 0.2f), 1.3867505f, 1e-6f);
    ck_assert_float_eq_tol(dg_init_gain(DG_NONLIN_SELU, 0.0f), 0.75f, 1e-7f);
    ck_assert(isnan(dg_init_gain((dg_nonlinearity)99, 0.0f)));
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_init_xavier)
{
    dg_graph *g;
    dg_node *w = make_param(&g, "w", 300, 500); /* fans 300 / 500, 150000 values */
    float *data = dg_param_data(w);
    int64_t n = dg_node_numel(w);
    dg_rng rng;
    dg_rng_seed(&rng, 11);
    double gain = 5.0 / 3.0;

    ck_assert_int_eq(dg_init_xavier_uniform(w, &rng, (float)gain), DG_OK);
    check_symmetric_uniform(data, n, gain * sqrt(6.0 / 800.0));

    ck_assert_int_eq(dg_init_xavier_normal(w, &rng, 1.0f), DG_OK);
    check_normal(data, n, 0.0, sqrt(2.0 / 800.0));
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_init_kaiming)
{
    dg_graph *g;
    dg_node *w = make_param(&g, "w", 400, 100); /* fan_in 400, fan_out 100 */
    float *data = dg_param_data(w);
    int64_t n = dg_node_numel(w);
    dg_rng rng;
    dg_rng_seed(&rng, 12);

    /* PyTorch's default (a = 0, fan_in, leaky_relu): bound = sqrt(2) * sqrt(3 / 400). */
    ck_assert_int_eq(dg_init_kaiming_uniform(w, &rng, 0.0f, DG_FAN_IN, DG_NONLIN_LEAKY_RELU),
                     DG_OK);
    check_symmetric_uniform(data, n, sqrt(2.0) * sqrt(3.0 / 400.0));

    ck_assert_int_eq(dg_init_kaiming_uniform(w, &rng, 0.0f, DG_FAN_OUT, DG_NONLIN_RELU), DG_OK);
    check_symmetric_uniform(data, n, sqrt(2.0) * sqrt(3.0 / 100.0));

    ck_assert_int_eq(dg_init_kaiming_normal(w, &rng, 0.2f, DG_FAN_IN, DG_NONLIN_LEAKY_RELU),
                     DG_OK);
    check_normal(data, n, 0.0, sqrt(2.0 / 1.04) / sqrt(400.0));

    ck_assert_int_eq(dg_init_kaiming_normal(w, &rng, 0.0f, DG_FAN_OUT, DG_NONLIN_LINEAR), DG_OK);
    check_normal(data, n, 0.0, 1.0 / sqrt(100.0));
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_init_determinism)
{
    dg_graph *g;
    dg_node *w = make_param(&g, "w", 64, 32);
    int64_t shape[2] = {64, 32};
    dg_node *v = dg_param(g, "v", 2, shape);
    ck_assert_ptr_nonnull(v);
    size_t bytes = (size_t)dg_node_numel(w) * sizeof(float);
    dg_rng a, b;

    dg_rng_seed(&a, 77);
    dg_rng_seed(&b, 77);
    ck_assert_int_eq(dg_init_kaiming_normal(w, &a, 0.0f, DG_FAN_IN, DG_NONLIN_RELU), DG_OK);
    ck_assert_int_eq(dg_init_kaiming_normal(v, &b, 0.0f, DG_FAN_IN, DG_NONLIN_RELU), DG_OK);
    ck_assert_int_eq(memcmp(dg_param_data(w), dg_param_data(v), bytes), 0);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);

    ck_assert_int_eq(dg_init_xavier_uniform(w, &a, 1.0f), DG_OK);
    ck_assert_int_eq(dg_init_xavier_uniform(v, &b, 1.0f), DG_OK);
    ck_assert_int_eq(memcmp(dg_param_data(w), dg_param_data(v), bytes), 0);

    /* The next draw gives different values. */
    ck_assert_int_eq(dg_init_xavier_uniform(v, &b, 1.0f), DG_OK);
    ck_assert_int_ne(memcmp(dg_param_data(w), dg_param_data(v), bytes), 0);

    /* One draw per value: a uniform init of n values advances the generator by n steps. */
    dg_rng c, d;
    dg_rng_seed(&c, 5);
    dg_rng_seed(&d, 5);
    ck_assert_int_eq(dg_init_uniform(w, &c, 0.0f, 1.0f), DG_OK);
    for (int64_t i = 0; i < dg_node_numel(w); i++)
        dg_rng_u64(&d);
    ck_assert_int_eq(memcmp(&c, &d, sizeof c), 0);
    dg_graph_free(g);
}
END_TEST

/* The graph's message contains `needle`; then the error is cleared. */
static void expect_graph_error(dg_graph *g, dg_status status, const char *needle)
{
    ck_assert_int_eq(dg_graph_status(g), status);
    const char *message = dg_graph_error(g);
    ck_assert_msg(strstr(message, needle) != NULL, "message '%s' lacks '%s'", message, needle);
    dg_graph_clear_error(g);
}

START_TEST(test_init_errors)
{
    dg_rng rng;
    dg_rng_seed(&rng, 3);
    ck_assert_int_eq(dg_init_uniform(NULL, &rng, 0.0f, 1.0f), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_init_normal(NULL, &rng, 0.0f, 1.0f), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_init_constant(NULL, 0.0f), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_init_xavier_uniform(NULL, &rng, 1.0f), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_init_kaiming_normal(NULL, &rng, 0.0f, DG_FAN_IN, DG_NONLIN_RELU),
                     DG_ERR_INVALID_ARG);

    dg_graph *g;
    dg_node *w = make_param(&g, "w", 4, 3);
    int64_t shape1[1] = {5};
    dg_node *bias = dg_param(g, "bias", 1, shape1);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 4});
    ck_assert_ptr_nonnull(bias);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(dg_init_constant(w, 7.0f), DG_OK);
    dg_rng before = rng;

    ck_assert_int_eq(dg_init_uniform(x, &rng, 0.0f, 1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "not a parameter");
    ck_assert_int_eq(dg_init_constant(x, 1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "init_constant");
    ck_assert_int_eq(dg_init_xavier_normal(w, NULL, 1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "rng is NULL");
    ck_assert_int_eq(dg_init_uniform(w, &rng, 1.0f, 0.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "lo > hi");
    ck_assert_int_eq(dg_init_uniform(w, &rng, 0.0f, INFINITY), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "not finite");
    ck_assert_int_eq(dg_init_normal(w, &rng, 0.0f, -1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "std");
    ck_assert_int_eq(dg_init_normal(w, &rng, NAN, 1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "mean");
    ck_assert_int_eq(dg_init_xavier_uniform(bias, &rng, 1.0f), DG_ERR_SHAPE);
    expect_graph_error(g, DG_ERR_SHAPE, "bias");
    ck_assert_int_eq(dg_init_kaiming_uniform(bias, &rng, 0.0f, DG_FAN_IN, DG_NONLIN_RELU),
                     DG_ERR_SHAPE);
    expect_graph_error(g, DG_ERR_SHAPE, "at least 2");
    ck_assert_int_eq(dg_init_kaiming_uniform(w, &rng, 0.0f, (dg_fan_mode)5, DG_NONLIN_RELU),
                     DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "fan mode");
    ck_assert_int_eq(dg_init_kaiming_normal(w, &rng, 0.0f, DG_FAN_IN, (dg_nonlinearity)42),
                     DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "nonlinearity");
    ck_assert_int_eq(dg_init_xavier_uniform(w, &rng, -1.0f), DG_ERR_INVALID_ARG);
    expect_graph_error(g, DG_ERR_INVALID_ARG, "gain");

    /* Failed calls change neither the parameter nor the generator. */
    const float *data = dg_param_data(w);
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(data[i], 7.0f, 1e-7f);
    ck_assert_int_eq(memcmp(&before, &rng, sizeof rng), 0);
    dg_graph_free(g);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *suite = suite_create("rng");
    TCase *known = tcase_create("known_answers");
    tcase_add_test(known, test_seed_state);
    tcase_add_test(known, test_u64_known_answer);
    tcase_add_test(known, test_distributions_known_answer);
    tcase_add_test(known, test_below_known_answer);
    tcase_add_test(known, test_permutation_split_jump_known_answer);
    suite_add_tcase(suite, known);

    TCase *props = tcase_create("properties");
    tcase_add_test(props, test_uniform_range);
    tcase_add_test(props, test_normal_moments);
    tcase_add_test(props, test_below_range_and_balance);
    tcase_add_test(props, test_shuffle_is_permutation);
    tcase_add_test(props, test_determinism);
    tcase_add_test(props, test_split_streams);
    suite_add_tcase(suite, props);

    TCase *init = tcase_create("init");
    tcase_add_test(init, test_init_uniform_normal_constant);
    tcase_add_test(init, test_init_fans_and_gain);
    tcase_add_test(init, test_init_xavier);
    tcase_add_test(init, test_init_kaiming);
    tcase_add_test(init, test_init_determinism);
    tcase_add_test(init, test_init_errors);
    suite_add_tcase(suite, init);
    return suite;
}

int main(void) { return dg_test_run(rng_suite()); }

/* ---- The reference that produced the known answers (Python 3, run once) ------------------
import math
M = (1 << 64) - 1
def smix(state):                      # one splitmix64 step: (new state, output)
    state = (state + 0x9e3779b97f4a7c15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return state, z ^ (z >> 31)
def rotl(x, k): return ((x << k) | (x >> (64 - k))) & M
class Rng:
    def __init__(self, seed=None, s=None):
        if s is not None: self.s = list(s); return
        st = seed; self.s = []
        for _ in range(4):
            st, z = smix(st); self.s.append(z)
    def u64(self):
        s = self.s
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return r
    def uniform(self): return (self.u64() >> 40) / float(1 << 24)
    def udouble(self): return (self.u64() >> 11) / float(1 << 53)
    def normal(self):
        while True:
            u = 2.0 * self.udouble() - 1.0; v = 2.0 * self.udouble() - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0: return u * math.sqrt(-2.0 * math.log(s) / s)
    def below(self, n):
        m = self.u64() * n; lo = m & M
        if lo < n:
            t = (1 << 64) % n
            while lo < t: m = self.u64() * n; lo = m & M
        return m >> 64
    def perm(self, n):
        a = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1); a[i], a[j] = a[j], a[i]
        return a
    def split(self, sid):
        st, h = smix(sid)
        for w in self.s:
            st, h = smix(h ^ w)
        return Rng(seed=h)
# jump = T^(2^128) over GF(2); state packed as a 256-bit int, word k at bits 64k..64k+63
def pack(s): return s[0] | s[1] << 64 | s[2] << 128 | s[3] << 192
def unpack(v): return [(v >> (64 * k)) & M for k in range(4)]
def step(v):
    r = Rng(s=unpack(v)); r.u64(); return pack(r.s)
def apply(cols, v):
    out = 0; j = 0
    while v:
        if v & 1: out ^= cols[j]
        v >>= 1; j += 1
    return out
def jump(s):
    cols = [step(1 << j) for j in range(256)]
    for _ in range(128):
        cols = [apply(cols, c) for c in cols]
    return unpack(apply(cols, pack(s)))
-------------------------------------------------------------------------------------------- */
