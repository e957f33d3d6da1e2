/*
 * The fused attention's kernels (the op, its maths and its rules: attention.c).
 *
 * Long contexts (T or S > ATT_WHOLE): flash-attention style. A task owns a block of ATT_BLOCK
 * query rows (forward, d q) or key rows (d k, d v) and streams over the other side in tiles
 * of ATT_BLOCK with small single-threaded GEMMs (dg__sgemm) into per-thread scratch from the
 * planned workspace, with an online softmax (running max and sum per row, rescaling the
 * partial output when the max grows): no T x S score matrix exists, memory per head is
 * O((T + S) * D). Each block is computed by one thread with the same code and the same block
 * boundaries whatever the thread count: results are bitwise identical for any thread count.
 *
 * Short contexts (T, S <= ATT_WHOLE, and always in packed mode): one task per head with its
 * whole T x S probabilities in scratch (the whole-head kernels below), on a register-tiled
 * GEMM of their own (att_gemm: AVX-512 where the CPU has it, dg__sgemm otherwise).
 */
#include "attention_kernels.h"
#include "simd/dropout_hash.h"
#include "simd/vmath.h"
#include "gemm/gemm.h"
#include "dg_config.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- the dropout mask ------------------------------------------------------------------- */

static void att_mask_init(struct att_mask *m, const struct attention_attrs *a,
                          const struct dg_tensor *key_tensor)
{
    memset(m, 0, sizeof *m);
    const int32_t *key = key_tensor ? key_tensor->data : NULL;
    if (key == NULL || key[2] == 0 || a->p <= 0.0f)
        return;
    m->on = true;
    m->base = dg__dropout_mix64(((uint64_t)(uint32_t)key[0] << 32 | (uint32_t)key[1]) ^
                                dg__dropout_mix64(a->salt + DG_DROPOUT_GOLDEN));
    m->threshold = (uint32_t)((double)a->p * 16777216.0);
    m->inv_keep = 1.0f / (1.0f - a->p);
}

/* The factor of element (row, i, j) at flat index idx: 1/(1-p) kept, 0 dropped, 1 off. */
static inline float att_keep(const struct att_mask *m, int64_t idx)
{
    if (!m->on)
        return 1.0f;
    return dg__dropout_u24(m->base, (uint64_t)idx) >= m->threshold ? m->inv_keep : 0.0f;
}

/* ---- block kernels ----------------------------------------------------------------------
 * Work is split into blocks of ATT_BLOCK query rows (forward, d q) or key rows (d k, d v), one
 * block per task; a block streams over the other side in tiles of ATT_BLOCK with small GEMMs
 * (dg__sgemm on one thread) into per-thread scratch of ATT_BLOCK x ATT_BLOCK scores. */

static struct att_head att_head(const struct dg_tensor *in, int n_tensors,
                                const struct att_dims *d, int64_t h)
{
    struct att_head hd = {
        .q = (const float *)in[0].data + h * d->t * d->dh,
        .k = (const float *)in[1].data + h * d->s * d->dh,
        .v = (const float *)in[2].data + h * d->s * d->dv,
        .lq = d->dh, .lk = d->dh, .lv = d->dv, .lo = d->dv,
    };
    if (n_tensors == 5) {
        hd.out = (const float *)in[3].data + h * d->t * d->dv;
        hd.grad_out = (const float *)in[4].data + h * d->t * d->dv;
    }
    return hd;
}

/* Head h (= b * H + head) of packed tensors: q, k, v read in place from qkv rows of 3C, out
 * and grad_out rows of C. */
static struct att_head att_head_packed(const float *qkv, const float *out,
                                       const float *grad_out, const struct att_dims *d,
                                       int heads, int64_t h)
{
    int64_t c = d->dh * heads, b = h / heads, at = (h % heads) * d->dh;
    const float *q = qkv + b * d->t * 3 * c + at;
    return (struct att_head){.q = q, .k = q + c, .v = q + 2 * c,
                             .out = out ? out + b * d->t * c + at : NULL,
                             .grad_out = grad_out ? grad_out + b * d->t * c + at : NULL,
                             .lq = 3 * c, .lk = 3 * c, .lv = 3 * c, .lo = c};
}

/* Per-thread scratch: two ATT_BLOCK x ATT_BLOCK tiles and four ATT_BLOCK vectors. */
#define ATT_SCRATCH (2 * ATT_BLOCK * ATT_BLOCK + 4 * ATT_BLOCK)

