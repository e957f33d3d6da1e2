/*
 * SGEMM throughput: dagrad's built-in GEMM against OpenBLAS cblas_sgemm, and against the FMA
 * peak of one core measured in the same run.
 *
 *   OPENBLAS_CORETYPE=SkylakeX ./build/bench/bench_gemm [threads ...]      (default: 1 2)
 *
 * OpenBLAS picks its kernel when the library loads (before main), so OPENBLAS_CORETYPE must
 * be in the environment of the command; without it Debian's OpenBLAS runs an SSE kernel on
 * Zen 4. `meson test --benchmark` sets it.
 *
 * Output: one `name value unit` line per figure. For each shape and thread count t:
 *   gemm_<shape>_t<t>_dagrad     GFLOP/s (median of 8 repetitions of ~20 ms each)
 *   gemm_<shape>_t<t>_openblas   GFLOP/s
 *   gemm_<shape>_t<t>_ratio      dagrad / openblas
 *   gemm_<shape>_t<t>_peak       dagrad / (t * one-core FMA peak)
 * BENCH_GEMM_ONLY=substring runs only the shapes whose name contains it (e.g. gpt_).
 * BENCH_GEMM_CPUTIME=1 times the 1-thread runs by the calling thread's CPU time instead of
 * wall-clock time (an extra `gemm_cpu_fma_peak_1core` line gives the peak on the same clock):
 * on a shared, loaded machine the figures then leave out the time the thread spent waiting
 * for a core, so before/after comparisons of 1-thread kernels stay meaningful. The other
 * process still shares caches, so quote the load anyway.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef DG_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "gemm/gemm.h"

#include "bench_fma.h"
#include "bench_util.h"

enum { ROUNDS = 2, REPETITIONS = 4 };
/* Set by BENCH_GEMM_CPUTIME: time 1-thread runs by thread CPU time (see the header). */
static bool cpu_clock;

/* The thread CPU clock, BENCH_GEMM_CPUTIME's clock. */
static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double seconds_for(int threads)
{
    return cpu_clock && threads == 1 ? thread_seconds() : dg_bench_seconds();
}

/* Each repetition runs the product enough times to last about this long. */
#define REPETITION_SECONDS 0.02

struct shape {
    const char *name;
    bool transpose_a, transpose_b;
    int m, n, k;
};

/* Squares, then the demo MLP (784-256-128-10, batch 128): forward X*W, weight gradient
 * X^T*dY and input gradient dY*W^T of each layer; then small-m shapes. Names give m x k x n,
 * except the gpt_ and lstm_ ones below, which give m x n x k. */
