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
 * Kernels: flash-attention style. One thread owns one query row (forward, d q) or one key row
 * (d k, d v) and streams over the other side in tiles of ATT_TILE scores kept in the planned
 * workspace, with an online softmax (running max and sum, rescaling the partial output when
 * the max grows): no T x S score matrix exists, memory per head is O((T + S) * D). Each row is
 * computed by one thread with the same code whatever the thread count: results are bitwise
 * identical for any thread count.
 *
 * Backward (attention_grad, one op with attribute `which` = q, k or v; inputs q, k, v, out,
 * grad_out [, key]). With L_i = logsumexp_j(scale q_i . k_j) and D_i = grad_out_i . out_i:
 *   dP_ij = grad_out_i . v_j * keep_ij / (1 - p)      dS_ij = P_ij (dP_ij - D_i)
 *   dq_i = scale sum_j dS_ij k_j     dk_j = scale sum_i dS_ij q_i     dv_j = sum_i P~_ij grad_out_i
 * (D_i = sum_j P_ij dP_ij because out_i = sum_j P~_ij v_j.) L and D are recomputed from q, k,
 * out and grad_out: the forward saves nothing but its output. attention_grad has no second
 * derivative: its rule fails with DG_ERR_NOT_DIFFERENTIABLE naming it (build attention from
 * matmul and softmax when higher-order gradients are needed).
 */
#include "op.h"
#include "simd/vmath.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define ATT_TILE 64 /* scores per tile of the online softmax */

enum att_which { ATT_Q = 0, ATT_K = 1, ATT_V = 2 };

struct attention_attrs {
    float scale;
    float p;        /* dropout probability on the attention weights, [0, 1) */
    int32_t causal;
    int32_t which;  /* attention_grad: the input whose gradient it computes */
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

static dg_status attention_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
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
    *out = in[which >= 0 && which <= 2 ? which : 0];
    return DG_OK;
}

/* ---- the dropout mask ------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

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
    m->base = mix64(((uint64_t)(uint32_t)key[0] << 32 | (uint32_t)key[1]) ^
                    mix64(a->salt + 0x9e3779b97f4a7c15ull));
    m->threshold = (uint32_t)((double)a->p * 16777216.0);
    m->inv_keep = 1.0f / (1.0f - a->p);
}

/* The factor of element (row, i, j) at flat index idx: 1/(1-p) kept, 0 dropped, 1 off. */
static inline float att_keep(const struct att_mask *m, int64_t idx)
{
    if (!m->on)
        return 1.0f;
    uint32_t u = (uint32_t)(mix64(m->base + (uint64_t)idx * 0x9e3779b97f4a7c15ull) >> 40);
    return u >= m->threshold ? m->inv_keep : 0.0f;
}

/* ---- row kernels ------------------------------------------------------------------------- */

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

static inline void axpy(float *y, float a, const float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* One query row: writes out_i (when o != NULL) and returns L_i = logsumexp over the visible
 * scaled scores (-inf when none is visible). tile: ATT_TILE floats of scratch. */
static float att_row(const float *qi, const float *k, const float *v, float *o,
                     const struct att_dims *d, float scale, int64_t limit,
                     const struct att_mask *mask, int64_t mask_row, float *tile,
                     const struct dg_vmath *vm)
{
    float m = -INFINITY, l = 0.0f;
    if (o != NULL)
        memset(o, 0, (size_t)d->dv * sizeof *o);
    for (int64_t j0 = 0; j0 < limit; j0 += ATT_TILE) {
        int64_t w = limit - j0 < ATT_TILE ? limit - j0 : ATT_TILE;
        float tmax = -INFINITY;
        for (int64_t jj = 0; jj < w; jj++) {
            float s = scale * dot(qi, k + (j0 + jj) * d->dh, d->dh);
            tile[jj] = s;
            tmax = s > tmax ? s : tmax;
        }
        if (tmax > m) { /* the running max grows: rescale what was summed so far */
            float correction = expf(m - tmax); /* 0 on the first tile (m = -inf) */
            l *= correction;
            if (o != NULL)
                for (int64_t c = 0; c < d->dv; c++)
                    o[c] *= correction;
            m = tmax;
        }
        for (int64_t jj = 0; jj < w; jj++)
            tile[jj] -= m;
        vm->exp(tile, tile, w);
        for (int64_t jj = 0; jj < w; jj++) {
            l += tile[jj];
            if (o != NULL) {
                float weight = tile[jj] * att_keep(mask, mask_row + j0 + jj);
                if (weight != 0.0f)
                    axpy(o, weight, v + (j0 + jj) * d->dv, d->dv);
            }
        }
    }
    if (limit == 0 || !(l > 0.0f))
        return -INFINITY; /* no visible key: out_i stays 0 */
    if (o != NULL) {
        float inv = 1.0f / l;
        for (int64_t c = 0; c < d->dv; c++)
            o[c] *= inv;
    }
    return m + logf(l);
}

/* The tensors of one problem (one entry of the leading axes). */
struct att_head {
    const float *q, *k, *v, *out, *grad_out;
};

static struct att_head att_head(const struct dg_tensor *in, int n_tensors,
                                const struct att_dims *d, int64_t h)
{
    struct att_head hd = {
        .q = (const float *)in[0].data + h * d->t * d->dh,
        .k = (const float *)in[1].data + h * d->s * d->dh,
        .v = (const float *)in[2].data + h * d->s * d->dv,
    };
    if (n_tensors == 5) {
        hd.out = (const float *)in[3].data + h * d->t * d->dv;
        hd.grad_out = (const float *)in[4].data + h * d->t * d->dv;
    }
    return hd;
}

static int att_thread(void)
{
    return omp_get_thread_num();
}

static void attention_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const struct attention_attrs *a = att_attrs(attrs);
    struct att_dims d;
    att_dims(&in[0].shape, &in[1].shape, &in[2].shape, &d);
    struct att_mask mask;
    att_mask_init(&mask, a, n_inputs == 4 ? &in[3] : NULL);
    const struct dg_vmath *vm = dg__vmath();
    float *tiles = ctx->workspace;
    int64_t rows = d.heads * d.t;
    int threads = dg__threads_for(ctx, rows * d.s * (d.dh + d.dv));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 4)
    for (int64_t r = 0; r < rows; r++) {
        int64_t h = r / d.t, i = r % d.t;
        struct att_head hd = att_head(in, 3, &d, h);
        att_row(hd.q + i * d.dh, hd.k, hd.v, (float *)out->data + r * d.dv, &d, a->scale,
                att_limit(a->causal, i, &d), &mask, r * d.s, tiles + att_thread() * 2 * ATT_TILE,
                vm);
    }
}

