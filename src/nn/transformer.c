/*
 * Transformer pieces: layer norm over the last axis, learned positional embeddings and a
 * pre-norm block (GPT-2 style), for a whole sequence and for one decode step with a key/value
 * cache. Everything is composed from public ops, so each block is ordinary graph nodes:
 *
 *   h   = x + dropout(proj(attention(ln1(x))))
 *   out = h + dropout(fc2(gelu(fc1(ln2(h)))))
 *   attention: q, k, v = split(ln1(x) W_qkv + b_qkv), per head
 *              softmax(q k^T / sqrt(d) + mask) (dropout) v, heads concatenated
 *
 * The attention is composed (matmul, scale, additive causal mask, softmax, matmul), or with
 * cfg.fused_attention the fused dg_attention op (src/ops/attention.c); see
 * docs/sequence-models.md for which is faster at which context length.
 * Layer norm is the fused layer_norm op (src/ops/norm.c).
 * Parameters are found by name when they exist (the decode graph shares the training graph's
 * weights), else created: weights N(0, 0.02), biases 0, layer-norm scales 1 (GPT-2's init).
 */
#include "dagrad.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Longest context for which the fused attention runs packed (dg_attention_packed: whole-head
 * kernels, O(T^2) scratch per thread); longer ones split the heads out for dg_attention's
 * streaming kernels. */
#define DG_TRANSFORMER_PACKED_MAX_T 256

#define FAIL(g, status, ...) (dg_graph_set_error((g), (status), __VA_ARGS__), (dg_node *)NULL)

enum init_kind { INIT_NORMAL, INIT_ZERO, INIT_ONE };

/* Finds "<prefix>.<suffix>" of the given shape, or creates and initialises it. */
static dg_node *param(dg_graph *g, const char *prefix, const char *suffix, int ndim,
                      const int64_t *shape, enum init_kind init, dg_rng *rng)
{
    if (dg_graph_status(g) != DG_OK)
        return NULL;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    dg_node *p = dg_graph_find(g, name);
    if (p == NULL)
        dg_graph_clear_error(g); /* only reached with no earlier error */
    if (p != NULL) {
        bool same = dg_node_kind_of(p) == DG_NODE_PARAM && dg_node_ndim(p) == ndim;
        for (int i = 0; same && i < ndim; i++)
            same = dg_node_dim(p, i) == shape[i];
        return same ? p : FAIL(g, DG_ERR_SHAPE, "transformer: node %d '%s' exists with "
                               "another shape or kind", dg_node_index(p), name);
    }
    p = dg_param(g, name, ndim, shape);
    if (p == NULL)
        return NULL;
    dg_status st = init == INIT_ONE ? dg_init_constant(p, 1.0f)
                   : init == INIT_NORMAL && rng ? dg_init_normal(p, rng, 0.0f, 0.02f)
                                                : DG_OK;
    return st == DG_OK ? p : NULL;
}

/* y = x W + b over the last axis; W [in, out] "<prefix>.weight", b [out] "<prefix>.bias".
 * x [B, T, in] is multiplied as one [B*T, in] matrix (a view): the weight gradient is then one
 * GEMM reducing over all B*T rows, not B batched products summed afterwards. */
static dg_node *linear(dg_graph *g, dg_node *x, int64_t out, const char *prefix, dg_rng *rng)
{
    if (x == NULL)
        return NULL;
    int64_t in = dg_node_dim(x, -1);
    dg_node *w = param(g, prefix, "weight", 2, (int64_t[]){in, out}, INIT_NORMAL, rng);
    dg_node *b = param(g, prefix, "bias", 1, (int64_t[]){out}, INIT_ZERO, rng);
    if (dg_node_ndim(x) != 3)
        return dg_add(g, dg_matmul(g, x, w), b);
    int64_t t = dg_node_dim(x, 1);
    dg_node *rows = dg_reshape(g, x, 2, (int64_t[]){-1, in});
    dg_node *y = dg_add(g, dg_matmul(g, rows, w), b);
    return dg_reshape(g, y, 3, (int64_t[]){-1, t, out});
}