static const struct shape shapes[] = {
    {"sq64", false, false, 64, 64, 64},
    {"sq256", false, false, 256, 256, 256},
    {"sq512", false, false, 512, 512, 512},
    {"sq1024", false, false, 1024, 1024, 1024},
    {"sq2048", false, false, 2048, 2048, 2048},
    {"mlp1_fwd_128x784x256", false, false, 128, 256, 784},
    {"mlp2_fwd_128x256x128", false, false, 128, 128, 256},
    {"mlp3_fwd_128x128x10", false, false, 128, 10, 128},
    {"mlp1_dW_784x128x256_TN", true, false, 784, 256, 128},
    {"mlp2_dW_256x128x128_TN", true, false, 256, 128, 128},
    {"mlp3_dW_128x128x10_TN", true, false, 128, 10, 128},
    {"mlp1_dX_128x256x784_NT", false, true, 128, 784, 256},
    {"mlp2_dX_128x128x256_NT", false, true, 128, 256, 128},
    {"mlp3_dX_128x10x128_NT", false, true, 128, 128, 10},
    /* Batch-1 inference (the demo MLP's forward at m = 1), m = 4, and a transposed B at
     * small m (the small-m direct and dot kernels). */
    {"mlp1_fwd_1x784x256", false, false, 1, 256, 784},
    {"mlp2_fwd_1x256x128", false, false, 1, 128, 256},
    {"mlp3_fwd_1x128x10", false, false, 1, 10, 128},
    {"mlp1_fwd_4x784x256", false, false, 4, 256, 784},
    {"mlp1_dX_1x256x784_NT", false, true, 1, 784, 256},
    {"small_4x1000x1000_NT", false, true, 4, 1000, 1000},
    /* The charlm GPT (batch 32 x 128 = 4096 tokens, width 128, MLP 512, vocabulary 65):
     * forward x W, weight gradients x^T dY (TN, k = 4096), input gradients dY W^T (NT). */
    {"gpt_qkv_fwd_4096x384x128", false, false, 4096, 384, 128},
    {"gpt_fc1_fwd_4096x512x128", false, false, 4096, 512, 128},
    {"gpt_fc2_fwd_4096x128x512", false, false, 4096, 128, 512},
    {"gpt_proj_fwd_4096x128x128", false, false, 4096, 128, 128},
    {"gpt_head_fwd_4096x65x128", false, false, 4096, 65, 128},
    {"gpt_qkv_dW_128x384x4096_TN", true, false, 128, 384, 4096},
    {"gpt_fc1_dW_128x512x4096_TN", true, false, 128, 512, 4096},
    {"gpt_fc2_dW_512x128x4096_TN", true, false, 512, 128, 4096},
    {"gpt_proj_dW_128x128x4096_TN", true, false, 128, 128, 4096},
    {"gpt_qkv_dX_4096x128x384_NT", false, true, 4096, 128, 384},
    {"gpt_fc1_dX_4096x128x512_NT", false, true, 4096, 128, 512},
    {"gpt_fc2_dX_4096x512x128_NT", false, true, 4096, 512, 128},
    {"gpt_proj_dX_4096x128x128_NT", false, true, 4096, 128, 128},
    /* The charlm LSTM (hidden 256, batch 32 x 128 steps): dW_hh = d gates^T h_prev over all
     * 4096 rows (TN), and the per-step recurrent products, forward h W_hh^T (NT) and backward
     * d gates W_hh (NN), at 32 rows. */
    {"lstm_dWhh_1024x256x4096_TN", true, false, 1024, 256, 4096},
    {"lstm_step_fwd_32x1024x256_NT", false, true, 32, 1024, 256},
    {"lstm_step_bwd_32x256x1024", false, false, 32, 256, 1024},
};


/* ---- Timed runs ------------------------------------------------------------------------- */

struct operands {
    float *a, *b, *c;
};

enum library { DAGRAD, OPENBLAS };

static void run_once(enum library lib, const struct shape *s, struct operands *op, int threads)
{
    int lda = s->transpose_a ? s->m : s->k;
    int ldb = s->transpose_b ? s->k : s->n;
    if (lib == DAGRAD) {
        dg__sgemm(s->transpose_a, s->transpose_b, s->m, s->n, s->k, 1.0f, op->a, lda, op->b,
                  ldb, 0.0f, op->c, s->n, threads);
        return;
    }
#ifdef DG_BENCH_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, s->transpose_a ? CblasTrans : CblasNoTrans,
                s->transpose_b ? CblasTrans : CblasNoTrans, s->m, s->n, s->k, 1.0f, op->a, lda,
                op->b, ldb, 0.0f, op->c, s->n);
#endif
}

/* Median GFLOP/s of each library over ROUNDS x REPETITIONS timed repetitions. The libraries
 * take turns in blocks of REPETITIONS, so that a disturbance (another process on these two
 * cores) is spread over both; not per repetition, because each library's idle worker threads
 * spin for a while after a call (libgomp, OpenBLAS) and would steal the other's cores. A
 * pause before each block lets the other library's workers go to sleep. */