/* d q for query row r (head h, position i); tile: 2 * ATT_TILE floats. */
static void grad_q_row(const struct att_head *hd, const struct att_dims *d,
                       const struct attention_attrs *a, const struct att_mask *mask, int64_t r,
                       int64_t i, float *dq, float *tile, const struct dg_vmath *vm)
{
    const float *qi = hd->q + i * d->dh, *go = hd->grad_out + i * d->dv;
    int64_t limit = att_limit(a->causal, i, d);
    memset(dq, 0, (size_t)d->dh * sizeof *dq);
    float lse = att_row(qi, hd->k, hd->v, NULL, d, a->scale, limit, mask, 0, tile, vm);
    if (limit == 0 || !isfinite(lse))
        return;
    float di = dot(go, hd->out + i * d->dv, d->dv);
    for (int64_t j0 = 0; j0 < limit; j0 += ATT_TILE) {
        int64_t w = limit - j0 < ATT_TILE ? limit - j0 : ATT_TILE;
        for (int64_t jj = 0; jj < w; jj++)
            tile[jj] = a->scale * dot(qi, hd->k + (j0 + jj) * d->dh, d->dh) - lse;
        vm->exp(tile, tile, w);
        for (int64_t jj = 0; jj < w; jj++) {
            int64_t j = j0 + jj;
            float dp = dot(go, hd->v + j * d->dv, d->dv) * att_keep(mask, r * d->s + j);
            float ds = tile[jj] * (dp - di);
            if (ds != 0.0f)
                axpy(dq, a->scale * ds, hd->k + j * d->dh, d->dh);
        }
    }
}

/* d k or d v for key row j of head h (global row index of its head's queries: h * T). stats:
 * L_i and D_i of the head's queries. tile: 2 * ATT_TILE floats. */
static void grad_kv_row(const struct att_head *hd, const struct att_dims *d,
                        const struct attention_attrs *a, const struct att_mask *mask,
                        int64_t h, int64_t j, const float *lse, const float *delta, float *dst,
                        float *tile, const struct dg_vmath *vm)
{
    bool is_k = a->which == ATT_K;
    int64_t width = is_k ? d->dh : d->dv;
    memset(dst, 0, (size_t)width * sizeof *dst);
    const float *kj = hd->k + j * d->dh, *vj = hd->v + j * d->dv;
    /* queries that see key j: j < limit(i), i.e. i >= j - (S - T) when causal */
    int64_t first = 0;
    if (a->causal) {
        first = j - (d->s - d->t);
        first = first < 0 ? 0 : first;
    }
    for (int64_t i0 = first; i0 < d->t; i0 += ATT_TILE) {
        int64_t w = d->t - i0 < ATT_TILE ? d->t - i0 : ATT_TILE;
        for (int64_t ii = 0; ii < w; ii++) {
            int64_t i = i0 + ii;
            /* a query with no visible key has lse -inf: give it weight 0 */
            tile[ii] = isfinite(lse[i]) ? a->scale * dot(hd->q + i * d->dh, kj, d->dh) - lse[i]
                                        : -INFINITY;
        }
        vm->exp(tile, tile, w);
        for (int64_t ii = 0; ii < w; ii++) {
            int64_t i = i0 + ii;
            float p = tile[ii];
            if (p == 0.0f)
                continue;
            float keep = att_keep(mask, ((h * d->t) + i) * d->s + j);
            const float *go = hd->grad_out + i * d->dv;
            if (is_k) {
                float ds = p * (dot(go, vj, d->dv) * keep - delta[i]);
                if (ds != 0.0f)
                    axpy(dst, a->scale * ds, hd->q + i * d->dh, d->dh);
            } else if (keep != 0.0f) {
                axpy(dst, p * keep, go, d->dv);
            }
        }
    }
}

