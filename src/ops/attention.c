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
 * Backward (attention_grad, one op with attribute `which` = q, k, v, or kv: d k and d v side
 * by side, sliced apart by the rule; inputs q, k, v, out, grad_out [, key]). With L_i = logsumexp_j(scale q_i . k_j) and D_i = grad_out_i . out_i:
 *   dP_ij = grad_out_i . v_j * keep_ij / (1 - p)      dS_ij = P_ij (dP_ij - D_i)
 *   dq_i = scale sum_j dS_ij k_j     dk_j = scale sum_i dS_ij q_i     dv_j = sum_i P~_ij grad_out_i
 * (D_i = sum_j P_ij dP_ij because out_i = sum_j P~_ij v_j.) L and D are recomputed from q, k,
 * out and grad_out: the forward saves nothing but its output. attention_grad has no second
 * derivative: its rule fails with DG_ERR_NOT_DIFFERENTIABLE naming it (build attention from
 * matmul and softmax when higher-order gradients are needed).
 *
 * This file holds the op: shape rules, workspace rule, gradient rules, labels and
 * constructors. The kernels are in attention_kernels.c (attention_kernels.h).
 */
#include "attention_kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- shapes ------------------------------------------------------------------------------ */

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

static void attention_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    dg__attention_run(att_attrs(attrs), n_inputs, in, out, ctx);
}

static void attention_grad_forward(const struct dg_op_def *def, const void *attrs,
                                   int n_inputs, const struct dg_tensor *in,
                                   struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    dg__attention_grad_run(att_attrs(attrs), n_inputs, in, out, ctx);
}

/* Per-thread scratch of the kernels, never T x S per head (attention_kernels.c). */
static size_t attention_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, const struct dg_shape *out,
                                  int n_threads)
{
    struct att_dims d;
    if (att_attrs(attrs)->heads > 0)
        att_dims_packed(&in[0], att_attrs(attrs)->heads, &d);
    else
        att_dims(&in[0], &in[1], &in[2], &d);
    return dg__attention_workspace(att_attrs(attrs), def->variant == 1, &d, n_threads);
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
