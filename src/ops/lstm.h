/*
 * What lstm.c (the fused LSTM and its fused gradient) shares with lstm_grad2.c (the composed
 * rule that differentiates the fused gradient again).
 */
#ifndef DG_LSTM_H
#define DG_LSTM_H

#include "op.h"

/* lstm_seq_grad's backward rule (lstm_grad2.c): second derivatives through lstm_seq. */
dg_status dg__lstm_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *upstream, dg_node **gin);

#endif