static float *att_scratch(const struct dg_exec_ctx *ctx, size_t offset_floats)
{
    return (float *)ctx->workspace + offset_floats +
           (size_t)omp_get_thread_num() * ATT_SCRATCH;
}

/* Scores of query rows [i0, i0 + br) against keys [j0, j0 + bc): tile[r][c] = scale q.k, and
 * -inf where the key is not visible. Returns the number of columns any row sees. */
static void att_scores(const struct att_head *hd, const struct att_dims *d,
                       const struct attention_attrs *a, int64_t i0, int64_t br, int64_t j0,
                       int64_t bc, float *tile)
{
    dg__sgemm(false, true, br, bc, d->dh, a->scale, hd->q + i0 * d->dh, d->dh,
              hd->k + j0 * d->dh, d->dh, 0.0f, tile, ATT_BLOCK, 1);
    if (!a->causal)
        return;
    for (int64_t r = 0; r < br; r++) {
        int64_t lim = att_limit(true, i0 + r, d) - j0;
        for (int64_t c = lim < 0 ? 0 : lim; c < bc; c++)
            tile[r * ATT_BLOCK + c] = -INFINITY;
    }
}

/* Online softmax statistics of query rows [i0, i0 + br): lse[r] = logsumexp of the visible
 * scores (-inf when none). With o != NULL also the output rows (o: br x dv, row stride dv),
 * dropout applied to the weights. tile: ATT_BLOCK^2 floats; m, l: ATT_BLOCK floats. */
static void att_forward_block(const struct att_head *hd, const struct att_dims *d,
                              const struct attention_attrs *a, const struct att_mask *mask,
                              int64_t h, int64_t i0, int64_t br, float *o, float *lse,
                              float *tile, float *m, float *l, const struct dg_vmath *vm)
{
    int64_t lim_max = att_limit(a->causal, i0 + br - 1, d);
    for (int64_t r = 0; r < br; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    if (o != NULL)
        memset(o, 0, (size_t)(br * d->dv) * sizeof *o);
    for (int64_t j0 = 0; j0 < lim_max; j0 += ATT_BLOCK) {
        int64_t bc = lim_max - j0 < ATT_BLOCK ? lim_max - j0 : ATT_BLOCK;
        att_scores(hd, d, a, i0, br, j0, bc, tile);
        for (int64_t r = 0; r < br; r++) {
            float *row = tile + r * ATT_BLOCK;
            int64_t lim = att_limit(a->causal, i0 + r, d) - j0;
            if (lim <= 0) { /* no visible key in this tile */
                memset(row, 0, (size_t)bc * sizeof *row);
                continue;
            }
            float tmax = -INFINITY;
            int64_t seen = lim < bc ? lim : bc;
            for (int64_t c = 0; c < seen; c++)
                tmax = row[c] > tmax ? row[c] : tmax;
            if (tmax > m[r]) { /* the running max grows: rescale what was summed so far */
                float correction = expf(m[r] - tmax); /* 0 on the first tile */
                l[r] *= correction;
                if (o != NULL)
                    for (int64_t c = 0; c < d->dv; c++)
                        o[r * d->dv + c] *= correction;
                m[r] = tmax;
            }
            l[r] += att_exp_shifted_sum(row, bc, m[r], vm);
            if (o != NULL && mask->on)
                for (int64_t c = 0; c < bc; c++)
                    row[c] *= att_keep(mask, ((h * d->t) + i0 + r) * d->s + j0 + c);
        }
        if (o != NULL)
            dg__sgemm(false, false, br, d->dv, bc, 1.0f, tile, ATT_BLOCK, hd->v + j0 * d->dv,
                      d->dv, 1.0f, o, d->dv, 1);
    }
    for (int64_t r = 0; r < br; r++) {
        bool any = l[r] > 0.0f;
        if (lse != NULL)
            lse[r] = any ? m[r] + logf(l[r]) : -INFINITY;
        if (o != NULL) {
            float inv = any ? 1.0f / l[r] : 0.0f;
            for (int64_t c = 0; c < d->dv; c++)
                o[r * d->dv + c] *= inv;
        }
    }
}

/* ---- whole-head kernels (short contexts): attention_whole.h ---------------------------- */

/* Per-thread scratch of the whole-head kernels: the P and dS tiles (T x S each), a row of dropout
 * factors (S + 16, att_keep_row), k^T and v^T (Dh x S, Dv x S), and the packed mode's contiguous
 * copies of one head's q, k, v, out and grad_out, rounded to 64 bytes. */
static size_t att_whole_floats(const struct att_dims *d)
{
    return ((size_t)(2 * d->t * d->s + d->s + 16 + d->s * (d->dh + d->dv) +
                     d->t * (2 * d->dh + 3 * d->dv)) + 15) / 16 * 16;
}

/* The offset of att_gather's buffer in that scratch. */
static size_t att_gather_at(const struct att_dims *d)
{
    return (size_t)(2 * d->t * d->s + d->s + 16 + d->s * (d->dh + d->dv));
}

/* Copies one packed head's q, k, v (and out, grad_out when present) into buf, contiguous rows
 * of Dh or Dv. The rows sit 3C apart in a tensor far larger than the caches: one memcpy per
 * row streams them in much faster than the kernels' scattered first touches would. */
static struct att_head att_gather(const struct att_head *src, const struct att_dims *d,
                                  float *buf)
{
    float *q = buf, *k = q + d->t * d->dh, *v = k + d->s * d->dh, *o = v + d->s * d->dv;
    float *go = o + d->t * d->dv;
    for (int64_t r = 0; r < d->t; r++) {
        memcpy(q + r * d->dh, src->q + r * src->lq, (size_t)d->dh * sizeof *q);
        memcpy(k + r * d->dh, src->k + r * src->lk, (size_t)d->dh * sizeof *k);
        memcpy(v + r * d->dv, src->v + r * src->lv, (size_t)d->dv * sizeof *v);
        if (src->out != NULL) {
            memcpy(o + r * d->dv, src->out + r * src->lo, (size_t)d->dv * sizeof *o);
            memcpy(go + r * d->dv, src->grad_out + r * src->lo, (size_t)d->dv * sizeof *go);
        }
    }
    return (struct att_head){.q = q, .k = k, .v = v, .out = src->out ? o : NULL,
                             .grad_out = src->out ? go : NULL, .lq = d->dh, .lk = d->dh,
                             .lv = d->dv, .lo = d->dv};
}

/* att_gemm on the portable path (attention_whole.h): dg__sgemm on one thread (A's unit stride says
 * whether it is stored transposed). */
static void att_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                              int64_t a_rs, int64_t a_ks, const float *b, int64_t ldb,
                              bool accumulate, float *c, int64_t ldc)
{
    bool transpose_a = a_ks != 1;
    dg__sgemm(transpose_a, false, m, n, k, alpha, a, transpose_a ? a_ks : a_rs, b, ldb,
              accumulate ? 1.0f : 0.0f, c, ldc, 1);
}