static void measure(const struct shape *s, struct operands *op, int threads, int n_libraries,
                    double *median)
{
    const double flops = 2.0 * s->m * s->n * s->k;
    const struct timespec pause = {0, 200 * 1000 * 1000};
    double rates[2][ROUNDS * REPETITIONS];
    for (int round = 0; round < ROUNDS; round++) {
        for (int lib = 0; lib < n_libraries; lib++) {
            nanosleep(&pause, NULL);
            run_once((enum library)lib, s, op, threads); /* warm caches, pools, buffers */
            double t0 = seconds_for(threads);
            run_once((enum library)lib, s, op, threads);
            double once = seconds_for(threads) - t0;
            int64_t calls = once > 0.0 ? (int64_t)(REPETITION_SECONDS / once) : 1000;
            if (calls < 1)
                calls = 1;
            for (int rep = 0; rep < REPETITIONS; rep++) {
                t0 = seconds_for(threads);
                for (int64_t i = 0; i < calls; i++)
                    run_once((enum library)lib, s, op, threads);
                rates[lib][round * REPETITIONS + rep] =
                    flops * (double)calls / (seconds_for(threads) - t0) / 1e9;
            }
        }
    }
    const int total = ROUNDS * REPETITIONS;
    for (int lib = 0; lib < n_libraries; lib++) {
        qsort(rates[lib], (size_t)total, sizeof rates[lib][0], dg_bench_compare_double);
        median[lib] = 0.5 * (rates[lib][(total - 1) / 2] + rates[lib][total / 2]);
    }
}

static float *alloc_filled(int64_t count, uint64_t seed)
{
    float *x = aligned_alloc(64, (size_t)((count * 4 + 63) / 64 * 64));
    if (x == NULL)
        return NULL;
    for (int64_t i = 0; i < count; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    return x;
}

int main(int argc, char **argv)
{
    int thread_counts[8] = {1, 2};
    int n_counts = 2;
    if (argc > 1) {
        n_counts = 0;
        for (int i = 1; i < argc && n_counts < 8; i++)
            thread_counts[n_counts++] = atoi(argv[i]) > 0 ? atoi(argv[i]) : 1;
    }
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("# dagrad isa %s; OPENBLAS_CORETYPE=%s\n", dg__isa_name(dg__isa()),
           coretype ? coretype : "(unset: OpenBLAS may run an SSE kernel)");
    double peak = dg_bench_fma_peak();
    printf("fma_peak_1core %.1f GFLOP/s\n", peak);
    cpu_clock = getenv("BENCH_GEMM_CPUTIME") != NULL && atoi(getenv("BENCH_GEMM_CPUTIME")) != 0;
    double cpu_peak = 0.0;
    if (cpu_clock) {
        cpu_peak = dg_bench_fma_peak_on(thread_seconds);
        printf("gemm_cpu_fma_peak_1core %.1f GFLOP/s (thread CPU time)\n", cpu_peak);
    }

    for (int t = 0; t < n_counts; t++) {
        int threads = thread_counts[t];
        printf("threads %d count\n", threads);
#ifdef DG_BENCH_HAVE_OPENBLAS
        openblas_set_num_threads(threads);
#endif
        const char *only = getenv("BENCH_GEMM_ONLY");
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const struct shape *s = &shapes[i];
            if (only != NULL && strstr(s->name, only) == NULL)
                continue;
            struct operands op = {
                alloc_filled((int64_t)s->m * s->k, 1 + i),
                alloc_filled((int64_t)s->k * s->n, 100 + i),
                alloc_filled((int64_t)s->m * s->n, 200 + i),
            };
            if (!op.a || !op.b || !op.c) {
                fprintf(stderr, "bench_gemm: out of memory for %s\n", s->name);
                return EXIT_FAILURE;
            }
#ifdef DG_BENCH_HAVE_OPENBLAS
            const int n_libraries = 2;
#else
            const int n_libraries = 1;
#endif
            double median[2];
            measure(s, &op, threads, n_libraries, median);
            double ours = median[DAGRAD];
            printf("gemm_%s_t%d_dagrad %.1f GFLOP/s\n", s->name, threads, ours);
            if (n_libraries > 1) {
                printf("gemm_%s_t%d_openblas %.1f GFLOP/s\n", s->name, threads,
                       median[OPENBLAS]);
                printf("gemm_%s_t%d_ratio %.3f x\n", s->name, threads, ours / median[OPENBLAS]);
            }
            double base = cpu_clock && threads == 1 ? cpu_peak : peak;
            if (base > 0.0)
                printf("gemm_%s_t%d_peak %.3f fraction\n", s->name, threads,
                       ours / (base * threads));
            fflush(stdout);
            free(op.a);
            free(op.b);
            free(op.c);
        }
    }
    return EXIT_SUCCESS;
}
