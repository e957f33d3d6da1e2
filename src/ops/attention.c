/*
 * Fused scaled dot-product attention and its fused gradients.
 *
 *   attention(q [..,T,Dh], k [..,S,Dh], v [..,S,Dv] [, key int32 [3]]; scale, causal, p, salt)
 *       -> [..,T,Dv]
 *   out_i = sum_j P~_ij v_j,  P_ij = softmax_j(scale * q_i . k_j) over the keys visible to i,
 *           P~_ij = P_ij * keep_ij / (1 - p) in training with dropout, else P_ij
 *
 * The leading axes (heads, batch: [B,H], [B], or none) are equal for q, k and v and are
 * independent problems. scale defaults to 1/sqrt(Dh).
 *
 * Causal: key j is visible to query i when j <= i + (S - T) (aligned at the bottom right, so
 * with T == S it is the usual j <= i, and a single query against a cache of S keys sees all of
 * them). A query that sees no key (T > S, i < T - S) gets a zero output and zero gradients.
 *
 * Dropout on the probabilities (training, key[2] != 0 and p > 0): keep_ij is a counter-based
 * hash of (seed, step, the node's salt, the flat index of (row, i, j)) >= p * 2^24, exactly as
 * dropout.c hashes its elements; the gradients regenerate the same mask from the same key.
 *
 * Kernels: flash-attention style. A task owns a block of ATT_BLOCK query rows (forward, d q)
 * or key rows (d k, d v) and streams over the other side in tiles of ATT_BLOCK with small
 * single-threaded GEMMs (dg__sgemm) into per-thread scratch from the planned workspace, with
 * an online softmax (running max and sum per row, rescaling the partial output when the max
 * grows): no T x S score matrix exists, memory per head is O((T + S) * D). Each block is
 * computed by one thread with the same code and the same block boundaries whatever the thread
 * count: results are bitwise identical for any thread count.
 *
 * Backward (attention_grad, one op with attribute `which` = q, k, v, or kv: d k and d v side
 * by side, sliced apart by the rule; inputs q, k, v, out, grad_out [, key]). With L_i = logsumexp_j(scale q_i . k_j) and D_i = grad_out_i . out_i:
 *   dP_ij = grad_out_i . v_j * keep_ij / (1 - p)      dS_ij = P_ij (dP_ij - D_i)
 *   dq_i = scale sum_j dS_ij k_j     dk_j = scale sum_i dS_ij q_i     dv_j = sum_i P~_ij grad_out_i
 * (D_i = sum_j P_ij dP_ij because out_i = sum_j P~_ij v_j.) L and D are recomputed from q, k,
 * out and grad_out: the forward saves nothing but its output. attention_grad has no second
 * derivative: its rule fails with DG_ERR_NOT_DIFFERENTIABLE naming it (build attention from
 * matmul and softmax when higher-order gradients are needed).
 */
#include "op.h"
#include "simd/dropout_hash.h"
#include "simd/vmath.h"
#include "gemm/gemm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define ATT_BLOCK 64 /* query rows per task, keys per tile of the online softmax */

/* Which gradient an attention_grad node computes; ATT_KV: d k and d v side by side,
 * [..,S,Dh+Dv], which the rule slices apart (one pass over the scores for both); ATT_QKV
 * (self-attention, T == S): d q, d k and d v side by side, [..,T,2Dh+Dv]. */
enum att_which { ATT_Q = 0, ATT_K = 1, ATT_V = 2, ATT_KV = 3, ATT_QKV = 4 };

struct attention_attrs {
    float scale;
    float p;        /* dropout probability on the attention weights, [0, 1) */
    int32_t causal;
    int32_t which;  /* attention_grad: the input whose gradient it computes */
    int32_t heads;  /* > 0: packed mode, one input qkv [B,T,3C] split into this many heads */
    uint64_t salt;  /* per-node dropout stream */
};

static inline const struct attention_attrs *att_attrs(const void *attrs) { return attrs; }

/* ---- shapes ------------------------------------------------------------------------------ */

struct att_dims {
    int64_t heads; /* product of the leading axes */
    int64_t t, s, dh, dv;
};