/* The row reductions of the portable path (attention_whole.h): plain loops in index order. */
static float att_row_max(const float *row, int64_t n)
{
    float top = row[0];
    for (int64_t c = 1; c < n; c++)
        top = row[c] > top ? row[c] : top;
    return top;
}

static float att_row_sum(const float *row, int64_t n)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < n; c++)
        sum += row[c];
    return sum;
}

static float att_row_dot(const float *a, const float *b, int64_t n)
{
    return att_dot(a, b, n);
}

/* dst (cols x rows, row stride rows) = src^T, src rows x cols with row stride ld. */
static void att_transpose(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * ld + c];
}

#include "attention_whole.h"

/* The whole-head kernels of dg__isa(): AVX-512 where the CPU has it, else the portable ones
 * (on dg__sgemm). */
static void att_whole_forward(const struct att_head *hd, const struct att_dims *d,
                              const struct attention_attrs *a, const struct att_mask *mask,
                              int64_t h, float *out, int64_t lo, float *scratch,
                              const struct att_next *next, const struct dg_vmath *vm)
{
#if DG_X86_64
    if (dg__isa() >= DG_ISA_AVX512) {
        dg__att_whole_forward_avx512(hd, d, a, mask, h, out, lo, scratch, next, vm);
        return;
    }
#endif
    whole_forward(hd, d, a, mask, h, out, lo, scratch, next, vm);
}

static void att_whole_grad(const struct att_head *hd, const struct att_dims *d,
                           const struct attention_attrs *a, const struct att_mask *mask,
                           int64_t h, float *dst_q, float *dst_k, float *dst_v, int64_t width,
                           float *scratch, const struct att_next *next,
                           const struct dg_vmath *vm)
{
#if DG_X86_64
    if (dg__isa() >= DG_ISA_AVX512) {
        dg__att_whole_grad_avx512(hd, d, a, mask, h, dst_q, dst_k, dst_v, width, scratch, next,
                                  vm);
        return;
    }
#endif
    whole_grad(hd, d, a, mask, h, dst_q, dst_k, dst_v, width, scratch, next, vm);
}

