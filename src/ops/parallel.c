/* The parallel-chunks helper (op.h): one split rule for every flat elementwise kernel. */
#include "op.h"

#include <stdio.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* [lo, hi) of chunk t out of nt for n elements: contiguous, DG_CHUNK_ALIGN-aligned chunks. */
static void chunk_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + nt - 1) / nt;
    per = (per + DG_CHUNK_ALIGN - 1) / DG_CHUNK_ALIGN * DG_CHUNK_ALIGN;
    int64_t start = per * t;
    *lo = start < n ? start : n;
    *hi = start + per < n ? start + per : n;
}

void dg__parallel_chunks(const struct dg_exec_ctx *ctx, int64_t n, dg_chunk_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int threads = dg__threads_for(ctx, n);
    if (threads <= 1) {
        fn(arg, 0, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo, hi;
        chunk_range(n, t, nt, &lo, &hi);
        if (hi > lo)
            fn(arg, lo, hi);
    }
}

void dg__exec_fault(const struct dg_exec_ctx *ctx, const char *fmt, ...)
{
    if (ctx == NULL || ctx->fault == NULL)
        return;
    if (__atomic_exchange_n(&ctx->fault->raised, 1, __ATOMIC_ACQ_REL) != 0)
        return; /* first report wins */
    va_list args;
    va_start(args, fmt);
    vsnprintf(ctx->fault->msg, sizeof ctx->fault->msg, fmt, args);
    va_end(args);
}