/* (x - mean) / sqrt(var + eps) * gamma + beta over the last axis (biased variance): the fused
 * layer_norm op (src/ops/norm.c). */
static dg_node *ln(dg_graph *g, dg_node *x, float eps, const char *prefix)
{
    if (x == NULL)
        return NULL;
    int64_t c = dg_node_dim(x, -1);
    dg_node *gamma = param(g, prefix, "weight", 1, (int64_t[]){c}, INIT_ONE, NULL);
    dg_node *beta = param(g, prefix, "bias", 1, (int64_t[]){c}, INIT_ZERO, NULL);
    return dg_layer_norm(g, x, gamma, beta, 1, eps);
}

dg_node *dg_layer_norm_layer(dg_graph *g, dg_node *x, float eps, const char *name)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (x == NULL || name == NULL || *name == '\0' || !(eps > 0))
        return FAIL(g, DG_ERR_INVALID_ARG, "layer_norm_layer: NULL input or name, or eps "
                    "%g not > 0", (double)eps);
    return ln(g, x, eps, name);
}

dg_node *dg_positional_embedding(dg_graph *g, dg_node *x, int64_t max_len, const char *name,
                                 dg_rng *rng)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (x == NULL || name == NULL || dg_node_ndim(x) != 3)
        return FAIL(g, DG_ERR_SHAPE, "positional_embedding: input must be [batch, time, "
                    "width] with a name");
    int64_t t = dg_node_dim(x, 1), c = dg_node_dim(x, 2);
    if (t > max_len)
        return FAIL(g, DG_ERR_SHAPE, "positional_embedding '%s': %lld steps, table of %lld",
                    name, (long long)t, (long long)max_len);
    dg_node *table = param(g, name, "weight", 2, (int64_t[]){max_len, c}, INIT_NORMAL, rng);
    return dg_add(g, x, dg_slice(g, table, 0, 0, t));
}

/* [B, T, C] -> [B, heads, T, C / heads]. */
static dg_node *split_heads(dg_graph *g, dg_node *x, int heads)
{
    int64_t t = dg_node_dim(x, 1), c = dg_node_dim(x, 2);
    dg_node *r = dg_reshape(g, x, 4, (int64_t[]){-1, t, heads, c / heads});
    return dg_permute(g, r, 4, (int[]){0, 2, 1, 3});
}

/* [B, heads, T, d] -> [B, T, heads * d]. */
static dg_node *merge_heads(dg_graph *g, dg_node *x)
{
    int64_t heads = dg_node_dim(x, 1), t = dg_node_dim(x, 2), d = dg_node_dim(x, 3);
    dg_node *p = dg_permute(g, x, 4, (int[]){0, 2, 1, 3});
    return dg_reshape(g, p, 3, (int64_t[]){-1, t, heads * d});
}

static dg_node *maybe_dropout(dg_graph *g, dg_node *x, dg_node *key, float p)
{
    return (key != NULL && p > 0) ? dg_dropout(g, x, key, p) : x;
}

static bool check_config(dg_graph *g, const dg_transformer_config *cfg, dg_node *x,
                         const char *name)
{
    if (cfg == NULL || x == NULL || name == NULL || *name == '\0') {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "transformer_block: NULL config, input or name");
        return false;
    }
    if (dg_node_ndim(x) != 3 || cfg->n_heads <= 0 || dg_node_dim(x, 2) % cfg->n_heads != 0 ||
        !(cfg->dropout >= 0 && cfg->dropout < 1) || !(cfg->ln_eps > 0)) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "transformer_block '%s': input must be [batch, time, width] "
             "with width divisible by %d heads, dropout in [0, 1), ln_eps > 0", name,
             cfg->n_heads);
        return false;
    }
    return true;
}

