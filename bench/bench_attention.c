/*
 * Fused attention (dg_attention) against the composed version (matmul, masked softmax,
 * matmul), causal, forward + backward (d q, d k, d v), over sequence lengths T. Prints
 * `name value unit` lines: milliseconds per step (median of a few runs) and the plan's arena
 * bytes (the composed version holds B·H·T² scores and their gradients; the fused one holds
 * none).
 *
 *   bench_attention [threads] [max_T] [heads] [min_T]
 *       (defaults: 1 thread, T from 16 up to 512, 8 heads)
 *
 * Shape per step: [heads/4, 4, T, 32] (B·H = heads, Dh = 32), T = S. At 1 thread the times are
 * the thread's CPU time (other jobs on a shared machine do not count), else wall-clock.
 *
 *   bench_attention gpt [threads] [dropout p, default 0.1]
 *
 * The character-level GPT's attention alone: dg_attention_packed over qkv [32, 128, 384],
 * 4 heads (Dh = 32), causal, dropout 0.1 in training, as one layer of examples/charlm runs it.
 * Prints the forward and the forward + backward (d qkv) per step, the one-core FMA peak and
 * the fraction of it the causal flops reach (QK^T and PV over the lower triangle forward, twice
 * that backward). At 1 thread all three are timed by the thread's CPU clock, so that other jobs
 * on a shared machine do not count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "bench_fma.h"
#include "bench_util.h"
#include "dagrad.h"

static int64_t heads = 8;
#define DH 32

struct setup {
    dg_graph *g;
    dg_plan *plan;
};

static struct setup build(int64_t t, bool fused, int threads)
{
    const int64_t shape[4] = {heads / 4, 4, t, DH};
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *q = dg_param(g, "q", 4, shape), *k = dg_param(g, "k", 4, shape);
    dg_node *v = dg_param(g, "v", 4, shape);
    dg_node *params[3] = {q, k, v};
    int64_t n = heads * t * DH;
    unsigned seed = 1;
    for (int i = 0; i < 3; i++) {
        float *d = dg_param_data(params[i]);
        for (int64_t j = 0; j < n; j++) {
            seed = seed * 1103515245u + 12345u;
            d[j] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        }
    }
    dg_node *out;
    if (fused) {
        out = dg_attention(g, q, k, v, NULL, true, 0.0f);
    } else {
        dg_node *scores = dg_scale(g, dg_matmul_ex(g, q, k, false, true), 1.0f / sqrtf(DH));
        out = dg_matmul(g, dg_masked_softmax(g, scores, dg_causal_mask(g, t), -1), v);
    }
    dg_node *loss = dg_sum(g, dg_square(g, out), 0, NULL, false);
    dg_node *grads[3];
    if (dg_grad(g, loss, 3, params, grads) != DG_OK) {
        fprintf(stderr, "grad: %s\n", dg_graph_error(g));
        exit(1);
    }
    dg_node *outs[4] = {loss, grads[0], grads[1], grads[2]};
    struct setup s = {g, dg_compile(g, 4, outs)};
    if (s.plan == NULL) {
        fprintf(stderr, "compile: %s\n", dg_graph_error(g));
        exit(1);
    }
    return s;
}

/* The calling thread's CPU time in seconds (the gpt mode's clock at 1 thread). */
static double thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double (*now)(void) = dg_bench_seconds;

static double time_step(dg_plan *p, int reps)
{
    double t[15];
    dg_run(p); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        dg_run(p);
        t[r] = now() - t0;
    }
    return dg_bench_median(t, reps);
}

/* The GPT layer's attention: forward alone (backward == false) or forward + d qkv. */
static float gpt_dropout = 0.1f;