static void att_dims(const struct dg_shape *q, const struct dg_shape *k,
                     const struct dg_shape *v, struct att_dims *d)
{
    int nd = q->ndim;
    d->heads = 1;
    for (int i = 0; i < nd - 2; i++)
        d->heads *= q->dim[i];
    d->t = q->dim[nd - 2];
    d->dh = q->dim[nd - 1];
    d->s = k->dim[nd - 2];
    d->dv = v->dim[nd - 1];
}

static dg_status att_check(const struct dg_op_def *def, const struct dg_shape *in,
                           int n_inputs, int n_tensors, char *msg, size_t len)
{
    char sq[128], sk[128], sv[128];
    const struct dg_shape *q = &in[0], *k = &in[1], *v = &in[2];
    for (int i = 0; i < n_tensors; i++)
        if (in[i].dtype != DG_F32)
            return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input %d must be float32",
                                   def->name, i);
    bool fits = q->ndim >= 2 && k->ndim == q->ndim && v->ndim == q->ndim;
    for (int i = 0; fits && i < q->ndim - 2; i++)
        fits = k->dim[i] == q->dim[i] && v->dim[i] == q->dim[i];
    if (fits)
        fits = k->dim[q->ndim - 1] == q->dim[q->ndim - 1] &&
               v->dim[q->ndim - 2] == k->dim[q->ndim - 2];
    if (!fits)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: q %s, k %s and v %s do not fit "
                               "(expected q [..,T,Dh], k [..,S,Dh], v [..,S,Dv] with equal "
                               "leading axes)", def->name, dg__shape_str(q, sq, sizeof sq),
                               dg__shape_str(k, sk, sizeof sk), dg__shape_str(v, sv, sizeof sv));
    if (n_inputs > n_tensors) {
        const struct dg_shape *key = &in[n_tensors];
        if (key->dtype != DG_I32 || key->ndim != 1 || key->dim[0] != 3)
            return dg__shape_error(msg, len, key->dtype != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                                   "%s: the dropout key must be int32 [3] {seed, step, "
                                   "training}, got %s %s", def->name,
                                   key->dtype == DG_I32 ? "int32" : "float32",
                                   dg__shape_str(key, sk, sizeof sk));
    }
    return DG_OK;
}

/* Packed mode: qkv [B,T,3C] with C divisible by the heads, then n_extra float tensors shaped
 * [B,T,C] (out, grad_out), then an optional key. */
static dg_status att_check_packed(const struct dg_op_def *def, const struct attention_attrs *a,
                                  const struct dg_shape *in, int n_inputs, int n_extra,
                                  char *msg, size_t len)
{
    char s0[128], s1[128];
    const struct dg_shape *qkv = &in[0];
    if (n_inputs != 1 + n_extra && n_inputs != 2 + n_extra)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: packed mode takes qkv%s and "
                               "an optional key, got %d inputs", def->name,
                               n_extra ? ", out, grad_out" : "", n_inputs);
    if (qkv->dtype != DG_F32 || qkv->ndim != 3 || qkv->dim[2] % (3 * (int64_t)a->heads) != 0)
        return dg__shape_error(msg, len, qkv->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: packed qkv must be float32 [B,T,3C] with C divisible by %d "
                               "heads, got %s", def->name, (int)a->heads,
                               dg__shape_str(qkv, s0, sizeof s0));
    for (int k = 1; k <= n_extra; k++) {
        bool same = in[k].dtype == DG_F32 && in[k].ndim == 3 && in[k].dim[0] == qkv->dim[0] &&
                    in[k].dim[1] == qkv->dim[1] && in[k].dim[2] == qkv->dim[2] / 3;
        if (!same)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %s %s is not [B,T,C] of qkv %s",
                                   def->name, k == 1 ? "out" : "grad_out",
                                   dg__shape_str(&in[k], s1, sizeof s1),
                                   dg__shape_str(qkv, s0, sizeof s0));
    }
    if (n_inputs == 2 + n_extra) {
        const struct dg_shape *key = &in[1 + n_extra];
        if (key->dtype != DG_I32 || key->ndim != 1 || key->dim[0] != 3)
            return dg__shape_error(msg, len, key->dtype != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                                   "%s: the dropout key must be int32 [3] {seed, step, "
                                   "training}, got %s", def->name,
                                   dg__shape_str(key, s1, sizeof s1));
    }
    return DG_OK;
}

