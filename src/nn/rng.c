/*
 * The seeded generator: xoshiro256** 1.0 seeded through splitmix64, and the distributions
 * built on it. Written from the published algorithm descriptions (Blackman & Vigna,
 * "Scrambled linear pseudorandom number generators", 2018; Steele et al., splitmix64;
 * Marsaglia & Bray 1964 for the polar method; Lemire 2019 for bounded integers).
 *
 * Everything here is integer arithmetic except the float conversions and the polar method's
 * log/sqrt, so a seed gives the same stream everywhere. tests/test_rng.c pins the first
 * outputs against an independent Python implementation.
 */
#include "dagrad.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* One splitmix64 step: advances *state by the golden-ratio increment and returns the mixed
 * value. A bijection of the counter, so four consecutive outputs are never all zero. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void dg_rng_seed(dg_rng *rng, uint64_t seed)
{
    if (rng == NULL)
        return;
    uint64_t state = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&state);
}

uint64_t dg_rng_u64(dg_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dg_rng_uniform(dg_rng *rng)
{
    /* 24 bits fill a float's significand exactly, so the product is exact and below 1. */
    return (float)(dg_rng_u64(rng) >> 40) * 0x1p-24f;
}

double dg_rng_uniform_double(dg_rng *rng)
{
    return (double)(dg_rng_u64(rng) >> 11) * 0x1p-53;
}

double dg_rng_normal(dg_rng *rng)
{
    for (;;) {
        /* u, v in [-1, 1): exact (2x and the subtraction are exact for 53-bit multiples). */
        double u = 2.0 * dg_rng_uniform_double(rng) - 1.0;
        double v = 2.0 * dg_rng_uniform_double(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0)
            return u * sqrt(-2.0 * log(s) / s);
    }
}

/* The 128-bit product of a and b as (high, low). The portable branch computes the same bits
 * as the __int128 one, so results never depend on the compiler. */
static inline void mul_64x64(uint64_t a, uint64_t b, uint64_t *high, uint64_t *low)
{
#if defined(__SIZEOF_INT128__)
    unsigned __int128 product = (unsigned __int128)a * b;
    *high = (uint64_t)(product >> 64);
    *low = (uint64_t)product;
#else
    uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
    uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
    *high = hi_hi + (hi_lo >> 32) + (cross >> 32);
    *low = (cross << 32) | (lo_lo & 0xffffffffu);
#endif
}

uint64_t dg_rng_below(dg_rng *rng, uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t high, low;
    mul_64x64(dg_rng_u64(rng), n, &high, &low);
    if (low < n) {
        /* 2^64 mod n: products whose low half falls below it would over-represent some
         * results, so they are redrawn. */
        uint64_t threshold = (0 - n) % n;
        while (low < threshold)
            mul_64x64(dg_rng_u64(rng), n, &high, &low);
    }
    return high;
}

void dg_rng_shuffle_indices(dg_rng *rng, int64_t *idx, int64_t n)
{
    if (idx == NULL)
        return;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)dg_rng_below(rng, (uint64_t)i + 1);
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}

void dg_rng_permutation(dg_rng *rng, int64_t *idx, int64_t n)
{
    if (idx == NULL)
        return;
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    dg_rng_shuffle_indices(rng, idx, n);
}

dg_rng dg_rng_split(const dg_rng *parent, uint64_t stream_id)
{
    /* Absorb the id, then each state word, through the splitmix64 mixer; the result seeds the
     * child. A change in any input bit changes about half the seed bits. */
    uint64_t state = stream_id;
    uint64_t hash = splitmix64(&state);
    for (int i = 0; i < 4; i++) {
        state = hash ^ parent->s[i];
        hash = splitmix64(&state);
    }
    dg_rng child;
    dg_rng_seed(&child, hash);
    return child;
}

void dg_rng_jump(dg_rng *rng)
{
    /* The coefficients of the polynomial x^(2^128) modulo the characteristic polynomial of
     * the xoshiro256 linear engine (as published with the generator). The test checks
     * them against a GF(2) matrix power computed independently in Python. */
    static const uint64_t jump[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull,
                                     0xa9582618e03fc9aaull, 0x39abdc4529b1661cull};
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int word = 0; word < 4; word++) {
        for (int bit = 0; bit < 64; bit++) {
            if (jump[word] & (1ull << bit)) {
                for (int k = 0; k < 4; k++)
                    acc[k] ^= rng->s[k];
            }
            dg_rng_u64(rng);
        }
    }
    for (int k = 0; k < 4; k++)
        rng->s[k] = acc[k];
}