static double time_gpt(bool backward, int threads)
{
    const int64_t shape[3] = {32, 128, 384};
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *qkv = dg_param(g, "qkv", 3, shape);
    float *d = dg_param_data(qkv);
    unsigned seed = 1;
    for (int64_t j = 0; j < 32 * 128 * 384; j++) {
        seed = seed * 1103515245u + 12345u;
        d[j] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    dg_node *out = dg_attention_packed(g, qkv, 4, dg_dropout_key(g), true, gpt_dropout);
    dg_node *loss = dg_sum(g, dg_square(g, out), 0, NULL, false);
    dg_node *outs[2] = {loss, NULL};
    if (backward && dg_grad(g, loss, 1, &qkv, &outs[1]) != DG_OK) {
        fprintf(stderr, "grad: %s\n", dg_graph_error(g));
        exit(1);
    }
    dg_plan *plan = dg_compile(g, backward ? 2 : 1, outs);
    if (plan == NULL || dg_dropout_feed_key(plan, 7, 1, true) != DG_OK) {
        fprintf(stderr, "compile: %s\n", dg_graph_error(g));
        exit(1);
    }
    double t = time_step(plan, 15);
    dg_plan_free(plan);
    dg_graph_free(g);
    return t;
}

static int gpt_main(int threads)
{
    if (threads == 1)
        now = thread_seconds;
    double peak = dg_bench_fma_peak_on(now);
    double fwd = time_gpt(false, threads), both = time_gpt(true, threads);
    /* QK^T and PV over the 128 * 129 / 2 visible pairs of 128 heads, Dh = 32 */
    double flops = 128.0 * (128.0 * 129.0 / 2.0) * 32.0 * 2.0 * 2.0;
    printf("# attention_packed [32,128,384], 4 heads, causal, dropout %g (training), "
           "%d thread(s), %s clock\n", (double)gpt_dropout, threads, threads == 1 ? "thread CPU" : "wall");
    printf("attention_gpt_fwd %.3f ms\n", fwd * 1e3);
    printf("attention_gpt_bwd %.3f ms\n", (both - fwd) * 1e3);
    printf("attention_gpt_fwd_bwd %.3f ms\n", both * 1e3);
    printf("attention_gpt_fma_peak %.1f GFLOP/s\n", peak);
    if (peak > 0.0)
        printf("attention_gpt_fwd_bwd_of_peak %.1f %%\n",
               100.0 * 3.0 * flops / both / (peak * 1e9));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "gpt") == 0)
    {
        gpt_dropout = argc > 3 ? (float)atof(argv[3]) : 0.1f;
        return gpt_main(argc > 2 ? atoi(argv[2]) : 1);
    }
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int64_t max_t = argc > 2 ? atoll(argv[2]) : 512;
    heads = argc > 3 ? atoll(argv[3]) / 4 * 4 : 8;
    int64_t min_t = argc > 4 ? atoll(argv[4]) : 16;
    if (heads < 4)
        heads = 4;
    if (threads == 1)
        now = thread_seconds;
    printf("# attention fwd+bwd, causal, B*H=%lld, Dh=%d, %d thread(s), %s clock\n",
           (long long)heads, DH, threads, threads == 1 ? "thread CPU" : "wall");
    for (int64_t t = min_t; t <= max_t; t *= 2) {
        int reps = t <= 128 ? 9 : t <= 512 ? 5 : 3;
        struct setup fused = build(t, true, threads), composed = build(t, false, threads);
        double tf = time_step(fused.plan, reps), tc = time_step(composed.plan, reps);
        printf("attention_fused_T%lld %.3f ms\n", (long long)t, tf * 1e3);
        printf("attention_composed_T%lld %.3f ms\n", (long long)t, tc * 1e3);
        printf("attention_speedup_T%lld %.2f x\n", (long long)t, tc / tf);
        printf("attention_fused_arena_T%lld %zu bytes\n", (long long)t,
               dg_plan_arena_bytes(fused.plan));
        printf("attention_composed_arena_T%lld %zu bytes\n", (long long)t,
               dg_plan_arena_bytes(composed.plan));
        fflush(stdout);
        dg_plan_free(fused.plan);
        dg_graph_free(fused.g);
        dg_plan_free(composed.plan);
        dg_graph_free(composed.g);
    }
    return 0;
}