void dg__attention_run(const struct attention_attrs *a, int n_inputs,
                       const struct dg_tensor *in, struct dg_tensor *out,
                       const struct dg_exec_ctx *ctx)
{
    struct att_dims d;
    struct att_mask mask;
    const struct dg_vmath *vm = dg__vmath();
    if (a->heads > 0) {
        att_dims_packed(&in[0].shape, a->heads, &d);
        att_mask_init(&mask, a, n_inputs == 2 ? &in[1] : NULL);
        int threads = dg__threads_for(ctx, d.heads * d.t * d.s * (d.dh + d.dv));
        size_t per_thread = att_whole_floats(&d);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
        for (int64_t h = 0; h < d.heads; h++) {
            struct att_head packed = att_head_packed(in[0].data, NULL, NULL, &d, a->heads, h);
            int64_t c = d.dh * a->heads;
            float *scratch = (float *)ctx->workspace + (size_t)omp_get_thread_num() * per_thread;
            struct att_head hd = att_gather(&packed, &d, scratch + att_gather_at(&d));
            struct att_next next, *np = NULL;
            if (h + 1 < d.heads) {
                next = (struct att_next){
                    .src = att_head_packed(in[0].data, NULL, NULL, &d, a->heads, h + 1),
                    .dst = (float *)out->data + ((h + 1) / a->heads) * d.t * c +
                           ((h + 1) % a->heads) * d.dh,
                    .ld_dst = c, .dst_width = d.dv, .n_dst = 1};
                np = &next;
            }
            att_whole_forward(&hd, &d, a, &mask, h,
                              (float *)out->data + (h / a->heads) * d.t * c +
                                  (h % a->heads) * d.dh,
                              c, scratch, np, vm);
        }
        return;
    }
    att_dims(&in[0].shape, &in[1].shape, &in[2].shape, &d);
    att_mask_init(&mask, a, n_inputs == 4 ? &in[3] : NULL);
    int threads = dg__threads_for(ctx, d.heads * d.t * d.s * (d.dh + d.dv));
    if (att_whole(&d)) {
        size_t per_thread = att_whole_floats(&d);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
        for (int64_t h = 0; h < d.heads; h++) {
            struct att_head hd = att_head(in, 3, &d, h);
            att_whole_forward(&hd, &d, a, &mask, h, (float *)out->data + h * d.t * d.dv, d.dv,
                              (float *)ctx->workspace + (size_t)omp_get_thread_num() * per_thread,
                              NULL, vm);
        }
        return;
    }
    int64_t blocks_per_head = (d.t + ATT_BLOCK - 1) / ATT_BLOCK, blocks = d.heads * blocks_per_head;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t h = b / blocks_per_head, i0 = (b % blocks_per_head) * ATT_BLOCK;
        int64_t br = d.t - i0 < ATT_BLOCK ? d.t - i0 : ATT_BLOCK;
        struct att_head hd = att_head(in, 3, &d, h);
        float *scratch = att_scratch(ctx, 0);
        float *m = scratch + 2 * ATT_BLOCK * ATT_BLOCK, *l = m + ATT_BLOCK;
        att_forward_block(&hd, &d, a, &mask, h, i0, br,
                          (float *)out->data + (h * d.t + i0) * d.dv, NULL, scratch, m, l, vm);
    }
}

/* Probabilities of a score tile given each row's logsumexp: exp(s - lse), 0 where not
 * visible (the score is -inf) or the row sees nothing (lse -inf). tile rows: query rows
 * (rows_are_queries) or key rows (the transposed tile). */
static void att_probs(float *tile, int64_t rows, int64_t cols, const float *lse,
                      bool rows_are_queries, const struct dg_vmath *vm)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = tile + r * ATT_BLOCK;
        if (rows_are_queries) {
            const float l = isfinite(lse[r]) ? lse[r] : INFINITY; /* inf: every weight 0 */
#pragma omp simd
            for (int64_t c = 0; c < cols; c++)
                row[c] -= l;
        } else {
#pragma omp simd
            for (int64_t c = 0; c < cols; c++)
                row[c] -= isfinite(lse[c]) ? lse[c] : INFINITY;
        }
        vm->exp(row, row, cols);
    }
}