/* The MLP half and the second residual. */
static dg_node *mlp_half(dg_graph *g, dg_node *h, const dg_transformer_config *cfg,
                         dg_node *key, const char *name, dg_rng *rng)
{
    char prefix[256];
    int64_t c = dg_node_dim(h, 2);
    int64_t hidden = cfg->mlp_hidden > 0 ? cfg->mlp_hidden : 4 * c;
    snprintf(prefix, sizeof prefix, "%s.ln2", name);
    dg_node *m = ln(g, h, cfg->ln_eps, prefix);
    snprintf(prefix, sizeof prefix, "%s.mlp.fc", name);
    m = dg_gelu(g, linear(g, m, hidden, prefix, rng));
    snprintf(prefix, sizeof prefix, "%s.mlp.proj", name);
    m = linear(g, m, c, prefix, rng);
    return dg_add(g, h, maybe_dropout(g, m, key, cfg->dropout));
}

/* ln1(x) W_qkv + b_qkv: [B, T, 3C], q, k and v side by side. */
static dg_node *qkv_proj(dg_graph *g, dg_node *x, const dg_transformer_config *cfg,
                         const char *name, dg_rng *rng)
{
    char prefix[256];
    int64_t c = dg_node_dim(x, 2);
    snprintf(prefix, sizeof prefix, "%s.ln1", name);
    dg_node *a = ln(g, x, cfg->ln_eps, prefix);
    snprintf(prefix, sizeof prefix, "%s.attn.qkv", name);
    return linear(g, a, 3 * c, prefix, rng);
}

/* q, k, v of ln1(x), each [B, heads, T, d]. */
static void qkv_heads(dg_graph *g, dg_node *x, const dg_transformer_config *cfg,
                      const char *name, dg_rng *rng, dg_node **q, dg_node **k, dg_node **v)
{
    int64_t c = dg_node_dim(x, 2);
    dg_node *qkv = qkv_proj(g, x, cfg, name, rng);
    *q = split_heads(g, dg_slice(g, qkv, 2, 0, c), cfg->n_heads);
    *k = split_heads(g, dg_slice(g, qkv, 2, c, 2 * c), cfg->n_heads);
    *v = split_heads(g, dg_slice(g, qkv, 2, 2 * c, 3 * c), cfg->n_heads);
}

/* softmax(q k^T * scale + mask) (dropout) v, projected and added to x. */
static dg_node *attend(dg_graph *g, dg_node *x, dg_node *q, dg_node *k, dg_node *v,
                       dg_node *mask, const dg_transformer_config *cfg, dg_node *key,
                       const char *name, dg_rng *rng)
{
    char prefix[256];
    int64_t c = dg_node_dim(x, 2);
    float scale = 1.0f / sqrtf((float)(c / cfg->n_heads));
    dg_node *scores = dg_scale(g, dg_matmul_ex(g, q, k, false, true), scale);
    if (mask != NULL)
        scores = dg_add(g, scores, mask);
    dg_node *att = maybe_dropout(g, dg_softmax(g, scores, -1), key, cfg->dropout);
    dg_node *y = merge_heads(g, dg_matmul(g, att, v));
    snprintf(prefix, sizeof prefix, "%s.attn.proj", name);
    y = linear(g, y, c, prefix, rng);
    return dg_add(g, x, maybe_dropout(g, y, key, cfg->dropout));
}