/* The problem sizes of packed mode: B*H heads, T = S, Dh = Dv = C / H. */
static void att_dims_packed(const struct dg_shape *qkv, int heads, struct att_dims *d)
{
    d->heads = qkv->dim[0] * heads;
    d->t = d->s = qkv->dim[1];
    d->dh = d->dv = qkv->dim[2] / 3 / heads;
}

static dg_status attention_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    if (att_attrs(attrs)->heads > 0) {
        dg_status st = att_check_packed(def, att_attrs(attrs), in, n_inputs, 0, msg, len);
        if (st == DG_OK) {
            *out = in[0];
            out->dim[2] /= 3;
        }
        return st;
    }
    if (n_inputs != 3 && n_inputs != 4)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "attention: takes q, k, v and an "
                               "optional key, got %d inputs", n_inputs);
    dg_status st = att_check(def, in, n_inputs, 3, msg, len);
    if (st != DG_OK)
        return st;
    *out = in[0];
    out->dim[out->ndim - 1] = in[2].dim[in[2].ndim - 1];
    return DG_OK;
}

/* grad inputs: q, k, v, out, grad_out [, key] */
static dg_status attention_grad_infer(const struct dg_op_def *def, const void *attrs,
                                      int n_inputs, const struct dg_shape *in,
                                      struct dg_shape *out, char *msg, size_t len)
{
    char so[128], sg[128];
    if (att_attrs(attrs)->heads > 0) { /* packed: d qkv, qkv's shape */
        dg_status st = att_check_packed(def, att_attrs(attrs), in, n_inputs, 2, msg, len);
        if (st == DG_OK)
            *out = in[0];
        return st;
    }
    if (n_inputs != 5 && n_inputs != 6)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "attention_grad: takes q, k, v, "
                               "out, grad_out and an optional key, got %d inputs", n_inputs);
    dg_status st = att_check(def, in, n_inputs, 5, msg, len);
    if (st != DG_OK)
        return st;
    struct dg_shape expect = in[0];
    expect.dim[expect.ndim - 1] = in[2].dim[in[2].ndim - 1];
    for (int k = 3; k < 5; k++) {
        bool same = in[k].ndim == expect.ndim;
        for (int i = 0; same && i < expect.ndim; i++)
            same = in[k].dim[i] == expect.dim[i];
        if (!same)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "attention_grad: %s %s is not the "
                                   "attention output's shape %s", k == 3 ? "out" : "grad_out",
                                   dg__shape_str(&in[k], so, sizeof so),
                                   dg__shape_str(&expect, sg, sizeof sg));
    }
    int which = att_attrs(attrs)->which;
    *out = in[which >= 0 && which <= 2 ? which : 1];
    if (which == ATT_KV)
        out->dim[out->ndim - 1] = in[1].dim[in[1].ndim - 1] + in[2].dim[in[2].ndim - 1];
    if (which == ATT_QKV) {
        if (in[0].dim[in[0].ndim - 2] != in[1].dim[in[1].ndim - 2])
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "attention_grad: d q, k, v side by "
                                   "side needs as many queries as keys, got q %s, k %s",
                                   dg__shape_str(&in[0], so, sizeof so),
                                   dg__shape_str(&in[1], sg, sizeof sg));
        *out = in[0];
        out->dim[out->ndim - 1] = 2 * in[0].dim[in[0].ndim - 1] + in[2].dim[in[2].ndim - 1];
    }
    return DG_OK;
}

/* ---- the dropout mask ------------------------------------------------------------------- */

struct att_mask {
    bool on;
    uint64_t base;
    uint32_t threshold;
    float inv_keep; /* 1 / (1 - p) */
};

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

/* Keys [0, limit) are visible to query i. */
static inline int64_t att_limit(bool causal, int64_t i, const struct att_dims *d)
{
    if (!causal)
        return d->s;
    int64_t lim = i + (d->s - d->t) + 1;
    return lim < 0 ? 0 : lim > d->s ? d->s : lim;
}