/* d q of query rows [i0, i0 + br) of head h into dq (br x dh). */
static void grad_q_block(const struct att_head *hd, const struct att_dims *d,
                         const struct attention_attrs *a, const struct att_mask *mask,
                         int64_t h, int64_t i0, int64_t br, float *dq, float *scratch,
                         const struct dg_vmath *vm)
{
    float *tile = scratch, *dp = tile + ATT_BLOCK * ATT_BLOCK;
    float *m = dp + ATT_BLOCK * ATT_BLOCK, *l = m + ATT_BLOCK, *lse = l + ATT_BLOCK;
    float *delta = lse + ATT_BLOCK;
    att_forward_block(hd, d, a, mask, h, i0, br, NULL, lse, tile, m, l, vm);
    for (int64_t r = 0; r < br; r++)
        delta[r] = att_dot(hd->grad_out + (i0 + r) * d->dv, hd->out + (i0 + r) * d->dv, d->dv);
    memset(dq, 0, (size_t)(br * d->dh) * sizeof *dq);
    int64_t lim_max = att_limit(a->causal, i0 + br - 1, d);
    for (int64_t j0 = 0; j0 < lim_max; j0 += ATT_BLOCK) {
        int64_t bc = lim_max - j0 < ATT_BLOCK ? lim_max - j0 : ATT_BLOCK;
        att_scores(hd, d, a, i0, br, j0, bc, tile);
        att_probs(tile, br, bc, lse, true, vm);
        dg__sgemm(false, true, br, bc, d->dv, 1.0f, hd->grad_out + i0 * d->dv, d->dv,
                  hd->v + j0 * d->dv, d->dv, 0.0f, dp, ATT_BLOCK, 1);
        for (int64_t r = 0; r < br; r++) {
            float *prow = tile + r * ATT_BLOCK;
            const float *dprow = dp + r * ATT_BLOCK;
            const float dr = delta[r];
            if (mask->on) {
                for (int64_t c = 0; c < bc; c++)
                    prow[c] *= dprow[c] * att_keep(mask, ((h * d->t) + i0 + r) * d->s + j0 + c) -
                               dr;
            } else {
#pragma omp simd
                for (int64_t c = 0; c < bc; c++)
                    prow[c] *= dprow[c] - dr;
            }
        }
        dg__sgemm(false, false, br, d->dh, bc, a->scale, tile, ATT_BLOCK, hd->k + j0 * d->dh,
                  d->dh, 1.0f, dq, d->dh, 1);
    }
}

/* d k or d v of key rows [j0, j0 + bc) of head h into dst (bc x width); lse and delta: the
 * head's query statistics. */
