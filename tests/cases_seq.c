/*
 * Op cases for the sequence ops (issue 12): embedding and its scatter-add gradient. The
 * PyTorch side of each row, with the same name, is in tests/gen/cases_seq.py.
 */
#include "op.h"
#include "op_cases.h"

static dg_node *build_embedding(dg_graph *g, dg_node *const *in)
{
    return dg_embedding(g, in[0], in[1]);
}

static dg_node *build_embedding_grad(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_embedding_grad, 3, in, NULL);
}

const struct dg_op_case dg_cases_seq[] = {
    {.name = "embedding_basic", .op = "embedding", .build = build_embedding},
    {.name = "embedding_repeat", .op = "embedding", .build = build_embedding},
    {.name = "embedding_flat", .op = "embedding", .build = build_embedding},
    {.name = "embedding_grad_basic", .op = "embedding_grad", .build = build_embedding_grad},
    {0},
};