static inline float dot(const float *a, const float *b, int64_t n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; i++)
        acc += a[i] * b[i];
    return acc;
}

/* The tensors of one problem (one entry of the leading axes). */
struct att_head {
    const float *q, *k, *v, *out, *grad_out;
    int64_t lq, lk, lv, lo; /* row strides of q, k, v and of out / grad_out (whole-head
                               kernels; the streaming ones assume Dh, Dh, Dv, Dv) */
};

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

/* row[c] = exp(row[c] - shift) for c < n; returns their sum (in the vectorised order both
 * softmax kernels use). */
static float exp_shifted_sum(float *row, int64_t n, float shift, const struct dg_vmath *vm)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++)
        row[c] -= shift;
    vm->exp(row, row, n);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < n; c++)
        sum += row[c];
    return sum;
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
            l[r] += exp_shifted_sum(row, bc, m[r], vm);
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

/* ---- whole-head kernels (short contexts) ------------------------------------------------
 * With T, S <= ATT_WHOLE one task owns a whole head and keeps its T x S probabilities (and,
 * backward, their gradients) in per-thread scratch: one pass computes the softmax exactly (no
 * running rescale), and the backward gets d q, d k and d v from the same tiles. The scores are
 * computed in bands of ATT_BAND query rows, each only up to the last key its rows see, so a
 * causal head does about half the GEMM work of a dense one. */

#define ATT_WHOLE 256 /* largest T and S for the whole-head kernels */

#define ATT_BAND 32   /* query rows per band of the causal score GEMMs */

static bool att_whole(const struct att_dims *d)
{
    return d->t <= ATT_WHOLE && d->s <= ATT_WHOLE;
}

/* Per-thread scratch of the whole-head kernels: the P and dP tiles (T x S each), a row of
 * dropout factors (S) and two T vectors, rounded to 64 bytes. */
static size_t att_whole_floats(const struct att_dims *d)
{
    /* + the packed mode's contiguous copies of one head's q, k, v, out and grad_out */
    return ((size_t)(2 * d->t * d->s + d->s + 2 * d->t + d->t * (2 * d->dh + 3 * d->dv)) + 15) /
           16 * 16;
}

/* Copies one packed head's q, k, v (and out, grad_out when present) into buf, contiguous rows
 * of Dh or Dv: the small GEMMs run faster on dense operands than on rows 3C apart. */
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

/* The dropout factors of row i, keys [0, n): 0 or 1/(1-p) (the vector hash of vmath). */
static void att_keep_row(const struct att_mask *mask, int64_t h, int64_t i,
                         const struct att_dims *d, int64_t n, float *f,
                         const struct dg_vmath *vm)
{
    vm->dropout(mask->base, (h * d->t + i) * d->s, mask->threshold, mask->inv_keep, NULL, f, n);
}

/* p (T x S, row stride S) = softmax rows of scale q k^T over the visible keys, 0 elsewhere;
 * lse[i] (when not NULL) the row's logsumexp (-inf when it sees no key). */
static void att_whole_probs(const struct att_head *hd, const struct att_dims *d,
                            const struct attention_attrs *a, float *p, float *lse,
                            const struct dg_vmath *vm)
{
    for (int64_t i0 = 0; i0 < d->t; i0 += ATT_BAND) {
        int64_t br = d->t - i0 < ATT_BAND ? d->t - i0 : ATT_BAND;
        int64_t cols = att_limit(a->causal, i0 + br - 1, d);
        if (cols > 0)
            dg__sgemm(false, true, br, cols, d->dh, a->scale, hd->q + i0 * hd->lq, hd->lq, hd->k,
                      hd->lk, 0.0f, p + i0 * d->s, d->s, 1);
        for (int64_t r = i0; r < i0 + br; r++) {
            float *row = p + r * d->s;
            int64_t lim = att_limit(a->causal, r, d);
            if (lim <= 0) {
                memset(row, 0, (size_t)d->s * sizeof *row);
                if (lse != NULL)
                    lse[r] = -INFINITY;
                continue;
            }
            float top = -INFINITY;
            for (int64_t c = 0; c < lim; c++)
                top = row[c] > top ? row[c] : top;
            const float sum = exp_shifted_sum(row, lim, top, vm);
            const float inv = 1.0f / sum;
#pragma omp simd
            for (int64_t c = 0; c < lim; c++)
                row[c] *= inv;
            if (lim < d->s)
                memset(row + lim, 0, (size_t)(d->s - lim) * sizeof *row);
            if (lse != NULL)
                lse[r] = top + logf(sum);
        }
    }
}