static void grad_kv_block(const struct att_head *hd, const struct att_dims *d,
                          const struct attention_attrs *a, const struct att_mask *mask,
                          int64_t h, int64_t j0, int64_t bc, const float *lse,
                          const float *delta, float *dst, float *scratch,
                          const struct dg_vmath *vm)
{
    bool want_k = a->which != ATT_V, want_v = a->which != ATT_K;
    int64_t width = (want_k ? d->dh : 0) + (want_v ? d->dv : 0);
    float *dst_k = dst, *dst_v = want_k ? dst + d->dh : dst;
    float *tile = scratch, *dp = tile + ATT_BLOCK * ATT_BLOCK;
    memset(dst, 0, (size_t)(bc * width) * sizeof *dst);
    /* the first query that sees key j0: j0 < limit(i), i.e. i >= j0 - (S - T) when causal */
    int64_t first = a->causal ? j0 - (d->s - d->t) : 0;
    first = first < 0 ? 0 : first;
    for (int64_t i0 = first; i0 < d->t; i0 += ATT_BLOCK) {
        int64_t br = d->t - i0 < ATT_BLOCK ? d->t - i0 : ATT_BLOCK;
        /* the transposed tile: key rows c, query columns r */
        dg__sgemm(false, true, bc, br, d->dh, a->scale, hd->k + j0 * d->dh, d->dh,
                  hd->q + i0 * d->dh, d->dh, 0.0f, tile, ATT_BLOCK, 1);
        if (a->causal)
            for (int64_t c = 0; c < bc; c++)
                for (int64_t r = 0; r < br; r++)
                    if (j0 + c >= att_limit(true, i0 + r, d))
                        tile[c * ATT_BLOCK + r] = -INFINITY;
        att_probs(tile, bc, br, lse + i0, false, vm);
        if (want_k) /* dP^T = V_blk grad_out_tile^T */
            dg__sgemm(false, true, bc, br, d->dv, 1.0f, hd->v + j0 * d->dv, d->dv,
                      hd->grad_out + i0 * d->dv, d->dv, 0.0f, dp, ATT_BLOCK, 1);
        /* the tile becomes P~^T (kept for d v) and dp becomes dS^T (for d k) */
        for (int64_t c = 0; c < bc; c++) {
            float *prow = tile + c * ATT_BLOCK, *dsrow = dp + c * ATT_BLOCK;
            const float *dl = delta + i0;
            if (mask->on) {
                for (int64_t r = 0; r < br; r++) {
                    float keep = att_keep(mask, ((h * d->t) + i0 + r) * d->s + j0 + c);
                    if (want_k)
                        dsrow[r] = prow[r] * (dsrow[r] * keep - dl[r]);
                    prow[r] *= keep;
                }
            } else if (want_k) {
#pragma omp simd
                for (int64_t r = 0; r < br; r++)
                    dsrow[r] = prow[r] * (dsrow[r] - dl[r]);
            }
        }
        if (want_v)
            dg__sgemm(false, false, bc, d->dv, br, 1.0f, tile, ATT_BLOCK,
                      hd->grad_out + i0 * d->dv, d->dv, 1.0f, dst_v, width, 1);
        if (want_k)
            dg__sgemm(false, false, bc, d->dh, br, a->scale, dp, ATT_BLOCK,
                      hd->q + i0 * d->dh, d->dh, 1.0f, dst_k, width, 1);
    }
}