dg_node *dg_transformer_block(dg_graph *g, dg_node *x, const dg_transformer_config *cfg,
                              dg_node *dropout_key, const char *name, dg_rng *rng)
{
    if (g == NULL || dg_graph_status(g) != DG_OK || !check_config(g, cfg, x, name))
        return NULL;
    if (dg_scope_push(g, name) != DG_OK)
        return NULL;
    dg_node *q, *k, *v, *mask = NULL;
    int64_t t = dg_node_dim(x, 1);
    if (cfg->fused_attention && t <= DG_TRANSFORMER_PACKED_MAX_T) {
        /* q, k, v read in place from the projection, heads merged by the op: no slices,
         * permutes or copies, one [B, T, 3C] gradient */
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s.attn.proj", name);
        dg_node *qkv = qkv_proj(g, x, cfg, name, rng);
        dg_node *att = dg_attention_packed(g, qkv, cfg->n_heads, dropout_key, cfg->causal,
                                           dropout_key ? cfg->dropout : 0.0f);
        dg_node *y = linear(g, att, dg_node_dim(x, 2), prefix, rng);
        dg_node *h = dg_add(g, x, maybe_dropout(g, y, dropout_key, cfg->dropout));
        dg_node *out = h ? mlp_half(g, h, cfg, dropout_key, name, rng) : NULL;
        dg_scope_pop(g);
        return dg_graph_status(g) == DG_OK ? out : NULL;
    }
    qkv_heads(g, x, cfg, name, rng, &q, &k, &v);
    if (cfg->fused_attention) {
        /* The fused op (online softmax, no T x T scores); dropout on the weights inside it. */
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s.attn.proj", name);
        dg_node *att = dg_attention(g, q, k, v, dropout_key, cfg->causal,
                                    dropout_key ? cfg->dropout : 0.0f);
        dg_node *y = linear(g, merge_heads(g, att), dg_node_dim(x, 2), prefix, rng);
        dg_node *h = dg_add(g, x, maybe_dropout(g, y, dropout_key, cfg->dropout));
        dg_node *out = h ? mlp_half(g, h, cfg, dropout_key, name, rng) : NULL;
        dg_scope_pop(g);
        return dg_graph_status(g) == DG_OK ? out : NULL;
    }
    if (cfg->causal && t > 1) {
        /* -1e9 above the diagonal: exp underflows to exactly 0, and no inf - inf NaN. */
        float *m = dg_graph_status(g) == DG_OK ? dg__calloc((size_t)(t * t), sizeof *m) : NULL;
        if (m != NULL) {
            for (int64_t i = 0; i < t; i++)
                for (int64_t j = i + 1; j < t; j++)
                    m[i * t + j] = -1e9f;
            mask = dg_constant(g, 2, (int64_t[]){t, t}, m);
            dg__free(m);
        } else if (dg_graph_status(g) == DG_OK) {
            dg_graph_set_error(g, DG_ERR_NOMEM, "transformer_block '%s': out of memory for the mask", name);
        }
    }
    dg_node *h = attend(g, x, q, k, v, mask, cfg, dropout_key, name, rng);
    dg_node *out = h ? mlp_half(g, h, cfg, dropout_key, name, rng) : NULL;
    dg_scope_pop(g);
    return dg_graph_status(g) == DG_OK ? out : NULL;
}

dg_node *dg_transformer_block_step(dg_graph *g, dg_node *x, dg_node *k_cache,
                                   dg_node *v_cache, dg_node *cache_mask,
                                   const dg_transformer_config *cfg, const char *name,
                                   dg_node **k_new, dg_node **v_new)
{
    if (g == NULL || dg_graph_status(g) != DG_OK || !check_config(g, cfg, x, name))
        return NULL;
    if (k_cache == NULL || v_cache == NULL || cache_mask == NULL || k_new == NULL ||
        v_new == NULL || dg_node_dim(x, 1) != 1)
        return FAIL(g, DG_ERR_INVALID_ARG, "transformer_block_step '%s': x must be [batch, 1, "
                    "width], caches, mask and outputs non-NULL", name);
    if (dg_scope_push(g, name) != DG_OK)
        return NULL;
    dg_node *q, *k, *v;
    qkv_heads(g, x, cfg, name, NULL, &q, &k, &v);
    *k_new = k;
    *v_new = v;
    dg_node *keys = dg_concat(g, 2, (dg_node *[]){k_cache, k}, 2);
    dg_node *values = dg_concat(g, 2, (dg_node *[]){v_cache, v}, 2);
    dg_node *h = attend(g, x, q, keys, values, cache_mask, cfg, NULL, name, NULL);
    dg_node *out = h ? mlp_half(g, h, cfg, NULL, name, NULL) : NULL;
    dg_scope_pop(g);
    return dg_graph_status(g) == DG_OK ? out : NULL;
}