static void attention_grad_forward(const struct dg_op_def *def, const void *attrs,
                                   int n_inputs, const struct dg_tensor *in,
                                   struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    const struct attention_attrs *a = att_attrs(attrs);
    struct att_dims d;
    att_dims(&in[0].shape, &in[1].shape, &in[2].shape, &d);
    struct att_mask mask;
    att_mask_init(&mask, a, n_inputs == 6 ? &in[5] : NULL);
    const struct dg_vmath *vm = dg__vmath();
    float *o = out->data;
    int64_t work = d.heads * d.t * d.s * (d.dh + d.dv);
    int threads = dg__threads_for(ctx, work);
    if (a->which == ATT_Q) {
        float *tiles = ctx->workspace;
        int64_t rows = d.heads * d.t;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; r++) {
            struct att_head hd = att_head(in, 5, &d, r / d.t);
            grad_q_row(&hd, &d, a, &mask, r, r % d.t, o + r * d.dh,
                       tiles + att_thread() * 2 * ATT_TILE, vm);
        }
        return;
    }
    /* K, V: the statistics of every query row first (L_i, D_i), then one key row per task. */
    float *lse = ctx->workspace, *delta = lse + d.heads * d.t;
    float *tiles = delta + d.heads * d.t;
    int64_t rows = d.heads * d.t;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 4)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r % d.t;
        struct att_head hd = att_head(in, 5, &d, r / d.t);
        lse[r] = att_row(hd.q + i * d.dh, hd.k, hd.v, NULL, &d, a->scale,
                         att_limit(a->causal, i, &d), &mask, 0,
                         tiles + att_thread() * 2 * ATT_TILE, vm);
        delta[r] = dot(hd.grad_out + i * d.dv, hd.out + i * d.dv, d.dv);
    }
    int64_t width = a->which == ATT_K ? d.dh : d.dv;
    int64_t key_rows = d.heads * d.s;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 4)
    for (int64_t r = 0; r < key_rows; r++) {
        int64_t h = r / d.s;
        struct att_head hd = att_head(in, 5, &d, h);
        grad_kv_row(&hd, &d, a, &mask, h, r % d.s, lse + h * d.t, delta + h * d.t,
                    o + r * width, tiles + att_thread() * 2 * ATT_TILE, vm);
    }
}

/* Per-thread tiles (2 * ATT_TILE floats each), plus L and D of every query row for d k and
 * d v: O(heads * T) floats, never T x S. */
static size_t attention_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, const struct dg_shape *out,
                                  int n_threads)
{
    size_t tiles = (size_t)(n_threads > 0 ? n_threads : 1) * 2 * ATT_TILE * sizeof(float);
    if (def->variant == 1 && att_attrs(attrs)->which != ATT_Q) {
        struct att_dims d;
        att_dims(&in[0], &in[1], &in[2], &d);
        tiles += (size_t)(2 * d.heads * d.t) * sizeof(float);
    }
    return tiles;
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

static dg_status attention_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    for (int which = ATT_Q; which <= ATT_V; which++)
        if (dg__grad_needed(ctx, which))
            gin[which] = make_grad(g, node, grad, which);
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
    static const char *const which[] = {"q", "k", "v"};
    if (def->variant == 1)
        snprintf(buf, len, "d%s scale=%g%s p=%g", which[a->which % 3], (double)a->scale,
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

dg_node *dg_attention(dg_graph *g, dg_node *q, dg_node *k, dg_node *v, dg_node *key,
                      bool causal, float dropout_p)
{
    if (dg_graph_status(g) == DG_OK && q != NULL) {
        if (!(dropout_p >= 0.0f && dropout_p < 1.0f))
            return dg__fail(g, DG_ERR_INVALID_ARG, "attention: dropout p = %g is outside "
                            "[0, 1)", (double)dropout_p);
        if (dropout_p > 0.0f && key == NULL)
            return dg__fail(g, DG_ERR_INVALID_ARG, "attention: dropout p = %g needs the "
                            "dropout key (dg_dropout_key)", (double)dropout_p);
    }
    struct attention_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    int ndim = q != NULL ? dg_node_ndim(q) : 0;
    int64_t dh = ndim >= 1 ? dg_node_dim(q, ndim - 1) : 1;
    attrs.scale = (float)(1.0 / sqrt((double)(dh > 0 ? dh : 1)));
    attrs.p = key != NULL ? dropout_p : 0.0f;
    attrs.causal = causal;
    attrs.salt = (uint64_t)dg_graph_node_count(g);
    if (key != NULL)
        return dg__make_node(g, DG_OP_attention, 4, (dg_node *[]){q, k, v, key}, &attrs);
    return dg__make_node(g, DG_OP_attention, 3, (dg_node *[]){q, k, v}, &attrs);
}
