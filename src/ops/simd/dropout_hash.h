/*
 * The dropout hash, shared by every vmath path and by the callers that need single elements:
 * element i of a stream `base` is kept when the top 24 bits of mix64(base + i * golden) reach
 * `threshold` (= p * 2^24). A splitmix64-style finaliser: counter-based, so any element can be
 * regenerated alone (the backward passes and the fused attention do) and any thread count
 * draws the same mask.
 */
#ifndef DG_DROPOUT_HASH_H
#define DG_DROPOUT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DG_DROPOUT_GOLDEN 0x9e3779b97f4a7c15ull
#define DG_DROPOUT_MIX1 0xbf58476d1ce4e5b9ull
#define DG_DROPOUT_MIX2 0x94d049bb133111ebull

static inline uint64_t dg__dropout_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * DG_DROPOUT_MIX1;
    z = (z ^ (z >> 27)) * DG_DROPOUT_MIX2;
    return z ^ (z >> 31);
}

/* The 24-bit uniform of element i of stream base. */
static inline uint32_t dg__dropout_u24(uint64_t base, uint64_t i)
{
    return (uint32_t)(dg__dropout_mix64(base + i * DG_DROPOUT_GOLDEN) >> 40);
}

/* out[i] = kept(start + i) ? (x ? x[i] * scale : scale) : 0, one element at a time. */
static inline void dg__dropout_scalar(uint64_t base, int64_t start, uint32_t threshold,
                                      float scale, const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x != NULL ? x[i] * scale : scale;
        out[i] = dg__dropout_u24(base, (uint64_t)(start + i)) >= threshold ? v : 0.0f;
    }
}

#endif
