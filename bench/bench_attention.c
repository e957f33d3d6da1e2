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
 * Shape per step: [heads/4, 4, T, 32] (B·H = heads, Dh = 32), T = S.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

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

static double time_step(dg_plan *p, int reps)
{
    double t[9];
    dg_run(p); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = dg_bench_seconds();
        dg_run(p);
        t[r] = dg_bench_seconds() - t0;
    }
    return dg_bench_median(t, reps);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int64_t max_t = argc > 2 ? atoll(argv[2]) : 512;
    heads = argc > 3 ? atoll(argv[3]) / 4 * 4 : 8;
    int64_t min_t = argc > 4 ? atoll(argv[4]) : 16;
    if (heads < 4)
        heads = 4;
    printf("# attention fwd+bwd, causal, B*H=%lld, Dh=%d, %d thread(s)\n", (long long)heads, DH,
           threads);
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