void dg__attention_grad_run(const struct attention_attrs *a, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    if (a->heads > 0) {
        const struct attention_attrs *pa = a;
        struct att_dims d;
        att_dims_packed(&in[0].shape, pa->heads, &d);
        struct att_mask mask;
        att_mask_init(&mask, pa, n_inputs == 4 ? &in[3] : NULL);
        const struct dg_vmath *vm = dg__vmath();
        int threads = dg__threads_for(ctx, d.heads * d.t * d.s * (d.dh + d.dv));
        size_t per_thread = att_whole_floats(&d);
        const int64_t c = d.dh * pa->heads;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
        for (int64_t h = 0; h < d.heads; h++) {
            struct att_head packed = att_head_packed(in[0].data, in[1].data, in[2].data, &d,
                                                     pa->heads, h);
            float *dq = (float *)out->data + (h / pa->heads) * d.t * 3 * c +
                        (h % pa->heads) * d.dh;
            float *scratch = (float *)ctx->workspace + (size_t)omp_get_thread_num() * per_thread;
            struct att_head hd = att_gather(&packed, &d, scratch + att_gather_at(&d));
            struct att_next next, *np = NULL;
            if (h + 1 < d.heads) {
                next = (struct att_next){
                    .src = att_head_packed(in[0].data, in[1].data, in[2].data, &d, pa->heads,
                                           h + 1),
                    .dst = (float *)out->data + ((h + 1) / pa->heads) * d.t * 3 * c +
                           ((h + 1) % pa->heads) * d.dh,
                    .ld_dst = 3 * c, .dst_width = d.dh, .dst_step = c, .n_dst = 3};
                np = &next;
            }
            att_whole_grad(&hd, &d, pa, &mask, h, dq, dq + c, dq + 2 * c, 3 * c, scratch, np,
                           vm);
        }
        return;
    }
    struct att_dims d;
    att_dims(&in[0].shape, &in[1].shape, &in[2].shape, &d);
    struct att_mask mask;
    att_mask_init(&mask, a, n_inputs == 6 ? &in[5] : NULL);
    const struct dg_vmath *vm = dg__vmath();
    float *o = out->data;
    int threads = dg__threads_for(ctx, d.heads * d.t * d.s * (d.dh + d.dv));
    int64_t q_blocks = (d.t + ATT_BLOCK - 1) / ATT_BLOCK;
    if (att_whole(&d) || a->which == ATT_QKV) {
        size_t per_thread = att_whole_floats(&d);
        int64_t width = a->which == ATT_QKV ? 2 * d.dh + d.dv
                        : a->which == ATT_KV ? d.dh + d.dv
                        : a->which == ATT_V  ? d.dv : d.dh;
        int64_t rows = a->which == ATT_Q || a->which == ATT_QKV ? d.t : d.s;
        const int w = a->which;
        const int64_t k_at = w == ATT_QKV ? d.dh : 0;
        const int64_t v_at = w == ATT_QKV ? 2 * d.dh : w == ATT_KV ? d.dh : 0;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
        for (int64_t h = 0; h < d.heads; h++) {
            struct att_head hd = att_head(in, 5, &d, h);
            float *dst = o + h * rows * width;
            att_whole_grad(&hd, &d, a, &mask, h, w == ATT_Q || w == ATT_QKV ? dst : NULL,
                           w == ATT_K || w >= ATT_KV ? dst + k_at : NULL,
                           w == ATT_V || w >= ATT_KV ? dst + v_at : NULL, width,
                           (float *)ctx->workspace + (size_t)omp_get_thread_num() * per_thread,
                           NULL, vm);
        }
        return;
    }
    if (a->which == ATT_Q) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
        for (int64_t b = 0; b < d.heads * q_blocks; b++) {
            int64_t h = b / q_blocks, i0 = (b % q_blocks) * ATT_BLOCK;
            int64_t br = d.t - i0 < ATT_BLOCK ? d.t - i0 : ATT_BLOCK;
            struct att_head hd = att_head(in, 5, &d, h);
            grad_q_block(&hd, &d, a, &mask, h, i0, br, o + (h * d.t + i0) * d.dh,
                         att_scratch(ctx, 0), vm);
        }
        return;
    }
    /* K, V: the statistics of every query row first (L_i, D_i), then one key block per task. */
    float *lse_all = ctx->workspace, *delta_all = lse_all + d.heads * d.t;
    size_t stats = (size_t)(2 * d.heads * d.t);
    stats = (stats + 15) / 16 * 16; /* keep the scratch 64-byte aligned */
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
    for (int64_t b = 0; b < d.heads * q_blocks; b++) {
        int64_t h = b / q_blocks, i0 = (b % q_blocks) * ATT_BLOCK;
        int64_t br = d.t - i0 < ATT_BLOCK ? d.t - i0 : ATT_BLOCK;
        struct att_head hd = att_head(in, 5, &d, h);
        float *scratch = att_scratch(ctx, stats);
        float *m = scratch + 2 * ATT_BLOCK * ATT_BLOCK, *l = m + ATT_BLOCK;
        att_forward_block(&hd, &d, a, &mask, h, i0, br, NULL, lse_all + h * d.t + i0, scratch,
                          m, l, vm);
        for (int64_t r = 0; r < br; r++)
            delta_all[h * d.t + i0 + r] = att_dot(hd.grad_out + (i0 + r) * d.dv,
                                              hd.out + (i0 + r) * d.dv, d.dv);
    }
    int64_t width = (a->which != ATT_V ? d.dh : 0) + (a->which != ATT_K ? d.dv : 0);
    int64_t k_blocks = (d.s + ATT_BLOCK - 1) / ATT_BLOCK;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
    for (int64_t b = 0; b < d.heads * k_blocks; b++) {
        int64_t h = b / k_blocks, j0 = (b % k_blocks) * ATT_BLOCK;
        int64_t bc = d.s - j0 < ATT_BLOCK ? d.s - j0 : ATT_BLOCK;
        struct att_head hd = att_head(in, 5, &d, h);
        grad_kv_block(&hd, &d, a, &mask, h, j0, bc, lse_all + h * d.t, delta_all + h * d.t,
                      o + (h * d.s + j0) * width, att_scratch(ctx, stats), vm);
    }
}

/* Per-thread scratch (two ATT_BLOCK^2 tiles and four vectors, or a whole head's tiles), plus
 * L and D of every query row for the streaming d k and d v: O(threads + heads * T) floats,
 * never T x S per head. */
size_t dg__attention_workspace(const struct attention_attrs *a, bool grad,
                               const struct att_dims *d, int n_threads)
{
    size_t threads = (size_t)(n_threads > 0 ? n_threads : 1);
    if (a->heads > 0 || att_whole(d) || (grad && a->which == ATT_QKV))
        return threads * att_whole_floats(d) * sizeof(float);
    size_t floats = threads * ATT_SCRATCH;
    if (grad && a->which != ATT_Q)
        floats += ((size_t)(2 * d->heads * d->t) + 15) / 16 * 16;
    return floats * sizeof(float);
}