/* Forward of head h: out (T x dv, row stride hd->lo) = P~ v. */
static void att_whole_forward(const struct att_head *hd, const struct att_dims *d,
                              const struct attention_attrs *a, const struct att_mask *mask,
                              int64_t h, float *out, float *scratch, const struct dg_vmath *vm)
{
    float *p = scratch, *keep = p + 2 * d->t * d->s;
    att_whole_probs(hd, d, a, p, NULL, vm);
    for (int64_t i0 = 0; i0 < d->t; i0 += ATT_BAND) {
        int64_t br = d->t - i0 < ATT_BAND ? d->t - i0 : ATT_BAND;
        int64_t cols = att_limit(a->causal, i0 + br - 1, d);
        if (mask->on)
            for (int64_t r = i0; r < i0 + br; r++) {
                int64_t lim = att_limit(a->causal, r, d);
                float *row = p + r * d->s;
                att_keep_row(mask, h, r, d, lim, keep, vm);
#pragma omp simd
                for (int64_t c = 0; c < lim; c++)
                    row[c] *= keep[c];
            }
        if (cols > 0)
            dg__sgemm(false, false, br, d->dv, cols, 1.0f, p + i0 * d->s, d->s, hd->v, hd->lv,
                      0.0f, out + i0 * hd->lo, hd->lo, 1);
        else
            for (int64_t r = i0; r < i0 + br; r++)
                memset(out + r * hd->lo, 0, (size_t)d->dv * sizeof *out);
    }
}

/* Gradients of head h into dst_q (T rows), dst_k and dst_v (S rows), each NULL when not
 * wanted; rows `width` floats apart. */
static void att_whole_grad(const struct att_head *hd, const struct att_dims *d,
                           const struct attention_attrs *a, const struct att_mask *mask,
                           int64_t h, float *dst_q, float *dst_k, float *dst_v, int64_t width,
                           float *scratch, const struct dg_vmath *vm)
{
    const bool want_q = dst_q != NULL, want_k = dst_k != NULL, want_v = dst_v != NULL;
    float *p = scratch, *ds = p + d->t * d->s, *keep = ds + d->t * d->s;
    att_whole_probs(hd, d, a, p, NULL, vm);
    /* p becomes P~ (for d v), ds becomes dS = P (dP~ keep - D) (for d q, d k) */
    for (int64_t i0 = 0; i0 < d->t; i0 += ATT_BAND) {
        int64_t br = d->t - i0 < ATT_BAND ? d->t - i0 : ATT_BAND;
        int64_t cols = att_limit(a->causal, i0 + br - 1, d);
        if (cols > 0 && (want_q || want_k))
            dg__sgemm(false, true, br, cols, d->dv, 1.0f, hd->grad_out + i0 * hd->lo, hd->lo,
                      hd->v, hd->lv, 0.0f, ds + i0 * d->s, d->s, 1);
        for (int64_t r = i0; r < i0 + br; r++) {
            int64_t lim = att_limit(a->causal, r, d);
            float *prow = p + r * d->s, *dsrow = ds + r * d->s;
            if (mask->on)
                att_keep_row(mask, h, r, d, lim, keep, vm);
            if (want_q || want_k) {
                const float delta = dot(hd->grad_out + r * hd->lo, hd->out + r * hd->lo, d->dv);
                if (mask->on) {
#pragma omp simd
                    for (int64_t c = 0; c < lim; c++)
                        dsrow[c] = prow[c] * (dsrow[c] * keep[c] - delta);
                } else {
#pragma omp simd
                    for (int64_t c = 0; c < lim; c++)
                        dsrow[c] = prow[c] * (dsrow[c] - delta);
                }
                if (lim < d->s)
                    memset(dsrow + lim, 0, (size_t)(d->s - lim) * sizeof *dsrow);
            }
            if (mask->on && want_v) {
#pragma omp simd
                for (int64_t c = 0; c < lim; c++)
                    prow[c] *= keep[c];
            }
        }
        if (want_q) { /* d q rows of this band = scale dS k */
            if (cols > 0)
                dg__sgemm(false, false, br, d->dh, cols, a->scale, ds + i0 * d->s, d->s, hd->k,
                          hd->lk, 0.0f, dst_q + i0 * width, width, 1);
            else
                for (int64_t r = i0; r < i0 + br; r++)
                    memset(dst_q + r * width, 0, (size_t)d->dh * sizeof *dst_q);
        }
    }
    /* d k = scale dS^T q, d v = P~^T grad_out, in bands of keys: rows before the first query
     * that sees a band's first key are 0 and skipped */
    for (int64_t j0 = 0; j0 < d->s; j0 += ATT_BAND) {
        int64_t bc = d->s - j0 < ATT_BAND ? d->s - j0 : ATT_BAND;
        int64_t first = a->causal ? j0 - (d->s - d->t) : 0;
        first = first < 0 ? 0 : first;
        int64_t rows = d->t - first;
        if (rows <= 0) {
            for (int64_t c = j0; c < j0 + bc; c++) {
                if (want_k)
                    memset(dst_k + c * width, 0, (size_t)d->dh * sizeof *dst_k);
                if (want_v)
                    memset(dst_v + c * width, 0, (size_t)d->dv * sizeof *dst_v);
            }
            continue;
        }
        if (want_k)
            dg__sgemm(true, false, bc, d->dh, rows, a->scale, ds + first * d->s + j0, d->s,
                      hd->q + first * hd->lq, hd->lq, 0.0f, dst_k + j0 * width, width, 1);
        if (want_v)
            dg__sgemm(true, false, bc, d->dv, rows, 1.0f, p + first * d->s + j0, d->s,
                      hd->grad_out + first * hd->lo, hd->lo, 0.0f, dst_v + j0 * width, width, 1);
    }
}

