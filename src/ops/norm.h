/*
 * What layer_norm / group_norm (norm.c) and layer norm's fused gradients (norm_grad.c) share:
 * the attributes, the row layout, the row statistics (so the backward recomputes exactly the
 * forward's mean and rstd), and the composed formulas the fused gradients fall back to for
 * their own gradients (second derivatives).
 */
#ifndef DG_NORM_H
#define DG_NORM_H

#include "op.h"
#include "simd/norm_rows.h"

#include <string.h>

enum norm_variant { NORM_LAYER, NORM_GROUP };

struct norm_attrs {
    int64_t n_axes; /* layer_norm: normalised trailing axes */
    int64_t groups; /* group_norm */
    float eps;
};

/* Four float lanes (GCC/Clang vector extension: one SSE register on the baseline x86-64
 * build, NEON elsewhere). The row reductions keep several of them as named accumulators
 * (independent chains, in registers: GCC keeps a float array of lanes, or one 64-byte
 * vector, in memory, which ran the row statistics 3x slower) and add them in a fixed tree at
 * the end, so the order of the additions depends on the row length only. */
typedef float norm_v4 __attribute__((vector_size(16)));

static inline norm_v4 norm_load4(const float *p)
{
    norm_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* a, b, c, d as the 16 lanes [a | b | c | d], added by norm_tree (simd/norm_rows.h). */
static inline double norm_total4(norm_v4 a, norm_v4 b, norm_v4 c, norm_v4 d)
{
    float lanes[16];
    memcpy(lanes, &a, sizeof a);
    memcpy(lanes + 4, &b, sizeof b);
    memcpy(lanes + 8, &c, sizeof c);
    memcpy(lanes + 12, &d, sizeof d);
    return norm_tree(lanes);
}

static inline const struct norm_attrs *norm_attrs(const void *attrs) { return attrs; }

/* Rows and row length of x normalised over its last n_axes axes (layer norm). */
void dg__layer_norm_rows(const struct dg_shape *x, int64_t n_axes, int64_t *rows,
                         int64_t *length);

/* The portable row statistics and forward row (simd/norm_rows.h: the generic table's). */
void dg__norm_stats_generic(const float *row, int64_t n, float eps, double *mean, double *rstd);
void dg__norm_forward_row_generic(const float *x, const float *gamma, const float *beta,
                                  int64_t n, float eps, float *y);

/* Composed from ordinary ops on the rows of x as [-1, length] (so that their rules give any
 * order of derivative): the normalised input x^ shaped like x, and the input gradient
 *   dx = rstd (d - mean(d) - x^ mean(d x^)),  d = grad * gamma_b  (grad when gamma_b is NULL),
 * with gamma_b broadcastable against x. */
dg_node *dg__norm_composed_xhat(dg_graph *g, dg_node *x, int64_t length, float eps);
dg_node *dg__norm_composed_dx(dg_graph *g, dg_node *x, dg_node *grad, dg_node *gamma_b,
                              int64_t length, float eps);

#endif /* DG_NORM_H */
