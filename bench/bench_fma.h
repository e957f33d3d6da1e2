/* The one-core FMA peak, measured in the same run as what a bench compares with it. */
#ifndef DG_BENCH_FMA_H
#define DG_BENCH_FMA_H

#include <stdint.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "bench_util.h"

/* ---- FMA peak of one core ---------------------------------------------------------------
 * 24 independent accumulator chains (more than latency x throughput on any current core), no
 * memory traffic. Built with target attributes: the benches have no ISA flags. */
#ifdef __x86_64__
__attribute__((target("avx512f"), noinline, unused))
static float dg_bench_fma_avx512(int64_t iterations)
{
    __m512 acc[24];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iterations; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 24; i++)
        sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"), noinline, unused))
static float dg_bench_fma_avx2(int64_t iterations)
{
    __m256 acc[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iterations; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; i++)
        sum = _mm256_add_ps(sum, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0];
}
#endif

/* GFLOP/s of the widest FMA this build can name on this CPU (0 when none), timed by
 * `now` (seconds). */
static inline double dg_bench_fma_peak_on(double (*now)(void))
{
#ifdef __x86_64__
    volatile float sink = 0.0f;
    double best = 0.0;
    const int64_t iterations = 20 * 1000 * 1000;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now(), flops;
        if (__builtin_cpu_supports("avx512f")) {
            sink += dg_bench_fma_avx512(iterations);
            flops = 2.0 * 16 * 24 * (double)iterations;
        } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            sink += dg_bench_fma_avx2(iterations);
            flops = 2.0 * 8 * 12 * (double)iterations;
        } else {
            return 0.0;
        }
        double gflops = flops / (now() - t0) / 1e9;
        if (gflops > best)
            best = gflops;
    }
    (void)sink;
    return best;
#else
    return 0.0;
#endif
}

/* The same on the wall clock. */
static inline double dg_bench_fma_peak(void)
{
    return dg_bench_fma_peak_on(dg_bench_seconds);
}

#endif