static void attention_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const struct attention_attrs *a = att_attrs(attrs);
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
            struct att_head hd = att_gather(&packed, &d, scratch + 2 * d.t * d.s + d.s + 2 * d.t);
            hd.lo = c;
            att_whole_forward(&hd, &d, a, &mask, h,
                              (float *)out->data + (h / a->heads) * d.t * c +
                                  (h % a->heads) * d.dh,
                              scratch, vm);
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
            att_whole_forward(&hd, &d, a, &mask, h, (float *)out->data + h * d.t * d.dv,
                              (float *)ctx->workspace + (size_t)omp_get_thread_num() * per_thread,
                              vm);
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
        delta[r] = dot(hd->grad_out + (i0 + r) * d->dv, hd->out + (i0 + r) * d->dv, d->dv);
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

static void attention_grad_forward(const struct dg_op_def *def, const void *attrs,
                                   int n_inputs, const struct dg_tensor *in,
                                   struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    if (att_attrs(attrs)->heads > 0) {
        const struct attention_attrs *pa = att_attrs(attrs);
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
            struct att_head hd = att_gather(&packed, &d, scratch + 2 * d.t * d.s + d.s + 2 * d.t);
            att_whole_grad(&hd, &d, pa, &mask, h, dq, dq + c, dq + 2 * c, 3 * c, scratch, vm);
        }
        return;
    }
    const struct attention_attrs *a = att_attrs(attrs);
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
                           vm);
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
            delta_all[h * d.t + i0 + r] = dot(hd.grad_out + (i0 + r) * d.dv,
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

/* Per-thread scratch (two ATT_BLOCK^2 tiles and four vectors), plus L and D of every query
 * row for d k and d v: O(threads + heads * T) floats, never T x S. */
static size_t attention_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, const struct dg_shape *out,
                                  int n_threads)
{
    struct att_dims d;
    size_t threads = (size_t)(n_threads > 0 ? n_threads : 1);
    if (att_attrs(attrs)->heads > 0) {
        att_dims_packed(&in[0], att_attrs(attrs)->heads, &d);
        return threads * att_whole_floats(&d) * sizeof(float);
    }
    att_dims(&in[0], &in[1], &in[2], &d);
    if (att_whole(&d) || (def->variant == 1 && att_attrs(attrs)->which == ATT_QKV))
        return threads * att_whole_floats(&d) * sizeof(float);
    size_t floats = threads * ATT_SCRATCH;
    if (def->variant == 1 && att_attrs(attrs)->which != ATT_Q)
        floats += ((size_t)(2 * d.heads * d.t) + 15) / 16 * 16;
    return floats * sizeof(float);
}

