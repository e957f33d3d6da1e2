/*
 * Op cases for the layer-support ops (src/ops/dropout.c); the PyTorch side is in
 * tests/gen/cases_nn.py. Dropout's training-mode mask comes from dagrad's own counter-based
 * hash, which PyTorch cannot reproduce: the fixture rows check evaluation mode (the identity,
 * gradient passed through) and training mode is checked by finite differences of a fixed
 * mask in tests/test_layers.c.
 */
#include "op_cases.h"

static dg_node *build_dropout(dg_graph *g, dg_node *const *in)
{
    return dg_dropout(g, in[0], in[1], 0.3f);
}

const struct dg_op_case dg_cases_nn[] = {
    {.name = "dropout_eval", .op = "dropout", .build = build_dropout},
    {.name = "dropout_eval_batched", .op = "dropout", .build = build_dropout},
    {0},
};
