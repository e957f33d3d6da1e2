/*
 * Sequence ops: embedding lookup, comparisons and selection, masks and scaled dot-product
 * attention (issue 12). Part of the public surface; included by dagrad.h. Each returns a new
 * node, or NULL with the error stuck to the graph. The maths, gradients and behaviour at
 * special points of each op are in docs/op-reference.md; docs/sequence-ops.md shows how they
 * fit together.
 */
#ifndef DAGRAD_SEQ_H
#define DAGRAD_SEQ_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gathers rows of table [V,D] (float32, usually a parameter) by int32 indices of any shape
 * [..] (at most DG_MAX_DIMS-1 axes): out [.., D], out[n,:] = table[indices[n],:]. The table's
 * gradient is a scatter-add that gives the same bits at any thread count. An index outside
 * [0, V) is a run-time error: dg_run returns DG_ERR_INVALID_ARG with a message naming the node,
 * the index and its position; nothing is read out of bounds. */
DG_API dg_node *dg_embedding(dg_graph *g, dg_node *table, dg_node *indices);

#ifdef __cplusplus
}
#endif

#endif /* DAGRAD_SEQ_H */