/* ---- gradient rules ----------------------------------------------------------------------- */

static dg_node *make_grad(dg_graph *g, dg_node *node, dg_node *grad, int which)
{
    struct attention_attrs attrs = *att_attrs(dg__attrs(node));
    attrs.which = which;
    dg_node *in[6] = {dg__input(node, 0), dg__input(node, 1), dg__input(node, 2), node, grad,
                      dg__n_inputs(node) == 4 ? dg__input(node, 3) : NULL};
    return dg__make_node(g, DG_OP_attention_grad, in[5] ? 6 : 5, in, &attrs);
}

/* dq = attention_grad(q); dk and dv from one attention_grad(kv) [..,S,Dh+Dv] sliced apart
 * when both are needed (one pass over the scores), else the one needed alone. */
static dg_status attention_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    if (att_attrs(dg__attrs(node))->heads > 0) { /* packed: d qkv in one pass */
        if (dg__grad_needed(ctx, 0)) {
            struct attention_attrs attrs = *att_attrs(dg__attrs(node));
            attrs.which = ATT_QKV;
            bool key = dg__n_inputs(node) == 2;
            dg_node *in[4] = {dg__input(node, 0), node, grad, key ? dg__input(node, 1) : NULL};
            gin[0] = dg__make_node(g, DG_OP_attention_grad, key ? 4 : 3, in, &attrs);
        }
        return dg_graph_status(g);
    }
    bool need_q = dg__grad_needed(ctx, 0);
    bool need_k = dg__grad_needed(ctx, 1), need_v = dg__grad_needed(ctx, 2);
    const struct dg_shape *qs = dg__node_shape(dg__input(node, 0));
    const struct dg_shape *ks = dg__node_shape(dg__input(node, 1));
    if (need_q && need_k && need_v && qs->dim[qs->ndim - 2] == ks->dim[ks->ndim - 2] &&
        qs->dim[qs->ndim - 2] <= ATT_WHOLE) {
        /* self-attention over a short context: one pass for all three */
        dg_node *qkv = make_grad(g, node, grad, ATT_QKV);
        int64_t dh = qs->dim[qs->ndim - 1];
        int64_t dv = dg__node_shape(node)->dim[dg__node_shape(node)->ndim - 1];
        gin[0] = dg_slice(g, qkv, -1, 0, dh);
        gin[1] = dg_slice(g, qkv, -1, dh, 2 * dh);
        gin[2] = dg_slice(g, qkv, -1, 2 * dh, 2 * dh + dv);
        return dg_graph_status(g);
    }
    if (need_q)
        gin[0] = make_grad(g, node, grad, ATT_Q);
    if (need_k && need_v) {
        dg_node *kv = make_grad(g, node, grad, ATT_KV);
        int64_t dh = dg__node_shape(dg__input(node, 1))->dim[dg__node_shape(node)->ndim - 1];
        int64_t dv = dg__node_shape(node)->dim[dg__node_shape(node)->ndim - 1];
        gin[1] = dg_slice(g, kv, -1, 0, dh);
        gin[2] = dg_slice(g, kv, -1, dh, dh + dv);
    } else if (need_k) {
        gin[1] = make_grad(g, node, grad, ATT_K);
    } else if (need_v) {
        gin[2] = make_grad(g, node, grad, ATT_V);
    }
    return dg_graph_status(g); /* the key gets none (int32) */
}

/* No second derivative: a documented, explicit failure (not a missing rule). */
static dg_status attention_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g,
                                         dg_node *node, dg_node *grad, dg_node **gin)
{
    dg_graph_set_error(g, DG_ERR_NOT_DIFFERENTIABLE, "attention_grad: node %d: second "
                       "derivatives of the fused attention are not implemented; build "
                       "attention from matmul and softmax for higher-order gradients",
                       dg_node_index(node));
    return dg_graph_status(g);
}

