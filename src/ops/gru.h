/*
 * What gru.c (the fused GRU and its fused gradient) shares with gru_grad2.c (the composed rule
 * that differentiates the fused gradient again).
 */
#ifndef DG_GRU_H
#define DG_GRU_H

#include "op.h"

/* gru_seq_grad's backward rule (gru_grad2.c): second derivatives through gru_seq. */
dg_status dg__gru_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *upstream, dg_node **gin);

#endif