static void attention_label(const struct dg_op_def *def, const void *attrs, char *buf,
                            size_t len)
{
    const struct attention_attrs *a = att_attrs(attrs);
    static const char *const which[] = {"q", "k", "v", "kv", "qkv"};
    if (a->heads > 0)
        snprintf(buf, len, "%sheads=%d scale=%g%s p=%g", def->variant == 1 ? "dqkv " : "",
                 (int)a->heads, (double)a->scale, a->causal ? " causal" : "", (double)a->p);
    else if (def->variant == 1)
        snprintf(buf, len, "d%s scale=%g%s p=%g", which[a->which >= 0 && a->which <= ATT_QKV ? a->which : 0], (double)a->scale,
                 a->causal ? " causal" : "", (double)a->p);
    else
        snprintf(buf, len, "scale=%g%s p=%g", (double)a->scale, a->causal ? " causal" : "",
                 (double)a->p);
}

const struct dg_op_def dg_op_attention = {
    .name = "attention", .n_inputs = -1, .variant = 0,
    .attrs_size = sizeof(struct attention_attrs),
    .infer = attention_infer, .forward = attention_forward, .backward = attention_backward,
    .label = attention_label, .workspace_bytes = attention_workspace,
};

const struct dg_op_def dg_op_attention_grad = {
    .name = "attention_grad", .n_inputs = -1, .variant = 1,
    .attrs_size = sizeof(struct attention_attrs),
    .infer = attention_grad_infer, .forward = attention_grad_forward,
    .backward = attention_grad_backward, .label = attention_label,
    .workspace_bytes = attention_workspace,
};

/* The attention node both constructors build: in[0..n) are its data inputs (in has room for
 * the key after them); dh is the head width that sets the scale; `what` names the constructor
 * in errors. */
static dg_node *make_attention(dg_graph *g, const char *what, int n, dg_node **in,
                               dg_node *key, int64_t dh, bool causal, int heads,
                               float dropout_p)
{
    if (dg_graph_status(g) == DG_OK && in[0] != NULL) {
        if (!(dropout_p >= 0.0f && dropout_p < 1.0f))
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: dropout p = %g is outside [0, 1)",
                            what, (double)dropout_p);
        if (dropout_p > 0.0f && key == NULL)
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: dropout p = %g needs the dropout key "
                            "(dg_dropout_key)", what, (double)dropout_p);
    }
    struct attention_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.scale = (float)(1.0 / sqrt((double)(dh > 0 ? dh : 1)));
    attrs.p = key != NULL ? dropout_p : 0.0f;
    attrs.causal = causal;
    attrs.heads = heads;
    attrs.salt = (uint64_t)dg_graph_node_count(g);
    in[n] = key;
    return dg__make_node(g, DG_OP_attention, key != NULL ? n + 1 : n, in, &attrs);
}

dg_node *dg_attention(dg_graph *g, dg_node *q, dg_node *k, dg_node *v, dg_node *key,
                      bool causal, float dropout_p)
{
    int ndim = q != NULL ? dg_node_ndim(q) : 0;
    int64_t dh = ndim >= 1 ? dg_node_dim(q, ndim - 1) : 1;
    return make_attention(g, "attention", 3, (dg_node *[4]){q, k, v}, key, dh, causal, 0,
                          dropout_p);
}

dg_node *dg_attention_packed(dg_graph *g, dg_node *qkv, int heads, dg_node *key, bool causal,
                             float dropout_p)
{
    if (dg_graph_status(g) == DG_OK && qkv != NULL && heads < 1)
        return dg__fail(g, DG_ERR_INVALID_ARG, "attention_packed: %d heads", heads);
    int ndim = qkv != NULL ? dg_node_ndim(qkv) : 0;
    int64_t dh = ndim == 3 && heads > 0 ? dg_node_dim(qkv, 2) / 3 / heads : 1;
    return make_attention(g, "attention_packed", 1, (dg_node *[2]){qkv}, key, dh, causal, heads,
                          dropout_p);
}
